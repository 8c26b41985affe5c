"""Azure Functions traces (DESIGN 4.3): one class per raw format, a preprocessed cache, the replay.

Sources and their raw formats (the datasets cannot be downloaded here; users bring the files):

* **MAF1** (Azure Functions 2019, :class:`Maf1Trace`): daily CSVs
  ``invocations_per_function_md.anon.dNN.csv`` (NN = 01..14; ``.csv.gz`` is accepted too) with
  columns ``HashOwner, HashApp, HashFunction, Trigger, 1..1440`` (per-minute invocation counts).
  Functions are keyed by ``HashFunction``.
* **MAF2** (Azure Functions 2021, :class:`Maf2Trace`):
  ``AzureFunctionsInvocationTraceForTwoWeeksJan2021.txt``, a CSV with columns
  ``app, func, end_timestamp, duration`` (seconds since the trace start); the invocation time is
  ``end_timestamp - duration``. Functions are keyed by ``func``.

Both are preprocessed once into a cache directory (keyed by source name and a fingerprint of the
raw files) and memory-mapped from there:

* MAF1: a minute-major sparse matrix (``indptr`` over the ``num_days * 1440`` minutes, ``func``
  and ``count`` per non-zero cell), so a window is one contiguous slice;
* MAF2: per-function sorted invocation times (``indptr`` over functions, ``times``).

Function order is first appearance (MAF1: day-1 functions in file order, then functions first
seen on later days; MAF2: first appearance of ``func``).

Time origin: every time in a replay (window starts, generated arrivals) is in **seconds since
the start of the trace** (day 0, 00:00), e.g. MAF2's "13.0.0" window starts at 1123200 s.

Formats: a subclass of :class:`Trace` per raw format, registered by its name with
:func:`register_format`; it finds and checks the raw files, preprocesses them, opens its cache
and generates a replay's arrivals. The formats live beside this module:
:mod:`alpa_serve.workload.maf1` (:class:`Maf1Trace`) and :mod:`alpa_serve.workload.maf2`
(:class:`Maf2Trace`, with the Gamma fit :func:`fit_gamma_window`); this module keeps the
interface, the registry, the loader and the replay's shared parts, and re-exports both.
The source names (:data:`SOURCES`) are the registered formats and their stand-ins
(:mod:`alpa_serve.workload.standin`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Optional, Sequence, TypeVar, Union

import numpy as np

from alpa_serve.workload import standin
from alpa_serve.workload.tempdirs import remove_stale_temp_dirs
from alpa_serve.workload.trace_defs import (  # the format constants: importable from here too
    MAF1_COLUMNS as MAF1_COLUMNS,
    MAF1_FILE_TEMPLATE as MAF1_FILE_TEMPLATE,
    MAF2_COLUMNS as MAF2_COLUMNS,
    MAF2_FILE_NAME as MAF2_FILE_NAME,
    MAF_DAYS as MAF_DAYS,
    MINUTES_PER_DAY as MINUTES_PER_DAY,
    SECONDS_PER_DAY,
    STANDIN_SUFFIX,
    TraceFormatError,
    TraceNotFoundError,
    TraceWindow,
    TraceWindowError,
    default_cache_dir,
    parse_time as parse_time,
)
from alpa_serve.workload.workload import SortKind, Workload

__all__ = [
    "SOURCES", "TRACE_FORMATS", "TRACE_PATH_VARIABLES", "register_format", "trace_format",
    "Trace", "Maf1Trace", "Maf2Trace", "TraceReplay", "open_trace", "load_trace",
    "fit_gamma_window", "gamma_mle_floc0",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

# Bump when the preprocessed layout changes: old caches are then ignored, not misread.
_CACHE_VERSION = 1
# Hidden temporary folders of the preprocessing (removed when stale, see tempdirs).
_TMP_PREFIX = ".tmp-"
_BUILD_PREFIX = ".build-"
# Denominator guard of the replay's CV statistic (DESIGN 4.1, ModelData.cv).
_CV_EPS = 1e-5


# ----------------------------------------------------------------------------- helpers

def _standin_hint(kind: str) -> str:
    return (f"The real {kind.upper()} dataset cannot be downloaded here. Either point "
            f"${TRACE_FORMATS[kind].path_variable} (or the path argument) at your copy, or use "
            f"the synthetic stand-in: load_trace('{kind}{STANDIN_SUFFIX}') / workload name "
            f"'{kind}{STANDIN_SUFFIX}' (generated on first use).")


def _check_window(window: TraceWindow, num_days: int) -> tuple[int, int]:
    start, end = window.strings
    s, e = window.start_seconds, window.end_seconds
    if e <= s:
        raise TraceWindowError(f"replay window end {end!r} must be after start {start!r}")
    limit = num_days * SECONDS_PER_DAY
    if e > limit:
        raise TraceWindowError(f"replay window {start!r}-{end!r} ends after the trace's "
                               f"{num_days} days (last valid end: '{num_days - 1}.23.60')")
    return s, e


def _fingerprint(files: Sequence[Path]) -> str:
    """Short hash of the raw files' names, sizes and mtimes: a changed file invalidates."""
    h = hashlib.sha256(f"v{_CACHE_VERSION}".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:12]


def _publish(build: Path, out_dir: Path) -> None:
    """Move a finished cache into place atomically (concurrent builders: first one wins)."""
    try:
        os.replace(build, out_dir)
    except OSError:
        # out_dir appeared meanwhile (another process): keep theirs.
        shutil.rmtree(build, ignore_errors=True)
        if not (out_dir / "meta.json").exists():
            raise


# ----------------------------------------------------------------------------- replay result

@dataclass
class TraceReplay:
    """Result of :meth:`Trace.replay`: per-model generated arrivals and statistics.

    ``arrivals[m]`` are model m's arrival times (s since the trace start, sorted); ``rates[m]``
    (req/s) = count / window length and ``cvs[m]`` = std(gaps) / (mean(gaps) + 1e-5), both 0 with
    at most one arrival (the ModelData.rate/cv placement needs). ``window_rates``/``window_cvs``
    [M, num_windows] are the Gamma parameters used per window (0 where nothing was generated).
    """

    source: str
    model_names: list[str]
    arrivals: list[np.ndarray]
    rates: np.ndarray
    cvs: np.ndarray
    start: str
    end: str
    start_seconds: float
    end_seconds: float
    interval_seconds: float
    rate_scale: float
    cv_scale: float
    seed: int
    next_seed: int
    window_starts: np.ndarray
    window_rates: np.ndarray
    window_cvs: np.ndarray
    functions_per_model: np.ndarray
    num_active_functions: int

    @property
    def name(self) -> str:
        """Workload name saying which source was used, e.g. ``maf1-standin[0.0.0-0.1.0]``."""
        return f"{self.source}[{self.start}-{self.end}]"

    @property
    def duration(self) -> float:
        """Replay window length in seconds."""
        return self.end_seconds - self.start_seconds

    def num_requests(self) -> int:
        return int(sum(len(a) for a in self.arrivals))

    def to_workload(self, slos: Union[float, Sequence[float]],
                    model_names: Optional[Sequence[str]] = None,
                    kind: SortKind = "stable") -> Workload:
        """One merged :class:`Workload` (model i -> id i) with per-model SLOs (s).

        Built with a single :meth:`Workload.merge` over all models in model order
        (DESIGN 4.1); ``kind`` is passed to the merge's argsort.
        """
        names = list(model_names) if model_names is not None else list(self.model_names)
        if len(names) != len(self.arrivals):
            raise ValueError(f"need {len(self.arrivals)} model names, got {len(names)}")
        per_model = np.asarray(slos, dtype=np.float64)
        if per_model.ndim == 0:
            per_model = np.full(len(names), float(per_model))
        if per_model.ndim != 1 or len(per_model) != len(names):
            raise ValueError(f"need one SLO per model ({len(names)}), got {per_model.size}")
        ws = [Workload._unchecked(a, np.full(len(a), i, dtype=np.int32),
                                  np.full(len(a), float(per_model[i])), names)
              for i, a in enumerate(self.arrivals)]
        if not ws:
            return Workload.empty(names)
        if len(ws) == 1:
            return Workload(ws[0].arrivals, ws[0].model_ids, ws[0].slos, names)
        return Workload.merge(*ws, kind=kind)


def _replay_stats(arr: np.ndarray, duration: float) -> tuple[float, float]:
    if len(arr) <= 1:
        return 0.0, 0.0
    gaps = np.diff(arr)
    return float(len(arr) / duration), float(np.std(gaps) / (np.mean(gaps) + _CV_EPS))



# ----------------------------------------------------------------------------- Trace (interface)

@dataclass(frozen=True)
class _Generated:
    """What a format's replay generated: per-model arrivals and the windows' Gamma parameters."""

    arrivals: list[np.ndarray]
    window_starts: np.ndarray
    window_rates: np.ndarray
    window_cvs: np.ndarray
    next_seed: int
    functions_per_model: np.ndarray
    num_active_functions: int


class Trace(ABC):
    """A preprocessed Azure Functions trace, ready to replay; one subclass per raw format.

    Made by :func:`open_trace` (raw data or a cache directory) or :func:`load_trace` (a source
    name). ``source`` is the workload label (``maf1``, ``maf2``, ``maf1-standin``,
    ``maf2-standin``, or any name starting with a format's name); ``cache_path`` the
    preprocessed directory the arrays are memory-mapped from.

    A format subclass sets :attr:`kind` (its name in :data:`TRACE_FORMATS`) and
    :attr:`path_variable` and implements :meth:`raw_files`, :meth:`preprocess`, :meth:`_open`,
    :meth:`function_totals`, :meth:`minute_totals` and :meth:`_generate`.
    """

    #: Name of the format (the source name of the real dataset), e.g. ``"maf1"``.
    kind: ClassVar[str]
    #: Environment variable naming the real dataset's path (read by :func:`load_trace`).
    path_variable: ClassVar[str]

    def __init__(self, source: str, cache: Path):
        self.source = str(source)
        self.cache_path = cache
        try:
            meta = json.loads((cache / "meta.json").read_text())
        except (OSError, ValueError) as e:
            raise TraceFormatError(f"unreadable trace cache {str(cache)!r}: {e}; delete it to "
                                   "rebuild") from e
        if meta.get("kind") != self.kind or meta.get("version") != _CACHE_VERSION:
            raise TraceFormatError(f"trace cache {str(cache)!r} holds kind={meta.get('kind')} "
                                   f"version={meta.get('version')}, expected kind={self.kind} "
                                   f"version={_CACHE_VERSION}; delete it to rebuild")
        self.meta: dict[str, Any] = meta
        self.num_days = int(meta["num_days"])
        self.function_ids: np.ndarray = np.load(cache / "function_ids.npy")
        self.indptr: np.ndarray = np.load(cache / "indptr.npy")
        self._open(cache)

    # -- the format's part

    @classmethod
    @abstractmethod
    def raw_files(cls, path: Path) -> list[Path]:
        """The raw files of the dataset at ``path``, checked to exist (else
        :class:`TraceNotFoundError` saying what was expected and how to use the stand-in)."""

    @classmethod
    @abstractmethod
    def preprocess(cls, files: list[Path], out_dir: Path) -> None:
        """Convert the raw ``files`` into the cache directory ``out_dir`` (written to a
        temporary directory and renamed; ``meta.json`` holds ``kind`` and ``version``)."""

    @abstractmethod
    def _open(self, cache: Path) -> None:
        """Load (memory-map) the format's arrays of ``cache`` and check them against
        :attr:`indptr` (:class:`TraceFormatError` if corrupt)."""

    @abstractmethod
    def function_totals(self) -> np.ndarray:
        """Total invocations per function over the whole trace (int64, function order)."""

    @abstractmethod
    def minute_totals(self) -> np.ndarray:
        """Invocations of all functions per minute of the trace (int64, num_days*1440)."""

    @abstractmethod
    def _generate(self, M: int, s: int, e: int, interval: float, rate_scale: float,
                  cv_scale: float, seed: int) -> _Generated:
        """Arrivals of the window ``[s, e)`` (s) striped onto ``M`` models (DESIGN 4.3), with
        Gamma windows of ``interval`` s and the seed counter starting at ``seed``."""

    # -- common

    @classmethod
    def ensure_cache(cls, source: str, raw: Path, cache_root: Path) -> Path:
        """The preprocessed cache of the raw data at ``raw`` under ``cache_root``, built if
        absent: ``<cache_root>/preprocessed/<source>-<fingerprint of the raw files>``."""
        files = cls.raw_files(raw)
        out = cache_root / "preprocessed" / f"{source}-{_fingerprint(files)}"
        remove_stale_temp_dirs(out.parent, (_TMP_PREFIX, _BUILD_PREFIX))
        if not (out / "meta.json").is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            logger.info("preprocessing %s trace from %s into %s", source, raw, out)
            cls.preprocess(files, out)
        return out

    @property
    def num_functions(self) -> int:
        return int(len(self.function_ids))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.source!r}, {self.num_functions} functions, "
                f"{self.num_days} days, cache={str(self.cache_path)!r})")

    def replay(self, models: Union[int, Sequence[str]], start: str, end: str,
               interval_seconds: float, rate_scale: float = 1.0, cv_scale: float = 1.0,
               seed: int = 0) -> TraceReplay:
        """Replay the window ``[start, end)`` (``"day.hour.minute"`` strings) onto ``models``:
        :meth:`replay_window` of that window."""
        return self.replay_window(models, (start, end), interval_seconds, rate_scale, cv_scale,
                                  seed)

    def replay_window(self, models: Union[int, Sequence[str]],
                      window: Union[TraceWindow, tuple[str, str]], interval_seconds: float,
                      rate_scale: float = 1.0, cv_scale: float = 1.0,
                      seed: int = 0) -> TraceReplay:
        """Replay ``window`` onto ``models`` (DESIGN 4.3); ``window`` is a :class:`TraceWindow`
        (parsed once by its maker, e.g. a case's trace workload) or a ``(start, end)`` pair of
        ``"day.hour.minute"`` strings.

        ``models``: model names, or a count M (names ``m0..m{M-1}``). Functions with no
        invocation in the window are dropped; the i-th remaining function (function order) goes
        to model ``i mod M``. Each model's window of ``interval_seconds`` (s) gets a Gamma process
        generated by the legacy generator over the full interval with the shared seed counter
        (starting at ``seed``, incremented after each window that generates):

        * MAF1 (minute counts; ``interval_seconds`` a multiple of 60): rate = h / interval *
          rate_scale, CV = cv_scale for a window with h > 0 invocations;
        * MAF2: a Gamma fit of the window's gaps (:func:`fit_gamma_window`), then rate *=
          rate_scale, CV *= cv_scale.
        """
        if isinstance(models, (int, np.integer)):
            names = [f"m{i}" for i in range(int(models))]
        else:
            names = [str(m) for m in models]
        if not names:
            raise ValueError("models must be a positive count or a non-empty list of names")
        interval = float(interval_seconds)
        if not math.isfinite(interval) or interval <= 0:
            raise ValueError(f"interval_seconds must be > 0, got {interval_seconds!r}")
        for label, v in (("rate_scale", rate_scale), ("cv_scale", cv_scale)):
            if not math.isfinite(float(v)) or float(v) <= 0:
                raise ValueError(f"{label} must be > 0 and finite, got {v!r}")
        if not isinstance(window, TraceWindow):
            window = TraceWindow.parse(*window)
        start, end = window.strings
        s, e = _check_window(window, self.num_days)
        g = self._generate(len(names), s, e, interval, float(rate_scale), float(cv_scale),
                           int(seed))
        stats = [_replay_stats(a, float(e - s)) for a in g.arrivals]
        if g.num_active_functions < len(names):
            logger.warning("%s window %s-%s has %d active functions for %d models: some models "
                           "get no requests", self.source, start, end, g.num_active_functions,
                           len(names))
        return TraceReplay(
            source=self.source, model_names=names, arrivals=g.arrivals,
            rates=np.array([x[0] for x in stats]), cvs=np.array([x[1] for x in stats]),
            start=start, end=end, start_seconds=float(s), end_seconds=float(e),
            interval_seconds=interval, rate_scale=float(rate_scale), cv_scale=float(cv_scale),
            seed=int(seed), next_seed=g.next_seed, window_starts=g.window_starts,
            window_rates=g.window_rates, window_cvs=g.window_cvs,
            functions_per_model=g.functions_per_model,
            num_active_functions=g.num_active_functions)


#: Trace formats by name (:func:`register_format`).
TRACE_FORMATS: dict[str, type[Trace]] = {}

_T = TypeVar("_T", bound=type[Trace])


def register_format(cls: _T) -> _T:
    """Class decorator: make a :class:`Trace` subclass the format named ``cls.kind``."""
    if cls.kind in TRACE_FORMATS:
        raise ValueError(f"trace format {cls.kind!r} is registered twice")
    TRACE_FORMATS[cls.kind] = cls
    return cls


# ----------------------------------------------------------------------------- the formats
# Imported here, after the interface and the registry they use (the package imports this
# module first, so these imports always find it complete up to this point); importing them
# registers them in TRACE_FORMATS.
from alpa_serve.workload.maf1 import Maf1Trace  # noqa: E402
from alpa_serve.workload.maf2 import (  # noqa: E402
    Maf2Trace,
    fit_gamma_window,
    gamma_mle_floc0,
)

# ----------------------------------------------------------------------------- sources, loader

#: Environment variable naming each real dataset's path.
TRACE_PATH_VARIABLES: dict[str, str] = {k: c.path_variable for k, c in TRACE_FORMATS.items()}
#: Source names accepted by :func:`load_trace`: the formats (real datasets) and the stand-ins
#: generated by :mod:`alpa_serve.workload.standin`.
SOURCES: tuple[str, ...] = tuple(TRACE_FORMATS) + tuple(
    f"{k}{STANDIN_SUFFIX}" for k in standin.STANDIN_KINDS)


def trace_format(source: str) -> type[Trace]:
    """The format class of a source name (the registered format its name starts with)."""
    for kind, cls in TRACE_FORMATS.items():
        if str(source).startswith(kind):
            return cls
    raise ValueError(f"unknown trace source {source!r}; expected one of {SOURCES}")


def open_trace(source: str, path: PathLike, cache_dir: Optional[PathLike] = None) -> Trace:
    """The trace of ``source`` from ``path``: raw data (MAF1: directory of daily CSVs; MAF2: the
    .txt file or a directory holding it), preprocessed once into ``cache_dir`` (default
    :func:`default_cache_dir`), or a preprocessed cache directory itself."""
    cls = trace_format(source)
    path = Path(path).expanduser()
    if (path / "meta.json").is_file():
        cache = path
    else:
        cache = cls.ensure_cache(str(source), path, Path(cache_dir) if cache_dir else
                                 default_cache_dir())
    return cls(source, cache)


def load_trace(name: str, path: Optional[PathLike] = None,
               cache_dir: Optional[PathLike] = None,
               params: Optional[standin.StandinParams] = None) -> Trace:
    """The trace for a source name.

    * ``"maf1"``/``"maf2"``: the real dataset at ``path`` or ``$ALPA_SERVE_MAF1_PATH`` /
      ``$ALPA_SERVE_MAF2_PATH``; if neither is given a :class:`TraceNotFoundError` explains how
      to use the stand-in.
    * ``"maf1-standin"``/``"maf2-standin"``: the synthetic stand-in generated (on first use,
      deterministically from ``params``, default :data:`standin.DEFAULT_PARAMS`) under
      ``cache_dir`` (default :func:`default_cache_dir`).
    """
    if name not in SOURCES:
        raise ValueError(f"unknown trace {name!r}; expected one of {SOURCES}")
    cache_root = Path(cache_dir) if cache_dir else default_cache_dir()
    if name.endswith(STANDIN_SUFFIX):
        kind = name[:-len(STANDIN_SUFFIX)]
        raw = standin.ensure_standin(kind, cache_root, params)
        return open_trace(name, raw, cache_root)
    env = TRACE_PATH_VARIABLES[name]
    chosen = path if path is not None else os.environ.get(env)
    if not chosen:
        raise TraceNotFoundError(f"no path given for the real {name.upper()} trace and ${env} "
                                 f"is not set. " + _standin_hint(name))
    return open_trace(name, Path(chosen), cache_root)
