"""Sharing solved mp-search-sep sub-problems across the cases of a device sweep (DESIGN 8).

Runs the Beta cases of one Fig. 11 column's device sweep (default: S3@MAF2) one after another
in this process, first each on its own, then with one shared sub-problem store, and reports
the solver time per case and in total. Every case must give the same placement both ways.

Usage: ``python benchmarks/bench_subproblem_sharing.py [--file S3_maf2.tsv] [--window quick|day]
[--order grid|largest-first] [--out FILE.json]``
"""
from __future__ import annotations

import argparse
import logging
import platform
import time
from pathlib import Path

from bench_search_profile import write_result

from alpa_serve.experiments.case_runner import (
    SearchResources,
    default_database,
    prepare_inputs,
    run_prepared,
)
from alpa_serve.experiments.suites import SuiteOptions, build_suite


def sweep_cases(file: str, quick_window: bool):
    """The Beta cases of ``file``'s device sweep (full grid of devices; the quick suite's
    window when ``quick_window``)."""
    full = [e.case for e in build_suite("fig11", SuiteOptions(only_files=(file,)))
            if e.case.exp_name == "goodput_vs_num_devices"
            and e.case.policy.startswith("mp-search")]
    if not quick_window:
        return full
    quick = next(e.case for e in build_suite("fig11", SuiteOptions(quick=True,
                                                                    only_files=(file,))))
    return [c.replace(workload=quick.workload) for c in full]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", default="S3_maf2.tsv")
    ap.add_argument("--window", choices=("quick", "day"), default="quick")
    ap.add_argument("--order", choices=("grid", "largest-first"), default="grid")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cases = sweep_cases(args.file, args.window == "quick")
    if args.order == "largest-first":
        cases.sort(key=lambda c: -c.num_devices)
    db = default_database()
    inputs = prepare_inputs(cases[0])
    run_prepared(cases[0].replace(num_devices=2), db, inputs)  # compile outside the timing
    import tempfile

    result = {"file": args.file, "window": args.window, "order": args.order,
              "requests": None, "cases": [],
              "machine": f"{platform.machine()}, {platform.platform()}"}
    with tempfile.TemporaryDirectory() as store_dir:
        shared = SearchResources(subproblem_dir=store_dir)
        for case in cases:
            t = time.process_time()
            alone = run_prepared(case, db, inputs)
            t_alone = time.process_time() - t
            t = time.process_time()
            with_store = run_prepared(case, db, inputs, shared)
            t_shared = time.process_time() - t
            assert alone["placement"] == with_store["placement"], case.describe()
            result["requests"] = alone["num_requests"]
            result["cases"].append({"devices": case.num_devices, "goodput": alone["goodput"],
                                    "cpu_alone": round(t_alone, 2),
                                    "cpu_shared": round(t_shared, 2)})
            print(result["cases"][-1], flush=True)
    result["total_alone"] = round(sum(c["cpu_alone"] for c in result["cases"]), 2)
    result["total_shared"] = round(sum(c["cpu_shared"] for c in result["cases"]), 2)
    write_result(result, args.out)


if __name__ == "__main__":
    main()
