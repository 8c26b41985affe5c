"""Model-parallel policies (DESIGN 6): mp-search (Beta), mp-search-sep (Beta for mixed model
sets), and the ablations mp-greedy-<k>, mp-round-robin, mp-equal-<pp>-<op>."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from alpa_serve.placement.base import Policy, StaticPolicy, binary_parts
from alpa_serve.placement.executors import GreedyExecutor, GreedyJob, first_best
from alpa_serve.placement.greedy import fast_greedy
from alpa_serve.placement.search_case import SearchCase, empty_placement
from alpa_serve.placement.subproblems import subproblem_key, workload_digest
from alpa_serve.placement.types import ClusterEnv, ModelData, ModelPlacement
from alpa_serve.profiling import ParallelConfig
from alpa_serve.simulator import SimTables
from alpa_serve.workload import Workload

logger = logging.getLogger(__name__)

#: Largest pipeline degree and operator degree of a candidate's regular groups (DESIGN 6).
MAX_PP = 8
MAX_OP = 4

#: mp-search-sep: a model joins a cluster when its latency is within this relative distance of
#: the cluster's first member's latency (strict <).
CLUSTER_LATENCY_TOLERANCE = 0.38
#: mp-search-sep: thresholds on max |rate share - throughput share|, tried in this order; the
#: first that keeps fewer than MAX_SPLITS splits is used (the last one otherwise).
SPLIT_THRESHOLDS = (1.0, 0.5, 0.3, 0.2, 0.1)
MAX_SPLITS = 100


# ------------------------------------------------------------------------------------------
# Candidate group partitions of mp-search
# ------------------------------------------------------------------------------------------
def candidate_group_partitions(num_devices: int) -> list[tuple[ParallelConfig, ...]]:
    """Initial group configurations of mp-search, in search order (DESIGN 6).

    For group size s = 1, 2, 4, ... <= N and pp ascending over the factors of s (op = s / pp),
    skipping pp > 8 or op > 4: floor(N / s) groups (1, op, pp) followed by the binary parts of
    N mod s, ascending, as pp-only groups (1, 1, part) (not limited to pp <= 8).
    """
    n = int(num_devices)
    if n < 1:
        raise ValueError(f"num_devices must be >= 1, got {num_devices!r}")
    out = []
    s = 1
    while s <= n:
        remainder = tuple(ParallelConfig(1, 1, p) for p in binary_parts(n % s))
        for pp in (d for d in range(1, s + 1) if s % d == 0):
            op = s // pp
            if pp > MAX_PP or op > MAX_OP:
                continue
            out.append((ParallelConfig(1, op, pp),) * (n // s) + remainder)
        s *= 2
    return out


def mp_search_jobs(case: SearchCase, num_devices: int) -> list[GreedyJob]:
    """The greedy runs of mp-search on ``num_devices`` devices, in candidate order."""
    return [(case, configs) for configs in candidate_group_partitions(num_devices)]


def mp_search_candidates(case: SearchCase, num_devices: int, executor: GreedyExecutor
                         ) -> tuple[ModelPlacement, float]:
    """The mp-search candidate loop: fast greedy on every candidate partition, in order; the
    first candidate with the highest score wins (strict >). Returns it with its score."""
    return first_best(executor.run(mp_search_jobs(case, num_devices)))


def _all_candidate_configs(num_devices: int) -> list[ParallelConfig]:
    """Distinct configurations over all mp-search candidates on ``num_devices`` devices."""
    return sorted({c for cand in candidate_group_partitions(num_devices) for c in cand})


# ------------------------------------------------------------------------------------------
# mp-search-sep: model clustering and device splits
# ------------------------------------------------------------------------------------------
def single_device_latency(model: ModelData) -> float:
    """The model's single-device latency (s): the sum of its (1,1,1) stage latencies at batch
    size 1 (ModelProfile.single_latency, which also covers models too large for one device)."""
    return float(model.profile.single_latency)


def cluster_models(model_datas: Sequence[ModelData]) -> list[list[int]]:
    """Cluster models in index order by single-device latency (DESIGN 6).

    A model joins the first cluster whose FIRST member's latency l0 satisfies
    |l - l0| / l0 < 0.38; otherwise it opens a new cluster. Returns model indices per cluster.
    """
    clusters: list[list[int]] = []
    heads: list[float] = []
    for i, d in enumerate(model_datas):
        lat = single_device_latency(d)
        for c, head in enumerate(heads):
            if abs(lat - head) / head < CLUSTER_LATENCY_TOLERANCE:
                clusters[c].append(i)
                break
        else:
            clusters.append([i])
            heads.append(lat)
    return clusters


def _part_allowed(part: int, n: int, per_node: int = 8) -> bool:
    """Admissibility of a part of the remaining n devices (DESIGN 6)."""
    return part <= n % per_node or (n - part) % per_node == 0 or n % per_node == 0


def enumerate_splits(num_devices: int, num_clusters: int, per_node: int = 8
                     ) -> list[list[int]]:
    """Ordered device splits over clusters (DESIGN 6).

    The last cluster's part is chosen first from n = N, then the next-to-last's from the rest,
    each part >= 1 and admissible for the remaining n at its level; cluster 0 takes the
    remainder (unchecked, >= 1). Order: last part ascending, then next-to-last ascending, ...
    (N=10, 3 clusters: [8,1,1], [7,1,2], [6,2,2], ...). ``per_node`` is the 8 of the rule
    (devices per node).
    """
    def rec(n: int, k: int) -> list[list[int]]:
        if k == 1:
            return [[n]] if n >= 1 else []
        out: list[list[int]] = []
        for part in range(1, n):
            if _part_allowed(part, n, per_node):
                out.extend(p + [part] for p in rec(n - part, k - 1))
        return out

    if num_clusters < 1:
        return []
    return rec(int(num_devices), int(num_clusters))


def split_imbalance(split: Sequence[int], rate_share: np.ndarray,
                    cluster_latency: Sequence[float]) -> float:
    """max_c |rate share_c - throughput share_c| with throughput share proportional to
    devices_c / latency_c (float64) and the given float32 rate shares."""
    thpt = np.array([n / lat for n, lat in zip(split, cluster_latency)], dtype=np.float64)
    thpt_share = thpt / np.sum(thpt)
    return float(np.max(np.abs(rate_share - thpt_share)))


def select_splits(num_devices: int, model_datas: Sequence[ModelData],
                  clusters: Sequence[Sequence[int]], per_node: int = 8) -> list[list[int]]:
    """Splits kept for mp-search-sep: those whose imbalance is strictly below the first
    threshold in SPLIT_THRESHOLDS that keeps fewer than MAX_SPLITS (else the last threshold's)."""
    splits = enumerate_splits(num_devices, len(clusters), per_node)
    rates = np.array([sum(model_datas[i].rate for i in c) for c in clusters], dtype=np.float32)
    rate_share = rates / np.sum(rates)  # float32, as published
    latency = [single_device_latency(model_datas[c[0]]) for c in clusters]
    imbalance = [split_imbalance(s, rate_share, latency) for s in splits]
    kept: list[list[int]] = []
    for threshold in SPLIT_THRESHOLDS:
        kept = [s for s, x in zip(splits, imbalance) if x < threshold]
        if len(kept) < MAX_SPLITS:
            break
    return kept


# ------------------------------------------------------------------------------------------
# Policies
# ------------------------------------------------------------------------------------------
def _check_workers(num_workers: int) -> None:
    if int(num_workers) != num_workers or num_workers < 1:
        raise ValueError(f"num_workers must be an integer >= 1, got {num_workers!r}")


@dataclass
class ModelParallelismSearch(Policy):
    """``mp-search`` (Beta): fast greedy on every candidate group partition, best score wins.

    num_workers: worker processes for the independent candidates (1 = serial; results are
    identical for any value).
    """

    num_workers: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_workers(self.num_workers)
        self.name = "mp-search"

    def candidate_configs(self, cluster_env: ClusterEnv) -> list[ParallelConfig]:
        return _all_candidate_configs(cluster_env.num_devices)

    def solve(self, model_datas: Sequence[ModelData], cluster_env: ClusterEnv,
              train_workload: Workload) -> ModelPlacement:
        case = self.make_case(model_datas, cluster_env, train_workload)
        placement, _ = mp_search_candidates(case, cluster_env.num_devices,
                                            self.greedy_executor(self.num_workers))
        return placement


@dataclass
class ModelParallelismSearchSep(Policy):
    """``mp-search-sep``: mp-search, then per-cluster mp-search on every kept device split;
    a separated placement replaces the plain one only with a strictly greater score.

    num_workers: worker processes for the independent greedy runs (1 = serial; results are
    identical for any value).
    """

    num_workers: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_workers(self.num_workers)
        self.name = "mp-search-sep"

    def candidate_configs(self, cluster_env: ClusterEnv) -> list[ParallelConfig]:
        return _all_candidate_configs(cluster_env.num_devices)

    def solve(self, model_datas: Sequence[ModelData], cluster_env: ClusterEnv,
              train_workload: Workload) -> ModelPlacement:
        case = self.make_case(model_datas, cluster_env, train_workload)
        jobs = mp_search_jobs(case, cluster_env.num_devices)
        clusters = cluster_models(model_datas)
        # With one cluster the only split gives it all devices: its sub-problem is plain
        # mp-search again, with an equal (never strictly greater) score.
        splits = select_splits(cluster_env.num_devices, model_datas, clusters,
                               cluster_env.num_devices_per_node) if len(clusters) > 1 else []
        logger.debug("mp-search-sep: clusters %s, %d splits", clusters, len(splits))
        # Each (cluster, devices) sub-problem is solved once, even when several splits share
        # it (3+ clusters), and not at all when the sub-problem store already holds it (a case
        # of the same sweep solved it). One SearchCase per cluster (its models, the full
        # training workload with every other model's requests marked -1) serves all its
        # sub-problems. All greedy runs (plain and sub-problems) form one batch so that
        # workers stay busy.
        store = self.subproblem_store
        sub_cases: dict[int, SearchCase] = {}
        digests: dict[int, str] = {}
        keys: dict[tuple[int, int], str] = {}
        solved: dict[tuple[int, int], ModelPlacement] = {}
        slices: dict[tuple[int, int], slice] = {}
        for split in splits:
            for c, devices in enumerate(split):
                if (c, devices) in slices or (c, devices) in solved:
                    continue
                if c not in sub_cases:
                    sub_cases[c] = self._cluster_case(model_datas, clusters[c], cluster_env,
                                                      train_workload)
                if store is not None:
                    sub = sub_cases[c]
                    if c not in digests:
                        digests[c] = workload_digest(sub.workload)
                    keys[(c, devices)] = store_key = subproblem_key(
                        sub.profiles, digests[c], sub.mem_budget, devices, self.argsort_kind)
                    hit = store.get(store_key)
                    if hit is not None:
                        solved[(c, devices)] = hit[0]
                        continue
                start = len(jobs)
                jobs.extend(mp_search_jobs(sub_cases[c], devices))
                slices[(c, devices)] = slice(start, len(jobs))
        logger.debug("mp-search-sep: %d sub-problems to solve, %d stored", len(slices),
                     len(solved))
        results = self.greedy_executor(self.num_workers).run(jobs)
        num_plain = len(candidate_group_partitions(cluster_env.num_devices))
        best, best_score = first_best(results[:num_plain])
        for key, sl in slices.items():
            placement, score = first_best(results[sl])
            solved[key] = placement
            if store is not None:
                store.put(keys[key], placement, score)
        for split in splits:
            configs: list[ParallelConfig] = []
            groups: list[tuple[int, ...]] = []
            for c, devices in enumerate(split):
                part = solved[(c, devices)]
                configs.extend(part.group_configs)
                # Local index j of the cluster is global model clusters[c][j].
                groups.extend(tuple(clusters[c][j] for j in ms) for ms in part.group_models)
            combined = ModelPlacement(tuple(configs), tuple(groups))
            score = case.simulate(combined).score
            if score > best_score:
                best, best_score = combined, score
        return best

    def _cluster_case(self, model_datas: Sequence[ModelData], members: Sequence[int],
                      cluster_env: ClusterEnv, train_workload: Workload) -> SearchCase:
        mapping = np.full(len(model_datas), -1, dtype=np.int64)
        mapping[list(members)] = np.arange(len(members))
        names = [train_workload.model_names[i] for i in members]
        workload = train_workload.remap_models(mapping, names)
        profiles = [model_datas[i].profile for i in members]
        # The other clusters' requests (-1) fail and only count in the denominators: the
        # tables keep their number but never visit them (bit-identical statistics).
        tables = SimTables(profiles, workload, drop_unknown=True)
        return SearchCase(profiles, workload, cluster_env.mem_budget, self.argsort_kind,
                          tables=tables)


@dataclass
class ModelParallelismGreedy(Policy):
    """``mp-greedy-<k>``: N/k groups of (1,1,k) filled by the fast greedy (k must divide N)."""

    pp: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        if int(self.pp) != self.pp or self.pp < 1:
            raise ValueError(f"mp-greedy-<k> needs an integer k >= 1, got {self.pp!r}")
        self.pp = int(self.pp)
        self.name = f"mp-greedy-{self.pp}"

    def _check_divides(self, cluster_env: ClusterEnv) -> None:
        if cluster_env.num_devices % self.pp:
            raise ValueError(f"{self.name}: k = {self.pp} must divide the number of devices "
                             f"({cluster_env.num_devices})")

    def candidate_configs(self, cluster_env: ClusterEnv) -> list[ParallelConfig]:
        self._check_divides(cluster_env)
        return [ParallelConfig(1, 1, self.pp)]

    def solve(self, model_datas: Sequence[ModelData], cluster_env: ClusterEnv,
              train_workload: Workload) -> ModelPlacement:
        self._check_divides(cluster_env)
        case = self.make_case(model_datas, cluster_env, train_workload)
        init = empty_placement([ParallelConfig(1, 1, self.pp)] *
                               (cluster_env.num_devices // self.pp))
        placement, _ = fast_greedy(init, case)
        return placement


def round_robin_configs(num_devices: int) -> list[ParallelConfig]:
    """Groups of mp-round-robin: floor(N/4) x (1,1,4), then the binary parts of N mod 4."""
    return ([ParallelConfig(1, 1, 4)] * (num_devices // 4) +
            [ParallelConfig(1, 1, p) for p in binary_parts(num_devices % 4)])


@dataclass
class ModelParallelismRoundRobin(StaticPolicy):
    """``mp-round-robin``: pass over models 0..M-1 repeatedly with a group pointer starting at 0;
    a model that is not on the pointed group and fits is added and the pointer advances (only
    after an add); stop after a full pass adds nothing. Not normalised."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.name = "mp-round-robin"

    def candidate_configs(self, cluster_env: ClusterEnv) -> list[ParallelConfig]:
        return sorted(set(round_robin_configs(cluster_env.num_devices)))

    def solve_static(self, model_datas: Sequence[ModelData],
                     cluster_env: ClusterEnv) -> ModelPlacement:
        configs = round_robin_configs(cluster_env.num_devices)
        budget = cluster_env.mem_budget
        weights = [[d.profile.max_stage_weight(c) for d in model_datas] for c in configs]
        groups: list[list[int]] = [[] for _ in configs]
        pointer = 0
        added = True
        while added:
            added = False
            for m in range(len(model_datas)):
                g = pointer
                w = weights[g]
                if m not in groups[g] and sum(w[i] for i in groups[g]) + w[m] <= budget:
                    groups[g].append(m)
                    pointer = (pointer + 1) % len(configs)
                    added = True
        return ModelPlacement(tuple(configs), tuple(tuple(ms) for ms in groups))


@dataclass
class ModelParallelismEqual(StaticPolicy):
    """``mp-equal-<pp>-<op>`` (Fig. 12): G = N / (pp * op) groups of (1, op, pp); group i
    hosts model i only (needs pp * op to divide N and G <= M)."""

    pp: int = 1
    op: int = 1
    def __post_init__(self) -> None:
        super().__post_init__()
        for what, v in (("pp", self.pp), ("op", self.op)):
            if int(v) != v or v < 1:
                raise ValueError(f"mp-equal-<pp>-<op> needs integer {what} >= 1, got {v!r}")
        self.pp, self.op = int(self.pp), int(self.op)
        self.name = f"mp-equal-{self.pp}-{self.op}"

    def _num_groups(self, cluster_env: ClusterEnv) -> int:
        size = self.pp * self.op
        if cluster_env.num_devices % size:
            raise ValueError(f"{self.name}: pp * op = {size} must divide the number of devices "
                             f"({cluster_env.num_devices})")
        return cluster_env.num_devices // size

    def candidate_configs(self, cluster_env: ClusterEnv) -> list[ParallelConfig]:
        self._num_groups(cluster_env)
        return [ParallelConfig(1, self.op, self.pp)]

    def solve_static(self, model_datas: Sequence[ModelData],
                     cluster_env: ClusterEnv) -> ModelPlacement:
        num_groups = self._num_groups(cluster_env)
        if num_groups > len(model_datas):
            raise ValueError(f"{self.name}: {num_groups} groups on {cluster_env.num_devices} "
                             f"devices but only {len(model_datas)} models; needs G <= M")
        cfg = ParallelConfig(1, self.op, self.pp)
        return ModelPlacement((cfg,) * num_groups, tuple((i,) for i in range(num_groups)))
