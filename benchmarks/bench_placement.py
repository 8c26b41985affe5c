"""Placement benchmark (DESIGN 8): wall time of three search cases.

1. mp-search, 32 x bert-1.3b on 32 devices, power-law total rate 64 req/s, CV 4, 200 s; the
   training workload is the test workload (model i: Gamma(rate_i, 4), seed i, start 0,
   SLO 5 x single-device latency).
2. mp-search-sep, the 60-model synthetic mixed case (10 x [bert-6.7b, moe-5.3b, bert-2.6b,
   moe-2.4b, bert-1.3b, moe-1.3b]) on 32 devices, power-law total rate 64, CV 4, 200 s. Two
   variants: the policy-generated training workload of DESIGN 4.1 (duration max(100, 30000 /
   64) = 468.75 s, train_seed 0; what run_case does for mixed cases) and, for comparison, the
   200 s test workload used as training workload.
3. sr-replace-60 (Clockwork++), 48 x bert-1.3b on 16 devices over one hour, power-law total
   rate 50 req/s, CV 4 (training = test workload).

Numba compilation is excluded (a small warm-up placement runs first). Each case is timed
several times; the median is reported and every run must return the identical placement.

Usage: ``python benchmarks/bench_placement.py [--runs 5] [--cases 1,2,2t,3] [--workers 1]
[--out FILE]``
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import platform
import resource
import statistics
import time
from pathlib import Path
from typing import Callable, Optional

from alpa_serve.placement import ClusterEnv, ModelData, get_policy
from alpa_serve.profiling import ProfilingDatabase
from alpa_serve.workload import GammaProcess, Workload, power_law_rates

logger = logging.getLogger("bench_placement")

MIXED = ["bert-6.7b", "moe-5.3b", "bert-2.6b", "moe-2.4b", "bert-1.3b", "moe-1.3b"]


def make_case(db: ProfilingDatabase, model_types: list[str], total_rate: float, cv: float,
              duration: float, slo_scale: float = 5.0) -> tuple[list[ModelData], Workload]:
    """ModelData and test workload of a synthetic power-law case (model i uses seed i)."""
    rates = power_law_rates(total_rate, len(model_types))
    names = [f"{t}-{i}" for i, t in enumerate(model_types)]
    mds = []
    for name, t, r in zip(names, model_types, rates):
        prof = db.get(t)
        mds.append(ModelData(name, slo_scale * prof.single_latency, float(r), cv, prof))
    ws = [GammaProcess(d.rate, d.cv).generate_workload(i, 0.0, duration, d.slo, seed=i,
                                                        model_names=names)
          for i, d in enumerate(mds)]
    return mds, Workload.merge(*ws)


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its terminated children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def time_runs(fn: Callable[[], object], runs: int
              ) -> tuple[list[float], list[float], object]:
    """Wall times and CPU times (s) of ``runs`` calls; asserts every call returns the same
    result. CPU time = this process plus finished worker processes (they end with each call);
    on a loaded machine it is the better estimate of the uncontended serial wall time."""
    times, cpu, first = [], [], None
    for k in range(runs):
        t0, c0 = time.perf_counter(), _cpu_seconds()
        result = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(_cpu_seconds() - c0)
        if k == 0:
            first = result
        elif result != first:
            raise AssertionError("placement differs between runs")
    return times, cpu, first


def describe(placement) -> str:
    """Short summary of a placement: configs with multiplicities and replica count."""
    if hasattr(placement, "placements"):
        return (f"{len(placement.placements)} windows, up to {placement.num_replicas} "
                f"replicas")
    counts: dict = {}
    for c in placement.group_configs:
        counts[c] = counts.get(c, 0) + 1
    cfgs = " + ".join(f"{n} x (op {c.op}, pp {c.pp})" for c, n in counts.items())
    return f"{cfgs}, {placement.num_replicas} replicas"


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per case")
    parser.add_argument("--cases", default="1,2,2t,3",
                        help="comma-separated cases: 1, 2 (generated training), 2t (training "
                             "= test workload), 3")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes for mp-search / mp-search-sep (1 = serial)")
    parser.add_argument("--out", type=Path, default=None, help="write results as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    db = ProfilingDatabase.default()
    wanted = args.cases.split(",")

    # Warm-up: loads (or compiles) the numba kernels so no case pays for compilation.
    mds, w = make_case(db, ["bert-1.3b"] * 2, 4.0, 4.0, 20.0)
    get_policy("mp-search-sep").place(mds, ClusterEnv(2), w)
    get_policy("sr-replace-5").place(mds, ClusterEnv(2), w)

    results = {"machine": {"platform": platform.platform(), "python": platform.python_version(),
                           "cpus": os.cpu_count(), "processor": platform.processor(),
                           "load_average": os.getloadavg()},
               "profile": db.fingerprint(), "cases": {}}
    logger.info("profiling database %s; load average %s", db.fingerprint(), os.getloadavg())
    cases = {
        "1": ("mp-search 32 x bert-1.3b, 32 devices, rate 64, CV 4, 200 s",
              lambda: make_case(db, ["bert-1.3b"] * 32, 64.0, 4.0, 200.0),
              "mp-search", 32, True, args.runs),
        "2": ("mp-search-sep 60 mixed, 32 devices, rate 64, CV 4, generated training",
              lambda: make_case(db, MIXED * 10, 64.0, 4.0, 200.0),
              "mp-search-sep", 32, False, max(3, args.runs // 2)),
        "2t": ("mp-search-sep 60 mixed, 32 devices, rate 64, CV 4, training = 200 s test",
               lambda: make_case(db, MIXED * 10, 64.0, 4.0, 200.0),
               "mp-search-sep", 32, True, max(3, args.runs // 2)),
        "3": ("sr-replace-60 48 x bert-1.3b, 16 devices, 1 h, rate 50, CV 4",
              lambda: make_case(db, ["bert-1.3b"] * 48, 50.0, 4.0, 3600.0),
              "sr-replace-60", 16, True, max(3, args.runs // 2)),
    }
    for key in wanted:
        title, build, policy_name, devices, train_is_test, runs = cases[key]
        mds, w = build()
        kwargs = {"num_workers": args.workers} if policy_name.startswith("mp-search") else {}
        policy = get_policy(policy_name, **kwargs)
        env = ClusterEnv(devices)
        train = w if train_is_test else None
        times, cpu, placement = time_runs(functools.partial(policy.place, mds, env, train), runs)
        med = statistics.median(times)
        logger.info("case %s: %s (workers %d)\n  wall median %.3f s over %d runs (min %.3f, "
                    "max %.3f), CPU median %.3f s; %d test requests; result: %s", key, title,
                    kwargs.get("num_workers", 1), med, runs, min(times), max(times),
                    statistics.median(cpu), len(w), describe(placement))
        results["cases"][key] = {"title": title, "workers": kwargs.get("num_workers", 1),
                                 "median_s": med, "times_s": times, "cpu_s": cpu,
                                 "num_test_requests": len(w), "placement": placement.to_json()}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
