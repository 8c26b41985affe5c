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
and generates a replay's arrivals. The source names (:data:`SOURCES`) are the registered formats
and their stand-ins (:mod:`alpa_serve.workload.standin`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Optional, Sequence, TypeVar, Union

import numpy as np

from alpa_serve.workload import portable_math as pm, standin
from alpa_serve.workload.arrival import GammaProcess
from alpa_serve.workload.tempdirs import make_temp_dir, remove_stale_temp_dirs
from alpa_serve.workload.trace_defs import (
    MAF1_COLUMNS,
    MAF1_FILE_TEMPLATE,
    MAF2_COLUMNS,
    MAF2_FILE_NAME,
    MAF_DAYS,
    MINUTES_PER_DAY,
    SECONDS_PER_DAY,
    STANDIN_SUFFIX,
    TraceFormatError,
    TraceNotFoundError,
    TraceWindowError,
    default_cache_dir,
    parse_time,
)
from alpa_serve.workload.workload import SortKind, Workload

__all__ = [
    "SOURCES", "TRACE_FORMATS", "TRACE_PATH_VARIABLES", "register_format", "trace_format",
    "Trace", "Maf1Trace", "Maf2Trace", "TraceReplay", "open_trace", "load_trace",
    "fit_gamma_window",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

# Bump when the preprocessed layout changes: old caches are then ignored, not misread.
_CACHE_VERSION = 1
# Hidden temporary folders of the preprocessing (removed when stale, see tempdirs).
_TMP_PREFIX = ".tmp-"
_BUILD_PREFIX = ".build-"
# Added to MAF2 inter-arrival gaps before the Gamma fit (DESIGN 4.3): identical invocation
# times would give zero gaps, on which the Gamma log-likelihood is undefined.
_GAP_EPS = 1e-6
# Denominator guard of the replay's CV statistic (DESIGN 4.1, ModelData.cv).
_CV_EPS = 1e-5
# A fitted rate larger than this multiple of the window's empirical rate is replaced by the
# empirical rate (the original artifact's rule; strict comparison).
_FIT_RATE_FACTOR = 5.0


# ----------------------------------------------------------------------------- helpers

def _standin_hint(kind: str) -> str:
    return (f"The real {kind.upper()} dataset cannot be downloaded here. Either point "
            f"${TRACE_FORMATS[kind].path_variable} (or the path argument) at your copy, or use "
            f"the synthetic stand-in: load_trace('{kind}{STANDIN_SUFFIX}') / workload name "
            f"'{kind}{STANDIN_SUFFIX}' (generated on first use).")


def _check_window(start: str, end: str, num_days: int) -> tuple[int, int]:
    s, e = parse_time(start), parse_time(end)
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


def gamma_mle_floc0(data: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood Gamma (shape, scale) of positive ``data`` with the location fixed at 0.

    The computation of ``scipy.stats.gamma.fit(data, floc=0)`` (scipy 1.17, the pinned version:
    the shape solves ``log(a) - digamma(a) = log(mean) - mean(log data)`` by Brent's method
    between 0.6 and 1.4 times the closed-form estimate; scale = mean / shape), with the logs of
    :mod:`alpa_serve.workload.portable_math`, so the fit has the same bits on every CPU (numpy's
    own log differs in the last bit on AVX-512 CPUs). Raises ValueError where scipy raises.
    """
    from scipy import optimize, special

    pm.check_portable()
    data = np.asarray(data, dtype=np.float64)
    if not np.isfinite(data).all():
        raise ValueError("The data contains non-finite values.")
    if np.any(data <= 0):
        raise ValueError("gamma fit with floc=0 needs positive data")
    xbar = data.mean()
    s = np.float64(pm.log_scalar(xbar)) - pm.log(data).mean()
    aest = (3 - s + np.sqrt((s - 3) ** 2 + 24 * s)) / (12 * s)
    xa = aest * (1 - 0.4)
    xb = aest * (1 + 0.4)
    a = optimize.brentq(lambda a: pm.log_scalar(a) - special.digamma(a) - s, xa, xb, disp=0)
    return float(a), float(xbar / a)


def fit_gamma_window(times: np.ndarray, interval: float) -> Optional[tuple[float, float]]:
    """Gamma (rate req/s, cv) fitted to the invocation times (s, sorted) of one MAF2 window.

    The published ``scipy.stats.gamma.fit(gaps + 1e-6, floc=0)``, computed by
    :func:`gamma_mle_floc0`: rate = 1/(shape*scale), cv = sqrt(1/shape).
    Returns None with fewer than 2 gaps, a NaN fit, or a fit that raises. A fitted rate strictly
    greater than 5x the empirical rate (count / ``interval``) is replaced by the empirical rate.
    """
    if len(times) < 3:
        return None
    gaps = np.diff(times) + _GAP_EPS
    try:
        with warnings.catch_warnings():
            # Degenerate windows (e.g. identical gaps) make the fit warn before it raises.
            warnings.simplefilter("ignore", RuntimeWarning)
            shape, scale = gamma_mle_floc0(gaps)
    except Exception as e:  # the published code treated a failed fit as "no arrivals"
        logger.debug("gamma fit failed (%s): window gives no arrivals", e)
        return None
    if not (np.isfinite(shape) and np.isfinite(scale)) or np.isnan(shape) or np.isnan(scale):
        return None
    rate = 1 / (shape * scale)
    cv = math.sqrt(1 / shape)
    empirical = len(times) / interval
    if rate > _FIT_RATE_FACTOR * empirical:
        rate = empirical
    return float(rate), float(cv)


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
        """Replay the window ``[start, end)`` onto ``models`` (DESIGN 4.3).

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
        s, e = _check_window(start, end, self.num_days)
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


# ----------------------------------------------------------------------------- MAF1

def _read_maf1_day(path: Path) -> tuple[list[str], np.ndarray]:
    """(HashFunction per row, int32 counts [rows, 1440]) of one daily file."""
    import pandas as pd

    try:
        header = pd.read_csv(path, nrows=0).columns.tolist()
    except Exception as e:  # pandas raises many types for garbage input
        raise TraceFormatError(f"cannot read MAF1 file {str(path)!r}: {e}") from e
    if header != MAF1_COLUMNS:
        shown = header[:6] + (["..."] if len(header) > 6 else [])
        raise TraceFormatError(
            f"MAF1 file {str(path)!r} has columns {shown} ({len(header)} in all); expected "
            f"HashOwner, HashApp, HashFunction, Trigger, 1..1440 (1444 columns)")
    dtypes = {c: str for c in MAF1_COLUMNS[:4]}
    try:
        df = pd.read_csv(path, dtype=dtypes, engine="c")
        counts = df.iloc[:, 4:].to_numpy()
    except Exception as e:
        raise TraceFormatError(f"cannot parse MAF1 file {str(path)!r}: {e}") from e
    if counts.dtype.kind not in "iu":
        raise TraceFormatError(f"MAF1 file {str(path)!r}: per-minute counts must be integers "
                               f"(found dtype {counts.dtype}, missing or non-numeric cells?)")
    if counts.size and counts.min() < 0:
        raise TraceFormatError(f"MAF1 file {str(path)!r}: negative invocation counts")
    if counts.size and counts.max() > np.iinfo(np.int32).max:
        raise TraceFormatError(f"MAF1 file {str(path)!r}: counts exceed int32")
    funcs = df["HashFunction"].tolist()
    if any(not isinstance(f, str) or not f for f in funcs):
        raise TraceFormatError(f"MAF1 file {str(path)!r}: empty HashFunction values")
    return funcs, counts.astype(np.int32, copy=False)


@register_format
class Maf1Trace(Trace):
    """MAF1: per-minute invocation counts, cached as a minute-major sparse matrix (``indptr``
    over the ``num_days * 1440`` minutes; ``func`` and ``count`` per non-zero cell,
    memory-mapped). The raw data is a directory of daily CSVs d01..dK."""

    kind = "maf1"
    path_variable = "ALPA_SERVE_MAF1_PATH"

    func: np.ndarray
    count: np.ndarray

    @classmethod
    def raw_files(cls, path: Path) -> list[Path]:
        """The daily files d01..dK found in the directory ``path`` (contiguous from d01)."""
        raw_dir = path
        if not raw_dir.is_dir():
            raise TraceNotFoundError(
                f"MAF1 directory not found: {str(raw_dir)!r}; expected a directory with daily "
                f"files {MAF1_FILE_TEMPLATE.format(day=1)} .. d{MAF_DAYS:02d}.csv. "
                + _standin_hint("maf1"))
        files: list[Path] = []
        for day in range(1, MAF_DAYS + 1):
            base = raw_dir / MAF1_FILE_TEMPLATE.format(day=day)
            cands = [p for p in (base, base.with_name(base.name + ".gz")) if p.is_file()]
            if not cands:
                break
            files.append(cands[0])
        if not files:
            raise TraceNotFoundError(
                f"no MAF1 daily files in {str(raw_dir)!r}: expected "
                f"{MAF1_FILE_TEMPLATE.format(day=1)} (.. d{MAF_DAYS:02d}, optionally .gz). "
                + _standin_hint("maf1"))
        later = [d for d in range(len(files) + 2, MAF_DAYS + 1)
                 if (raw_dir / MAF1_FILE_TEMPLATE.format(day=d)).exists()
                 or (raw_dir / (MAF1_FILE_TEMPLATE.format(day=d) + ".gz")).exists()]
        if later:
            raise TraceFormatError(f"MAF1 directory {str(raw_dir)!r} misses day "
                                   f"{len(files) + 1} but has later days {later}: days must be "
                                   f"contiguous from d01")
        if len(files) < MAF_DAYS:
            logger.warning("MAF1 directory %s has %d of %d days; replays are limited to them",
                           raw_dir, len(files), MAF_DAYS)
        return files

    @classmethod
    def preprocess(cls, files: list[Path], out_dir: Path) -> None:
        """Convert the daily CSVs ``files`` into the minute-major sparse cache at ``out_dir``.

        A function missing on a day has zeros that day; duplicate ``HashFunction`` rows within a
        day are summed (logged).
        """
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        index: dict[str, int] = {}
        ids: list[str] = []
        tmp = make_temp_dir(out_dir.parent, _TMP_PREFIX)
        try:
            indptr_parts = [np.zeros(1, dtype=np.int64)]
            nnz = 0
            max_count = 0
            day_files = []
            for day, path in enumerate(files):
                logger.info("preprocessing MAF1 day %d: %s", day + 1, path.name)
                funcs, counts = _read_maf1_day(path)
                gidx = np.empty(len(funcs), dtype=np.int32)
                for r, f in enumerate(funcs):
                    g = index.get(f)
                    if g is None:
                        g = index[f] = len(ids)
                        ids.append(f)
                    gidx[r] = g
                if len(np.unique(gidx)) != len(gidx):
                    logger.warning("MAF1 %s: duplicate HashFunction rows summed", path.name)
                # Minute-major: nonzero of the transposed matrix is ordered by (minute, row).
                ct = np.ascontiguousarray(counts.T)
                minute, row = np.nonzero(ct)
                vals = ct[minute, row]
                fn = gidx[row]
                per_min = np.bincount(minute, minlength=MINUTES_PER_DAY).astype(np.int64)
                indptr_parts.append(nnz + np.cumsum(per_min))
                nnz += len(vals)
                max_count = max(max_count, int(vals.max()) if len(vals) else 0)
                np.save(tmp / f"func{day:02d}.npy", fn.astype(np.int32))
                np.save(tmp / f"count{day:02d}.npy", vals.astype(np.int32))
                day_files.append(day)
                del counts, ct, minute, row, vals, fn
            # The narrowest exact dtypes: uint16 halves the cache when they fit (46k functions
            # and per-minute counts below 65536 in the stand-in).
            u16 = np.iinfo(np.uint16).max
            func_dt = np.uint16 if len(ids) - 1 <= u16 else np.int32
            count_dt = np.uint16 if max_count <= u16 else np.int32
            build = make_temp_dir(tmp, _BUILD_PREFIX)
            func_mm = np.lib.format.open_memmap(build / "func.npy", mode="w+", dtype=func_dt,
                                                shape=(nnz,))
            count_mm = np.lib.format.open_memmap(build / "count.npy", mode="w+",
                                                 dtype=count_dt, shape=(nnz,))
            pos = 0
            for day in day_files:
                f = np.load(tmp / f"func{day:02d}.npy")
                c = np.load(tmp / f"count{day:02d}.npy")
                func_mm[pos:pos + len(f)] = f
                count_mm[pos:pos + len(c)] = c
                pos += len(f)
            func_mm.flush()
            count_mm.flush()
            del func_mm, count_mm
            np.save(build / "indptr.npy", np.concatenate(indptr_parts))
            np.save(build / "function_ids.npy", np.array(ids, dtype=np.str_))
            (build / "meta.json").write_text(json.dumps({
                "kind": "maf1", "version": _CACHE_VERSION, "num_days": len(files),
                "num_functions": len(ids), "nnz": int(nnz),
                "files": [p.name for p in files]}, indent=1))
            _publish(build, out_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _open(self, cache: Path) -> None:
        # Memory-mapped: a window reads only its slice.
        self.func = np.load(cache / "func.npy", mmap_mode="r")
        self.count = np.load(cache / "count.npy", mmap_mode="r")
        expected = self.num_days * MINUTES_PER_DAY + 1
        if len(self.indptr) != expected or self.indptr[-1] != len(self.func):
            raise TraceFormatError(f"corrupt MAF1 cache {str(cache)!r}; delete it")

    def function_totals(self) -> np.ndarray:
        return np.bincount(np.asarray(self.func),
                           weights=np.asarray(self.count, dtype=np.float64),
                           minlength=self.num_functions).astype(np.int64)

    def minute_totals(self) -> np.ndarray:
        cs = np.concatenate([[0], np.cumsum(np.asarray(self.count, dtype=np.int64))])
        return cs[self.indptr[1:]] - cs[self.indptr[:-1]]

    def _generate(self, M: int, s: int, e: int, interval: float, rate_scale: float,
                  cv_scale: float, seed: int) -> _Generated:
        if interval % 60 != 0:
            raise ValueError(f"MAF1 has per-minute counts: interval_seconds must be a multiple "
                             f"of 60, got {interval}")
        slots = int(interval // 60)
        m0, m1 = s // 60, e // 60
        lo, hi = int(self.indptr[m0]), int(self.indptr[m1])
        func = np.asarray(self.func[lo:hi])
        count = np.asarray(self.count[lo:hi], dtype=np.int64)
        minute = np.repeat(np.arange(m1 - m0, dtype=np.int64),
                           np.diff(self.indptr[m0:m1 + 1]))
        # Functions with an invocation in the window, in function order (count > 0 always
        # holds for stored cells; the filter guards hand-made caches).
        nz = count > 0
        func, count, minute = func[nz], count[nz], minute[nz]
        active = np.unique(func)
        rank = np.searchsorted(active, func)
        model = rank % M
        nwin = -(-(m1 - m0) // slots)
        # Sum into fresh per-model window histograms (the cached trace is never modified).
        hist = np.bincount(model * nwin + minute // slots, weights=count,
                           minlength=M * nwin).reshape(M, nwin)
        wstarts = s + np.arange(nwin) * interval
        wrates = np.zeros((M, nwin))
        wcvs = np.zeros((M, nwin))
        arrivals = []
        for m in range(M):
            parts = []
            for k in range(nwin):
                h = hist[m, k]
                if h == 0:
                    continue
                rate = h / interval * rate_scale
                proc = GammaProcess(rate, cv_scale)
                parts.append(proc.generate_arrivals(s + k * interval, interval, seed))
                seed += 1
                wrates[m, k], wcvs[m, k] = rate, cv_scale
            arrivals.append(np.concatenate(parts) if parts else np.zeros(0))
        fpm = np.bincount(np.arange(len(active)) % M, minlength=M)
        return _Generated(arrivals, wstarts, wrates, wcvs, seed, fpm, len(active))


# ----------------------------------------------------------------------------- MAF2

@register_format
class Maf2Trace(Trace):
    """MAF2: invocation times, cached per function (``indptr`` over functions; ``times``
    sorted within each function, memory-mapped; ``app_ids`` per function). The raw data is the
    invocation CSV (or a directory holding it)."""

    kind = "maf2"
    path_variable = "ALPA_SERVE_MAF2_PATH"

    times: np.ndarray
    app_ids: np.ndarray

    @classmethod
    def raw_files(cls, path: Path) -> list[Path]:
        raw_file = path / MAF2_FILE_NAME if path.is_dir() else path
        if not raw_file.is_file():
            raise TraceNotFoundError(
                f"MAF2 file not found: {str(raw_file)!r}; expected {MAF2_FILE_NAME} "
                f"(CSV: app,func,end_timestamp,duration). " + _standin_hint("maf2"))
        return [raw_file]

    @classmethod
    def preprocess(cls, files: list[Path], out_dir: Path) -> None:
        """Convert the invocation CSV (``files[0]``) into per-function sorted invocation times
        at ``out_dir``. Invocation time (s since the trace start) = ``end_timestamp -
        duration``."""
        import pandas as pd

        (raw_file,) = files
        try:
            header = pd.read_csv(raw_file, nrows=0).columns.tolist()
        except Exception as e:
            raise TraceFormatError(f"cannot read MAF2 file {str(raw_file)!r}: {e}") from e
        if header != MAF2_COLUMNS:
            raise TraceFormatError(f"MAF2 file {str(raw_file)!r} has columns {header}; "
                                   f"expected {MAF2_COLUMNS}")
        try:
            df = pd.read_csv(raw_file, dtype={"app": str, "func": str,
                                              "end_timestamp": np.float64,
                                              "duration": np.float64})
        except Exception as e:
            raise TraceFormatError(f"cannot parse MAF2 file {str(raw_file)!r} (end_timestamp "
                                   f"and duration must be numbers of seconds): {e}") from e
        if df.isna().any().any():
            raise TraceFormatError(f"MAF2 file {str(raw_file)!r} has empty cells")
        times = (df["end_timestamp"].to_numpy(np.float64) - df["duration"].to_numpy(np.float64))
        if not np.all(np.isfinite(times)):
            raise TraceFormatError(f"MAF2 file {str(raw_file)!r} has non-finite timestamps")
        codes, uniques = pd.factorize(df["func"], sort=False)  # first-appearance order
        apps = df["app"].to_numpy()
        first_row = np.full(len(uniques), -1, dtype=np.int64)
        # First row of each function: reversed assignment leaves the smallest index.
        first_row[codes[::-1]] = np.arange(len(codes))[::-1]
        order = np.lexsort((times, codes))
        indptr = np.zeros(len(uniques) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum(np.bincount(codes, minlength=len(uniques)))
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        build = make_temp_dir(out_dir.parent, _BUILD_PREFIX)
        try:
            np.save(build / "indptr.npy", indptr)
            np.save(build / "times.npy", times[order])
            np.save(build / "function_ids.npy", np.array([str(u) for u in uniques],
                                                         dtype=np.str_))
            np.save(build / "app_ids.npy", np.array([str(apps[r]) for r in first_row],
                                                    dtype=np.str_))
            (build / "meta.json").write_text(json.dumps({
                "kind": "maf2", "version": _CACHE_VERSION, "num_days": MAF_DAYS,
                "num_functions": len(uniques), "num_invocations": int(len(times)),
                "files": [raw_file.name]}, indent=1))
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
            raise
        _publish(build, out_dir)

    def _open(self, cache: Path) -> None:
        self.times = np.load(cache / "times.npy", mmap_mode="r")
        self.app_ids = np.load(cache / "app_ids.npy")
        if len(self.indptr) != len(self.function_ids) + 1 or \
                self.indptr[-1] != len(self.times):
            raise TraceFormatError(f"corrupt MAF2 cache {str(cache)!r}; delete it")

    def function_totals(self) -> np.ndarray:
        return np.diff(self.indptr).astype(np.int64)

    def minute_totals(self) -> np.ndarray:
        t = np.asarray(self.times)
        m = np.floor(t / 60).astype(np.int64)
        m = m[(m >= 0) & (m < self.num_days * MINUTES_PER_DAY)]
        return np.bincount(m, minlength=self.num_days * MINUTES_PER_DAY)

    def function_times(self, f: int) -> np.ndarray:
        """Sorted invocation times (s) of function ``f``."""
        return np.asarray(self.times[self.indptr[f]:self.indptr[f + 1]])

    def _generate(self, M: int, s: int, e: int, interval: float, rate_scale: float,
                  cv_scale: float, seed: int) -> _Generated:
        F = self.num_functions
        slices = []
        for f in range(F):
            t = self.times[self.indptr[f]:self.indptr[f + 1]]
            a, b = np.searchsorted(t, [s, e], side="left")
            if b > a:
                slices.append(np.asarray(t[a:b]))
        nact = len(slices)
        edges = [s + k * interval for k in range(int(math.ceil((e - s) / interval)))]
        edges = [x for x in edges if x < e] + [float(e)]
        nwin = len(edges) - 1
        wstarts = np.array(edges[:-1], dtype=np.float64)
        wrates = np.zeros((M, nwin))
        wcvs = np.zeros((M, nwin))
        arrivals = []
        for m in range(M):
            mine = slices[m::M]
            times = np.sort(np.concatenate(mine)) if mine else np.zeros(0)
            bounds = np.searchsorted(times, edges, side="left")
            parts = []
            for k in range(nwin):
                fit = fit_gamma_window(times[bounds[k]:bounds[k + 1]], interval)
                if fit is None:
                    continue
                rate, cv = fit[0] * rate_scale, fit[1] * cv_scale
                if not (math.isfinite(rate) and rate > 0 and math.isfinite(cv) and cv > 0):
                    # A degenerate fit (e.g. identical gaps -> infinite shape) cannot drive a
                    # Gamma process; treat it like a failed fit.
                    logger.debug("degenerate gamma fit rate=%s cv=%s: no arrivals", rate, cv)
                    continue
                parts.append(GammaProcess(rate, cv).generate_arrivals(edges[k], interval, seed))
                seed += 1
                wrates[m, k], wcvs[m, k] = rate, cv
            arrivals.append(np.concatenate(parts) if parts else np.zeros(0))
        fpm = np.bincount(np.arange(nact) % M, minlength=M)
        return _Generated(arrivals, wstarts, wrates, wcvs, seed, fpm, nact)


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
