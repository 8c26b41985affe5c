"""Build every motivation figure of Section 3 (Figs. 2, 4, 5, 6, 7a, 7b, 8, 9).

    python -m studies.motivation.run_all [--quick] [--serial] [--force]   # from the repository root

The many-case figures (4, 5, 6, 7a, 7b: 262 distinct cases, 82 with --quick) run as ONE fan-out
through the project's runner (Ray tasks on an embedded local Ray instance using all cores, or
in-process with --serial); their rows are appended to TSVs under
``figures/data/<profile fingerprint>[-quick]/`` and reused on reruns (--force recomputes).
Fig. 2 runs in-process (it needs per-request finish times); Figs. 8-9 are read from the
profile database. Figures go to ``studies/motivation/figures/`` as PDF and PNG.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Sequence

from studies.motivation import (
    common,
    fig2_two_models,
    fig4_memory_budget,
    fig5_7a_sweeps,
    fig7b_pipeline_overhead,
    fig8_9_profile,
)

logger = logging.getLogger("studies.motivation.run_all")

#: Figure families that run through the runner, in the order their cases are submitted.
RUNNER_FAMILIES = {"fig4": fig4_memory_budget, "fig5-7a": fig5_7a_sweeps,
                   "fig7b": fig7b_pipeline_overhead}
FAMILIES = ("fig2", *RUNNER_FAMILIES, "fig8-9")


def run_all(settings: common.Settings, families: Sequence[str] = FAMILIES) -> list[Path]:
    """Build the figures of ``families``; returns the written files. Logs each step's time."""
    t_start = time.perf_counter()
    db = common.motivation_database()
    logger.info("profile database %s (motivation variant %s)",
                db.hardware.get("motivation", ""), db.fingerprint())
    paths: list[Path] = []
    timings: dict[str, float] = {}

    selected = [RUNNER_FAMILIES[f] for f in RUNNER_FAMILIES if f in families]
    if selected:
        t0 = time.perf_counter()
        entries = [e for mod in selected for e in mod.build_entries(settings)]
        rows = common.run_cases(entries, db, settings)
        timings["runner cases (figs 4-7)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for mod in selected:
            paths += mod.plot(rows, settings)
        timings["plots 4-7"] = time.perf_counter() - t0
    if "fig2" in families:
        t0 = time.perf_counter()
        paths += fig2_two_models.make(settings, db)
        timings["fig2 (in-process)"] = time.perf_counter() - t0
    if "fig8-9" in families:
        t0 = time.perf_counter()
        paths += fig8_9_profile.make(settings, db)
        timings["figs 8-9"] = time.perf_counter() - t0
    total = time.perf_counter() - t_start
    for step, seconds in timings.items():
        logger.info("time %-26s %7.1f s", step, seconds)
    logger.info("time %-26s %7.1f s (%d files in %s)", "total", total, len(paths),
                settings.figures_dir)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m studies.motivation.run_all",
        description="Build every motivation figure of Section 3 (Figs. 2, 4-9).")
    common.add_common_arguments(parser)
    parser.add_argument("--only", default=None,
                        help=f"comma-separated subset of {','.join(FAMILIES)}")
    args = parser.parse_args(argv)
    families = FAMILIES
    if args.only:
        families = tuple(f.strip() for f in args.only.split(",") if f.strip())
        unknown = sorted(set(families) - set(FAMILIES))
        if unknown:
            parser.error(f"unknown figure families {unknown}; choose from {', '.join(FAMILIES)}")
    settings = common.settings_from_args(args)
    run_all(settings, families)
    return 0


if __name__ == "__main__":
    sys.exit(main())
