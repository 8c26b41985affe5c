"""The opt-in fast search (DESIGN 7.8): the search policies train on a sample of the day.

A trace case's training workload is the replay of its training window, generated window by
window (``interval_seconds`` each: 5400 s for MAF2, so 16 windows per day; DESIGN 4.3), each
window a stationary Gamma segment per model. With ``Case.search == "fast"``, the policies of
:data:`FAST_SEARCH_POLICIES` place on :func:`fast_training_workload` instead: the requests in
the middle ``FAST_WINDOW_SHARE`` of every window (:func:`select_training_windows`), kept at
their original arrival times, plus, for every model with requests in the day but none kept,
its requests of its busiest window. The chosen placement is then simulated on the whole test
workload as in an exact case; the test workload is never reduced. Replays in windows shorter
than ``FAST_MIN_WINDOW_SECONDS`` (MAF1's 60 s windows: Fig. 11's MAF1 columns, Fig. 13) are
not reduced: a few seconds of every minute is too small a sample, and those cases take
seconds to a minute anyway.

Everything else is unchanged in a fast case: the other policies (SR, Clockwork++, which splits
its training workload into windows of its own and needs all of them, and the ablation
policies) and every synthetic case (stationary Gamma arrivals of 100-1200 s, no windows to
choose among) train on the full training workload, so their rows equal the exact ones apart
from the ``search`` column and ``case_id``.

Pure functions over :class:`~alpa_serve.workload.Workload`; the placement policies are not
touched. Units: seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from alpa_serve import results
from alpa_serve.experiments.cases import Case, TraceWorkload
from alpa_serve.results import SEARCH_FAST

#: Policies whose training workload the fast search reduces: the partition searches, whose
#: cost is a greedy run (every step a re-simulation of the training workload) per candidate
#: partition and device split. ``mp-greedy-<k>`` and ``sr-greedy`` run one greedy on a fixed
#: partition and keep the full training workload, like every other policy.
FAST_SEARCH_POLICIES: tuple[str, ...] = ("mp-search", "mp-search-sep")

#: Share of every replay window the fast search keeps (its middle part), and the shortest
#: replay window (s) it reduces. Defined with the search modes in :mod:`alpa_serve.results`,
#: whose figure note states them.
FAST_WINDOW_SHARE = results.FAST_WINDOW_SHARE
FAST_MIN_WINDOW_SECONDS = results.FAST_MIN_WINDOW_SECONDS


@dataclass(frozen=True)
class WindowSelection:
    """What the fast search trains on (see :func:`select_training_windows`).

    Attributes:
        num_windows: windows of the training replay (W).
        slice: ``(lo, hi)``: the part of every window that is kept, in seconds from the
            window's start (the middle ``share`` of it).
        added: ``(model, window)``: the requests of ``model`` in ``window`` were added because
            the model has requests in the replay but none in the slices.
        mask: per request of the training workload, whether it is kept.
    """

    num_windows: int
    slice: tuple[float, float]
    added: tuple[tuple[int, int], ...]
    mask: np.ndarray

    @property
    def num_requests(self) -> int:
        """Requests kept."""
        return int(self.mask.sum())


def num_windows(start: float, end: float, interval: float) -> int:
    """Windows of a replay of ``[start, end)`` (s) in windows of ``interval`` s: the window
    edges of DESIGN 4.3 (start, start + I, ... below end), so ``ceil((end - start) / I)``."""
    if not (math.isfinite(interval) and interval > 0) or not end > start:
        raise ValueError(f"invalid replay window [{start}, {end}) with interval {interval}")
    return int(math.ceil((end - start) / interval))


def window_slice(interval: float, share: float = FAST_WINDOW_SHARE) -> tuple[float, float]:
    """The part of a replay window of ``interval`` s the fast search keeps: its middle
    ``share``, ``[(1 - share) I / 2, (1 + share) I / 2)`` s from the window's start."""
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    lo = (1.0 - share) * interval / 2.0
    return lo, lo + share * interval


def request_windows(arrivals: np.ndarray, start: float, interval: float,
                    num: int) -> np.ndarray:
    """Window of each request: ``floor((arrival - start) / interval)``, clipped to
    ``[0, num - 1]`` (a last, partial window's arrivals may pass the replay's end; DESIGN 4.3)."""
    index = np.floor((np.asarray(arrivals, dtype=np.float64) - start) / interval)
    return np.clip(index, 0, num - 1).astype(np.int64)


def select_training_windows(workload: Any, start: float, end: float, interval: float,
                            share: float = FAST_WINDOW_SHARE) -> WindowSelection:
    """The fast search's rule (DESIGN 7.8) on the replay ``workload`` of ``[start, end)``
    (s) generated in windows of ``interval`` s.

    Keeps the requests in the middle ``share`` of every window (:func:`window_slice`): a
    sample of every stretch of the day, so the models' shares and the daily cycle of the load
    are those of the whole replay. Then, for every model with requests in the replay but none
    kept, the requests of that model in its busiest window (most requests; the first of equal
    ones), so that every model with requests is represented. Arrival times are unchanged.
    """
    num = num_windows(start, end, interval)
    lo, hi = window_slice(interval, share)
    arrivals = np.asarray(workload.arrivals, dtype=np.float64)
    window = request_windows(arrivals, start, interval, num)
    offset = arrivals - start - window * interval
    mask = (offset >= lo) & (offset < hi)
    ids = np.asarray(workload.model_ids, dtype=np.int64)
    num_models = len(workload.model_names)
    known = ids >= 0
    counts = np.zeros((num_models, num), dtype=np.int64)
    np.add.at(counts, (ids[known], window[known]), 1)
    kept = np.bincount(ids[mask & known], minlength=num_models)
    added = []
    for m in np.flatnonzero((counts.sum(axis=1) > 0) & (kept == 0)):
        busiest = int(np.argmax(counts[m]))
        mask |= (ids == m) & (window == busiest)
        added.append((int(m), busiest))
    return WindowSelection(num, (lo, hi), tuple(added), mask)


def uses_fast_search(case: Case) -> bool:
    """Whether ``case``'s policy trains on a reduced workload: a fast trace case of a policy
    of :data:`FAST_SEARCH_POLICIES` whose replay windows last at least
    :data:`FAST_MIN_WINDOW_SECONDS` (MAF2's 5400 s; not MAF1's 60 s)."""
    return (case.search == SEARCH_FAST and isinstance(case.workload, TraceWorkload)
            and case.policy in FAST_SEARCH_POLICIES
            and case.workload.interval_seconds >= FAST_MIN_WINDOW_SECONDS)


def fast_training_workload(case: Case, train: Any) -> Any:
    """What ``case``'s policy trains on: ``train`` reduced by :func:`select_training_windows`
    when :func:`uses_fast_search`, else ``train`` itself."""
    if not uses_fast_search(case):
        return train
    spec = case.workload
    assert isinstance(spec, TraceWorkload)
    window = spec.train_trace_window
    selection = select_training_windows(train, float(window.start_seconds),
                                         float(window.end_seconds), spec.interval_seconds)
    return train[selection.mask]
