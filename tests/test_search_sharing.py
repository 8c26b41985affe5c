"""Where a search runs and what it shares never changes its result (DESIGN 6).

Executors (in-process, forked workers, Ray tasks) and the sub-problem store of mp-search-sep
are checked against the plain serial search on seeded random cases.
"""
from __future__ import annotations

import numpy as np
import pytest
from test_placement_search import random_case

from alpa_serve.placement import ClusterEnv, get_policy
from alpa_serve.placement.executors import LocalExecutor, RayExecutor, first_best
from alpa_serve.placement.model_parallel import (
    ModelParallelismSearchSep,
    candidate_group_partitions,
)
from alpa_serve.placement.search_case import SearchCase
from alpa_serve.placement.subproblems import (
    DirectoryStore,
    MemoryStore,
    SubproblemStore,
    subproblem_key,
    workload_digest,
)


class CountingStore(SubproblemStore):
    """A MemoryStore that counts hits and stores."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.hits = self.puts = 0

    def get(self, key):
        found = self.inner.get(key)
        self.hits += found is not None
        return found

    def put(self, key, placement, score):
        self.puts += 1
        self.inner.put(key, placement, score)


def mixed_cases(seed: int, count: int):
    """Random cases with at least two latency clusters (so mp-search-sep has splits)."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        mds, env, w = random_case(rng, max_models=6, max_devices=8, duration=20.0)
        from alpa_serve.placement.model_parallel import cluster_models
        if len(cluster_models(mds)) >= 2 and env.num_devices >= 3:
            out.append((mds, env, w))
    return out


def test_first_best_keeps_the_earliest_of_equal_scores():
    assert first_best([("a", 1.0), ("b", 2.0), ("c", 2.0)]) == ("b", 2.0)


def test_local_executor_rejects_bad_worker_counts():
    with pytest.raises(ValueError, match="num_workers"):
        LocalExecutor(0)


def test_ray_executor_refuses_to_run_without_ray(monkeypatch):
    import ray

    if ray.is_initialized():
        ray.shutdown()
    mds, env, w = mixed_cases(1, 1)[0]
    case = SearchCase([d.profile for d in mds], w, env.mem_budget)
    with pytest.raises(RuntimeError, match="ray.init"):
        RayExecutor().run([(case, candidate_group_partitions(env.num_devices)[0])])


def test_subproblem_store_gives_the_plain_result_and_is_reused():
    for mds, env, w in mixed_cases(3, 4):
        plain = get_policy("mp-search-sep").place(mds, env, w)
        store = CountingStore()
        first = get_policy("mp-search-sep", subproblem_store=store).place(mds, env, w)
        assert first == plain
        assert store.puts > 0 and store.hits == 0
        puts = store.puts
        again = get_policy("mp-search-sep", subproblem_store=store).place(mds, env, w)
        assert again == plain
        assert store.puts == puts and store.hits == puts  # nothing solved the second time


def test_a_smaller_case_of_a_device_sweep_reuses_the_larger_cases_subproblems():
    mds, env, w = mixed_cases(5, 1)[0]
    big = ClusterEnv(env.num_devices + 2, env.mem_budget)
    store = CountingStore()
    # Without pruning, so that the larger case solves every sub-problem it has (pruning may
    # skip some that the smaller case then solves itself).
    get_policy("mp-search-sep", subproblem_store=store, prune_splits=False).place(mds, big, w)
    puts = store.puts
    small = get_policy("mp-search-sep", subproblem_store=store,
                       prune_splits=False).place(mds, env, w)
    assert small == get_policy("mp-search-sep").place(mds, env, w)
    assert store.puts == puts  # every (cluster, devices) of the smaller case was stored


def test_directory_store_round_trips_placement_and_exact_score(tmp_path):
    mds, env, w = mixed_cases(7, 1)[0]
    placement = get_policy("mp-search").place(mds, env, w)
    score = 0.1 + 0.2  # not representable in a short decimal
    store = DirectoryStore(tmp_path / "sub")
    assert store.get("k") is None
    store.put("k", placement, score)
    got, got_score = DirectoryStore(tmp_path / "sub").get("k")
    assert got == placement and got_score == score
    (tmp_path / "sub" / "k.json").write_text("{not json")
    assert store.get("k") is None  # unreadable: solved again, not trusted


def test_subproblem_key_covers_every_input():
    mds, env, w = mixed_cases(9, 1)[0]
    profiles = [d.profile for d in mds]
    digest = workload_digest(w)
    base = subproblem_key(profiles, digest, env.mem_budget, 4, "stable")
    assert base == subproblem_key(profiles, workload_digest(w), env.mem_budget, 4, "stable")
    shifted = type(w)(w.arrivals + 1e-3, w.model_ids, w.slos, w.model_names)
    variants = [
        subproblem_key(profiles, digest, env.mem_budget, 5, "stable"),
        subproblem_key(profiles, digest, env.mem_budget / 2, 4, "stable"),
        subproblem_key(profiles, digest, env.mem_budget, 4, "quicksort"),
        subproblem_key(profiles[::-1], digest, env.mem_budget, 4, "stable"),
        subproblem_key(profiles, workload_digest(shifted), env.mem_budget, 4, "stable"),
    ]
    assert len({base, *variants}) == len(variants) + 1


@pytest.fixture(scope="module")
def local_ray():
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


def test_ray_executor_gives_the_serial_result(local_ray):
    for mds, env, w in mixed_cases(11, 2):
        for name in ("mp-search", "mp-search-sep"):
            serial = get_policy(name).place(mds, env, w)
            assert get_policy(name, executor=RayExecutor()).place(mds, env, w) == serial


def test_separated_search_results_do_not_depend_on_the_executor_class():
    # The policy's resources are not part of its identity (compare=False).
    assert (ModelParallelismSearchSep(subproblem_store=MemoryStore())
            == ModelParallelismSearchSep())
