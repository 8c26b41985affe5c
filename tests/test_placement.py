"""Placement policies: hand-reasoned small cases, enumeration orders, errors, determinism."""
from __future__ import annotations

import numpy as np
import pytest
from test_placement_util import gamma_workload, model_datas, synthetic_profile

from alpa_serve.placement import (
    ClusterEnv,
    ModelData,
    ModelPlacement,
    ModelPlacementWithReplacement,
    get_policy,
    policy_names,
)
from alpa_serve.placement.model_parallel import (
    candidate_group_partitions,
    cluster_models,
    enumerate_splits,
    select_splits,
)
from alpa_serve.placement.training import generate_train_workload, train_duration
from alpa_serve.profiling import ParallelConfig
from alpa_serve.simulator import simulate
from alpa_serve.units import GiB
from alpa_serve.workload import GammaProcess, Workload


def cfgs(*triples):
    return tuple(ParallelConfig(*t) for t in triples)


# ------------------------------------------------------------------------------------------
# mp-search candidate partitions
# ------------------------------------------------------------------------------------------
def test_candidate_partitions_small():
    assert candidate_group_partitions(1) == [cfgs((1, 1, 1))]
    assert candidate_group_partitions(6) == [
        cfgs(*[(1, 1, 1)] * 6),
        cfgs(*[(1, 2, 1)] * 3),
        cfgs(*[(1, 1, 2)] * 3),
        cfgs((1, 4, 1), (1, 1, 2)),   # remainder 2 as a pp-only group
        cfgs((1, 2, 2), (1, 1, 2)),
        cfgs((1, 1, 4), (1, 1, 2)),
    ]


def test_candidate_partitions_16():
    got = candidate_group_partitions(16)
    expected = [
        cfgs(*[(1, 1, 1)] * 16),
        cfgs(*[(1, 2, 1)] * 8), cfgs(*[(1, 1, 2)] * 8),
        cfgs(*[(1, 4, 1)] * 4), cfgs(*[(1, 2, 2)] * 4), cfgs(*[(1, 1, 4)] * 4),
        # s = 8: pp = 1 would need op = 8 > 4 (skipped)
        cfgs(*[(1, 4, 2)] * 2), cfgs(*[(1, 2, 4)] * 2), cfgs(*[(1, 1, 8)] * 2),
        # s = 16: only (op 4, pp 4) and (op 2, pp 8) are admissible
        cfgs((1, 4, 4)), cfgs((1, 2, 8)),
    ]
    assert got == expected


def test_candidate_partitions_48_and_64():
    got48 = candidate_group_partitions(48)
    # s = 32: one (1,4,8) group plus the remainder 16 as one pp-only group, not limited to 8.
    assert got48[-1] == cfgs((1, 4, 8), (1, 1, 16))
    assert cfgs(*[(1, 4, 4)] * 3) in got48 and cfgs(*[(1, 2, 8)] * 3) in got48
    assert len(got48) == 12
    assert all(sum(c.op * c.pp for c in cand) == 48 for cand in got48)
    got64 = candidate_group_partitions(64)
    # s = 64 has no admissible factorisation (pp <= 8 and op <= 4 give at most 32 devices).
    assert got64[-1] == cfgs((1, 4, 8), (1, 4, 8))
    assert len(got64) == 12


# ------------------------------------------------------------------------------------------
# mp-search-sep: splits and clustering
# ------------------------------------------------------------------------------------------
def _allowed(i, n):
    return i <= n % 8 or (n - i) % 8 == 0 or n % 8 == 0


def test_split_enumeration_order_n10():
    splits = enumerate_splits(10, 3)
    assert splits[:3] == [[8, 1, 1], [7, 1, 2], [6, 2, 2]]
    # From n = 10 the last part must be 1 or 2; after 1 the middle part (from 9) must be 1;
    # after 2, any middle part from 8 is allowed.
    assert splits == [[8, 1, 1]] + [[8 - k, k, 2] for k in range(1, 8)]


def test_split_enumeration_matches_rule():
    for n in (1, 2, 7, 9, 17, 24, 32):
        for k in (1, 2, 3):
            got = enumerate_splits(n, k)
            brute = []
            # Brute force over all compositions, filtered by the rule and sorted by the
            # enumeration order (last part, then next-to-last, ...).
            def comps(total, parts):
                if parts == 1:
                    return [[total]] if total >= 1 else []
                return [c + [i] for i in range(1, total) for c in comps(total - i, parts - 1)]
            for c in comps(n, k):
                rest, ok = n, True
                for part in reversed(c[1:]):
                    ok = ok and _allowed(part, rest)
                    rest -= part
                if ok:
                    brute.append(c)
            brute.sort(key=lambda c: list(reversed(c)))
            assert got == brute, (n, k)


def _lat_model(name, latency, rate=1.0):
    p = synthetic_profile(name, latency, 2 * GiB)
    return ModelData(name, 5 * latency, rate, 1.0, p)


def test_cluster_models_first_member_rule():
    lats = [0.395, 0.2, 0.238, 0.18, 0.151, 0.15]
    mds = [_lat_model(f"m{i}", x) for i, x in enumerate(lats)]
    assert cluster_models(mds * 2) == [[0, 6], [1, 2, 3, 4, 5, 7, 8, 9, 10, 11]]
    # 1.7 is within 38% of 1.3 but not of the cluster's FIRST member 1.0.
    mds = [_lat_model("a", 1.0), _lat_model("b", 1.3), _lat_model("c", 1.7)]
    assert cluster_models(mds) == [[0, 1], [2]]
    # Relative distances in exact binary values: |0.75 - 0.5| / 0.5 = 0.5 opens a cluster,
    # |0.6875 - 0.5| / 0.5 = 0.375 < 0.38 joins the first one.
    mds = [_lat_model("a", 0.5), _lat_model("b", 0.75), _lat_model("c", 0.6875)]
    assert cluster_models(mds) == [[0, 2], [1]]


def test_cluster_models_real_database_mixed_set():
    from alpa_serve.profiling import ProfilingDatabase
    db = ProfilingDatabase.default()
    names = ["bert-6.7b", "moe-5.3b", "bert-2.6b", "moe-2.4b", "bert-1.3b", "moe-1.3b"] * 10
    mds = [ModelData(n, 1.0, 1.0, 1.0, db.get(n)) for n in names]
    clusters = cluster_models(mds)
    assert len(clusters) == 2
    assert {names[i] for i in clusters[0]} == {"bert-6.7b"}
    assert {names[i] for i in clusters[1]} == set(names) - {"bert-6.7b"}


def test_select_splits_threshold():
    # Two clusters with latencies 1 and 1 and rates 3:1 -> the throughput share equals the
    # device share; 32 devices give 31 splits, all kept at threshold 1.0 (< 100 splits).
    mds = [_lat_model("a", 1.0, rate=3.0), _lat_model("b", 3.0, rate=1.0)]
    clusters = cluster_models(mds)
    assert clusters == [[0], [1]]
    assert len(select_splits(32, mds, clusters)) == 31
    # Many clusters: more than 100 splits at 1.0, so a tighter threshold applies.
    mds = [_lat_model(f"m{i}", 2.0 ** i, rate=1.0) for i in range(4)]
    clusters = cluster_models(mds)
    assert len(clusters) == 4
    all_splits = enumerate_splits(32, 4)
    kept = select_splits(32, mds, clusters)
    assert len(all_splits) >= 100 and 0 < len(kept) < 100
    assert all(s in all_splits for s in kept)


# ------------------------------------------------------------------------------------------
# Hand-reasoned small cases
# ------------------------------------------------------------------------------------------
def test_two_models_two_devices_bursty_prefers_model_parallelism():
    # Each model needs 8 GB: one per device under SR, but split over 2 devices both fit.
    prof = synthetic_profile("m", 0.2, 8e9, op_efficiency=0.8)
    mds = model_datas([prof, prof], [2.0, 2.0], cv=4.0, slo_scale=5.0)
    w = gamma_workload(mds, 600.0)
    env = ClusterEnv(2)
    sr = get_policy("sr-greedy").place(mds, env, w)
    assert sr == ModelPlacement(cfgs((1, 1, 1), (1, 1, 1)), ((0,), (1,)))
    mp = get_policy("mp-search").place(mds, env, w)
    assert mp.num_groups == 1 and mp.group_models == ((0, 1),)
    assert mp.group_configs[0].op * mp.group_configs[0].pp == 2
    profiles = [prof, prof]
    assert simulate(mp, profiles, w).goodput > simulate(sr, profiles, w).goodput + 0.02
    # With pipelining only (mp-greedy-2), both models share the (1,1,2) group too.
    pp = get_policy("mp-greedy-2").place(mds, env, w)
    assert pp == ModelPlacement(cfgs((1, 1, 2)), ((0, 1),))
    assert simulate(pp, profiles, w).goodput > simulate(sr, profiles, w).goodput


def test_sr_greedy_picks_most_requested_models():
    # One device holds two of three models: the greedy serves the two busiest.
    prof = synthetic_profile("m", 0.05, 6e9)
    mds = model_datas([prof] * 3, [3.0, 2.0, 1.0], cv=1.0)
    w = gamma_workload(mds, 200.0)
    p = get_policy("sr-greedy").place(mds, ClusterEnv(1), w)
    assert p == ModelPlacement(cfgs((1, 1, 1)), ((0, 1),))


def test_round_robin_fill_rule():
    prof = synthetic_profile("m", 0.1, 1e9)
    mds = model_datas([prof] * 3, [1.0] * 3)
    p = get_policy("mp-round-robin").place(mds, ClusterEnv(6))
    # Groups (1,1,4) and (1,1,2); pointer advances only after an add; not normalised.
    assert p.group_configs == cfgs((1, 1, 4), (1, 1, 2))
    assert p.group_models == ((0, 2, 1), (1, 0, 2))
    # A full group stalls the pointer: with room for one model per group, pass 1 adds m0 to
    # g0 and m1 to g1, then the pointer (back on g0) finds no model that fits: stop.
    big = synthetic_profile("b", 0.1, 30e9)
    mds = model_datas([big] * 3, [1.0] * 3)
    p = get_policy("mp-round-robin").place(mds, ClusterEnv(8))
    assert p.group_models == ((0,), (1,))


def test_mp_equal_and_sr_uniform():
    prof = synthetic_profile("m", 0.1, 5 * GiB)
    mds = model_datas([prof] * 5, [1.0] * 5)
    p = get_policy("mp-equal-2-2").place(mds, ClusterEnv(8))
    assert p == ModelPlacement(cfgs((1, 2, 2), (1, 2, 2)), ((0,), (1,)))
    with pytest.raises(ValueError, match="needs G <= M"):
        get_policy("mp-equal-1-1").place(mds, ClusterEnv(8))
    with pytest.raises(ValueError, match="must divide"):
        get_policy("mp-equal-2-2").place(mds, ClusterEnv(6))
    # k = min(floor(13 GiB / 5 GiB), 5) = 2 models per device, (i + j) mod M.
    p = get_policy("sr-uniform").place(mds, ClusterEnv(3))
    assert p.group_models == ((0, 1), (1, 2), (2, 3))
    p = get_policy("sr-uniform").place(mds[:2], ClusterEnv(3))
    assert p.group_models == ((0, 1), (1, 0), (0, 1))


def test_mp_greedy_requires_divisor():
    prof = synthetic_profile("m", 0.1, 1e9)
    mds = model_datas([prof], [1.0])
    with pytest.raises(ValueError, match="k = 3 must divide the number of devices"):
        get_policy("mp-greedy-3").place(mds, ClusterEnv(4))


# ------------------------------------------------------------------------------------------
# Clockwork++
# ------------------------------------------------------------------------------------------
def test_clockwork_windows():
    prof = synthetic_profile("m", 0.1, 6e9)
    mds = model_datas([prof] * 4, [4.0, 2.0, 1.0, 0.5], cv=3.0)
    w = gamma_workload(mds, 95.0)
    env = ClusterEnv(2)
    p = get_policy("sr-replace-30").place(mds, env, w)
    assert isinstance(p, ModelPlacementWithReplacement)
    windows, starts = w.split_time_interval_with_starts(30.0)
    assert len(windows) >= 3
    # Start times are the windows' first arrivals (the first is the workload's first arrival).
    assert list(p.start_times) == starts
    assert p.start_times[0] == w.arrivals[0]
    for i in range(1, len(starts)):
        assert starts[i] > starts[i - 1] + 30.0
        assert w.arrivals[w.arrivals < starts[i]].max() <= starts[i - 1] + 30.0
    # Each window's placement is sr-greedy on that window's own requests.
    sr = get_policy("sr-greedy")
    assert list(p.placements) == [sr.place(mds, env, win) for win in windows]


# ------------------------------------------------------------------------------------------
# Training workload, determinism, errors
# ------------------------------------------------------------------------------------------
def test_generated_training_workload():
    prof = synthetic_profile("m", 0.1, 1e9)
    mds = model_datas([prof] * 3, [200.0, 100.0, 50.0], cv=2.0)
    assert train_duration(mds) == 100.0
    assert train_duration(model_datas([prof], [10.0])) == 3000.0
    w = generate_train_workload(mds, train_seed=7)
    names = [d.name for d in mds]
    ws = [GammaProcess(d.rate, d.cv).generate_workload(i, 0.0, 100.0, d.slo, seed=7 + i,
                                                        model_names=names)
          for i, d in enumerate(mds)]
    assert w.equals(Workload.merge(*ws))
    assert np.allclose(np.unique(w.slos), sorted({d.slo for d in mds}))
    # Repeated names (cases repeat model types) get unique workload names.
    same = [ModelData("bert", 1.0, 10.0, 1.0, prof)] * 2
    assert generate_train_workload(same).model_names == ["bert#0", "bert#1"]


def test_determinism_and_train_seed():
    prof = synthetic_profile("m", 0.15, 3e9)
    mds = model_datas([prof] * 6, [3.0, 2.0, 1.5, 1.0, 0.5, 0.2], cv=3.0)
    env = ClusterEnv(4)
    for name in ("mp-search", "mp-search-sep", "sr-greedy"):
        a = get_policy(name).place(mds, env, train_seed=3)
        b = get_policy(name).place(mds, env, train_seed=3)
        assert a == b
    q = get_policy("mp-search", argsort_kind="quicksort").place(mds, env, train_seed=3)
    q.verify(mds, env.mem_budget)


def test_errors():
    prof = synthetic_profile("m", 0.1, 1e9)
    mds = model_datas([prof], [1.0])
    with pytest.raises(ValueError) as e:
        get_policy("mp-magic")
    assert "unknown placement policy 'mp-magic'" in str(e.value)
    for pattern in policy_names():
        assert pattern in str(e.value)
    with pytest.raises(ValueError, match="argsort_kind"):
        get_policy("mp-search", argsort_kind="bogus")
    with pytest.raises(ValueError, match="bad arguments"):
        get_policy("mp-search", no_such_option=1)
    with pytest.raises(ValueError, match="model list is empty"):
        get_policy("mp-search").place([], ClusterEnv(1))
    with pytest.raises(ValueError, match="num_devices"):
        get_policy("mp-search").place(mds, ClusterEnv(0))
    huge = synthetic_profile("huge", 1.0, 40 * GiB)
    big = model_datas([prof, huge], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"model 1 \(huge-1"):
        get_policy("sr-greedy").place(big, ClusterEnv(8))
    # On 4 devices a (1,4,1) group holds 10 GB per device: mp-search can place it.
    get_policy("mp-search").place(big, ClusterEnv(4))
    w = gamma_workload(model_datas([prof] * 2, [1.0, 1.0]), 10.0)
    with pytest.raises(ValueError, match="covers 2 models"):
        get_policy("mp-search").place(mds, ClusterEnv(2), w)
    with pytest.raises(ValueError, match="training workload is empty"):
        get_policy("mp-search").place(mds, ClusterEnv(2), Workload.empty(["m"]))
    for bad in ("sr-replace-0", "mp-greedy-0"):
        with pytest.raises(ValueError):
            get_policy(bad)


def test_registry_names():
    assert get_policy("sr-replace-60").interval == 60.0
    assert get_policy("sr-replace-21600").name == "sr-replace-21600"
    assert get_policy("mp-greedy-4").pp == 4
    eq = get_policy("mp-equal-8-4")
    assert (eq.pp, eq.op) == (8, 4)
    for name in ("sr-greedy", "sr-uniform", "mp-search", "mp-search-sep", "mp-round-robin"):
        assert get_policy(name).name == name


def test_zero_rates_and_decimal_interval():
    prof = synthetic_profile("m", 0.1, 1e9)
    mds = model_datas([prof] * 2, [0.0, 0.0])
    with pytest.raises(ValueError, match="summed rate is 0.0"):
        get_policy("sr-greedy").place(mds, ClusterEnv(2))
    # Policies that ignore the training workload do not need positive rates.
    for name in ("sr-uniform", "mp-round-robin", "mp-equal-1-1"):
        get_policy(name).place(mds, ClusterEnv(2))
    assert get_policy("sr-replace-7.5").name == "sr-replace-7.5"


@pytest.mark.parametrize("name", ["sr-uniform", "mp-round-robin", "mp-equal-2-1"])
def test_static_policies_get_no_training_workload(name, monkeypatch):
    # Policies that place without requests (StaticPolicy) never make a training workload.
    import alpa_serve.placement.base as base

    def refuse(*args, **kwargs):
        raise AssertionError("a static policy generated a training workload")

    monkeypatch.setattr(base, "generate_train_workload", refuse)
    policy = get_policy(name)
    assert isinstance(policy, base.StaticPolicy)
    mds = model_datas([synthetic_profile("m", 0.1, 2 * GiB)] * 4, [1.0] * 4)
    policy.place(mds, ClusterEnv(4)).verify(mds, ClusterEnv(4).mem_budget)
    assert not isinstance(get_policy("sr-greedy"), base.StaticPolicy)
