"""Model-parallel policies (DESIGN 6): mp-search (Beta), mp-search-sep (Beta for mixed model
sets), and the ablations mp-greedy-<k>, mp-round-robin, mp-equal-<pp>-<op>."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from alpa_serve.placement.base import Policy, StaticPolicy, binary_parts
from alpa_serve.placement.bounds import ScoreBounds
from alpa_serve.placement.executors import GreedyExecutor, GreedyJob, GreedyResult, first_best
from alpa_serve.placement.greedy import fast_greedy
from alpa_serve.placement.search_case import SearchCase, empty_placement
from alpa_serve.placement.subproblems import subproblem_key, workload_digest
from alpa_serve.placement_types import ClusterEnv, ModelData, ModelPlacement
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
#: Added to a split's score bound against float rounding in the sums (a larger bound
#: only prunes less).
_BOUND_SLACK = 1e-9


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
    prune_splits: skip a split whose score bound (:mod:`~alpa_serve.placement.bounds`) is
    below a score already reached; it could neither win nor tie, so the result is the same
    (False solves every split, as the plain algorithm; kept for tests and measurements).
    """

    num_workers: int = 1
    prune_splits: bool = field(default=True, compare=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_workers(self.num_workers)
        self.name = "mp-search-sep"

    def candidate_configs(self, cluster_env: ClusterEnv) -> list[ParallelConfig]:
        return _all_candidate_configs(cluster_env.num_devices)

    def solve(self, model_datas: Sequence[ModelData], cluster_env: ClusterEnv,
              train_workload: Workload) -> ModelPlacement:
        case = self.make_case(model_datas, cluster_env, train_workload)
        clusters = cluster_models(model_datas)
        # With one cluster the only split gives it all devices: its sub-problem is plain
        # mp-search again, with an equal (never strictly greater) score.
        splits = select_splits(cluster_env.num_devices, model_datas, clusters,
                               cluster_env.num_devices_per_node) if len(clusters) > 1 else []
        logger.debug("mp-search-sep: clusters %s, %d splits", clusters, len(splits))
        subs = _SubproblemSolver(self, model_datas, clusters, cluster_env, train_workload)
        executor = self.greedy_executor(self.num_workers)
        bounds = ([subs.split_bound(s, case.tables.num_total) for s in splits]
                  if self.prune_splits else [np.inf] * len(splits))
        # Splits with the highest bounds first, so that a high score is reached early and
        # prunes the rest; the winner is still chosen in split order below.
        pending = sorted(range(len(splits)), key=lambda k: -bounds[k])
        plain_jobs = mp_search_jobs(case, cluster_env.num_devices)
        best_score = -np.inf
        scores: dict[int, tuple[ModelPlacement, float]] = {}
        first_round = True
        while first_round or pending:
            if pending and bounds[pending[0]] < best_score:
                # Every pending split's bound is at most this one's: none can reach the best.
                break
            jobs = list(plain_jobs) if first_round else []
            chosen: list[int] = []
            # Enough splits to keep the executor's workers busy (at least one); without
            # pruning all of them in one batch.
            while pending and (not chosen or len(jobs) < executor.parallelism
                               or not self.prune_splits):
                if bounds[pending[0]] < best_score:
                    break
                k = pending.pop(0)
                chosen.append(k)
                jobs.extend(subs.jobs_for(splits[k]))
            results = executor.run(jobs)
            if first_round:
                plain, plain_score = first_best(results[:len(plain_jobs)])
                best_score = plain_score
                results = results[len(plain_jobs):]
                first_round = False
            subs.take_results(results)
            for k in chosen:
                combined = subs.combine(splits[k])
                score = case.simulate(combined).score
                scores[k] = (combined, score)
                best_score = max(best_score, score)
        logger.debug("mp-search-sep: %d of %d splits solved (%d sub-problems, %d stored), "
                     "%d skipped by their bound", len(scores), len(splits), subs.num_solved,
                     subs.num_stored, len(splits) - len(scores))
        best, best_score = plain, plain_score
        for k in sorted(scores):
            combined, score = scores[k]
            if score > best_score:
                best, best_score = combined, score
        return best


class _SubproblemSolver:
    """The (cluster, devices) sub-problems of one mp-search-sep case.

    Each sub-problem is solved once, even when several splits share it (3+ clusters), and not
    at all when the policy's sub-problem store holds it (a case of the same sweep solved it).
    One SearchCase per cluster (its models; the full training workload with every other
    model's requests marked -1) serves all of that cluster's sub-problems.
    """

    def __init__(self, policy: "ModelParallelismSearchSep", model_datas: Sequence[ModelData],
                 clusters: Sequence[Sequence[int]], cluster_env: ClusterEnv,
                 train_workload: Workload) -> None:
        self.policy = policy
        self.model_datas = model_datas
        self.clusters = clusters
        self.cluster_env = cluster_env
        self.train_workload = train_workload
        self.store = policy.subproblem_store
        self._cases: dict[int, SearchCase] = {}
        self._bounds: dict[int, ScoreBounds] = {}
        # (cluster, devices) -> bounds on its good requests and replicas
        self._part_bounds: dict[tuple[int, int], tuple[int, int]] = {}
        self._digests: dict[int, str] = {}
        self._keys: dict[tuple[int, int], str] = {}
        self._solved: dict[tuple[int, int], ModelPlacement] = {}
        # sub-problems whose greedy jobs were handed out, in job order, with their job counts
        self._running: list[tuple[tuple[int, int], int]] = []
        self._handed_out: set[tuple[int, int]] = set()
        self.num_solved = 0
        self.num_stored = 0

    def case(self, c: int) -> SearchCase:
        """Cluster ``c``'s SearchCase (built on first use)."""
        sub = self._cases.get(c)
        if sub is None:
            members = self.clusters[c]
            mapping = np.full(len(self.model_datas), -1, dtype=np.int64)
            mapping[list(members)] = np.arange(len(members))
            names = [self.train_workload.model_names[i] for i in members]
            workload = self.train_workload.remap_models(mapping, names)
            profiles = [self.model_datas[i].profile for i in members]
            # The other clusters' requests (-1) fail and only count in the denominators: the
            # tables keep their number but never visit them (bit-identical statistics).
            tables = SimTables(profiles, workload, drop_unknown=True)
            sub = self._cases[c] = SearchCase(profiles, workload, self.cluster_env.mem_budget,
                                              self.policy.argsort_kind, tables=tables)
        return sub

    def split_bound(self, split: Sequence[int], num_requests: int) -> float:
        """Upper bound on the score of ``split``'s combined placement on the training
        workload of ``num_requests`` requests (:mod:`~alpa_serve.placement.bounds`)."""
        good = replicas = 0
        for c, devices in enumerate(split):
            part = self._part_bounds.get((c, devices))
            if part is None:
                bounds = self._bounds.get(c)
                if bounds is None:
                    bounds = self._bounds[c] = ScoreBounds(self.case(c))
                part = self._part_bounds[(c, devices)] = (
                    bounds.good_requests(_all_candidate_configs(devices), devices),
                    bounds.replicas(candidate_group_partitions(devices)))
            good += part[0]
            replicas += part[1]
        return good / num_requests + replicas / 1e6 + _BOUND_SLACK

    def jobs_for(self, split: Sequence[int]) -> list[GreedyJob]:
        """Greedy jobs of ``split``'s sub-problems not solved, stored or handed out yet; their
        results go to :meth:`take_results` in the same order."""
        jobs: list[GreedyJob] = []
        for c, devices in enumerate(split):
            key = (c, devices)
            if key in self._solved or key in self._handed_out:
                continue
            if self.store is not None:
                sub = self.case(c)
                if c not in self._digests:
                    self._digests[c] = workload_digest(sub.workload)
                self._keys[key] = store_key = subproblem_key(
                    sub.profiles, self._digests[c], sub.mem_budget, devices,
                    self.policy.argsort_kind)
                hit = self.store.get(store_key)
                if hit is not None:
                    self._solved[key] = hit[0]
                    self.num_stored += 1
                    continue
            sub_jobs = mp_search_jobs(self.case(c), devices)
            self._running.append((key, len(sub_jobs)))
            self._handed_out.add(key)
            jobs.extend(sub_jobs)
        return jobs

    def take_results(self, results: Sequence[GreedyResult]) -> None:
        """Results of the jobs handed out by :meth:`jobs_for` since the last call."""
        pos = 0
        for key, count in self._running:
            placement, score = first_best(results[pos:pos + count])
            pos += count
            self._solved[key] = placement
            self.num_solved += 1
            if self.store is not None:
                self.store.put(self._keys[key], placement, score)
        if pos != len(results):
            raise RuntimeError(f"got {len(results)} greedy results for {pos} jobs")
        self._running = []

    def combine(self, split: Sequence[int]) -> ModelPlacement:
        """The clusters' solved placements concatenated in cluster order (not normalised),
        with global model indices."""
        configs: list[ParallelConfig] = []
        groups: list[tuple[int, ...]] = []
        for c, devices in enumerate(split):
            part = self._solved[(c, devices)]
            configs.extend(part.group_configs)
            # Local index j of the cluster is global model clusters[c][j].
            groups.extend(tuple(self.clusters[c][j] for j in ms) for ms in part.group_models)
        return ModelPlacement(tuple(configs), tuple(groups))


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
