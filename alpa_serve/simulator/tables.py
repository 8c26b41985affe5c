"""Per-case static tables of the simulator and the placement encoder (DESIGN 5.1, 8).

A :class:`SimTables` is built once per case (profiles + workload). Placement search then calls
:meth:`SimTables.simulate_fast` thousands of times; each call only encodes the placement into a
few small int32 arrays (cached per placement) and runs the compiled kernel.
"""

from __future__ import annotations

import itertools
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence, cast

import numpy as np

from alpa_serve.placement_types import ModelPlacement, ModelPlacementWithReplacement, Placement
from alpa_serve.profiling import ModelProfile, ParallelConfig
from alpa_serve.simulator import kernels
from alpa_serve.simulator.stats import FastStats, SimStats, compute_stats

if TYPE_CHECKING:  # the workload package is imported where a Workload is built, not here
    from alpa_serve.workload import Workload

logger = logging.getLogger(__name__)

#: Pipeline communication overhead per stage, as a fraction of the stage latency (DESIGN 5.1).
PP_OVERHEAD = 0.009

#: Encoded placements kept per SimTables (the greedy revisits few, but a bounded cache keeps
#: memory flat during long searches).
_ENCODE_CACHE_SIZE = 512


class EmptyWorkloadError(ValueError):
    """Simulating an empty workload: goodput would be NaN (DESIGN 5.2 makes this an error)."""


@dataclass(frozen=True)
class _Segment:
    """One ModelPlacement encoded for :func:`kernels.simulate_requests` (see kernels.py)."""

    model_ptr: np.ndarray      # int32[M+1]
    rep_group: np.ndarray      # int32[R]
    rep_free_off: np.ndarray   # int32[R]
    rep_nstages: np.ndarray    # int32[R]
    rep_lat_off: np.ndarray    # int32[R], -1 = config missing from the model's profile
    total_stages: int
    num_groups: int


class SimTables:
    """Static tables of one case: the workload as kernel arrays and a stage-latency table.

    ``profiles[i]`` is the profile of model i, i.e. of ``workload.model_names[i]``.

    Stage latencies are stored per parallel configuration as a float32 block of M rows of pp
    values, ``float32(latency_k * (1 + 0.009 * pp))`` computed in float64; blocks are added
    lazily the first time a placement uses a configuration.
    """

    def __init__(self, profiles: Sequence[ModelProfile], workload: Workload,
                 drop_unknown: bool = False) -> None:
        names = list(workload.model_names)
        if len(profiles) != len(names):
            raise ValueError(
                f"got {len(profiles)} profiles for a workload over {len(names)} models "
                f"({names}); pass one profile per workload model, in model order")
        self.profiles = list(profiles)
        self.model_names = names
        self.num_models = len(names)
        self.arrivals = np.ascontiguousarray(workload.arrivals, dtype=np.float64)
        self.model_ids = np.ascontiguousarray(workload.model_ids, dtype=np.int32)
        # The published simulator stores SLOs as float32; the comparison is done in float64.
        self.slos = np.ascontiguousarray(np.asarray(workload.slos, dtype=np.float64)
                                         .astype(np.float32))
        if not (len(self.arrivals) == len(self.model_ids) == len(self.slos)):
            raise ValueError("workload arrays have different lengths")
        #: Requests of model -1 left out (``drop_unknown``): they fail and only count in the
        #: denominators of the fast statistics, so simulate_fast need not visit them. Tables
        #: with dropped requests support only plain ModelPlacements in simulate_fast (the
        #: Clockwork++ segment walk and per-request results need every arrival).
        self.num_dropped = 0
        if drop_unknown:
            keep = self.model_ids >= 0
            if not keep.all():
                self.num_dropped = int(keep.size - np.count_nonzero(keep))
                self.arrivals = np.ascontiguousarray(self.arrivals[keep])
                self.model_ids = np.ascontiguousarray(self.model_ids[keep])
                self.slos = np.ascontiguousarray(self.slos[keep])
        #: Requests held in the arrays (visited by the kernels).
        self.num_requests = len(self.arrivals)
        #: Requests of the workload (the denominator of the fast statistics).
        self.num_total = self.num_requests + self.num_dropped
        self._by_model: np.ndarray | None = None
        self._by_model_ptr: np.ndarray | None = None
        self._stage_lat = np.zeros(0, dtype=np.float32)
        # config -> (offset of its block in _stage_lat, pp, its row in _missing)
        self._cfg_block: dict[ParallelConfig, tuple[int, int, int]] = {}
        #: bool[configs, M]: True where the configuration is missing from the model's profile.
        self._missing = np.zeros((0, self.num_models), dtype=np.bool_)
        self._encoded: OrderedDict[tuple[tuple[ParallelConfig, ...], tuple[tuple[int, ...], ...]],
                                  _Segment] = OrderedDict()
        # group configs of a placement -> int64[3, G] rows of _config_block
        self._group_blocks: dict[tuple[ParallelConfig, ...], np.ndarray] = {}

    # ------------------------------------------------------------------ stage latencies

    def _config_block(self, cfg: ParallelConfig) -> tuple[int, int, int]:
        """Offset, pp and ``_missing`` row of ``cfg``'s latency block, built on first use."""
        block = self._cfg_block.get(cfg)
        if block is not None:
            return block
        pp = int(cfg[2])
        if pp < 1:
            raise ValueError(f"parallel config {tuple(cfg)} has pp = {pp} < 1")
        factor = 1 + PP_OVERHEAD * pp  # float64, as published
        rows = np.zeros((self.num_models, pp), dtype=np.float32)
        missing = np.zeros(self.num_models, dtype=bool)
        for m, prof in enumerate(self.profiles):
            if not prof.has_config(cfg):
                missing[m] = True
                continue
            lat = prof.latency(cfg, 1)
            if len(lat) != pp:
                raise ValueError(
                    f"profile of {prof.name!r} under {tuple(cfg)} has {len(lat)} stage latencies,"
                    f" expected pp = {pp}")
            # float64 product, then one rounding to float32 (DESIGN 5.1 precision rule).
            rows[m] = np.array([float(x) * factor for x in lat], dtype=np.float64)
        offset = len(self._stage_lat)
        self._stage_lat = np.concatenate([self._stage_lat, rows.reshape(-1)])
        self._missing = np.concatenate([self._missing, missing[None, :]])
        block = (offset, pp, len(self._missing) - 1)
        self._cfg_block[cfg] = block
        logger.debug("stage-latency block for %s at offset %d", tuple(cfg), offset)
        return block

    def stage_latencies(self, model: int, cfg: ParallelConfig) -> np.ndarray | None:
        """float32 stage latencies (seconds, pipeline factor included) of ``model`` under
        ``cfg``; None when the configuration is missing from the model's profile."""
        offset, pp, row = self._config_block(cfg)
        if self._missing[row, model]:
            return None
        start = offset + model * pp
        return self._stage_lat[start:start + pp].copy()

    # ------------------------------------------------------------------ placements

    def _encode(self, placement: ModelPlacement) -> _Segment:
        """Encode one ModelPlacement (cached by its configs and models)."""
        key = (placement.group_configs, placement.group_models)
        seg = self._encoded.get(key)
        if seg is not None:
            self._encoded.move_to_end(key)
            return seg
        configs, groups = key
        num_groups = len(configs)
        if len(groups) != num_groups:
            raise ValueError(f"placement has {num_groups} group configs but {len(groups)} "
                             "model groups")
        group_blocks = self._group_blocks.get(configs)
        if group_blocks is None:
            # (lat offset, pp, missing row) per group as int64[3, G]; a search keeps its
            # group configs, so this is built once per candidate partition.
            group_blocks = np.array([self._config_block(cfg) for cfg in configs],
                                    dtype=np.int64).reshape(num_groups, 3).T.copy()
            if len(self._group_blocks) >= _ENCODE_CACHE_SIZE:
                self._group_blocks.clear()
            self._group_blocks[configs] = group_blocks
        flat_models = np.fromiter(itertools.chain.from_iterable(groups), dtype=np.int64)
        (model_ptr, rep_group, rep_free_off, rep_nstages, rep_lat_off, total_stages,
         bad) = kernels.encode_replicas(
            flat_models, np.fromiter(map(len, groups), dtype=np.int64, count=num_groups),
            group_blocks[1], group_blocks[0], group_blocks[2], self._missing,
            self.num_models)
        if bad >= 0:
            raise ValueError(f"placement refers to model index {flat_models[bad]}, but the "
                             f"case has {self.num_models} models ({self.model_names}); valid "
                             f"indices are 0..{self.num_models - 1}")
        seg = _Segment(
            model_ptr=model_ptr,
            rep_group=rep_group,
            rep_free_off=rep_free_off,
            rep_nstages=rep_nstages,
            rep_lat_off=rep_lat_off,
            total_stages=int(total_stages),
            num_groups=num_groups,
        )
        self._encoded[key] = seg
        if len(self._encoded) > _ENCODE_CACHE_SIZE:
            self._encoded.popitem(last=False)
        return seg

    def _segments(self, placement: Placement) -> tuple[list[_Segment], np.ndarray, int]:
        """Encoded segments, request bounds (int64[S+1]) and replica count of a placement."""
        if hasattr(placement, "start_times"):  # ModelPlacementWithReplacement
            self._check_complete("a ModelPlacementWithReplacement")
            windows = cast(ModelPlacementWithReplacement, placement)
            segs = [self._encode(p) for p in windows.placements]
            change = np.empty(len(segs), dtype=np.float64)
            change[:-1] = windows.start_times[1:]
            change[-1] = np.inf
            bounds = kernels.segment_bounds(self.arrivals, change)
            num_replicas = int(windows.num_replicas)
        else:
            segs = [self._encode(placement)]
            bounds = np.array([0, self.num_requests], dtype=np.int64)
            num_replicas = sum(len(ms) for ms in placement.group_models)
        return segs, bounds, num_replicas

    def _check_nonempty(self) -> None:
        if self.num_total == 0:
            raise EmptyWorkloadError(
                "cannot simulate an empty workload: goodput is undefined (NaN); check the "
                "workload generation (rates, duration, trace window)")

    # ------------------------------------------------------------------ simulation

    def simulate_fast(self, placement: Placement) -> FastStats:
        """Untrimmed fast statistics of ``placement`` (DESIGN 5.2), for placement search.

        Accepts ModelPlacement and ModelPlacementWithReplacement.
        """
        self._check_nonempty()
        segs, bounds, num_replicas = self._segments(placement)
        M = self.num_models
        model_num = np.zeros(M, dtype=np.int64)
        model_good = np.zeros(M, dtype=np.int64)
        group_num = np.zeros(max(s.num_groups for s in segs), dtype=np.int64)
        num_good = 0
        lat_sum = 0.0
        for s, seg in enumerate(segs):
            lo, hi = int(bounds[s]), int(bounds[s + 1])
            if hi <= lo:
                continue
            ng, ls = kernels.simulate_requests(
                self.arrivals, self.model_ids, self.slos, None, lo, hi,
                seg.model_ptr, seg.rep_group, seg.rep_free_off, seg.rep_nstages,
                seg.rep_lat_off, self._stage_lat, seg.total_stages,
                None, None, model_num, model_good, group_num, lat_sum)
            num_good += ng
            lat_sum = ls
        return FastStats.from_counts(num_good, lat_sum, self.num_total, model_num,
                                     model_good, group_num, num_replicas)

    # ------------------------------------------------------------------ request subsets

    def _check_complete(self, what: str) -> None:
        if self.num_dropped:
            raise ValueError(f"these SimTables dropped {self.num_dropped} unknown-model "
                             f"requests (drop_unknown=True); {what} needs every request")

    def model_counts(self) -> np.ndarray:
        """int64[M]: requests of each model (what any simulation reports as ``model_num``)."""
        _, ptr = self._by_model_index()
        return np.diff(ptr)

    def model_requests(self, m: int) -> np.ndarray:
        """int64 increasing: indices (into the tables' arrays) of model m's requests."""
        order, ptr = self._by_model_index()
        return order[ptr[m]:ptr[m + 1]]

    def _by_model_index(self) -> tuple[np.ndarray, np.ndarray]:
        """(request indices sorted by model (stable), int64[M + 1] start of each model's run),
        built on first use."""
        if self._by_model is not None and self._by_model_ptr is not None:
            return self._by_model, self._by_model_ptr
        ids = self.model_ids
        order = np.argsort(ids, kind="stable").astype(np.int64)
        counts = np.bincount(ids[ids >= 0], minlength=self.num_models).astype(np.int64)
        ptr = np.zeros(self.num_models + 1, dtype=np.int64)
        np.cumsum(counts, out=ptr[1:])
        ptr += int(np.count_nonzero(ids < 0))  # model -1 sorts first
        order.setflags(write=False)
        self._by_model, self._by_model_ptr = order, ptr
        return order, ptr

    def simulate_subset(self, placement: ModelPlacement, index: np.ndarray | None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Counters ``(model_num, model_good, group_num)`` of a plain ModelPlacement simulated
        from idle devices on the requests ``index`` only (int64, strictly increasing; None:
        all requests held in the tables).

        Exact for the models whose requests are all in ``index`` when no other request could
        reach the placement's groups (with ``index`` None, requests of models without a
        replica in ``placement`` are walked but only counted): used by the greedy to re-simulate
        one connected component (its models' requests, its groups), see
        ``placement.greedy._GreedyState``.
        """
        seg = self._encode(placement)
        M = self.num_models
        model_num = np.zeros(M, dtype=np.int64)
        model_good = np.zeros(M, dtype=np.int64)
        group_num = np.zeros(seg.num_groups, dtype=np.int64)
        hi = self.num_requests if index is None else len(index)
        if hi:
            kernels.simulate_requests(
                self.arrivals, self.model_ids, self.slos, index, 0, hi,
                seg.model_ptr, seg.rep_group, seg.rep_free_off, seg.rep_nstages,
                seg.rep_lat_off, self._stage_lat, seg.total_stages,
                None, None, model_num, model_good, group_num, 0.0)
        return model_num, model_good, group_num

    def run(self, placement: Placement) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                 np.ndarray]:
        """Per-request results: ``finish`` (float64 s, = arrival for failed requests), ``good``
        (bool) and the untrimmed counters ``model_num``, ``model_good``, ``group_num``."""
        self._check_complete("run() / simulate()")
        segs, bounds, _ = self._segments(placement)
        n, M = self.num_requests, self.num_models
        finish = np.empty(n, dtype=np.float64)
        good = np.zeros(n, dtype=np.bool_)
        model_num = np.zeros(M, dtype=np.int64)
        model_good = np.zeros(M, dtype=np.int64)
        group_num = np.zeros(max(s.num_groups for s in segs), dtype=np.int64)
        for s, seg in enumerate(segs):
            lo, hi = int(bounds[s]), int(bounds[s + 1])
            if hi <= lo:
                continue
            kernels.simulate_requests(
                self.arrivals, self.model_ids, self.slos, None, lo, hi,
                seg.model_ptr, seg.rep_group, seg.rep_free_off, seg.rep_nstages,
                seg.rep_lat_off, self._stage_lat, seg.total_stages,
                finish, good, model_num, model_good, group_num, 0.0)
        return finish, good, model_num, model_good, group_num

    def simulate(self, placement: Placement) -> SimStats:
        """Trimmed statistics of ``placement`` (DESIGN 5.2)."""
        self._check_nonempty()
        finish, good, _, _, group_num = self.run(placement)
        return compute_stats(self.arrivals, self.model_ids, finish, good, group_num,
                             self.model_names)
