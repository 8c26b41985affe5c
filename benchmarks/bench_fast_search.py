"""Fast search against exact rows (DESIGN 7.8): per point, exact and fast goodput, their
difference, the fast search's solver seconds and whether it chose the same placement.

The exact rows are a result file of the runner (default: the shipped precomputed S3@MAF2 Beta
rows); each row of a fast-search policy (mp-search, mp-search-sep) whose case is a case of the
Fig. 11 grid (stand-in or real traces) is paired with the same case with ``search="fast"``.
The fast rows come from ``--fast FILE`` (e.g. the S3_maf2.tsv of a ``fig11 --search fast``
run) or are computed here with the runner into ``--out DIR`` (resumable: a rerun skips the
cases already there; solved sub-problems are shared as in a suite run).

Usage::

    PYTHONPATH=$PWD python benchmarks/bench_fast_search.py \\
        [--exact osdi23_artifact/precomputed/sec6_2_data/S3_maf2.tsv] \\
        [--fast RUN/S3_maf2.tsv | --out DIR [--serial] [--num-cpus N]] [--table FILE]

Prints a markdown table (the one in docs/performance.md, "Fast search (opt-in)") and a
summary: max and mean |fast - exact| over the rows (a fixed point shared by several sweeps
counts once per sweep, as it is drawn once per panel), how many rows are within the goal's
0.01, the summed fast solver seconds, the machine and its load average.
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from alpa_serve.experiments.fast_search import FAST_SEARCH_POLICIES
from alpa_serve.experiments.suite_runner import RunOptions, run_entries
from alpa_serve.experiments.suites import SuiteEntry, SuiteOptions, build_suite
from alpa_serve.results import SEARCH_EXACT, SEARCH_FAST, read_table, row_search
from alpa_serve.sweeps import EXP_X

logger = logging.getLogger("bench_fast_search")

REPO = Path(__file__).resolve().parent.parent
DEFAULT_EXACT = REPO / "osdi23_artifact" / "precomputed" / "sec6_2_data" / "S3_maf2.tsv"
#: The goal of the fast search (issue 28): every point within 0.01, mean within 0.003.
GOAL_MAX, GOAL_MEAN = 0.01, 0.003


@dataclass(frozen=True)
class Pair:
    """One point: the exact row and the fast row of the same case (strings as in the TSVs)."""

    exact: dict[str, str]
    fast: dict[str, str]

    @property
    def label(self) -> str:
        x = EXP_X[self.exact["exp_name"]]
        return f"{x} = {float(self.exact[x]):g}"

    @property
    def diff(self) -> float:
        """fast - exact goodput."""
        return float(self.fast["goodput"]) - float(self.exact["goodput"])

    @property
    def same_placement(self) -> bool:
        return self.exact["placement"] == self.fast["placement"]


def grid_entries() -> dict[str, SuiteEntry]:
    """Every Fig. 11 entry (stand-in and real traces, exact search) by case id."""
    out = {}
    for traces in ("standin", "real"):
        for e in build_suite("fig11", SuiteOptions(traces=traces)):
            out[e.case.case_id] = e
    return out


def exact_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a fast-search policy in ``path`` (exact search only; a file of the previous
    version, without the ``search`` column, holds exact rows)."""
    rows = read_table(path, ("case_id", "policy", "goodput", "placement")).dicts()
    fast = [r for r in rows if row_search(r) != SEARCH_EXACT]
    if fast:
        raise SystemExit(f"{path}: holds {len(fast)} row(s) that are not exact; give a file of "
                         f"exact rows")
    return [r for r in rows if r["policy"] in FAST_SEARCH_POLICIES]


def fast_entries(rows: list[dict[str, str]], grid: dict[str, SuiteEntry]) -> list[SuiteEntry]:
    """The fast cases of the exact ``rows`` (rows of no Fig. 11 case are skipped, logged)."""
    entries = []
    for r in rows:
        e = grid.get(r["case_id"])
        if e is None:
            logger.warning("row %s is no case of the Fig. 11 grid: skipped", r["case_id"])
            continue
        entries.append(SuiteEntry(e.file, e.case.replace(search=SEARCH_FAST)))
    return entries


def run_fast(entries: list[SuiteEntry], out: Path, serial: bool,
             num_cpus: Optional[int]) -> Path:
    """Compute the fast cases with the runner into ``out``; return the TSV they are in."""
    files = {e.file for e in entries}
    if len(files) != 1:
        raise SystemExit(f"the exact rows span several files {sorted(files)}; give one file")
    summary = run_entries(entries, RunOptions(out_dir=out, serial=serial, num_cpus=num_cpus,
                                              progress=True), desc="fast search")
    if not summary.ok:
        raise SystemExit(f"{len(summary.failures)} fast case(s) failed")
    return out / files.pop()


def pairs_of(rows: list[dict[str, str]], grid: dict[str, SuiteEntry],
             fast_path: Path) -> list[Pair]:
    fast = {r["case_id"]: r for r in read_table(fast_path, ("case_id", "search")).dicts()
            if r["search"] == SEARCH_FAST}
    out = []
    for r in rows:
        e = grid.get(r["case_id"])
        if e is None:
            continue
        f = fast.get(e.case.replace(search=SEARCH_FAST).case_id)
        if f is None:
            logger.warning("no fast row for %s in %s", e.case.describe(), fast_path)
            continue
        out.append(Pair(r, f))
    return out


def table(pairs: list[Pair]) -> str:
    lines = ["| point | exact | fast | fast - exact | fast solver s | exact solver s | "
             "same placement |", "|---|---:|---:|---:|---:|---:|---|"]
    for p in pairs:
        flag = "" if abs(p.diff) <= GOAL_MAX + 1e-9 else " **"
        lines.append(f"| {p.label} | {float(p.exact['goodput']):.3f} | "
                     f"{float(p.fast['goodput']):.3f} | {p.diff:+.3f}{flag} | "
                     f"{float(p.fast['solver_seconds']):.0f} | "
                     f"{float(p.exact['solver_seconds']):.0f} | "
                     f"{'yes' if p.same_placement else 'no'} |")
    return "\n".join(lines)


def summary(pairs: list[Pair], loads: tuple[float, float]) -> str:
    diffs = [abs(p.diff) for p in pairs]
    mean = sum(diffs) / len(diffs)
    within = sum(d <= GOAL_MAX + 1e-9 for d in diffs)
    # The fixed point is one simulation drawn in several sweeps: its solver time counts once.
    distinct = {(p.fast["num_devices"], p.fast["rate_scale"], p.fast["cv_scale"],
                 p.fast["slo_scale"]): p for p in pairs}
    distinct_mean = sum(abs(p.diff) for p in distinct.values()) / len(distinct)
    return "\n".join([
        f"rows: {len(pairs)} ({len(distinct)} distinct cases); within {GOAL_MAX}: {within} of "
        f"{len(pairs)}; max |diff| {max(diffs):.3f} (goal {GOAL_MAX}); mean |diff| {mean:.4f} "
        f"over the rows, {distinct_mean:.4f} over the distinct cases (goal {GOAL_MEAN}); same "
        f"placement: {sum(p.same_placement for p in distinct.values())} of {len(distinct)}",
        f"fast solver seconds, summed over the distinct cases: "
        f"{sum(float(p.fast['solver_seconds']) for p in distinct.values()):.0f} s",
        f"machine: {platform.platform()}, {os.cpu_count()} cores; load average (1 min) at "
        f"start {loads[0]:.1f}, at end {loads[1]:.1f}",
    ])


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exact", type=Path, default=DEFAULT_EXACT,
                        help="result TSV of exact rows (default: the shipped S3@MAF2 rows)")
    parser.add_argument("--fast", type=Path, default=None,
                        help="result TSV of the fast rows (else they are computed into --out)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder to compute the fast rows in (default: a new temporary one)")
    parser.add_argument("--serial", action="store_true", help="compute without Ray")
    parser.add_argument("--num-cpus", type=int, default=None)
    parser.add_argument("--table", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    load0 = os.getloadavg()[0]
    grid = grid_entries()
    rows = exact_rows(args.exact)
    fast_path = args.fast
    if fast_path is None:
        out = args.out or Path(tempfile.mkdtemp(prefix="bench_fast_search_"))
        t0 = time.perf_counter()
        fast_path = run_fast(fast_entries(rows, grid), out, args.serial, args.num_cpus)
        logger.info("fast cases computed in %.0f s wall into %s", time.perf_counter() - t0, out)
    pairs = pairs_of(rows, grid, fast_path)
    if not pairs:
        raise SystemExit(f"no pair of exact ({args.exact}) and fast ({fast_path}) rows")
    text = table(pairs) + "\n\n" + summary(pairs, (load0, os.getloadavg()[0])) + "\n"
    print(text)
    if args.table is not None:
        args.table.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
