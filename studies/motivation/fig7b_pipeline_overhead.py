"""Fig. 7(b): SLO attainment vs SLO scale under a varied pipeline overhead alpha (DESIGN 7.6).

As Fig. 7(a) (8 devices, 8 x bert-2.6b, uniform, rate 30 req/s, CV 3, 500 s, 13 GiB), but
the model-parallel line runs on a modified bert-2.6b whose (1,1,8) batch-1 stage list is
alpha x single / 8 per stage, alpha in 1.0, 1.1, ..., 1.5 (the simulator's 0.009 x pp stage
penalty and 0.011 s per request still apply; SLOs use the unmodified single-device latency).
The modified profiles are new objects in the motivation database
(``common.motivation_database``), named ``bert-2.6b-alpha<alpha>``, so the cases remain plain
runner Cases. The sr-uniform line is the same case as Fig. 7(a)'s (run once).

Run: ``python -m studies.motivation.fig7b_pipeline_overhead [--quick] [--serial]``.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from studies.motivation import common, fig5_7a_sweeps as sweeps

TSV = "fig7b_alpha.tsv"
MP_POLICY = "mp-greedy-8"
SR_POLICY = "sr-uniform"


def cases(settings: common.Settings) -> dict[Any, list[Any]]:
    """Line key (an alpha, or "sr") -> cases along the SLO-scale axis of Fig. 7(a)."""
    sweep = sweeps.SWEEPS["slo"]
    x = sweeps.xs(sweep, settings)
    out: dict[Any, list[Any]] = {
        a: [sweeps.make_case(sweep, v, MP_POLICY, settings, model=common.alpha_model_name(a))
            for v in x]
        for a in common.ALPHAS}
    out["sr"] = [sweeps.make_case(sweep, v, SR_POLICY, settings) for v in x]
    return out


def build_entries(settings: common.Settings) -> list[Any]:
    """Runner entries (TSV file, case) of Fig. 7(b)."""
    from alpa_serve.experiments import SuiteEntry

    lines = cases(settings)
    # The replication cases are Fig. 7(a)'s: same TSV, so either script finds them done.
    return ([SuiteEntry(TSV, c) for a in common.ALPHAS for c in lines[a]]
            + [SuiteEntry(sweeps.SWEEPS["slo"].tsv, c) for c in lines["sr"]])


def plot(rows: Mapping[str, Mapping[str, str]], settings: common.Settings) -> list[Path]:
    """fig7b_pipeline_overhead: one line per alpha plus replication."""
    plt = common.pyplot()
    sweep = sweeps.SWEEPS["slo"]
    x = sweeps.xs(sweep, settings)
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    cmap = plt.get_cmap("Reds")
    lines = cases(settings)
    for i, alpha in enumerate(common.ALPHAS):
        y = [100 * common.row_value(rows, c, "goodput") for c in lines[alpha]]
        # Darker red for smaller overhead: the eye reads the gradient as "more overhead".
        color = cmap(0.95 - 0.6 * i / max(len(common.ALPHAS) - 1, 1))
        ax.plot(x, y, color=color, marker="o", markersize=4, label=f"MP, α={alpha:.1f}")
    y = [100 * common.row_value(rows, c, "goodput") for c in lines["sr"]]
    ax.plot(x, y, color="tab:blue", marker="s", markersize=4, label="Replication")
    ax.set_xlabel(sweep.xlabel)
    ax.set_ylabel("SLO attainment (%)")
    ax.set_ylim(0, 102)
    ax.legend(fontsize=9, loc="lower right", ncol=2)
    fig.tight_layout()
    return common.save_figure(fig, "fig7b_pipeline_overhead", settings)


def main(argv: Sequence[str] | None = None) -> int:
    return common.case_script_main(__doc__.splitlines()[0], build_entries, plot, argv)


if __name__ == "__main__":
    sys.exit(main())
