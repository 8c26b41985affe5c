"""The fast greedy replica placement of DESIGN 6, used by every search policy.

The search score (goodput - mean latency / 1e4 + replicas / 1e6) is ``FastStats.score`` of the
simulator; candidates are compared on it with strict ``>``.
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence

import numpy as np

from alpa_serve.placement.search_case import SearchCase
from alpa_serve.placement_types import ModelPlacement, normalization_order
from alpa_serve.profiling import ParallelConfig
from alpa_serve.simulator.kernels import merge_sorted
from alpa_serve.simulator.stats import FastStats

logger = logging.getLogger(__name__)


def _group_used(case: SearchCase, cfg: ParallelConfig, models: Sequence[int]) -> float:
    """Memory (bytes) of a group: its models' largest stage weights summed in group order
    (the order of a Python ``sum``, so float rounding matches a plain recomputation)."""
    w = case.weight_list(cfg)
    return sum(w[m] for m in models)


def fast_greedy(init: ModelPlacement, case: SearchCase, incremental: bool = True
                ) -> tuple[ModelPlacement, FastStats]:
    """Fast greedy replica placement of DESIGN 6, starting from ``init`` (not normalised).

    Repeat: simulate the current placement (fast statistics); unserved_m = n_m * (1 - good_m /
    (n_m + 1e-6)); model order = argsort(unserved) reversed; group order = argsort(group
    requests); take the first (group, model) pair in that order where the model is not on the
    group and fits (group memory + model weight <= budget); add it and normalise. Stop when no
    pair fits.

    incremental: after each addition re-simulate only the connected component (of the
    model-group incidence graph) that received the new replica (see ``_GreedyState``). The
    decisions only use integer counts, which are identical either way; ``False`` runs the plain
    algorithm (a full simulation per step) and exists to test this equivalence.

    Returns the final placement and its fast statistics from a full simulation.
    """
    if init.num_groups == 0 or case.num_models == 0:
        return init, case.simulate(init)
    state = _GreedyState(init, case, track_requests=incremental)
    stats: Optional[FastStats] = None
    if any(init.group_models):
        stats = case.simulate(init)
        state.set_counts(stats)
    else:
        # Nothing placed: every request fails, counts are known without simulating.
        state.set_empty_counts()
    steps = 0
    while True:
        pair = state.choose()
        if pair is None:
            break
        state.add(*pair)
        steps += 1
        if not state.any_fits():
            # Nothing fits any more, so the next check would stop whatever the counts are.
            stats = case.simulate(state.placement())
            break
        if incremental:
            state.resimulate_component(pair[1])
        else:
            stats = case.simulate(state.placement())
            state.set_counts(stats)
    # choose() finds nothing only before the first addition (afterwards any_fits() ends the
    # loop first), so ``stats`` is always the full simulation of the returned placement.
    if stats is None:  # empty start where nothing fits
        stats = case.simulate(init)
    placement = state.placement()
    logger.debug("fast greedy: %d steps, %d groups, score %.6f", steps, init.num_groups,
                 stats.score)
    return placement, stats


class _GreedyState:
    """Bookkeeping of the fast greedy, indexed by group *slot* (a group's identity; slots never
    move, normalisation only changes ``pos2slot``, the slot at each position).

    Per slot: config, sorted model tuple, weight row W[s, m] (bytes), memory used (bytes),
    member[s, m], fits[s, m] (m may be added: not a member and used + W <= budget) and a
    component label. Per model: component label (-1: no replica yet). Counts (requests per
    model and per slot, good requests per model) come from the last simulation.

    Component re-simulation is exact: a request of model m can only be served by a group
    hosting m and only changes that group's free times, so the requests of one connected
    component of the model-group graph are simulated identically whether or not the other
    components' requests are served (they are skipped as models without replicas). Adding
    model m to a group changes only the component that now joins them; every other model's and
    group's counts stay valid. Counts are integers, so the decisions are bit-identical; the
    returned score always comes from a full simulation.
    """

    def __init__(self, init: ModelPlacement, case: SearchCase, track_requests: bool = True
                 ) -> None:
        self.case = case
        # Per component label: increasing index arrays of its models' requests (only these
        # requests are simulated when the component is re-simulated), merged lazily.
        self.track_requests = track_requests
        self.comp_requests: dict[int, list[np.ndarray]] = {}
        self.budget = case.mem_budget
        self.configs = list(init.group_configs)
        # The initial candidate is not normalised: its order is kept until the first addition.
        self.groups = [tuple(int(m) for m in ms) for ms in init.group_models]
        num_groups, num_models = len(self.configs), case.num_models
        self.pos2slot = list(range(num_groups))
        self.W = np.stack([case.weights(c) for c in self.configs])
        self.used = np.array([_group_used(case, c, ms)
                              for c, ms in zip(self.configs, self.groups)])
        self.member = np.zeros((num_groups, num_models), dtype=bool)
        for g, ms in enumerate(self.groups):
            self.member[g, list(ms)] = True
        self.fits = (~self.member) & (self.used[:, None] + self.W <= self.budget)
        self.fits_any = self.fits.any(axis=1)
        self.group_comp = np.arange(num_groups)
        self.model_comp = np.full(num_models, -1)
        for g, ms in enumerate(self.groups):
            for m in ms:
                self._join(g, m)
        self.model_num = self.model_good = self.slot_num = np.zeros(0, dtype=np.int64)

    def set_counts(self, stats: FastStats) -> None:
        """Take all counts from a full simulation of the current placement."""
        self.model_num = np.array(stats.model_num, dtype=np.int64)
        self.model_good = np.array(stats.model_good, dtype=np.int64)
        self.slot_num = np.empty(len(self.pos2slot), dtype=np.int64)
        self.slot_num[self.pos2slot] = stats.group_num

    def set_empty_counts(self) -> None:
        """Counts of a placement with no replica: every request fails, no group gets any."""
        self.model_num = np.array(self.case.tables.model_counts(), dtype=np.int64)
        self.model_good = np.zeros(self.case.num_models, dtype=np.int64)
        self.slot_num = np.zeros(len(self.pos2slot), dtype=np.int64)

    def choose(self) -> Optional[tuple[int, int]]:
        """The (slot, model) pair the greedy adds next, or None when nothing fits."""
        case = self.case
        model_num = self.model_num
        # Exact published formula (float64); fully served models keep ~1e-6 that orders them.
        unserved = model_num * (1 - self.model_good / (model_num + 1e-6))
        model_order = case.argsort(unserved)[::-1]
        pos = np.array(self.pos2slot)
        slot_order = pos[case.argsort(self.slot_num[pos])]
        candidates = self.fits_any[slot_order]
        r = int(np.argmax(candidates))
        if not candidates[r]:
            return None
        slot = int(slot_order[r])
        m = int(model_order[int(np.argmax(self.fits[slot][model_order]))])
        return slot, m

    def add(self, slot: int, m: int) -> None:
        """Add model m to ``slot`` and normalise."""
        self.groups[slot] = self.groups[slot] + (m,)
        order, sorted_groups = normalization_order([self.groups[s] for s in self.pos2slot])
        for p, s in enumerate(self.pos2slot):
            self.groups[s] = sorted_groups[p]
        self.pos2slot = [self.pos2slot[i] for i in order]
        self.member[slot, m] = True
        self.used[slot] = _group_used(self.case, self.configs[slot], self.groups[slot])
        self.fits[slot] = ~self.member[slot] & (self.used[slot] + self.W[slot] <= self.budget)
        self.fits_any[slot] = self.fits[slot].any()
        self._join(slot, m)

    def any_fits(self) -> bool:
        """Whether any (group, model) pair still fits."""
        return bool(self.fits_any.any())

    def placement(self) -> ModelPlacement:
        """The current placement (groups in position order)."""
        return ModelPlacement._trusted(tuple(self.configs[s] for s in self.pos2slot),
                                       tuple(self.groups[s] for s in self.pos2slot))

    def _join(self, slot: int, m: int) -> None:
        """Record a replica of model m on ``slot``: merge their components."""
        label = int(self.group_comp[slot])
        old = int(self.model_comp[m])
        if old >= 0 and old != label:
            self.group_comp[self.group_comp == old] = label
            self.model_comp[self.model_comp == old] = label
            if self.track_requests:
                self.comp_requests.setdefault(label, []).extend(self.comp_requests.pop(old))
        elif old < 0 and self.track_requests:
            self.comp_requests.setdefault(label, []).append(self.case.tables.model_requests(m))
        self.model_comp[m] = label

    def _component_requests(self, label: int) -> Optional[np.ndarray]:
        """Increasing indices of the requests of component ``label``'s models, or None when
        they are at least half of the tables' requests: then the kernel walks all requests
        (skipping another model's request costs ~1.5 ns, merging index lists ~2 ns per
        element; both give identical counts for the component, see simulate_subset)."""
        pieces = self.comp_requests[label]
        if 2 * sum(len(p) for p in pieces) >= self.case.tables.num_requests:
            return None
        if len(pieces) > 1:
            pieces.sort(key=len)
            index = pieces[0]
            for p in pieces[1:]:
                index = merge_sorted(index, p)
            self.comp_requests[label] = pieces = [index]
        return pieces[0]

    def resimulate_component(self, m: int) -> None:
        """Refresh the counts of the component containing model m by simulating it alone."""
        label = self.model_comp[m]
        comp = self.group_comp == label
        # The component's groups in position order: relative order (and so the replica
        # tie-break, lower group index first) is that of the full placement.
        slots = [s for s in self.pos2slot if comp[s]]
        sub = ModelPlacement._trusted(tuple(self.configs[s] for s in slots),
                                      tuple(self.groups[s] for s in slots))
        # Only the component's requests: every other request belongs to a model without a
        # replica in ``sub`` (or to model -1) and would only be counted, not served.
        model_num, model_good, group_num = self.case.tables.simulate_subset(
            sub, self._component_requests(int(label)))
        models = self.model_comp == label
        self.model_num[models] = model_num[models]
        self.model_good[models] = model_good[models]
        self.slot_num[slots] = group_num


__all__ = ["fast_greedy"]
