"""Fig. 4: mean and p99 latency vs per-device memory budget (DESIGN 7.6).

8 devices, 8 equal models, uniform rates, Gamma CV 3, SLO infinite, 20000 s.

* bert-1.3b at a total rate of 30 req/s: model parallelism = mp-greedy-8/4/2 and sr-uniform at
  3.5/6/11/21.6 GB per device (one replica of every model in every group); replication =
  sr-uniform at 2.7 GB x 1..8 (k copies per device);
* bert-2.6b at 20 req/s: 7/12/22/44 GB, and 5.5 GB x 1..8.

"GB" here is GiB (2**30 bytes), the project's memory unit. Mean = the overall latency_mean of
the run, p99 = np.percentile (linear) over all good latencies, both over the warm-up-trimmed
requests (DESIGN 5.2); with an infinite SLO every request is good.

Run: ``python -m studies.motivation.fig4_memory_budget [--quick] [--serial]``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from alpa_serve.units import GiB
from studies.motivation import common

TSV = "fig4_memory_budget.tsv"
NUM_DEVICES = 8
NUM_MODELS = 8
CV = 3.0
DURATION = 20000.0  # s

#: model -> (total rate req/s, [(model-parallel policy, budget GiB)], replication unit GiB)
SETUPS = {
    "bert-1.3b": (30.0, [("mp-greedy-8", 3.5), ("mp-greedy-4", 6.0), ("mp-greedy-2", 11.0),
                         ("sr-uniform", 21.6)], 2.7),
    "bert-2.6b": (20.0, [("mp-greedy-8", 7.0), ("mp-greedy-4", 12.0), ("mp-greedy-2", 22.0),
                         ("sr-uniform", 44.0)], 5.5),
}


@dataclass(frozen=True)
class Point:
    """One point of Fig. 4: model, line ("Model parallelism" or "Replication"), budget (GiB)."""

    model: str
    line: str
    budget_gib: float
    case: Any


def grid(settings: common.Settings) -> list[Point]:
    """All points of Fig. 4 (their cases run through the runner)."""
    from alpa_serve.experiments import Case, SyntheticWorkload

    duration = DURATION / 10 if settings.quick else DURATION
    points = []
    for model, (rate, mp_points, unit) in SETUPS.items():
        workload = SyntheticWorkload(total_rate=rate, cv=CV, duration=duration,
                                     rate_dist="uniform")
        lines = [("Model parallelism", policy, budget) for policy, budget in mp_points]
        lines += [("Replication", "sr-uniform", round(unit * k, 6))
                  for k in range(1, NUM_MODELS + 1)]
        for line, policy, budget in lines:
            case = Case(exp_name="latency_vs_mem_budget", model_set=model,
                        num_devices=NUM_DEVICES, num_models=NUM_MODELS, policy=policy,
                        slo_scale=common.INFINITE_SLO_SCALE, workload=workload,
                        mem_budget=budget * GiB)
            points.append(Point(model, line, budget, case))
    return points


def build_entries(settings: common.Settings) -> list[Any]:
    """Runner entries (TSV file, case) of Fig. 4."""
    from alpa_serve.experiments import SuiteEntry

    return [SuiteEntry(TSV, p.case) for p in grid(settings)]


def plot(rows: Mapping[str, Mapping[str, str]], settings: common.Settings) -> list[Path]:
    """fig4_memory_budget: one panel per model, mean (solid) and p99 (dashed) per line."""
    plt = common.pyplot()
    from matplotlib import ticker

    points = grid(settings)
    fig, axes = plt.subplots(1, len(SETUPS), figsize=(5.2 * len(SETUPS), 3.8))
    styles = {"Model parallelism": ("tab:red", "o"), "Replication": ("tab:blue", "s")}
    for ax, model in zip(axes, SETUPS):
        for line, (color, marker) in styles.items():
            pts = sorted((p for p in points if p.model == model and p.line == line),
                         key=lambda p: p.budget_gib)
            x = [p.budget_gib for p in pts]
            mean = [common.row_value(rows, p.case, "latency_mean") for p in pts]
            p99 = [common.row_value(rows, p.case, "latency_p99") for p in pts]
            ax.plot(x, mean, color=color, marker=marker, label=f"{line} (mean)")
            ax.plot(x, p99, color=color, marker=marker, linestyle="--", fillstyle="none",
                    label=f"{line} (p99)")
        rate = SETUPS[model][0]
        ax.set_title(f"{model}, 8 models, rate {rate:g}/s, CV {CV:g}", fontsize=12)
        ax.set_xlabel("Memory budget per device (GiB)")
        ax.set_ylabel("Latency (s)")
        # Log scale: the small budgets, where the policies differ, span 10x in latency.
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        ax.legend(fontsize=9)
    fig.tight_layout()
    return common.save_figure(fig, "fig4_memory_budget", settings)


def main(argv: Sequence[str] | None = None) -> int:
    return common.case_script_main(__doc__.splitlines()[0], build_entries, plot, argv)


if __name__ == "__main__":
    sys.exit(main())
