"""Would several simulations interleaved in one compiled loop run faster than one at a time?

    python benchmarks/bench_interleave.py [--quick] [--repeats 7]

The search's time is the simulator kernel walking requests (docs/performance.md), one dependent
chain per request: ``x = max(x, free) + L`` through the chosen group's stages, then a data-
dependent decision (good or rejected) that commits the stage clocks. Independent simulations
(the greedy runs of different candidates or device splits) have independent chains, so a loop
that walks K of them in lockstep could overlap their latencies on one core, if the core is
waiting on the chain rather than on branch mispredictions and loads.

This benchmark measures that on the calls the search really makes. It records every
``SimTables.simulate_subset`` call of two fast-greedy runs of the S3@MAF2 fixed point (72 mixed
models, 48 devices, the day at rate scale 32 on the stand-in; ``--quick``: its first 90
minutes) for two candidate partitions, then replays the call pairs (i-th call of run A with the
i-th call of run B) two ways on the same core: one after the other with the library kernel, and
both in one loop with the K = 2 kernel below (walking the longer request list, stepping each
simulation while it has requests left). Both give identical counters (checked). It prints the
nanoseconds per simulated request of each way (minimum and median over the repeats, taken
alternately so that load from other processes hits both alike) and their ratio.

The K = 2 kernel here is a measuring device, not library code: the library has one kernel
(``simulator.kernels.simulate_requests``).
"""
from __future__ import annotations

import argparse
import logging
import statistics
import time

import numpy as np
from numba import njit

from alpa_serve.simulator import kernels
from alpa_serve.simulator.kernels import _choose_replica, _last_stage_offsets, _run_pipeline

logger = logging.getLogger("bench_interleave")


@njit(cache=True)
def _simulate_pair(arrivals, model_ids, slos, idx_a, n_a, idx_b, n_b,
                   mp_a, rg_a, rf_a, rn_a, rl_a, ts_a, mp_b, rg_b, rf_b, rn_b, rl_b, ts_b,
                   stage_lat, mn_a, mg_a, gn_a, mn_b, mg_b, gn_b):
    """Two ``simulate_requests`` (search mode) in one loop; ``idx_*``: request indices."""
    free_a = np.full(ts_a, -np.inf)
    buf_a = np.empty(max(ts_a, 1))
    last_a = _last_stage_offsets(rf_a, rn_a)
    free_b = np.full(ts_b, -np.inf)
    buf_b = np.empty(max(ts_b, 1))
    last_b = _last_stage_offsets(rf_b, rn_b)
    good_a = 0
    good_b = 0
    for r in range(max(n_a, n_b)):
        if r < n_a:
            i = idx_a[r]
            m = model_ids[i]
            if m >= 0:
                mn_a[m] += 1
                j = _choose_replica(m, mp_a, last_a, free_a)
                if j >= 0:
                    gn_a[rg_a[j]] += 1
                    t = arrivals[i]
                    f, ok = _run_pipeline(t, slos[i], rf_a[j], rn_a[j], rl_a[j], stage_lat,
                                          free_a, buf_a)
                    if ok:
                        mg_a[m] += 1
                        good_a += 1
        if r < n_b:
            i = idx_b[r]
            m = model_ids[i]
            if m >= 0:
                mn_b[m] += 1
                j = _choose_replica(m, mp_b, last_b, free_b)
                if j >= 0:
                    gn_b[rg_b[j]] += 1
                    t = arrivals[i]
                    f, ok = _run_pipeline(t, slos[i], rf_b[j], rn_b[j], rl_b[j], stage_lat,
                                          free_b, buf_b)
                    if ok:
                        mg_b[m] += 1
                        good_b += 1
    return good_a, good_b


def record_calls(tables, case, configs_list):
    """The (placement, index) arguments of every simulate_subset call of one fast-greedy run per
    candidate partition in ``configs_list``."""
    from alpa_serve.placement.greedy import fast_greedy
    from alpa_serve.placement.search_case import empty_placement

    runs = []
    original = tables.simulate_subset
    for configs in configs_list:
        calls: list = []

        def recording(placement, index, calls=calls):
            calls.append((placement, None if index is None else np.asarray(index)))
            return original(placement, index)

        tables.simulate_subset = recording
        try:
            fast_greedy(empty_placement(configs), case)
        finally:
            tables.simulate_subset = original
        runs.append(calls)
    return runs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the first 90 minutes of the day")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--max-calls", type=int, default=40, help="call pairs replayed")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from alpa_serve.experiments import case_runner as R
    from alpa_serve.experiments.suites import SuiteOptions, build_suite
    from alpa_serve.placement.search_case import SearchCase
    from alpa_serve.profiling import ParallelConfig

    entries = build_suite("fig11", SuiteOptions(quick=args.quick, only_files=("S3_maf2.tsv",)))
    case = next(e.case for e in entries if e.case.policy == "mp-search-sep"
                and e.case.num_devices == 48 and e.case.exp_name == "goodput_vs_num_devices")
    db = R.default_database()
    inputs = R.prepare_inputs(case, None)
    profiles, slos = R.case_models(case, db)
    train = R.with_slos(inputs.train_workload, slos)
    search = SearchCase(profiles, train, case.mem_budget)
    tables = search.tables
    configs_a = (ParallelConfig(1, 1, 4),) * 12
    configs_b = (ParallelConfig(1, 2, 2),) * 12
    run_a, run_b = record_calls(tables, search, [configs_a, configs_b])
    pairs = list(zip(run_a, run_b))[:args.max_calls]
    logger.info("%d requests; %d / %d calls recorded, %d pairs replayed", tables.num_requests,
                len(run_a), len(run_b), len(pairs))
    everything = np.arange(tables.num_requests, dtype=np.int64)
    M = tables.num_models
    encoded = [(tables._encode(pa), everything if ia is None else ia,
                tables._encode(pb), everything if ib is None else ib)
               for (pa, ia), (pb, ib) in pairs]
    walked = sum(len(ia) + len(ib) for _, ia, _, ib in encoded)

    def one(seg, idx):
        mn, mg = np.zeros(M, np.int64), np.zeros(M, np.int64)
        gn = np.zeros(seg.num_groups, np.int64)
        kernels.simulate_requests(tables.arrivals, tables.model_ids, tables.slos, idx, 0,
                                  len(idx), seg.model_ptr, seg.rep_group, seg.rep_free_off,
                                  seg.rep_nstages, seg.rep_lat_off, tables._stage_lat,
                                  seg.total_stages, None, None, mn, mg, gn, 0.0)
        return mn, mg, gn

    def pair(sa, ia, sb, ib):
        z = np.zeros
        out = (z(M, np.int64), z(M, np.int64), z(sa.num_groups, np.int64),
               z(M, np.int64), z(M, np.int64), z(sb.num_groups, np.int64))
        _simulate_pair(tables.arrivals, tables.model_ids, tables.slos, ia, len(ia), ib, len(ib),
                       sa.model_ptr, sa.rep_group, sa.rep_free_off, sa.rep_nstages,
                       sa.rep_lat_off, sa.total_stages, sb.model_ptr, sb.rep_group,
                       sb.rep_free_off, sb.rep_nstages, sb.rep_lat_off, sb.total_stages,
                       tables._stage_lat, *out)
        return out

    # Identical counters, so the comparison is between equal work.
    for sa, ia, sb, ib in encoded[:3]:
        got = pair(sa, ia, sb, ib)
        want = one(sa, ia) + one(sb, ib)
        assert all(np.array_equal(g, w) for g, w in zip(got, want))
    separate, together = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for sa, ia, sb, ib in encoded:
            one(sa, ia)
            one(sb, ib)
        t1 = time.perf_counter()
        for sa, ia, sb, ib in encoded:
            pair(sa, ia, sb, ib)
        t2 = time.perf_counter()
        separate.append(t1 - t0)
        together.append(t2 - t1)
    ns = 1e9 / walked
    print(f"requests walked per repeat: {walked:,}")
    print(f"one at a time:   min {min(separate) * ns:.1f} ns/request, "
          f"median {statistics.median(separate) * ns:.1f}")
    print(f"two interleaved: min {min(together) * ns:.1f} ns/request, "
          f"median {statistics.median(together) * ns:.1f}")
    print(f"speed-up: {min(separate) / min(together):.2f}x (minima), "
          f"{statistics.median(separate) / statistics.median(together):.2f}x (medians)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
