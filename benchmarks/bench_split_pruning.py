"""Pruning mp-search-sep's device splits by their score bounds (DESIGN 8): time saved and
equality of the results.

Runs chosen S3@MAF2 Beta cases of Fig. 11 (by case-id prefix) serially in this process with
split pruning, and either again without it (``--compare unpruned``) or against the rows shipped
in ``osdi23_artifact/precomputed/`` (``--compare shipped``, day window only). Every pair must
have the same placement and the same statistics; the solver's CPU seconds are reported.

Usage: ``python benchmarks/bench_split_pruning.py --ids ID [ID ...] [--window quick|day]
[--compare unpruned|shipped] [--out FILE.json]``
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import platform
import time
from pathlib import Path

from bench_search_profile import write_result

import alpa_serve.placement as placement_pkg
from alpa_serve.experiments.case_runner import default_database, prepare_inputs, run_prepared
from alpa_serve.experiments.suites import SuiteOptions, build_suite
from alpa_serve.results import format_value, read_rows

SHIPPED = (Path(__file__).resolve().parent.parent / "osdi23_artifact" / "precomputed"
           / "sec6_2_data" / "S3_maf2.tsv")
#: Row fields that must be equal (everything the search and the simulation decide).
COMPARED = ("placement", "goodput", "latency_mean", "latency_p99", "num_requests")


def pick_cases(ids: list[str], quick: bool):
    """The S3@MAF2 Beta cases whose case id starts with one of ``ids`` (grid ids, i.e. of the
    day window), with the quick window swapped in when ``quick``."""
    cases = [e.case for e in build_suite("fig11", SuiteOptions(only_files=("S3_maf2.tsv",),
                                                               traces="standin"))
             if e.case.policy == "mp-search-sep"
             and any(e.case.case_id.startswith(i) for i in ids)]
    if len(cases) != len(ids):
        raise SystemExit(f"found {len(cases)} cases for ids {ids}")
    if quick:
        window = next(e.case for e in build_suite(
            "fig11", SuiteOptions(quick=True, only_files=("S3_maf2.tsv",)))).workload
        cases = [c.replace(workload=dataclasses.replace(
            c.workload, train_window=window.train_window, test_window=window.test_window))
            for c in cases]
    return cases


def run(case, db, inputs, prune: bool) -> tuple[dict, float]:
    """The case's row with split pruning on or off, and the CPU seconds of the run."""
    original = placement_pkg.get_policy

    def get_policy(name, **kwargs):
        return original(name, prune_splits=prune, **kwargs)

    placement_pkg.get_policy = get_policy
    try:
        cpu = time.process_time()
        row = run_prepared(case, db, inputs)
        return row, time.process_time() - cpu
    finally:
        placement_pkg.get_policy = original


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ids", nargs="+", required=True)
    ap.add_argument("--window", choices=("quick", "day"), default="quick")
    ap.add_argument("--compare", choices=("unpruned", "shipped"), default="unpruned")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.compare == "shipped" and args.window != "day":
        raise SystemExit("--compare shipped needs --window day (the shipped rows are days)")
    logging.basicConfig(level=logging.WARNING)
    db = default_database()
    shipped = {r["case_id"]: r for r in read_rows(SHIPPED)} if args.compare == "shipped" else {}
    result = {"window": args.window, "compare": args.compare, "cases": [],
              "machine": f"{platform.machine()}, {platform.platform()}"}
    compiled = False
    for case in pick_cases(args.ids, args.window == "quick"):
        inputs = prepare_inputs(case)
        if not compiled:  # compile the kernels outside the timing
            run_prepared(case.replace(num_devices=2), db, inputs)
            compiled = True
        row, cpu = run(case, db, inputs, prune=True)
        entry = {"case": case.describe(), "goodput": row["goodput"],
                 "pruned_cpu_seconds": round(cpu, 2)}
        if args.compare == "unpruned":
            ref, ref_cpu = run(case, db, inputs, prune=False)
            entry["unpruned_cpu_seconds"] = round(ref_cpu, 2)
            entry["speedup"] = round(ref_cpu / cpu, 2)
        else:
            ref = shipped.get(row["case_id"])
            if ref is None:
                raise SystemExit(f"no shipped row for {case.describe()}")
            entry["shipped_solver_seconds"] = ref["solver_seconds"]
        entry["equal"] = all(format_value(row[k]) == format_value(ref[k]) for k in COMPARED)
        result["cases"].append(entry)
        logging.warning("%s", entry)
        if not entry["equal"]:
            raise SystemExit(f"results differ for {case.describe()}")
    write_result(result, args.out)


if __name__ == "__main__":
    main()
