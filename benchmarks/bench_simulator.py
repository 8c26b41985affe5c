"""Simulator benchmark (DESIGN 8): loop throughput and fixed per-call cost of simulate_fast.

Measures, on one core:

* numba compile time of the kernels (first call in a fresh process; ``cache=True`` files are
  bypassed by compiling fresh dispatchers, see ``--no-fresh-compile``);
* loop throughput in requests per second on a 1,000,000-request workload served by 64 groups of
  mixed configurations (median of several runs of ``SimTables.simulate_fast``, and of the full
  per-request ``SimTables.run``);
* fixed cost of one ``simulate_fast`` call once the tables exist: on a 12,700-request workload
  (median call time minus the loop time predicted by the throughput) and directly on a
  1-request workload, with the placement-encoding cache cold (new placement each call, as in
  the greedy search) and warm.

Usage: ``python benchmarks/bench_simulator.py [--runs 7] [--out benchmarks/results/simulator.json]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from alpa_serve.placement import ModelPlacement
from alpa_serve.profiling import ConfigProfile, ModelProfile, ParallelConfig
from alpa_serve.simulator import SimTables
from alpa_serve.workload import Workload

logger = logging.getLogger("bench_simulator")

CONFIGS = [ParallelConfig(1, 1, 1), ParallelConfig(1, 1, 2), ParallelConfig(1, 2, 1),
           ParallelConfig(1, 1, 4), ParallelConfig(1, 2, 2), ParallelConfig(1, 1, 8)]


def make_profiles(num_models: int) -> list[ModelProfile]:
    """Synthetic profiles: single-device latency 0.1-0.4 s, pp splits evenly, op scales by 0.6."""
    profs = []
    for m in range(num_models):
        base = 0.1 + 0.3 * m / max(num_models - 1, 1)
        table = {}
        for cfg in CONFIGS:
            stage = base / cfg.pp / (1 + 0.6 * (cfg.op - 1))
            lat = tuple([stage] * cfg.pp)
            table[cfg] = ConfigProfile(latency={1: lat}, act_mem={1: (0.0,) * cfg.pp},
                                       weight_mem=(1.0,) * cfg.pp)
        profs.append(ModelProfile(f"bench-{m}", table))
    return profs


def make_workload(num_requests: int, num_models: int, rate: float, seed: int,
                  profiles: list[ModelProfile]) -> Workload:
    """Poisson arrivals at ``rate`` req/s, power-law model mix, SLO = 5 x single latency."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1 / rate, num_requests))
    weights = (np.arange(num_models) + 1.0) ** -0.5
    ids = rng.choice(num_models, num_requests, p=weights / weights.sum()).astype(np.int32)
    single = np.array([p.single_latency for p in profiles])
    return Workload(arrivals, ids, 5.0 * single[ids], [p.name for p in profiles])


def make_placement(num_groups: int, num_models: int, per_group: int, seed: int) -> ModelPlacement:
    """``num_groups`` groups cycling through CONFIGS, each with ``per_group`` random models."""
    rng = np.random.default_rng(seed)
    cfgs = tuple(CONFIGS[g % len(CONFIGS)] for g in range(num_groups))
    models = tuple(tuple(sorted(int(x) for x in rng.choice(num_models, per_group, replace=False)))
                   for _ in range(num_groups))
    return ModelPlacement(cfgs, models)


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def measure_compile() -> float:
    """Seconds to compile both kernels from scratch (fresh dispatchers, no on-disk cache)."""
    from numba import njit

    from alpa_serve.simulator import kernels

    def fresh(f):
        return njit(cache=False)(f.py_func)

    # Inline helpers are resolved through the module globals, so only the entry points need
    # fresh dispatchers.
    sim, bounds = fresh(kernels.simulate_requests), fresh(kernels.segment_bounds)
    profs = make_profiles(2)
    w = make_workload(10, 2, 10.0, 0, profs)
    t = SimTables(profs, w)
    p = make_placement(2, 2, 1, 0)
    s = t._encode(p)
    t0 = time.perf_counter()
    args = (t.arrivals, t.model_ids, t.slos, None, 0, len(w), s.model_ptr, s.rep_group,
            s.rep_free_off, s.rep_nstages, s.rep_lat_off, t._stage_lat, s.total_stages)
    counters = (np.zeros(2, np.int64), np.zeros(2, np.int64), np.zeros(2, np.int64))
    sim(*args, None, None, *counters, 0.0)  # the search's specialisation
    sim(*args, np.empty(len(w)), np.zeros(len(w), np.bool_), *counters, 0.0)  # per request
    index = np.arange(len(w), dtype=np.int64)
    sim(*args[:3], index, *args[4:], None, None, *counters, 0.0)  # component re-simulation
    bounds(t.arrivals, np.array([np.inf]))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="timed runs of the 1M-request loop")
    ap.add_argument("--calls", type=int, default=400, help="calls for the fixed-cost medians")
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--models", type=int, default=32)
    ap.add_argument("--groups", type=int, default=64)
    ap.add_argument("--per-group", type=int, default=4, help="models per group")
    ap.add_argument("--out", default=None, help="JSON results file (default: print only)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    res: dict = {"machine": {"cpu": cpu_model(), "cores": os.cpu_count(),
                             "python": platform.python_version()}}
    res["compile_s"] = measure_compile()
    logger.info("compile (fresh, both kernels): %.2f s", res["compile_s"])

    profs = make_profiles(args.models)
    # Rate chosen so the 64 groups are loaded but not swamped (goodput well inside (0, 1)).
    w = make_workload(args.requests, args.models, 1000.0, 1, profs)
    p = make_placement(args.groups, args.models, args.per_group, 2)
    t_build0 = time.perf_counter()
    tables = SimTables(profs, w)
    res["tables_build_s"] = time.perf_counter() - t_build0
    first = tables.simulate_fast(p)  # warm-up (loads cached machine code)
    res["goodput"] = first.goodput
    fast_times = timed(lambda: tables.simulate_fast(p), args.runs)
    full_times = timed(lambda: tables.run(p), max(3, args.runs // 2))
    n = len(w)
    res["loop"] = {
        "requests": n, "groups": args.groups, "models": args.models,
        "replicas": p.num_replicas,
        "fast_median_s": statistics.median(fast_times),
        "fast_req_per_s": n / statistics.median(fast_times),
        "full_median_s": statistics.median(full_times),
        "full_req_per_s": n / statistics.median(full_times),
    }
    logger.info("1M loop: fast %.1f M req/s (median %.4f s), full %.1f M req/s, goodput %.3f",
                res["loop"]["fast_req_per_s"] / 1e6, res["loop"]["fast_median_s"],
                res["loop"]["full_req_per_s"] / 1e6, first.goodput)

    # Fixed cost on a 12,700-request workload (a typical search training workload).
    w_small = make_workload(12_700, args.models, 1000.0, 3, profs)
    t_small = SimTables(profs, w_small)
    t_small.simulate_fast(p)
    warm = timed(lambda: t_small.simulate_fast(p), args.calls)

    def cold_call():
        t_small._encoded.clear()  # as for a placement never seen before
        t_small.simulate_fast(p)

    cold = timed(cold_call, args.calls)
    loop_pred = 12_700 / res["loop"]["fast_req_per_s"]
    w_tiny = make_workload(1, args.models, 1000.0, 4, profs)
    t_tiny = SimTables(profs, w_tiny)
    t_tiny.simulate_fast(p)

    def tiny_cold():
        t_tiny._encoded.clear()
        t_tiny.simulate_fast(p)

    tiny_c = timed(tiny_cold, args.calls)
    tiny_w = timed(lambda: t_tiny.simulate_fast(p), args.calls)
    res["fixed"] = {
        "small_requests": 12_700,
        "small_warm_median_s": statistics.median(warm),
        "small_cold_median_s": statistics.median(cold),
        "small_loop_predicted_s": loop_pred,
        "fixed_cold_s": statistics.median(cold) - loop_pred,
        "fixed_warm_s": statistics.median(warm) - loop_pred,
        "tiny_cold_median_s": statistics.median(tiny_c),
        "tiny_warm_median_s": statistics.median(tiny_w),
    }
    f = res["fixed"]
    logger.info("12.7k calls: warm %.1f us, cold %.1f us (loop predicted %.1f us) -> fixed "
                "warm %.1f us, cold %.1f us; 1-request calls: warm %.1f us, cold %.1f us",
                f["small_warm_median_s"] * 1e6, f["small_cold_median_s"] * 1e6, loop_pred * 1e6,
                f["fixed_warm_s"] * 1e6, f["fixed_cold_s"] * 1e6,
                f["tiny_warm_median_s"] * 1e6, f["tiny_cold_median_s"] * 1e6)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
        logger.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
