"""Figs. 5, 6 and 7(a): model parallelism vs replication over rate, CV and SLO (DESIGN 7.6).

8 devices, 8 x bert-2.6b, uniform rates, 13 GiB per device. "Model parallelism" = mp-greedy-8
(one (1,1,8) pipeline group holding every model); "Replication" = sr-uniform (device i holds
models i, i+1, ... mod 8, as many as fit: 2 per device with the committed profile).
20 evenly spaced points per sweep:

* Fig. 5: mean and p99 latency vs total rate 0.8..24 req/s (CV 3, SLO infinite, 1000 s);
* Fig. 6: mean and p99 latency vs CV 0.1..8 (rate 20 req/s, SLO infinite, 100000 s);
* Fig. 7(a): SLO attainment vs SLO scale 1..20 (rate 30 req/s, CV 3, 500 s).

Run: ``python -m studies.motivation.fig5_7a_sweeps [--quick] [--serial]``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from alpa_serve.units import DEFAULT_MEM_BUDGET
from studies.motivation import common

MODEL = "bert-2.6b"
NUM_DEVICES = 8
NUM_MODELS = 8
MEM_BUDGET = DEFAULT_MEM_BUDGET  # 13 GiB
NUM_POINTS = 20
QUICK_POINTS = 5
#: policy -> (legend label, colour, marker)
LINES = {"mp-greedy-8": ("Model parallelism", "tab:red", "o"),
         "sr-uniform": ("Replication", "tab:blue", "s")}


@dataclass(frozen=True)
class Sweep:
    """One swept figure: x range, fixed values, duration (s) and the output names."""

    swept: str  # "rate", "cv" or "slo"
    fig: str  # output name stem, e.g. "fig5_latency_vs_rate"
    tsv: str
    exp_name: str
    xlabel: str
    lo: float
    hi: float
    rate: float  # req/s (swept in Fig. 5)
    cv: float  # (swept in Fig. 6)
    slo_scale: float  # (swept in Fig. 7a)
    duration: float  # s
    quick_duration: float  # s


SWEEPS = {
    "rate": Sweep("rate", "fig5_latency_vs_rate", "fig5_rate.tsv", "latency_vs_rate",
                  "Total rate (req/s)", 0.8, 24.0, 0.0, 3.0, common.INFINITE_SLO_SCALE,
                  1000.0, 300.0),
    "cv": Sweep("cv", "fig6_latency_vs_cv", "fig6_cv.tsv", "latency_vs_cv", "CV", 0.1, 8.0,
                20.0, 0.0, common.INFINITE_SLO_SCALE, 100000.0, 5000.0),
    "slo": Sweep("slo", "fig7a_slo_attainment", "fig7a_slo.tsv", "goodput_vs_slo", "SLO scale",
                 1.0, 20.0, 30.0, 3.0, 0.0, 500.0, 200.0),
}


def make_case(sweep: Sweep, x: float, policy: str, settings: common.Settings,
              model: str = MODEL) -> Any:
    """The case of ``sweep`` at swept value ``x`` with ``policy`` (and model type ``model``)."""
    from alpa_serve.experiments import Case, SyntheticWorkload

    rate, cv, slo = sweep.rate, sweep.cv, sweep.slo_scale
    if sweep.swept == "rate":
        rate = x
    elif sweep.swept == "cv":
        cv = x
    elif sweep.swept == "slo":
        slo = x
    else:
        raise ValueError(f"unknown swept variable {sweep.swept!r}")
    duration = sweep.quick_duration if settings.quick else sweep.duration
    workload = SyntheticWorkload(total_rate=rate, cv=cv, duration=duration, rate_dist="uniform")
    return Case(exp_name=sweep.exp_name, model_set=model, num_devices=NUM_DEVICES,
                num_models=NUM_MODELS, policy=policy, slo_scale=slo, workload=workload,
                mem_budget=MEM_BUDGET)


def xs(sweep: Sweep, settings: common.Settings) -> list[float]:
    """Swept values: 20 evenly spaced (5 with --quick)."""
    return common.linspace_points(sweep.lo, sweep.hi,
                                  QUICK_POINTS if settings.quick else NUM_POINTS)


def build_entries(settings: common.Settings) -> list[Any]:
    """Runner entries (TSV file, case) of Figs. 5, 6 and 7(a)."""
    from alpa_serve.experiments import SuiteEntry

    return [SuiteEntry(s.tsv, make_case(s, x, policy, settings))
            for s in SWEEPS.values() for policy in LINES for x in xs(s, settings)]


def plot(rows: Mapping[str, Mapping[str, str]], settings: common.Settings) -> list[Path]:
    """fig5_latency_vs_rate, fig6_latency_vs_cv (mean + p99 panels), fig7a_slo_attainment."""
    plt = common.pyplot()
    paths: list[Path] = []
    for key in ("rate", "cv"):
        sweep = SWEEPS[key]
        x = xs(sweep, settings)
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        for ax, column, title in zip(axes, ("latency_mean", "latency_p99"),
                                     ("Mean latency", "P99 latency")):
            for policy, (label, color, marker) in LINES.items():
                y = [common.row_value(rows, make_case(sweep, v, policy, settings), column)
                     for v in x]
                ax.plot(x, y, color=color, marker=marker, label=label)
            ax.set_xlabel(sweep.xlabel)
            ax.set_ylabel(f"{title} (s)")
            ax.set_ylim(bottom=0)
            ax.legend(fontsize=10)
        fig.tight_layout()
        paths += common.save_figure(fig, sweep.fig, settings)

    sweep = SWEEPS["slo"]
    x = xs(sweep, settings)
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    for policy, (label, color, marker) in LINES.items():
        y = [100 * common.row_value(rows, make_case(sweep, v, policy, settings), "goodput")
             for v in x]
        ax.plot(x, y, color=color, marker=marker, label=label)
    ax.set_xlabel(sweep.xlabel)
    ax.set_ylabel("SLO attainment (%)")
    ax.set_ylim(0, 102)
    ax.legend(fontsize=10, loc="lower right")
    fig.tight_layout()
    paths += common.save_figure(fig, sweep.fig, settings)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    return common.case_script_main(__doc__.splitlines()[0], build_entries, plot, argv)


if __name__ == "__main__":
    sys.exit(main())
