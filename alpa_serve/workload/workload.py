"""The Workload container (DESIGN 4.2): a time-sorted set of requests held as arrays.

Times are seconds, SLOs seconds. ``model_ids`` index ``model_names``; ``-1`` marks a request of
a model that is not part of the case (used by sub-problems, see :meth:`Workload.remap_models`).
"""

from __future__ import annotations

import logging
import os
import zipfile
from typing import Literal, Sequence, Union

import numpy as np

__all__ = ["SortKind", "Workload", "WorkloadFormatError"]

logger = logging.getLogger(__name__)

#: numpy argsort kinds (the tie-breaking sorts of Workload.merge and of the placement search).
SortKind = Literal["stable", "quicksort", "mergesort", "heapsort"]

# Added to the mean gap in ``rate`` (as in the published code), so a burst of identical
# arrival times gives a large finite rate instead of a division by zero.
_RATE_EPS = 1e-6


class WorkloadFormatError(ValueError):
    """A saved workload file is malformed (missing arrays, wrong shapes or types)."""


class Workload:
    """Requests as parallel arrays: ``arrivals`` (float64, s), ``model_ids`` (int32),
    ``slos`` (float64, s), plus the ordered ``model_names``.

    The constructor copies and validates its inputs: 1-D arrays of equal length, finite values,
    arrivals sorted non-decreasing, ids in ``[-1, len(model_names))``.
    """

    __slots__ = ("arrivals", "model_ids", "slos", "model_names")

    def __init__(self, arrivals, model_ids, slos, model_names: Sequence[str]) -> None:
        # np.array copies: the workload never aliases the caller's arrays.
        arrivals = np.array(arrivals, dtype=np.float64)
        model_ids_in = np.asarray(model_ids)
        slos = np.array(slos, dtype=np.float64)
        names = [str(x) for x in model_names]
        for name, arr in (("arrivals", arrivals), ("model_ids", model_ids_in), ("slos", slos)):
            if arr.ndim != 1:
                raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
        if not (len(arrivals) == len(model_ids_in) == len(slos)):
            raise ValueError("arrivals, model_ids and slos must have equal lengths, got "
                             f"{len(arrivals)}, {len(model_ids_in)}, {len(slos)}")
        if len(model_ids_in) and not np.issubdtype(model_ids_in.dtype, np.integer):
            as_float = model_ids_in.astype(np.float64)
            if not np.all(np.isfinite(as_float)) or np.any(as_float != np.round(as_float)):
                raise ValueError("model_ids must be integers")
        ids64 = model_ids_in.astype(np.int64)
        if len(ids64) and (ids64.min() < -1 or ids64.max() >= len(names)):
            raise ValueError(f"model_ids must be in [-1, {len(names)}) (len(model_names)), got "
                             f"range [{ids64.min()}, {ids64.max()}]")
        if not np.all(np.isfinite(arrivals)):
            raise ValueError("arrivals must be finite")
        if not np.all(np.isfinite(slos)):
            raise ValueError("slos must be finite")
        if len(arrivals) > 1 and np.any(arrivals[1:] < arrivals[:-1]):
            raise ValueError("arrivals must be sorted non-decreasing (use Workload.merge to sort)")
        if len(set(names)) != len(names):
            raise ValueError(f"model_names must be unique, got {names}")
        self.arrivals: np.ndarray = arrivals
        self.model_ids: np.ndarray = ids64.astype(np.int32)
        self.slos: np.ndarray = slos
        self.model_names: list[str] = names

    @classmethod
    def _unchecked(cls, arrivals: np.ndarray, model_ids: np.ndarray, slos: np.ndarray,
                   model_names: list[str]) -> "Workload":
        """Internal constructor for arrays already known to be valid (no copy, no checks)."""
        w = cls.__new__(cls)
        w.arrivals = arrivals
        w.model_ids = model_ids
        w.slos = slos
        w.model_names = model_names
        return w

    # ------------------------------------------------------------------ construction

    @classmethod
    def empty(cls, model_names: Sequence[str] = ()) -> "Workload":
        """A workload with no requests over ``model_names``."""
        return cls(np.zeros(0), np.zeros(0, dtype=np.int32), np.zeros(0), list(model_names))

    @staticmethod
    def _merge_names(ws: Sequence["Workload"]) -> list[str]:
        longest: list[str] = []
        for w in ws:
            if len(w.model_names) > len(longest):
                longest = w.model_names
        for w in ws:
            if w.model_names != longest[:len(w.model_names)]:
                raise ValueError("cannot merge workloads whose model_names disagree: "
                                 f"{w.model_names} vs {longest}")
        return list(longest)

    @classmethod
    def merge(cls, *ws: "Workload", kind: SortKind = "stable") -> "Workload":
        """Merge workloads into one sorted by arrival (DESIGN 4.1).

        The arrays are concatenated in argument order and ordered with
        ``np.argsort(arrivals, kind=kind)``. Requests with identical arrival times occur with
        large CV (many gaps underflow to 0). The default ``kind="stable"`` keeps them in argument
        order, on every machine. ``kind="quicksort"`` is numpy's default sort, which the
        published code used: numpy runs it as a SIMD sort (x86-simd-sort, other code on AVX2 and
        on AVX-512 CPUs), so its order among ties depends on the CPU and the numpy version, and
        the same case gave other latencies on two machines.

        ``model_names`` of the inputs must agree where they overlap; the result keeps the
        longest list. A single argument is returned unchanged (as in the published code).
        """
        if not ws:
            raise ValueError("Workload.merge needs at least one workload")
        if len(ws) == 1:
            return ws[0]
        names = cls._merge_names(ws)
        arrivals = np.concatenate([w.arrivals for w in ws])
        model_ids = np.concatenate([w.model_ids for w in ws])
        slos = np.concatenate([w.slos for w in ws])
        order = np.argsort(arrivals, kind=kind)
        return cls._unchecked(arrivals[order], model_ids[order].astype(np.int32, copy=False),
                              slos[order], names)

    # ------------------------------------------------------------------ basic protocol

    def __len__(self) -> int:
        return len(self.arrivals)

    def __getitem__(self, key: Union[slice, np.ndarray, Sequence[int]]) -> "Workload":
        """``w[i:j]`` (a slice) or ``w[index_array]``/``w[bool_mask]`` -> Workload.

        Index arrays must keep arrivals sorted (increasing indices do).
        """
        if isinstance(key, slice):
            sub = self.arrivals[key]
            if key.step not in (None, 1) and len(sub) > 1 and np.any(sub[1:] < sub[:-1]):
                raise ValueError("slicing must keep arrivals sorted")
            return self._unchecked(sub, self.model_ids[key], self.slos[key],
                                   list(self.model_names))
        if isinstance(key, (int, np.integer)):
            raise TypeError("index a Workload with a slice (w[i:i+1]) or an index array")
        idx = np.asarray(key)
        if idx.dtype != bool and not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"unsupported Workload index {key!r}")
        return Workload(self.arrivals[idx], self.model_ids[idx], self.slos[idx],
                        self.model_names)

    def __repr__(self) -> str:
        span = (f", [{self.arrivals[0]:.3f}, {self.arrivals[-1]:.3f}] s" if len(self) else "")
        return (f"Workload({len(self)} requests, {len(self.model_names)} models{span}, "
                f"rate={self.rate:.3f}/s, cv={self.cv:.3f})")

    def equals(self, other: "Workload") -> bool:
        """True if both hold identical arrays (bit-exact) and model names."""
        return (isinstance(other, Workload) and self.model_names == other.model_names
                and np.array_equal(self.arrivals, other.arrivals)
                and np.array_equal(self.model_ids, other.model_ids)
                and np.array_equal(self.slos, other.slos))

    # ------------------------------------------------------------------ statistics

    @property
    def rate(self) -> float:
        """1 / (mean inter-arrival gap + 1e-6), in req/s; 0 with at most one request."""
        if len(self.arrivals) <= 1:
            return 0.0
        gaps = np.diff(self.arrivals)
        return float(1 / (np.mean(gaps) + _RATE_EPS))

    @property
    def cv(self) -> float:
        """std(gaps) * rate (coefficient of variation of gaps); 0 with at most one request."""
        if len(self.arrivals) <= 1:
            return 0.0
        gaps = np.diff(self.arrivals)
        return float(np.std(gaps) * self.rate)

    # ------------------------------------------------------------------ transforms

    def _split_indices(self, interval: float) -> list[int]:
        interval = float(interval)
        if not np.isfinite(interval) or interval < 0:
            raise ValueError(f"interval must be >= 0 and finite (s), got {interval!r}")
        n = len(self.arrivals)
        starts: list[int] = []
        i = 0
        while i < n:
            starts.append(i)
            # The next window starts at the first arrival > window start + T; the threshold is
            # computed in float64 exactly as the original's `arrivals[i] > start + interval`.
            threshold = self.arrivals[i] + interval
            i = int(np.searchsorted(self.arrivals, threshold, side="right"))
        return starts

    def split_time_interval(self, interval: float) -> list["Workload"]:
        """Split into consecutive windows (DESIGN 4.2).

        The first window starts at the first arrival; a new window starts at the first arrival
        that is strictly greater than the current window's start + ``interval`` (s). An empty
        workload gives ``[]``.
        """
        return self.split_time_interval_with_starts(interval)[0]

    def split_time_interval_with_starts(self, interval: float
                                        ) -> tuple[list["Workload"], list[float]]:
        """As :meth:`split_time_interval`, also returning each window's start time (s)."""
        starts = self._split_indices(interval)
        bounds = starts + [len(self.arrivals)]
        parts = [self[bounds[k]:bounds[k + 1]] for k in range(len(starts))]
        return parts, [float(self.arrivals[i]) for i in starts]

    def remap_models(self, mapping, new_names: Sequence[str]) -> "Workload":
        """Relabel model ids: request of model ``old`` gets ``mapping[old]`` (-1 = not in case).

        ``mapping`` is an int array of length ``len(self.model_names)`` with values in
        ``[-1, len(new_names))``. Requests already labelled -1 stay -1. Arrivals and SLOs are
        unchanged (no request is dropped; the simulator ignores -1 requests).
        """
        mapping = np.asarray(mapping)
        if mapping.ndim != 1 or len(mapping) != len(self.model_names):
            raise ValueError(f"mapping must be 1-D of length {len(self.model_names)}, "
                             f"got shape {mapping.shape}")
        mapping = mapping.astype(np.int64)
        if len(mapping) and (mapping.min() < -1 or mapping.max() >= len(new_names)):
            raise ValueError(f"mapping values must be in [-1, {len(new_names)})")
        ids = self.model_ids.astype(np.int64)
        new_ids = np.where(ids >= 0, mapping[np.maximum(ids, 0)] if len(mapping) else -1, -1)
        return Workload(self.arrivals, new_ids.astype(np.int32), self.slos, list(new_names))

    # ------------------------------------------------------------------ persistence

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write to ``path`` as ``.npz`` (arrays ``arrivals``, ``model_ids``, ``slos``,
        ``model_names``). numpy appends ``.npz`` if the suffix is missing."""
        np.savez(path, arrivals=self.arrivals, model_ids=self.model_ids, slos=self.slos,
                 model_names=np.array(self.model_names, dtype=np.str_))

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "Workload":
        """Read a workload written by :meth:`save`.

        Raises ``FileNotFoundError`` if the file is missing and :class:`WorkloadFormatError`
        if it is not a workload ``.npz`` (missing arrays, bad shapes or values).
        """
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"workload file not found: {path!r} "
                                    "(expected an .npz written by Workload.save)")
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in ("arrivals", "model_ids", "slos", "model_names")
                           if k not in data.files]
                if missing:
                    raise WorkloadFormatError(
                        f"{path!r} is not a saved Workload: missing arrays {missing} "
                        f"(found {sorted(data.files)})")
                arrays = {k: data[k] for k in ("arrivals", "model_ids", "slos", "model_names")}
        except WorkloadFormatError:
            raise
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
            raise WorkloadFormatError(f"cannot read workload file {path!r}: {e} "
                                      "(expected an .npz written by Workload.save)") from e
        names = arrays["model_names"]
        if names.ndim != 1 or not (names.dtype.kind == "U" or len(names) == 0):
            raise WorkloadFormatError(f"{path!r}: model_names must be a 1-D string array")
        try:
            return cls(arrays["arrivals"], arrays["model_ids"], arrays["slos"],
                       [str(x) for x in names])
        except ValueError as e:
            raise WorkloadFormatError(f"{path!r}: invalid workload content: {e}") from e
