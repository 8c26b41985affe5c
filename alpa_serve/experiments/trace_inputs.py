"""The workload inputs of trace cases: adapter between experiment cases and the Azure trace
replay (``alpa_serve.workload.trace``).

Keeps every use of the trace API in one place: loading a trace by source name
(cached per process) and replaying a window for a case's models.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping, Optional, Union

from alpa_serve.experiments.cases import Case, TraceWorkload
from alpa_serve.workload import trace as trace_module
from alpa_serve.workload.trace import Trace
from alpa_serve.workload.trace_defs import TraceWindow
from alpa_serve.workload.workload import Workload

logger = logging.getLogger(__name__)

_CACHE: dict[str, Trace] = {}


@dataclass(frozen=True)
class Replay:
    """A replayed window: the merged workload (SLOs unset) and per-model rate (req/s) and CV."""

    workload: Workload
    rates: tuple[float, ...]
    cvs: tuple[float, ...]


def load_trace(source: str) -> Trace:
    """Load (or build and cache) the trace of ``source`` (``maf1``, ``maf1-standin``, ...)."""
    if source not in _CACHE:
        logger.info("loading trace %s", source)
        _CACHE[source] = trace_module.load_trace(source)
    return _CACHE[source]


@dataclass(frozen=True)
class TraceHandle:
    """A reference to a preprocessed trace cache on a shared file system.

    Workers on the same machine open it memory-mapped (:meth:`open`), so a trace
    of a gigabyte is shared through the page cache instead of being copied into
    every worker or the object store.
    """

    source: str
    cache_path: str

    def open(self) -> Trace:
        """The :class:`~alpa_serve.workload.trace.Trace` (cached per process)."""
        key = f"{self.source}@{self.cache_path}"
        if key not in _CACHE:
            _CACHE[key] = trace_module.open_trace(self.source, self.cache_path)
        return _CACHE[key]


def handle_of(trace: Trace) -> TraceHandle:
    """A :class:`TraceHandle` of a loaded trace."""
    return TraceHandle(source=str(trace.source), cache_path=str(trace.cache_path))


#: What a run passes for a trace source: the loaded trace or a handle of its cache.
TraceSource = Union[Trace, TraceHandle]


def get_trace(source: str, traces: Optional[Mapping[str, TraceSource]] = None) -> Trace:
    """The trace of ``source``: from ``traces`` if given there (a loaded trace or a
    :class:`TraceHandle`), else :func:`load_trace`."""
    if traces is not None and source in traces:
        trace = traces[source]
        return trace.open() if isinstance(trace, TraceHandle) else trace
    return load_trace(source)


def _parsed(spec: TraceWorkload, window: Union[TraceWindow, tuple[str, str]]) -> TraceWindow:
    """``window`` as a :class:`TraceWindow`: the case's own parsed window when it is one of
    the case's windows (parsed once, when the case was built), else parsed now."""
    if isinstance(window, TraceWindow):
        return window
    for parsed in (spec.test_trace_window, spec.train_trace_window):
        if parsed.strings == tuple(window):
            return parsed
    return TraceWindow.parse(*window)


def replay(trace: Trace, case: Case, window: Union[TraceWindow, tuple[str, str]]) -> Replay:
    """Replay ``window`` of ``trace`` for the models of ``case`` (DESIGN 4.3); ``window`` is
    one of the case's parsed windows (``case.workload.test_trace_window``, ...) or a
    ``(start, end)`` pair of strings.

    The seed counter starts at 0 for every replay (train and test replays are
    independent); the workload's SLOs are left at 0 for the case to set.
    """
    spec = case.workload
    if not isinstance(spec, TraceWorkload):
        raise TypeError(f"case {case.case_id} has no trace workload")
    result = trace.replay_window(case.model_names, _parsed(spec, window),
                                 interval_seconds=spec.interval_seconds,
                                 rate_scale=spec.rate_scale, cv_scale=spec.cv_scale, seed=0)
    workload = result.to_workload(0.0, model_names=case.model_names)
    return Replay(workload=workload, rates=tuple(float(r) for r in result.rates),
                  cvs=tuple(float(c) for c in result.cvs))
