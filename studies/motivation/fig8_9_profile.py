"""Figs. 8 and 9: cost of inter-op and intra-op parallelism, read from the profile database.

For bert-2.6b on n = 1, 2, 4, 8 devices (DESIGN 7.6), batch size 1, raw profile numbers (no
simulator penalties):

* Fig. 8: latency (sum of stages) of inter-op (pp = n) and intra-op (op = n) parallelism;
  throughput = 1 / slowest stage (replication on n devices: n / single latency); memory =
  sum of stage weights (x n for intra-op, whose weights are per device, and for replication);
* Fig. 9: overhead decomposition. Inter-op: communication = max(sum of stages - single, 0),
  uneven partition = max(slowest stage x n - communication - single, 0), so that
  slowest x n = single + communication + uneven (when both are positive); intra-op:
  overhead = op latency - single / n.

The paper read these from separate long-sequence profiles that are not public; we use the main
V100 reconstruction (alpa_serve/data/profiling_result.pkl).

Run: ``python -m studies.motivation.fig8_9_profile``.
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from alpa_serve.units import GiB
from studies.motivation import common

logger = logging.getLogger(__name__)

MODEL = "bert-2.6b"
DEVICES = (1, 2, 4, 8)


@dataclass(frozen=True)
class ParallelismCost:
    """Costs of one model on n devices (seconds, requests/s, bytes)."""

    n: int
    single: float  # (1,1,1) latency, s
    pp_latency: float  # sum of the (1,1,n) stages, s
    pp_slowest: float  # slowest (1,1,n) stage, s
    op_latency: float  # (1,n,1) latency, s
    pp_throughput: float  # 1 / slowest stage, req/s
    op_throughput: float  # 1 / op latency, req/s
    rep_throughput: float  # n / single, req/s
    pp_memory: float  # sum of (1,1,n) stage weights, bytes
    op_memory: float  # (1,n,1) per-device weight x n, bytes
    rep_memory: float  # single-device weight x n, bytes
    communication: float  # inter-op, s
    uneven: float  # inter-op, s
    op_overhead: float  # intra-op, s


def parallelism_costs(profile: Any, devices: Sequence[int] = DEVICES) -> list[ParallelismCost]:
    """The Fig. 8/9 quantities of ``profile`` (a ModelProfile) for every n in ``devices``."""
    from alpa_serve.profiling import ParallelConfig

    single = profile.single_latency
    single_weight = float(sum(profile.weight_mem(ParallelConfig(1, 1, 1))))
    out = []
    for n in devices:
        pp_stages = profile.latency(ParallelConfig(1, 1, n), 1)
        op_stages = profile.latency(ParallelConfig(1, n, 1), 1)
        pp_sum, slowest = float(sum(pp_stages)), float(max(pp_stages))
        op_lat = float(sum(op_stages))
        comm = max(pp_sum - single, 0.0)
        out.append(ParallelismCost(
            n=n, single=single, pp_latency=pp_sum, pp_slowest=slowest, op_latency=op_lat,
            pp_throughput=1.0 / slowest, op_throughput=1.0 / op_lat, rep_throughput=n / single,
            pp_memory=float(sum(profile.weight_mem(ParallelConfig(1, 1, n)))),
            op_memory=float(sum(profile.weight_mem(ParallelConfig(1, n, 1)))) * n,
            rep_memory=single_weight * n,
            communication=comm, uneven=max(slowest * n - comm - single, 0.0),
            op_overhead=op_lat - single / n))
    return out


def make(settings: common.Settings, db: Any) -> list[Path]:
    """Write fig8_parallelism_cost and fig9_overhead_decomposition."""
    plt = common.pyplot()
    costs = parallelism_costs(db.get(MODEL))
    for c in costs:
        logger.info("n=%d: pp %.4f s (slowest %.4f), op %.4f s; thr pp %.2f op %.2f rep %.2f "
                    "req/s; mem pp %.2f op %.2f rep %.2f GiB; comm %.4f uneven %.4f op-ovh %.4f s",
                    c.n, c.pp_latency, c.pp_slowest, c.op_latency, c.pp_throughput,
                    c.op_throughput, c.rep_throughput, c.pp_memory / GiB,
                    c.op_memory / GiB, c.rep_memory / GiB, c.communication,
                    c.uneven, c.op_overhead)
    n = [c.n for c in costs]
    lines = {"Inter-op (pipeline)": ("tab:red", "o"), "Intra-op": ("tab:green", "^"),
             "Replication": ("tab:blue", "s")}
    series = {
        "Latency (s)": {"Inter-op (pipeline)": [c.pp_latency for c in costs],
                        "Intra-op": [c.op_latency for c in costs],
                        "Replication": [c.single for c in costs]},
        "Throughput (req/s)": {"Inter-op (pipeline)": [c.pp_throughput for c in costs],
                               "Intra-op": [c.op_throughput for c in costs],
                               "Replication": [c.rep_throughput for c in costs]},
        "Memory (GiB)": {"Inter-op (pipeline)": [c.pp_memory / GiB for c in costs],
                         "Intra-op": [c.op_memory / GiB for c in costs],
                         "Replication": [c.rep_memory / GiB for c in costs]},
    }
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    for ax, (ylabel, data) in zip(axes, series.items()):
        for label, ys in data.items():
            color, marker = lines[label]
            ax.plot(n, ys, color=color, marker=marker, label=label)
        ax.set_xscale("log", base=2)
        ax.set_xticks(n, [str(v) for v in n])
        ax.set_xlabel("#devices")
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
    axes[0].legend(fontsize=10)
    fig.suptitle(f"{MODEL}, batch 1, from the profile database", fontsize=12)
    fig.tight_layout()
    paths = common.save_figure(fig, "fig8_parallelism_cost", settings)

    x = np.arange(len(n))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    ax = axes[0]
    single = np.array([c.single for c in costs])
    comm = np.array([c.communication for c in costs])
    uneven = np.array([c.uneven for c in costs])
    ax.bar(x, single, color="tab:gray", label="Computation (single latency)")
    ax.bar(x, comm, bottom=single, color="tab:orange", label="Communication")
    ax.bar(x, uneven, bottom=single + comm, color="tab:purple", label="Uneven partition")
    ax.set_title("(a) Inter-op: slowest stage x n", fontsize=12)
    ax2 = axes[1]
    comp = np.array([c.single / c.n for c in costs])
    ovh = np.array([c.op_overhead for c in costs])
    ax2.bar(x, comp, color="tab:gray", label="Computation (single / n)")
    ax2.bar(x, ovh, bottom=comp, color="tab:orange", label="Intra-op overhead")
    ax2.set_title("(b) Intra-op: latency", fontsize=12)
    tops = (float(np.max(single + comm + uneven)), float(np.max(comp + ovh)))
    for a, top in zip(axes, tops):
        a.set_xticks(x, [str(v) for v in n])
        a.set_xlabel("#devices")
        a.set_ylabel("Time (s)")
        a.set_ylim(0, top * 1.45)  # head room so the legend does not cover the bars
        a.legend(fontsize=9, loc="upper right")
    fig.tight_layout()
    paths += common.save_figure(fig, "fig9_overhead_decomposition", settings)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    from alpa_serve.profiling import ProfilingDatabase

    return common.make_script_main(__doc__.splitlines()[0], make, ProfilingDatabase.default,
                                   argv)


if __name__ == "__main__":
    sys.exit(main())
