"""Score bounds of mp-search-sep's device splits (placement/bounds.py) and the pruning they
allow: a bound never undercounts, and pruned searches return the unpruned result."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_placement_search import random_case
from test_placement_util import gamma_workload

from alpa_serve.placement import ModelPlacement
from alpa_serve.placement.bounds import ScoreBounds
from alpa_serve.placement.model_parallel import (
    ModelParallelismSearchSep,
    _all_candidate_configs,
    candidate_group_partitions,
    cluster_models,
)
from alpa_serve.placement.search_case import SearchCase
from alpa_serve.placement.subproblems import MemoryStore


def loaded_case(rng, max_models=6, max_devices=8):
    """A random case with SLO scales from 0.6 to 5 and a load that often exceeds the devices."""
    mds, env, _ = random_case(rng, max_models=max_models, max_devices=max_devices)
    scale = float(rng.choice([1.0, 4.0, 12.0]))
    mds = [dataclasses.replace(d, slo=float(rng.uniform(0.6, 5)) * d.profile.single_latency,
                               rate=d.rate * scale) for d in mds]
    w = gamma_workload(mds, 20.0, seed_offset=int(rng.integers(1000)))
    return mds, env, w


def random_placement(rng, case: SearchCase, num_devices: int) -> ModelPlacement:
    """One of mp-search's candidate partitions of ``num_devices``, each group filled with a
    random set of models that fits the budget."""
    parts = candidate_group_partitions(num_devices)
    configs = parts[int(rng.integers(len(parts)))]
    groups = []
    for cfg in configs:
        w = case.weights(cfg)
        chosen, used = [], 0.0
        for m in rng.permutation(case.num_models):
            if rng.random() < 0.6 and used + w[m] <= case.mem_budget:
                chosen.append(int(m))
                used += w[m]
        groups.append(tuple(chosen))
    return ModelPlacement(tuple(configs), tuple(groups))


def test_bounds_hold_for_random_placements_and_can_bite():
    rng = np.random.default_rng(3)
    bites = 0
    for _ in range(40):
        mds, env, w = loaded_case(rng)
        case = SearchCase([d.profile for d in mds], w, env.mem_budget)
        bounds = ScoreBounds(case)
        for devices in range(1, env.num_devices + 1):
            good = bounds.good_requests(_all_candidate_configs(devices), devices)
            replicas = bounds.replicas(candidate_group_partitions(devices))
            bites += good < case.tables.num_requests
            for _ in range(4):
                st = case.simulate(random_placement(rng, case, devices))
                assert st.num_good <= good
                assert st.num_replicas <= replicas
    assert bites >= 20  # the bound is below the request count often enough to prune


def test_good_request_bound_is_exact_for_one_saturated_device():
    # 1 device, one model of 0.1 s with 100 requests at t = 0 and SLO 0.35 s: at most 3 are
    # served within their SLO; windows of 10 s allow (10 + 0.35) / 0.1 = 103.
    from test_placement_util import synthetic_profile

    from alpa_serve.units import GiB
    from alpa_serve.workload import Workload

    prof = synthetic_profile("m", 0.1, 1 * GiB, ops=(1,), pps=(1,))
    w = Workload(np.zeros(100), np.zeros(100, dtype=np.int32), np.full(100, 0.35), ["m"])
    case = SearchCase([prof], w, 13 * GiB)
    cfgs = _all_candidate_configs(1)
    assert ScoreBounds(case, (10.0,)).good_requests(cfgs, 1) == 100
    assert ScoreBounds(case, (0.01,)).good_requests(cfgs, 1) == 3
    st = case.simulate(ModelPlacement((cfgs[0],), ((0,),)))
    assert st.num_good == 3  # 0.1 + 0.011, 0.2 + 0.011, 0.3 + 0.011 <= 0.35
    # A model slower than its SLO can never be good.
    tight = Workload(np.zeros(5), np.zeros(5, dtype=np.int32), np.full(5, 0.1), ["m"])
    assert ScoreBounds(SearchCase([prof], tight, 13 * GiB)).good_requests(cfgs, 1) == 0


def test_window_lengths_must_be_positive():
    rng = np.random.default_rng(0)
    mds, env, w = loaded_case(rng)
    case = SearchCase([d.profile for d in mds], w, env.mem_budget)
    with pytest.raises(ValueError, match="window lengths"):
        ScoreBounds(case, (0.0,))


class Recording(MemoryStore):
    """Counts the sub-problems a search solves (every solved one is stored)."""

    def __init__(self) -> None:
        super().__init__()
        self.puts = 0

    def put(self, key, placement, score):
        self.puts += 1
        super().put(key, placement, score)


@pytest.mark.parametrize("num_workers", [1, 2])
def test_pruned_search_returns_the_unpruned_placement(num_workers):
    rng = np.random.default_rng(5)
    pruned_any = 0
    checked = 0
    while checked < 12:
        mds, env, w = loaded_case(rng, max_models=6, max_devices=10)
        if len(cluster_models(mds)) < 2 or env.num_devices < 3:
            continue
        checked += 1
        stores = Recording(), Recording()
        full = ModelParallelismSearchSep(prune_splits=False, subproblem_store=stores[0],
                                         num_workers=num_workers).place(mds, env, w)
        pruned = ModelParallelismSearchSep(subproblem_store=stores[1],
                                           num_workers=num_workers).place(mds, env, w)
        assert pruned == full
        assert stores[1].puts <= stores[0].puts
        pruned_any += stores[1].puts < stores[0].puts
    assert pruned_any >= 2  # pruning happened, so the equality above is not vacuous
