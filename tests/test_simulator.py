"""Simulator semantics (DESIGN 5.1, 5.2): hand-computed cases and a pure-Python reference.

Hand cases build the expected float64 values with the same operation order as the specified
recurrence (x = max(x, free) + L; finish = x + 0.011), from float32 stage latencies
L = float32(latency * (1 + 0.009 * pp)); approximate decimal values are given in comments.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from alpa_serve.placement import ModelPlacement, ModelPlacementWithReplacement
from alpa_serve.profiling import ConfigProfile, ModelProfile, ParallelConfig
from alpa_serve.simulator import (
    EmptyWorkloadError,
    FastStats,
    ModelStats,
    SimStats,
    SimTables,
    kernels,
    simulate,
    trim_slice,
)
from alpa_serve.workload import Workload

C111 = ParallelConfig(1, 1, 1)
C112 = ParallelConfig(1, 1, 2)
C121 = ParallelConfig(1, 2, 1)
C114 = ParallelConfig(1, 1, 4)
C122 = ParallelConfig(1, 2, 2)
OVERHEAD = 0.011


def make_profile(name: str, latencies: dict) -> ModelProfile:
    """ModelProfile with batch-1 stage latencies (seconds) per config; memory is irrelevant."""
    table = {}
    for cfg, lat in latencies.items():
        lat = tuple(float(x) for x in lat)
        table[ParallelConfig(*cfg)] = ConfigProfile(latency={1: lat},
                                                    act_mem={1: tuple(0.0 for _ in lat)},
                                                    weight_mem=tuple(1.0 for _ in lat))
    return ModelProfile(name, table)


def f32lat(lat: float, pp: int) -> float:
    """Stored stage latency: float64 product, rounded once to float32."""
    return float(np.float32(lat * (1 + 0.009 * pp)))


def make_workload(arrivals, ids, slos, num_models: int) -> Workload:
    return Workload(np.asarray(arrivals, dtype=np.float64), np.asarray(ids, dtype=np.int32),
                    np.asarray(slos, dtype=np.float64), [f"m{i}" for i in range(num_models)])


def run(placement, profiles, workload):
    tables = SimTables(profiles, workload)
    finish, good, model_num, model_good, group_num = tables.run(placement)
    return tables, finish, good, model_num, model_good, group_num


# --------------------------------------------------------------------------------------------
# Pure-Python reference simulator (independent of the kernel's array encoding)
# --------------------------------------------------------------------------------------------
def reference_simulate(placement, profiles, workload):
    """Straight transcription of DESIGN 5.1 with Python floats; idle devices are free at 0.0
    (arrivals in the random cases are >= 0, where this equals the kernel's -inf)."""
    if isinstance(placement, ModelPlacementWithReplacement):
        placements = list(placement.placements)
        change = list(placement.start_times[1:]) + [math.inf]
    else:
        placements = [placement]
        change = [math.inf]
    num_models = len(profiles)
    n = len(workload.arrivals)
    finish = [float(a) for a in workload.arrivals]
    good = [False] * n
    model_num = [0] * num_models
    model_good = [0] * num_models
    group_num = [0] * max(len(p.group_configs) for p in placements)

    def fresh(p):
        return [[0.0] * cfg.pp for cfg in p.group_configs]

    seg = 0
    free = fresh(placements[0])
    for i in range(n):
        t = float(workload.arrivals[i])
        if seg < len(placements) - 1 and t > change[seg]:
            seg += 1
            free = fresh(placements[seg])
        m = int(workload.model_ids[i])
        if m < 0:
            continue
        model_num[m] += 1
        p = placements[seg]
        groups = [g for g, ms in enumerate(p.group_models) if m in ms]
        if not groups:
            continue
        best = groups[0]
        for g in groups[1:]:
            if free[g][-1] < free[best][-1]:
                best = g
        group_num[best] += 1
        cfg = p.group_configs[best]
        if not profiles[m].has_config(cfg):
            continue
        lats = [f32lat(x, cfg.pp) for x in profiles[m].latency(cfg, 1)]
        x = t
        xs = []
        for k, lat in enumerate(lats):
            x = max(x, free[best][k]) + lat
            xs.append(x)
        fin = x + OVERHEAD
        if fin - t <= float(np.float32(workload.slos[i])):
            free[best] = xs
            finish[i] = fin
            good[i] = True
            model_good[m] += 1
    return (np.array(finish), np.array(good), np.array(model_num), np.array(model_good),
            np.array(group_num))


# --------------------------------------------------------------------------------------------
# Hand-computed cases
# --------------------------------------------------------------------------------------------
def test_queueing_on_two_stage_pipeline():
    prof = make_profile("a", {(1, 1, 2): [0.1, 0.2]})
    p = ModelPlacement((C112,), ((0,),))
    w = make_workload([0.0, 0.05], [0, 0], [10.0, 10.0], 1)
    _, finish, good, model_num, model_good, group_num = run(p, [prof], w)
    L0, L1 = f32lat(0.1, 2), f32lat(0.2, 2)  # ~0.1018, ~0.2036 (factor 1.018)
    # A at 0: stage0 ends L0, stage1 ends L0 + L1; finish ~0.3164.
    fa = ((0.0 + L0) + L1) + OVERHEAD
    # B at 0.05 waits for stage 0 (free at L0 > 0.05): ends 2*L0; stage 1 free at L0 + L1 > 2*L0
    # so it ends (L0 + L1) + L1 ~0.509; finish ~0.5200.
    fb = ((L0 + L1) + L1) + OVERHEAD
    assert finish[0] == fa and finish[1] == fb
    assert abs(fa - 0.3164) < 1e-6 and abs(fb - 0.5200) < 1e-6
    assert good.tolist() == [True, True]
    assert model_num.tolist() == [2] and model_good.tolist() == [2] and group_num.tolist() == [2]


def test_rejected_request_occupies_nothing():
    prof = make_profile("a", {(1, 1, 1): [1.0]})
    p = ModelPlacement((C111,), ((0,),))
    L = f32lat(1.0, 1)  # ~1.009
    # A at 0 (SLO 2): served, stage free at L. B at 0.5 (SLO 1): would finish ~2.029, latency
    # ~1.529 > 1 -> rejected. C at 1.1 (SLO 1.1): with B not occupying it finishes ~2.12
    # (latency ~1.02, good); had B occupied the device it would finish ~3.04 (bad).
    w = make_workload([0.0, 0.5, 1.1], [0, 0, 0], [2.0, 1.0, 1.1], 1)
    _, finish, good, model_num, model_good, group_num = run(p, [prof], w)
    assert good.tolist() == [True, False, True]
    assert finish[0] == (0.0 + L) + OVERHEAD
    assert finish[1] == 0.5  # failed: finish = arrival, latency 0
    assert finish[2] == (1.1 + L) + OVERHEAD
    assert group_num.tolist() == [3]  # the rejected request still counts in its group
    assert model_num.tolist() == [3] and model_good.tolist() == [2]
    stats = simulate(p, [prof], w)
    assert stats.latency_mean == pytest.approx(np.mean([finish[0], 0.0, finish[2] - 1.1]))


def test_group_choice_ties_go_to_lower_group():
    prof = make_profile("a", {(1, 1, 1): [1.0]})
    p = ModelPlacement((C111, C111, C111), ((0,), (0,), (0,)))
    # Three requests at t=0 take the idle groups 0, 1, 2 in order; at t=0.1 all three last
    # stages are free at the same time L -> tie -> group 0 (it then queues: finish 2L + 0.011).
    w = make_workload([0.0, 0.0, 0.0, 0.1], [0, 0, 0, 0], [5.0] * 4, 1)
    _, finish, good, _, _, group_num = run(p, [prof], w)
    L = f32lat(1.0, 1)
    assert group_num.tolist() == [2, 1, 1]
    assert finish[3] == (L + L) + OVERHEAD
    assert good.all()


def test_group_choice_uses_last_stage():
    # Group 0 (pp=2) gets stages [0.3, 0.01]: free [~0.305, ~0.316]. Group 1 (pp=2) gets
    # [0.01, 0.4]: free [~0.010, ~0.417]. By first stage group 1 looks earlier, by LAST stage
    # group 0 is earlier (0.316 < 0.417) -> model 0's request goes to group 0.
    profs = [make_profile("x", {(1, 1, 2): [0.05, 0.05]}),
             make_profile("y", {(1, 1, 2): [0.3, 0.01]}),
             make_profile("z", {(1, 1, 2): [0.01, 0.4]})]
    p = ModelPlacement((C112, C112), ((0, 1), (0, 2)))
    w = make_workload([0.0, 0.0, 0.001], [1, 2, 0], [10.0] * 3, 3)
    _, finish, good, _, _, group_num = run(p, profs, w)
    assert group_num.tolist() == [2, 1]
    free0 = [f32lat(0.3, 2), f32lat(0.3, 2) + f32lat(0.01, 2)]
    a, b = f32lat(0.05, 2), f32lat(0.05, 2)
    expected = (max(max(0.001, free0[0]) + a, free0[1]) + b) + OVERHEAD
    assert finish[2] == expected


def test_strictly_earlier_higher_group_wins():
    # Model 1 only on group 0 keeps group 0 busy; model 0 (groups 0 and 1) then picks group 1.
    profs = [make_profile("a", {(1, 1, 1): [0.1]}), make_profile("b", {(1, 1, 1): [1.0]})]
    p = ModelPlacement((C111, C111), ((0, 1), (0,)))
    w = make_workload([0.0, 0.2, 0.3], [1, 0, 0], [5.0] * 3, 2)
    _, finish, good, _, _, group_num = run(p, profs, w)
    # 0.2 -> group 1 (idle beats busy); 0.3 -> group 1 again (free ~0.301 < group 0's ~1.009).
    assert group_num.tolist() == [1, 2]
    L = f32lat(0.1, 1)
    assert finish[2] == (max(0.3, 0.2 + L) + L) + OVERHEAD


def test_group_choice_compares_raw_free_times_of_idle_groups():
    # At t=5 both groups are idle, but group 1's last stage became free earlier (~0.40 vs
    # ~0.51): the raw free times decide (not max(free, t), which would tie and pick group 0).
    profs = [make_profile("a", {(1, 1, 1): [0.1]}), make_profile("b", {(1, 1, 1): [0.5]}),
             make_profile("c", {(1, 1, 1): [0.4]})]
    p = ModelPlacement((C111, C111), ((0, 1), (0, 2)))
    w = make_workload([0.0, 0.0, 5.0], [1, 2, 0], [5.0] * 3, 3)
    _, finish, good, _, _, group_num = run(p, profs, w)
    assert group_num.tolist() == [1, 2]
    assert finish[2] == (5.0 + f32lat(0.1, 1)) + OVERHEAD


def test_negative_arrivals_start_on_idle_devices():
    # Idle stages are free at -inf, so a request before time 0 starts at its own arrival.
    prof = make_profile("a", {(1, 1, 1): [0.1]})
    p = ModelPlacement((C111,), ((0,),))
    _, finish, good, _, _, _ = run(p, [prof], make_workload([-3.0], [0], [1.0], 1))
    assert good[0] and finish[0] == (-3.0 + f32lat(0.1, 1)) + OVERHEAD


def test_trimming_ten_seconds_each_end():
    prof = make_profile("a", {(1, 1, 1): [0.01]})
    p = ModelPlacement((C111,), ((0,),))
    n = 100
    arrivals = np.arange(n, dtype=np.float64)  # span 99 s: skip = int(10 / 99 * 100) = 10
    ids = np.zeros(n, dtype=np.int32)
    ids[:10] = -1   # the first and last 10 requests fail (unknown model)
    ids[-10:] = -1
    w = make_workload(arrivals, ids, np.full(n, 1.0), 1)
    stats = simulate(p, [prof], w)
    assert stats.trim == slice(10, 90)
    assert stats.num_requests == 80
    assert stats.goodput == 1.0
    fast = SimTables([prof], w).simulate_fast(p)
    assert fast.goodput == 0.8  # untrimmed, unknown-model requests in the denominator
    assert stats.group_num.tolist() == [80]  # group counts are not trimmed (all 80 hit it)
    # Per-model statistics use the same overall trim window (no separate per-model trim).
    assert stats.per_model[0].num_requests == 80 and stats.per_model[0].goodput == 1.0


def test_trim_edge_cases():
    assert trim_slice(np.array([5.0])) == slice(0, 1)                  # N <= 1
    assert trim_slice(np.array([0.0, 0.5, 1.0])) == slice(0, 3)        # 2 * skip >= N
    assert trim_slice(np.linspace(0, 1000, 50)) == slice(0, 50)        # skip = 0
    assert trim_slice(np.zeros(4)) == slice(0, 4)                      # span 0
    # skip = int(10 / 30 * 31) = 10; 2 * 10 < 31 -> trimmed to 11 requests.
    assert trim_slice(np.linspace(0, 30, 31)) == slice(10, 21)


def test_replacement_switches_strictly_after_change_time():
    prof0 = make_profile("a", {(1, 1, 1): [1.0]})
    prof1 = make_profile("b", {(1, 1, 1): [1.0]})
    p0 = ModelPlacement((C111,), ((0,),))
    p1 = ModelPlacement((C111,), ((1,),))
    rp = ModelPlacementWithReplacement((0.0, 5.0), (p0, p1))
    # Request at exactly 5.0 stays in p0 (served); the one at 5.0 + 1 ulp starts p1, where
    # model 0 has no replica (fails, counts in the model only).
    t1 = np.nextafter(5.0, np.inf)
    w = make_workload([5.0, t1, t1], [0, 0, 1], [5.0] * 3, 2)
    _, finish, good, model_num, model_good, group_num = run(rp, [prof0, prof1], w)
    assert good.tolist() == [True, False, True]
    assert model_num.tolist() == [2, 1] and model_good.tolist() == [1, 1]
    assert group_num.tolist() == [2]  # summed over segments by group index


def test_replacement_segments_start_idle_and_advance_once():
    prof = make_profile("a", {(1, 1, 1): [1.0]})
    p = ModelPlacement((C111,), ((0,),))
    rp = ModelPlacementWithReplacement((0.0, 1.0, 2.0), (p, p, p))
    # 0.9 occupies the device until ~1.909. 3.0 is past both change times but advances only one
    # segment (to segment 1, idle devices): finish 3.0 + L + 0.011. 3.1 opens segment 2, idle:
    # finish 3.1 + L + 0.011 although segment 1's device is busy until ~4.009.
    L = f32lat(1.0, 1)
    w = make_workload([0.9, 3.0, 3.1], [0, 0, 0], [5.0] * 3, 1)
    arrivals = w.arrivals
    bounds = kernels.segment_bounds(arrivals, np.array([1.0, 2.0, np.inf]))
    assert bounds.tolist() == [0, 1, 2, 3]
    _, finish, good, _, _, group_num = run(rp, [prof], w)
    assert finish.tolist() == [(0.9 + L) + OVERHEAD, (3.0 + L) + OVERHEAD, (3.1 + L) + OVERHEAD]
    # Same placement without replacement: 3.1 queues behind 3.0.
    _, finish2, _, _, _, _ = run(p, [prof], w)
    assert finish2[2] == ((3.0 + L) + L) + OVERHEAD


def test_segment_bounds_before_first_start_and_empty_segments():
    arr = np.array([-1.0, 0.5, 10.0])
    # Segment 0 also holds requests before start_times[0]; segment 1 (change 1.0 -> 2.0) is
    # entered at 10.0, so segments 2 and 3 stay empty.
    b = kernels.segment_bounds(arr, np.array([1.0, 2.0, 3.0, np.inf]))
    assert b.tolist() == [0, 2, 3, 3, 3]


def test_unknown_model_and_model_without_replica():
    profs = [make_profile("a", {(1, 1, 1): [0.1]}), make_profile("b", {(1, 1, 1): [0.1]})]
    p = ModelPlacement((C111,), ((0,),))
    w = make_workload([0.0, 1.0, 2.0, 3.0], [0, -1, 1, 0], [1.0] * 4, 2)
    tables, finish, good, model_num, model_good, group_num = run(p, profs, w)
    assert good.tolist() == [True, False, False, True]
    assert finish[1] == 1.0 and finish[2] == 2.0
    assert model_num.tolist() == [2, 1]  # -1 in no model; model 1 (no replica) counted
    assert group_num.tolist() == [2]     # neither failure reaches a group
    fast = tables.simulate_fast(p)
    assert fast.goodput == 0.5           # 2 good out of 4 requests
    L = f32lat(0.1, 1)
    assert fast.latency_mean == (((0.0 + L) + OVERHEAD) + ((3.0 + L) + OVERHEAD - 3.0)) / 4
    assert fast.model_goodput.tolist() == [2 / (2 + 1e-6), 0 / (1 + 1e-6)]
    assert fast.score == fast.goodput - fast.latency_mean / 10000 + 1 / 1e6


def test_missing_config_is_always_rejected_and_counted():
    # Model 1 has no (1,1,2) profile: its request on the pp=2 group is rejected (counted in the
    # group) and leaves the group idle for model 0's request at the same time.
    profs = [make_profile("a", {(1, 1, 2): [0.1, 0.1]}), make_profile("b", {(1, 1, 1): [0.1]})]
    p = ModelPlacement((C112,), ((0, 1),))
    w = make_workload([0.0, 0.0], [1, 0], [1e9, 1.0], 2)
    tables, finish, good, model_num, model_good, group_num = run(p, profs, w)
    assert good.tolist() == [False, True]
    assert group_num.tolist() == [2] and model_num.tolist() == [1, 1]
    L = f32lat(0.1, 2)
    assert finish[1] == ((0.0 + L) + L) + OVERHEAD
    assert tables.stage_latencies(1, C112) is None


def test_kernel_plain_arrays_missing_config_with_infinite_slo():
    # Kernel-level: lat_off -1 (missing config) is rejected even with an infinite SLO, while the
    # same request on a profiled replica is served. One model, one pp=1 group.
    arrivals = np.array([0.0, 0.0])
    ids = np.array([0, 0], dtype=np.int32)
    slos = np.array([np.inf, np.inf], dtype=np.float32)
    ptr = np.array([0, 1], dtype=np.int32)
    one = np.array([0], dtype=np.int32)
    stage_lat = np.array([0.5], dtype=np.float32)
    for lat_off, expect in ((-1, [False, False]), (0, [True, True])):
        finish = np.empty(2)
        good = np.zeros(2, dtype=np.bool_)
        mn, mg, gn = np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64)
        ng, ls = kernels.simulate_requests(arrivals, ids, slos, None, 0, 2, ptr, one, one,
                                           np.array([1], dtype=np.int32),
                                           np.array([lat_off], dtype=np.int32), stage_lat, 1,
                                           finish, good, mn, mg, gn, 0.0)
        assert good.tolist() == expect and gn.tolist() == [2] and mn.tolist() == [2]
        ng2, ls2 = kernels.simulate_requests(arrivals, ids, slos, None, 0, 2, ptr, one, one,
                                             np.array([1], dtype=np.int32),
                                             np.array([lat_off], dtype=np.int32), stage_lat,
                                             1, None, None, mn, mg, gn, 0.0)
        assert (ng, ls) == (ng2, ls2) and gn.tolist() == [4]
        # The same two requests walked through an index list count the same again.
        ng3, ls3 = kernels.simulate_requests(arrivals, ids, slos, np.array([0, 1]), 0, 2, ptr,
                                             one, one, np.array([1], dtype=np.int32),
                                             np.array([lat_off], dtype=np.int32), stage_lat,
                                             1, None, None, mn, mg, gn, 0.0)
        assert (ng, ls) == (ng3, ls3) and gn.tolist() == [6] and mn.tolist() == [6]


def test_profile_stage_count_must_match_pp():
    prof = make_profile("a", {(1, 1, 2): [0.1]})  # one stage under pp=2: inconsistent profile
    w = make_workload([0.0], [0], [1.0], 1)
    with pytest.raises(ValueError, match="expected pp = 2"):
        simulate(ModelPlacement((C112,), ((0,),)), [prof], w)


def _find_latency(predicate):
    for k in range(1000):
        lat = 0.1 + k * 1.37e-4
        L = f32lat(lat, 1)
        fin = (0.0 + L) + OVERHEAD
        if predicate(fin):
            return lat, fin
    raise AssertionError("no candidate found")


def test_float32_slo_rounding_down_rejects():
    # SLO (float64) equal to the exact latency, but its float32 storage rounds below it: the
    # request is rejected (a float64 SLO would have accepted it).
    lat, fin = _find_latency(lambda f: float(np.float32(f)) < f)
    prof = make_profile("a", {(1, 1, 1): [lat]})
    p = ModelPlacement((C111,), ((0,),))
    w = make_workload([0.0], [0], [fin], 1)
    _, finish, good, _, _, _ = run(p, [prof], w)
    assert not good[0]


def test_float32_slo_rounding_up_accepts():
    # SLO slightly below the latency in float64 but rounded up to >= it in float32: served.
    lat, fin = _find_latency(lambda f: float(np.float32(np.nextafter(f, 0))) >= f)
    prof = make_profile("a", {(1, 1, 1): [lat]})
    p = ModelPlacement((C111,), ((0,),))
    w = make_workload([0.0], [0], [np.nextafter(fin, 0)], 1)
    _, finish, good, _, _, _ = run(p, [prof], w)
    assert good[0] and finish[0] == fin


def test_stage_latency_is_stored_as_float32():
    prof = make_profile("a", {(1, 1, 4): [0.1, 0.2, 0.3, 0.4]})
    tables = SimTables([prof], make_workload([0.0], [0], [10.0], 1))
    got = tables.stage_latencies(0, C114)
    assert got.dtype == np.float32
    exact64 = [x * (1 + 0.009 * 4) for x in (0.1, 0.2, 0.3, 0.4)]
    assert got.tolist() == [float(np.float32(x)) for x in exact64]
    assert got.tolist() != exact64  # float32 rounding is visible
    p = ModelPlacement((C114,), ((0,),))
    _, finish, _, _, _, _ = run(p, [prof], make_workload([0.0], [0], [10.0], 1))
    x = 0.0
    for v in got.tolist():
        x += v
    assert finish[0] == x + OVERHEAD


def test_per_model_stats_order_statistics():
    # 10 requests of model 0 spaced far apart on one device: all good with equal latency, then
    # a second model with no replica. Latencies equal L + 0.011 for model 0.
    profs = [make_profile("a", {(1, 1, 1): [0.1]}), make_profile("b", {(1, 1, 1): [0.1]})]
    p = ModelPlacement((C111,), ((0,),))
    arr = np.arange(10, dtype=np.float64) * 1000.0  # span 9000 s: skip = int(10/9000*11) = 0
    arr = np.append(arr, 9000.5)
    ids = np.zeros(11, dtype=np.int32)
    ids[-1] = 1
    w = make_workload(arr, ids, np.full(11, 1.0), 2)
    stats = simulate(p, profs, w)
    assert isinstance(stats, SimStats) and stats.trim == slice(0, 11)
    m0, m1 = stats.per_model
    assert isinstance(m0, ModelStats)
    lat = f32lat(0.1, 1) + OVERHEAD
    assert m0.num_requests == 10 and m0.goodput == 1.0
    assert m0.latency_p90 == pytest.approx(lat, abs=1e-12)
    assert m1.num_requests == 1 and m1.goodput == 0.0 and m1.latency_p99 == 0.0
    assert m1.latency_mean == 0.0
    assert stats.goodput == pytest.approx(10 / 11)


def test_percentiles_use_int_q_n_element():
    # Model 0 on one device, SLO generous; request k arrives while the device is busy so the
    # latencies are distinct; p90 of 5 sorted latencies is element int(0.9 * 5) = 4.
    prof = make_profile("a", {(1, 1, 1): [1.0]})
    p = ModelPlacement((C111,), ((0,),))
    w = make_workload([0.0, 0.0, 0.0, 0.0, 0.0], [0] * 5, [100.0] * 5, 1)
    stats = simulate(p, [prof], w)
    lats = np.sort(stats.finish - w.arrivals)
    assert stats.per_model[0].latency_p90 == lats[4]
    assert stats.per_model[0].latency_p99 == lats[4]
    assert stats.latency_p99 == np.percentile(lats, 99)


def test_no_good_requests_gives_nan_p99():
    prof = make_profile("a", {(1, 1, 1): [1.0]})
    p = ModelPlacement((C111,), ((0,),))
    stats = simulate(p, [prof], make_workload([0.0, 1.0], [0, 0], [0.5, 0.5], 1))
    assert stats.goodput == 0.0 and math.isnan(stats.latency_p99)


def test_validation_errors():
    prof = make_profile("a", {(1, 1, 1): [1.0]})
    w = make_workload([0.0], [0], [1.0], 1)
    with pytest.raises(ValueError, match="model index 1"):
        simulate(ModelPlacement((C111,), ((0, 1),)), [prof], w)
    with pytest.raises(ValueError, match="1 profiles"):
        simulate(ModelPlacement((C111,), ((0,),)), [prof], make_workload([0.0], [0], [1.0], 2))
    with pytest.raises(EmptyWorkloadError):
        simulate(ModelPlacement((C111,), ((0,),)), [prof], Workload.empty(["m0"]))
    with pytest.raises(EmptyWorkloadError):
        SimTables([prof], Workload.empty(["m0"])).simulate_fast(ModelPlacement((C111,), ((0,),)))


def test_empty_placement_fails_everything():
    prof = make_profile("a", {(1, 1, 1): [1.0]})
    w = make_workload([0.0, 1.0], [0, 0], [5.0, 5.0], 1)
    fast = SimTables([prof], w).simulate_fast(ModelPlacement((), ()))
    assert fast.goodput == 0.0 and fast.model_num.tolist() == [2] and len(fast.group_num) == 0


def test_fast_stats_agree_with_full_run_and_cache():
    prof = make_profile("a", {(1, 1, 1): [0.3], (1, 1, 2): [0.2, 0.2]})
    p = ModelPlacement((C111, C112), ((0,), (0,)))
    rng = np.random.default_rng(3)
    arr = np.sort(rng.uniform(0, 50, 400))
    w = make_workload(arr, np.zeros(400, dtype=np.int32), np.full(400, 0.6), 1)
    tables = SimTables([prof], w)
    a = tables.simulate_fast(p)
    b = tables.simulate_fast(ModelPlacement((C111, C112), ((0,), (0,))))  # equal -> cached
    finish, good, model_num, model_good, group_num = tables.run(p)
    assert isinstance(a, FastStats)
    assert a.goodput == b.goodput == good.mean()
    assert a.num_good == good.sum()
    lat_sum = 0.0
    for v in (finish - arr):
        lat_sum += v
    assert a.latency_mean == lat_sum / 400
    assert a.group_num.tolist() == group_num.tolist()
    assert 0 < a.goodput < 1


# --------------------------------------------------------------------------------------------
# Random comparison with the reference
# --------------------------------------------------------------------------------------------
CONFIGS = [C111, C112, C121, C114, C122]


def random_case(seed: int):
    rng = np.random.default_rng(seed)
    num_models = int(rng.integers(1, 5))
    profiles = []
    for m in range(num_models):
        lats = {}
        for cfg in CONFIGS:
            if rng.random() < 0.2 and cfg != C111:
                continue  # missing config
            lats[tuple(cfg)] = rng.uniform(0.005, 0.3, cfg.pp).round(4)
        profiles.append(make_profile(f"m{m}", lats))

    def rand_placement():
        num_groups = int(rng.integers(0, 5))
        cfgs = tuple(CONFIGS[int(rng.integers(len(CONFIGS)))] for _ in range(num_groups))
        groups = tuple(tuple(int(m) for m in np.flatnonzero(rng.random(num_models) < 0.6))
                       for _ in range(num_groups))
        return ModelPlacement(cfgs, groups)

    n = int(rng.integers(1, 400))
    # Coarse arrival grid: many ties in arrival and in free times.
    gaps = rng.exponential(0.05, n).round(2)
    arrivals = np.cumsum(gaps)
    ids = rng.integers(-1, num_models, n).astype(np.int32)
    slos = rng.uniform(0.05, 1.5, n).round(3)
    w = make_workload(arrivals, ids, slos, num_models)
    if rng.random() < 0.5:
        placement = rand_placement()
    else:
        k = int(rng.integers(1, 5))
        # Start times partly on arrival values, to hit the strict boundary.
        starts = np.sort(np.concatenate([[0.0], rng.choice(arrivals, k - 1)]))
        placement = ModelPlacementWithReplacement(tuple(starts),
                                                  tuple(rand_placement() for _ in range(k)))
    if isinstance(placement, ModelPlacementWithReplacement) and \
            max(p.num_groups for p in placement.placements) == 0:
        placement = ModelPlacementWithReplacement(
            placement.start_times, placement.placements[:-1] + (ModelPlacement((C111,), ((0,),)),))
    if isinstance(placement, ModelPlacement) and placement.num_groups == 0:
        placement = ModelPlacement((C111,), ((0,),))
    return placement, profiles, w


@pytest.mark.parametrize("seed", range(40))
def test_kernel_matches_reference(seed):
    placement, profiles, w = random_case(seed)
    ref = reference_simulate(placement, profiles, w)
    tables, *got = run(placement, profiles, w)
    for r, g in zip(ref, got):
        np.testing.assert_array_equal(g, r)  # exact equality, finish times included
    fast = tables.simulate_fast(placement)
    finish, good = got[0], got[1]
    assert fast.goodput == good.mean()
    assert fast.model_num.tolist() == ref[2].tolist()
    assert fast.model_good.tolist() == ref[3].tolist()
    assert fast.group_num.tolist() == ref[4].tolist()
    lat_sum = 0.0
    for v in (finish - w.arrivals):
        lat_sum += v
    assert fast.latency_mean == lat_sum / len(w)
    stats = tables.simulate(placement)
    np.testing.assert_array_equal(stats.finish, ref[0])


# --------------------------------------------------------------------------------------------
# Search shortcuts: dropped unknown-model requests, request subsets (components)
# --------------------------------------------------------------------------------------------
def _components(placement):
    """Connected components of the model-group graph: list of (models, groups)."""
    groups = [set(ms) for ms in placement.group_models]
    comps, seen = [], set()
    for g in range(len(groups)):
        if g in seen:
            continue
        gs, ms, frontier = {g}, set(groups[g]), [g]
        while frontier:
            frontier = []
            for h in range(len(groups)):
                if h not in gs and groups[h] & ms:
                    gs.add(h)
                    ms |= groups[h]
                    frontier.append(h)
        seen |= gs
        comps.append((sorted(ms), sorted(gs)))
    return comps


@pytest.mark.parametrize("seed", range(40))
def test_drop_unknown_and_subsets_are_exact(seed):
    placement, profiles, w = random_case(seed)
    if not isinstance(placement, ModelPlacement):
        placement = placement.placements[-1]
    full = SimTables(profiles, w)
    ref = full.simulate_fast(placement)
    dropped = SimTables(profiles, w, drop_unknown=True)
    assert dropped.num_dropped == int(np.count_nonzero(w.model_ids < 0))
    assert dropped.num_total == len(w)
    got = dropped.simulate_fast(placement)
    # Bit-identical: goodput, latency_mean and the score are divided by the full count.
    assert (got.goodput, got.latency_mean, got.score) == (ref.goodput, ref.latency_mean,
                                                          ref.score)
    for a, b in ((got.model_num, ref.model_num), (got.model_good, ref.model_good),
                 (got.group_num, ref.group_num)):
        assert a.tolist() == b.tolist()
    for tables in (full, dropped):
        counts = tables.model_counts()
        assert counts.tolist() == ref.model_num.tolist()
        ids = tables.model_ids
        for m in range(len(profiles)):
            assert tables.model_requests(m).tolist() == np.flatnonzero(ids == m).tolist()
        # A component simulated alone on its models' requests gives its counts exactly.
        for models, groups in _components(placement):
            sub = ModelPlacement(tuple(placement.group_configs[g] for g in groups),
                                 tuple(placement.group_models[g] for g in groups))
            index = np.flatnonzero(np.isin(ids, models)).astype(np.int64)
            num, good, gnum = tables.simulate_subset(sub, index)
            assert num[models].tolist() == ref.model_num[models].tolist()
            assert good[models].tolist() == ref.model_good[models].tolist()
            assert gnum.tolist() == ref.group_num[groups].tolist()
        # index None walks every request held in the tables: the placement's full counters.
        num, good, gnum = tables.simulate_subset(placement, None)
        assert good.tolist() == ref.model_good.tolist()
        assert gnum.tolist() == ref.group_num.tolist()
        if tables is dropped:
            assert num.tolist() == ref.model_num.tolist()
    with pytest.raises(ValueError, match="drop_unknown"):
        if dropped.num_dropped:
            dropped.run(placement)
        else:
            raise ValueError("drop_unknown (nothing dropped here)")


def test_merge_sorted():
    rng = np.random.default_rng(0)
    for _ in range(50):
        values = rng.permutation(200)[:int(rng.integers(0, 200))]
        mask = rng.random(len(values)) < 0.5
        a, b = np.sort(values[mask]).astype(np.int64), np.sort(values[~mask]).astype(np.int64)
        assert kernels.merge_sorted(a, b).tolist() == np.sort(values).tolist()


def _reference_encoding(tables, placement):
    """The replica arrays by their definition (kernels.py docstring): replicas listed group by
    group, stable-sorted by model, offsets from each group's config block."""
    reps = [(m, g) for g, ms in enumerate(placement.group_models) for m in ms]
    reps.sort(key=lambda r: r[0])  # stable: a model's replicas stay in group order
    free_off = np.cumsum([0] + [c[2] for c in placement.group_configs])
    ptr = np.zeros(tables.num_models + 1, dtype=np.int64)
    for m, _ in reps:
        ptr[m + 1] += 1
    lat_off = []
    for m, g in reps:
        cfg = placement.group_configs[g]
        start = tables._config_block(cfg)[0] + m * cfg[2]
        lat_off.append(-1 if tables.stage_latencies(m, cfg) is None else start)
    return (np.cumsum(ptr).tolist(), [g for _, g in reps], [int(free_off[g]) for _, g in reps],
            [placement.group_configs[g][2] for _, g in reps], lat_off, int(free_off[-1]))


@pytest.mark.parametrize("seed", range(40))
def test_placement_encoding_matches_definition(seed):
    placement, profiles, w = random_case(seed)
    tables = SimTables(profiles, w)
    placements = getattr(placement, "placements", (placement,))
    for p in placements:
        seg = tables._encode(p)
        got = (seg.model_ptr.tolist(), seg.rep_group.tolist(), seg.rep_free_off.tolist(),
               seg.rep_nstages.tolist(), seg.rep_lat_off.tolist(), seg.total_stages)
        assert got == _reference_encoding(tables, p)
        assert seg.num_groups == p.num_groups


def test_placement_encoding_rejects_negative_model_index():
    prof = make_profile("a", {(1, 1, 1): [1.0]})
    tables = SimTables([prof], make_workload([0.0], [0], [1.0], 1))
    bad = ModelPlacement._trusted((C111, C111), ((0,), (-1,)))
    with pytest.raises(ValueError, match="model index -1"):
        tables.simulate_fast(bad)
