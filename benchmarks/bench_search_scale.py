"""Search time against problem size (DESIGN 8): the S3@MAF2 Beta setting with models and
devices scaled together past the paper's largest case.

Sizes (models, devices): (72, 48), (144, 96), (288, 192), the mixed model set S3 (its six
types cycled), rate scale 32, CV scale 1, SLO scale 5 and 5400 s replay windows of the MAF2
trace (stand-in unless ``$ALPA_SERVE_MAF2_PATH`` is set), over one shortened window shared by
all sizes. Each case is built through the normal case machinery (a Fig. 11 S3@MAF2 case with
its models, devices and window replaced) and solved serially in this process by mp-search-sep
and by sr-greedy, with the counters of ``bench_search_profile`` around the simulator (they do
not change the search).

Reported per case: requests, models without requests, device splits, greedy runs, greedy
steps, simulator calls and requests walked, solver wall and CPU seconds, the simulator's and
the rest's CPU seconds, the longest greedy run; then the log-log slope of the solver CPU
against the devices (and against devices x requests).

Usage: ``PYTHONPATH=$PWD python benchmarks/bench_search_scale.py [--window 13.0.0-13.0.30]
[--sizes 72x48,144x96,288x192] [--policies sr-greedy,mp-search-sep] [--repeats 1]
[--out FILE.json]``
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import logging
import os
import platform
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from bench_search_cluster import SearchTimers
from bench_search_profile import Counters, pick_case, write_result

from alpa_serve.experiments.case_runner import default_database, prepare_inputs, run_prepared
from alpa_serve.placement import greedy as greedy_mod, model_parallel

logger = logging.getLogger("bench_search_scale")


class SearchCounts:
    """How many device splits mp-search-sep keeps (wraps ``select_splits``) and how many greedy
    runs start (each builds one ``_GreedyState``)."""

    def __init__(self) -> None:
        self.kept: list[int] = []
        self.greedy_runs = 0

    def install(self) -> None:
        select = model_parallel.select_splits
        state_init = greedy_mod._GreedyState.__init__
        me = self

        def counted_select(*args, **kwargs):
            splits = select(*args, **kwargs)
            me.kept.append(len(splits))
            return splits

        def counted_init(state, *args, **kwargs):
            me.greedy_runs += 1
            state_init(state, *args, **kwargs)

        model_parallel.select_splits = counted_select
        greedy_mod._GreedyState.__init__ = counted_init


def snapshot(counters: Counters) -> dict[str, Any]:
    return {"calls": copy.copy(counters.calls), "walked": copy.copy(counters.walked),
            "seconds": copy.copy(counters.seconds), "steps": counters.steps}


def scaled_case(base, models: int, devices: int, window: tuple[str, str], policy: str):
    """``base`` (a Fig. 11 trace case) with ``models`` models, ``devices`` devices, the test
    window ``window`` and ``policy``."""
    return base.replace(num_models=models, num_devices=devices, policy=policy,
                        workload=dataclasses.replace(base.workload, test_window=window))


def measure(case, db, timers: SearchTimers, counters: Counters, counts: SearchCounts) -> dict:
    """Solve ``case`` once and return its counters and times."""
    inputs = prepare_inputs(case)
    ids = np.asarray(inputs.train_workload.model_ids)
    before = snapshot(counters)
    timers.reset()
    counts.kept.clear()
    counts.greedy_runs = 0
    load = os.getloadavg()[0]
    row = run_prepared(case, db, inputs)
    after = snapshot(counters)
    calls = dict(after["calls"] - before["calls"])
    walked = dict(after["walked"] - before["walked"])
    sim = {k: after["seconds"][k] - before["seconds"][k] for k in after["seconds"]}
    kernel = sum(sim.values())
    jobs = [c for c, _ in timers.jobs]
    return {
        "policy": case.policy, "models": case.num_models, "devices": case.num_devices,
        "requests": int(len(ids)),
        "models_without_requests": int(np.sum(np.bincount(ids[ids >= 0],
                                                          minlength=case.num_models) == 0)),
        "splits": counts.kept[0] if counts.kept else None,
        "greedy_runs": counts.greedy_runs, "greedy_steps": after["steps"] - before["steps"],
        "simulator_calls": calls, "requests_walked": walked,
        "solver_wall": round(timers.place_wall, 2), "solver_cpu": round(timers.place_cpu, 3),
        "simulator_cpu": round(kernel, 2),
        "simulator_cpu_by_kind": {k: round(v, 2) for k, v in sim.items()},
        "rest_cpu": round(timers.place_cpu - kernel, 2),
        # mp-search-sep's greedy runs go through the executor (timed one by one); what is
        # left is its serial part (cases, tables, split combinations).
        "outside_executor_cpu": round(timers.place_cpu - timers.run_cpu, 2) if jobs else None,
        "longest_greedy_run_cpu": round(max(jobs), 2) if jobs else None,
        "ns_per_walked_request": round(kernel / max(sum(walked.values()), 1) * 1e9, 1),
        "goodput": row["goodput"], "load_before": round(load, 2),
        "load_after": round(os.getloadavg()[0], 2)}


def slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Least-squares slope of log(ys) against log(xs) (None if a y is not positive)."""
    if min(ys) <= 0:
        return None
    return round(float(np.polyfit(np.log(xs), np.log(ys), 1)[0]), 2)


def growth(rows: Sequence[dict]) -> dict:
    """Growth exponents of the solver CPU of one policy's rows (ascending size)."""
    devices = [r["devices"] for r in rows]
    cpu = [r["solver_cpu"] for r in rows]
    work = [r["devices"] * r["requests"] for r in rows]
    return {"vs_devices": slope(devices, cpu),
            "vs_devices_pairwise": [slope(devices[i:i + 2], cpu[i:i + 2])
                                    for i in range(len(rows) - 1)],
            "vs_devices_x_requests": slope(work, cpu)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", default="13.0.0-13.0.30",
                    help="replay window start-end (day.hour.minute; day 13 = the Fig. 11 day)")
    ap.add_argument("--sizes", default="72x48,144x96,288x192", help="MODELSxDEVICES,...")
    ap.add_argument("--policies", default="sr-greedy,mp-search-sep")
    ap.add_argument("--repeats", type=int, default=1, help="runs per case (median reported)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    window = tuple(args.window.split("-"))
    if len(window) != 2:
        raise SystemExit(f"--window must be START-END, got {args.window!r}")
    sizes = [tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",") if s]
    policies = [p for p in args.policies.split(",") if p]

    base = pick_case("S3_maf2.tsv", 48, False)
    db = default_database()
    warm = scaled_case(base, sizes[0][0], 2, window, "mp-search-sep")
    run_prepared(warm, db, prepare_inputs(warm))  # compile outside the measurement
    timers, counters, counts = SearchTimers(), Counters(), SearchCounts()
    timers.install()
    counters.install()
    counts.install()

    result: dict[str, Any] = {
        "window": window, "base_case": base.describe(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                   f"{platform.processor() or platform.platform()}",
        "load_at_start": [round(x, 2) for x in os.getloadavg()], "runs": []}
    for models, devices in sizes:
        for policy in policies:
            case = scaled_case(base, models, devices, window, policy)
            runs = [measure(case, db, timers, counters, counts) for _ in range(args.repeats)]
            r = sorted(runs, key=lambda x: x["solver_cpu"])[len(runs) // 2]
            r["solver_cpu_runs"] = [x["solver_cpu"] for x in runs]
            result["runs"].append(r)
            logger.info("%s, %d models on %d devices: %.1f s CPU (%.1f s wall), %s splits, %d "
                        "greedy runs, %d steps, simulator %.1f s, rest %.1f s; load %.1f -> %.1f",
                        policy, models, devices, r["solver_cpu"], r["solver_wall"],
                        r["splits"], r["greedy_runs"], r["greedy_steps"], r["simulator_cpu"],
                        r["rest_cpu"], r["load_before"], r["load_after"])
    result["growth"] = {p: growth([r for r in result["runs"] if r["policy"] == p])
                        for p in policies if len(sizes) > 1}
    result["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    write_result(result, args.out)


if __name__ == "__main__":
    main()
