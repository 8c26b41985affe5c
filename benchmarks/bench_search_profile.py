"""Where the time of one Fig. 11 search case goes (DESIGN 8): simulator calls, requests walked
per call, kernel time against Python time, greedy runs and steps.

The case is taken from the Fig. 11 grid (default: the S3@MAF2 Beta case on 16 devices, the
cheapest of its column); ``--window quick`` replays the suite's short quick window instead of
the whole day. The policy's search runs serially in this process with counters around the
simulator entry points it uses; the counters do not change the search.

Usage: ``python benchmarks/bench_search_profile.py [--file S3_maf2.tsv] [--devices 16]
[--window day|quick] [--out FILE.json]``
"""
from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from collections import Counter
from pathlib import Path

from alpa_serve.experiments.case_runner import default_database, prepare_inputs, run_prepared
from alpa_serve.experiments.suites import SuiteOptions, build_suite
from alpa_serve.placement import greedy as greedy_mod
from alpa_serve.simulator.tables import SimTables

logger = logging.getLogger("bench_search_profile")


def pick_case(file: str, devices: int, quick: bool):
    """The Beta case of ``file``'s device sweep with ``devices`` devices."""
    entries = build_suite("fig11", SuiteOptions(quick=quick, only_files=(file,)))
    for e in entries:
        c = e.case
        if (c.exp_name == "goodput_vs_num_devices" and c.num_devices == devices
                and c.policy.startswith("mp-search")):
            return c
    raise SystemExit(f"no Beta case with {devices} devices in {file} (quick={quick})")


def prepared_case(file: str, devices: int, quick: bool):
    """:func:`pick_case`'s case, its prepared inputs and the profiling database, with the
    simulator kernels compiled by a 2-device run of the case (outside any measurement)."""
    case = pick_case(file, devices, quick)
    inputs = prepare_inputs(case)
    db = default_database()
    run_prepared(case.replace(num_devices=2), db, inputs)
    return case, inputs, db


def write_result(result: dict, out: Path | None) -> None:
    """Print ``result`` as JSON and write it to ``out`` (if given)."""
    text = json.dumps(result, indent=1)
    print(text)
    if out:
        out.write_text(text + "\n")


class Counters:
    """Wraps SimTables.simulate_fast / simulate_subset and the greedy's additions."""

    def __init__(self) -> None:
        self.calls: Counter = Counter()
        self.walked: Counter = Counter()
        self.seconds: Counter = Counter()
        self.steps = 0

    def install(self) -> None:
        fast, subset = SimTables.simulate_fast, SimTables.simulate_subset
        add = greedy_mod._GreedyState.add
        me = self

        def simulate_fast(tables, placement):
            t = time.process_time()
            try:
                return fast(tables, placement)
            finally:
                me.seconds["full"] += time.process_time() - t
                me.calls["full"] += 1
                me.walked["full"] += tables.num_requests

        def simulate_subset(tables, placement, index):
            t = time.process_time()
            try:
                return subset(tables, placement, index)
            finally:
                me.seconds["component"] += time.process_time() - t
                me.calls["component"] += 1
                me.walked["component"] += tables.num_requests if index is None else len(index)

        def counted_add(state, slot, m):
            me.steps += 1
            return add(state, slot, m)

        SimTables.simulate_fast = simulate_fast
        SimTables.simulate_subset = simulate_subset
        greedy_mod._GreedyState.add = counted_add


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", default="S3_maf2.tsv")
    ap.add_argument("--devices", type=int, default=16)
    ap.add_argument("--window", choices=("day", "quick"), default="day")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    case, inputs, db = prepared_case(args.file, args.devices, args.window == "quick")
    counters = Counters()
    counters.install()

    t0, c0 = time.perf_counter(), time.process_time()
    row = run_prepared(case, db, inputs)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    kernel = sum(counters.seconds.values())
    result = {
        "case": case.describe(), "requests": int(row["num_requests"]),
        "goodput": row["goodput"], "solver_seconds": row["solver_seconds"],
        "wall_seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
        "greedy_steps": counters.steps,
        "calls": dict(counters.calls), "requests_walked": dict(counters.walked),
        "simulator_cpu_seconds": {k: round(v, 2) for k, v in counters.seconds.items()},
        "ns_per_walked_request": round(kernel / max(sum(counters.walked.values()), 1) * 1e9, 1),
        "python_cpu_seconds": round(cpu - kernel, 2),
        "machine": f"{platform.machine()}, {platform.processor() or platform.platform()}",
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
