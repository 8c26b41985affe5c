"""Azure Functions traces (DESIGN 4.3): real-format loaders, a preprocessed cache and the replay.

Sources and their raw formats (the datasets cannot be downloaded here; users bring the files):

* **MAF1** (Azure Functions 2019): daily CSVs ``invocations_per_function_md.anon.dNN.csv``
  (NN = 01..14; ``.csv.gz`` is accepted too) with columns ``HashOwner, HashApp, HashFunction,
  Trigger, 1..1440`` (per-minute invocation counts). Functions are keyed by ``HashFunction``.
* **MAF2** (Azure Functions 2021): ``AzureFunctionsInvocationTraceForTwoWeeksJan2021.txt``, a CSV
  with columns ``app, func, end_timestamp, duration`` (seconds since the trace start); the
  invocation time is ``end_timestamp - duration``. Functions are keyed by ``func``.

Both are preprocessed once into a cache directory (keyed by source name and a fingerprint of the
raw files) and memory-mapped from there:

* MAF1: a minute-major sparse matrix (``indptr`` over the ``num_days * 1440`` minutes, ``func``
  and ``count`` per non-zero cell), so a window is one contiguous slice;
* MAF2: per-function sorted invocation times (``indptr`` over functions, ``times``).

Function order is first appearance (MAF1: day-1 functions in file order, then functions first
seen on later days; MAF2: first appearance of ``func``).

Time origin: every time in a replay (window starts, generated arrivals) is in **seconds since
the start of the trace** (day 0, 00:00), e.g. MAF2's "13.0.0" window starts at 1123200 s.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from alpa_serve.workload.arrival import GammaProcess
from alpa_serve.workload.tempdirs import make_temp_dir, remove_stale_temp_dirs
from alpa_serve.workload.workload import Workload

__all__ = [
    "MAF1_FILE_TEMPLATE", "MAF2_FILE_NAME", "SOURCES",
    "TraceError", "TraceFormatError", "TraceWindowError", "TraceNotFoundError",
    "default_cache_dir", "parse_time", "Trace", "TraceReplay", "load_trace",
    "preprocess_maf1", "preprocess_maf2", "fit_gamma_window",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

MINUTES_PER_DAY = 1440
SECONDS_PER_DAY = 86400
MAF_DAYS = 14
MAF1_FILE_TEMPLATE = "invocations_per_function_md.anon.d{day:02d}.csv"
MAF1_COLUMNS = ["HashOwner", "HashApp", "HashFunction", "Trigger"] + \
    [str(i) for i in range(1, MINUTES_PER_DAY + 1)]
MAF2_FILE_NAME = "AzureFunctionsInvocationTraceForTwoWeeksJan2021.txt"
MAF2_COLUMNS = ["app", "func", "end_timestamp", "duration"]

#: Source names accepted by :func:`load_trace`; the ``-standin`` ones are generated here.
SOURCES = ("maf1", "maf2", "maf1-standin", "maf2-standin")
#: Environment variables pointing at the real datasets.
ENV_PATHS = {"maf1": "ALPA_SERVE_MAF1_PATH", "maf2": "ALPA_SERVE_MAF2_PATH"}
ENV_CACHE = "ALPA_SERVE_CACHE"

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


# ----------------------------------------------------------------------------- errors

class TraceError(ValueError):
    """Base class of trace errors that are about values (format, window)."""


class TraceFormatError(TraceError):
    """A trace file exists but does not have the expected format."""


class TraceWindowError(TraceError):
    """A replay window is malformed, outside the trace, or ends before it starts."""


class TraceNotFoundError(FileNotFoundError):
    """Trace files are missing; the message says what was expected and how to use a stand-in."""


def _standin_hint(kind: str) -> str:
    return (f"The real {kind.upper()} dataset cannot be downloaded here. Either point "
            f"${ENV_PATHS[kind]} (or the path argument) at your copy, or use the synthetic "
            f"stand-in: load_trace('{kind}-standin') / workload name '{kind}-standin' "
            f"(generated on first use; `python -m alpa_serve.workload.standin --out DIR`).")


# ----------------------------------------------------------------------------- paths, times

def default_cache_dir() -> Path:
    """Trace cache directory: ``$ALPA_SERVE_CACHE/traces`` if set, else
    ``~/.cache/alpa_serve/traces``. Generated files live there and are never committed."""
    root = os.environ.get(ENV_CACHE)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "alpa_serve"
    return base / "traces"


def parse_time(text: str) -> int:
    """Seconds since the trace start for a ``"day.hour.minute"`` string (day 0-based).

    ``"0.0.0"`` is the trace start, ``"0.1.0"`` one hour later, ``"13.23.60"`` the end of
    day 14. Hours may be 0..24 and minutes 0..60 (so day ends can be written either way).
    """
    parts = str(text).strip().split(".")
    if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
        raise TraceWindowError(f"time must be 'day.hour.minute' with non-negative integers, "
                               f"e.g. '0.1.0' or '13.23.60'; got {text!r}")
    d, h, m = (int(p) for p in parts)
    if h > 24 or m > 60:
        raise TraceWindowError(f"time {text!r}: hour must be 0..24 and minute 0..60")
    return d * SECONDS_PER_DAY + h * 3600 + m * 60


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


# ----------------------------------------------------------------------------- MAF1 raw

def _maf1_day_files(raw_dir: Path) -> list[Path]:
    """The daily files d01..dK found in ``raw_dir`` (contiguous from d01)."""
    if not raw_dir.is_dir():
        raise TraceNotFoundError(
            f"MAF1 directory not found: {str(raw_dir)!r}; expected a directory with daily files "
            f"{MAF1_FILE_TEMPLATE.format(day=1)} .. d{MAF_DAYS:02d}.csv. " + _standin_hint("maf1"))
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
        raise TraceFormatError(f"MAF1 directory {str(raw_dir)!r} misses day {len(files) + 1} "
                               f"but has later days {later}: days must be contiguous from d01")
    if len(files) < MAF_DAYS:
        logger.warning("MAF1 directory %s has %d of %d days; replays are limited to them",
                       raw_dir, len(files), MAF_DAYS)
    return files


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


def preprocess_maf1(raw_dir: PathLike, out_dir: PathLike) -> Path:
    """Convert MAF1 daily CSVs into the minute-major sparse cache at ``out_dir``.

    A function missing on a day has zeros that day; duplicate ``HashFunction`` rows within a
    day are summed (logged). Returns ``out_dir``.
    """
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    files = _maf1_day_files(raw_dir)
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
        count_mm = np.lib.format.open_memmap(build / "count.npy", mode="w+", dtype=count_dt,
                                             shape=(nnz,))
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
    return out_dir


def _publish(build: Path, out_dir: Path) -> None:
    """Move a finished cache into place atomically (concurrent builders: first one wins)."""
    try:
        os.replace(build, out_dir)
    except OSError:
        # out_dir appeared meanwhile (another process): keep theirs.
        shutil.rmtree(build, ignore_errors=True)
        if not (out_dir / "meta.json").exists():
            raise


# ----------------------------------------------------------------------------- MAF2 raw

def preprocess_maf2(raw_file: PathLike, out_dir: PathLike) -> Path:
    """Convert the MAF2 invocation CSV into per-function sorted invocation times at ``out_dir``.

    Invocation time (s since the trace start) = ``end_timestamp - duration``.
    """
    import pandas as pd

    raw_file, out_dir = Path(raw_file), Path(out_dir)
    if not raw_file.is_file():
        raise TraceNotFoundError(f"MAF2 file not found: {str(raw_file)!r}; expected "
                                 f"{MAF2_FILE_NAME} (CSV: app,func,end_timestamp,duration). "
                                 + _standin_hint("maf2"))
    try:
        header = pd.read_csv(raw_file, nrows=0).columns.tolist()
    except Exception as e:
        raise TraceFormatError(f"cannot read MAF2 file {str(raw_file)!r}: {e}") from e
    if header != MAF2_COLUMNS:
        raise TraceFormatError(f"MAF2 file {str(raw_file)!r} has columns {header}; expected "
                               f"{MAF2_COLUMNS}")
    try:
        df = pd.read_csv(raw_file, dtype={"app": str, "func": str,
                                          "end_timestamp": np.float64, "duration": np.float64})
    except Exception as e:
        raise TraceFormatError(f"cannot parse MAF2 file {str(raw_file)!r} (end_timestamp and "
                               f"duration must be numbers of seconds): {e}") from e
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
        np.save(build / "function_ids.npy", np.array([str(u) for u in uniques], dtype=np.str_))
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
    return out_dir


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
                    kind: Optional[str] = None) -> Workload:
        """One merged :class:`Workload` (model i -> id i) with per-model SLOs (s).

        Built with a single :meth:`Workload.merge` over all models in model order
        (DESIGN 4.1); ``kind`` is passed to the merge's argsort.
        """
        names = list(model_names) if model_names is not None else list(self.model_names)
        if len(names) != len(self.arrivals):
            raise ValueError(f"need {len(self.arrivals)} model names, got {len(names)}")
        if np.ndim(slos) == 0:
            slos = [float(slos)] * len(names)
        if len(slos) != len(names):
            raise ValueError(f"need one SLO per model ({len(names)}), got {len(slos)}")
        ws = [Workload._unchecked(a, np.full(len(a), i, dtype=np.int32),
                                  np.full(len(a), float(slos[i])), names)
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


def fit_gamma_window(times: np.ndarray, interval: float) -> Optional[tuple[float, float]]:
    """Gamma (rate req/s, cv) fitted to the invocation times (s, sorted) of one MAF2 window.

    ``scipy.stats.gamma.fit(gaps + 1e-6, floc=0)``: rate = 1/(shape*scale), cv = sqrt(1/shape).
    Returns None with fewer than 2 gaps, a NaN fit, or a fit that raises. A fitted rate strictly
    greater than 5x the empirical rate (count / ``interval``) is replaced by the empirical rate.
    """
    from scipy import stats

    if len(times) < 3:
        return None
    gaps = np.diff(times) + _GAP_EPS
    try:
        with warnings.catch_warnings():
            # Degenerate windows (e.g. identical gaps) make scipy warn before it raises.
            warnings.simplefilter("ignore", RuntimeWarning)
            shape, _loc, scale = stats.gamma.fit(gaps, floc=0)
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


# ----------------------------------------------------------------------------- Trace

class Trace:
    """A preprocessed Azure Functions trace, ready to replay.

    ``Trace(source, path)``: ``source`` is the workload label (``maf1``, ``maf2``,
    ``maf1-standin``, ``maf2-standin``, or any name starting with ``maf1``/``maf2``); ``path``
    is either the raw data (MAF1: directory of daily CSVs; MAF2: the .txt file or a directory
    holding it) or a preprocessed cache directory. Raw data are preprocessed once into
    ``cache_dir`` (default :func:`default_cache_dir`).
    """

    def __init__(self, source: str, path: PathLike, cache_dir: Optional[PathLike] = None):
        self.source = str(source)
        if self.source.startswith("maf1"):
            self.kind = "maf1"
        elif self.source.startswith("maf2"):
            self.kind = "maf2"
        else:
            raise ValueError(f"unknown trace source {source!r}; expected one of {SOURCES}")
        path = Path(path).expanduser()
        if (path / "meta.json").is_file():
            cache = path
        else:
            cache = self._ensure_cache(path, Path(cache_dir) if cache_dir else
                                       default_cache_dir())
        self.cache_path = cache
        self._load_cache(cache)

    # -- cache

    def _ensure_cache(self, raw: Path, cache_root: Path) -> Path:
        if self.kind == "maf1":
            files = _maf1_day_files(raw)
        else:
            raw_file = raw / MAF2_FILE_NAME if raw.is_dir() else raw
            if not raw_file.is_file():
                raise TraceNotFoundError(
                    f"MAF2 file not found: {str(raw_file)!r}; expected {MAF2_FILE_NAME} "
                    f"(CSV: app,func,end_timestamp,duration). " + _standin_hint("maf2"))
            files = [raw_file]
        out = cache_root / "preprocessed" / f"{self.source}-{_fingerprint(files)}"
        remove_stale_temp_dirs(out.parent, (_TMP_PREFIX, _BUILD_PREFIX))
        if not (out / "meta.json").is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            logger.info("preprocessing %s trace from %s into %s", self.source, raw, out)
            if self.kind == "maf1":
                preprocess_maf1(raw, out)
            else:
                preprocess_maf2(files[0], out)
        return out

    def _load_cache(self, cache: Path) -> None:
        try:
            meta = json.loads((cache / "meta.json").read_text())
        except (OSError, ValueError) as e:
            raise TraceFormatError(f"unreadable trace cache {str(cache)!r}: {e}; delete it to "
                                   "rebuild") from e
        if meta.get("kind") != self.kind or meta.get("version") != _CACHE_VERSION:
            raise TraceFormatError(f"trace cache {str(cache)!r} holds kind={meta.get('kind')} "
                                   f"version={meta.get('version')}, expected kind={self.kind} "
                                   f"version={_CACHE_VERSION}; delete it to rebuild")
        self.meta = meta
        self.num_days = int(meta["num_days"])
        self.function_ids = np.load(cache / "function_ids.npy")
        self.indptr = np.load(cache / "indptr.npy")
        if self.kind == "maf1":
            # Memory-mapped: a window reads only its slice.
            self.func = np.load(cache / "func.npy", mmap_mode="r")
            self.count = np.load(cache / "count.npy", mmap_mode="r")
            expected = self.num_days * MINUTES_PER_DAY + 1
            if len(self.indptr) != expected or self.indptr[-1] != len(self.func):
                raise TraceFormatError(f"corrupt MAF1 cache {str(cache)!r}; delete it")
        else:
            self.times = np.load(cache / "times.npy", mmap_mode="r")
            self.app_ids = np.load(cache / "app_ids.npy")
            if len(self.indptr) != len(self.function_ids) + 1 or \
                    self.indptr[-1] != len(self.times):
                raise TraceFormatError(f"corrupt MAF2 cache {str(cache)!r}; delete it")

    @property
    def num_functions(self) -> int:
        return int(len(self.function_ids))

    def __repr__(self) -> str:
        return (f"Trace({self.source!r}, {self.num_functions} functions, {self.num_days} days, "
                f"cache={str(self.cache_path)!r})")

    # -- whole-trace statistics (used by the stand-in report)

    def function_totals(self) -> np.ndarray:
        """Total invocations per function over the whole trace (int64, function order)."""
        if self.kind == "maf1":
            return np.bincount(np.asarray(self.func),
                               weights=np.asarray(self.count, dtype=np.float64),
                               minlength=self.num_functions).astype(np.int64)
        return np.diff(self.indptr).astype(np.int64)

    def minute_totals(self) -> np.ndarray:
        """Invocations of all functions per minute of the trace (int64, num_days*1440)."""
        if self.kind == "maf1":
            cs = np.concatenate([[0], np.cumsum(np.asarray(self.count, dtype=np.int64))])
            return cs[self.indptr[1:]] - cs[self.indptr[:-1]]
        t = np.asarray(self.times)
        m = np.floor(t / 60).astype(np.int64)
        m = m[(m >= 0) & (m < self.num_days * MINUTES_PER_DAY)]
        return np.bincount(m, minlength=self.num_days * MINUTES_PER_DAY)

    def function_times(self, f: int) -> np.ndarray:
        """MAF2 only: sorted invocation times (s) of function ``f``."""
        if self.kind != "maf2":
            raise TypeError("function_times is available for MAF2 traces only")
        return np.asarray(self.times[self.indptr[f]:self.indptr[f + 1]])

    # -- replay

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
        if self.kind == "maf1":
            res = self._replay_maf1(len(names), s, e, interval, float(rate_scale),
                                    float(cv_scale), int(seed))
        else:
            res = self._replay_maf2(len(names), s, e, interval, float(rate_scale),
                                    float(cv_scale), int(seed))
        arrivals, wstarts, wrates, wcvs, next_seed, fpm, nact = res
        stats = [_replay_stats(a, float(e - s)) for a in arrivals]
        if nact < len(names):
            logger.warning("%s window %s-%s has %d active functions for %d models: some models "
                           "get no requests", self.source, start, end, nact, len(names))
        return TraceReplay(
            source=self.source, model_names=names, arrivals=arrivals,
            rates=np.array([x[0] for x in stats]), cvs=np.array([x[1] for x in stats]),
            start=start, end=end, start_seconds=float(s), end_seconds=float(e),
            interval_seconds=interval, rate_scale=float(rate_scale), cv_scale=float(cv_scale),
            seed=int(seed), next_seed=next_seed, window_starts=wstarts, window_rates=wrates,
            window_cvs=wcvs, functions_per_model=fpm, num_active_functions=nact)

    def _replay_maf1(self, M: int, s: int, e: int, interval: float, rate_scale: float,
                     cv_scale: float, seed: int):
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
        return arrivals, wstarts, wrates, wcvs, seed, fpm, len(active)

    def _replay_maf2(self, M: int, s: int, e: int, interval: float, rate_scale: float,
                     cv_scale: float, seed: int):
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
        return arrivals, wstarts, wrates, wcvs, seed, fpm, nact


# ----------------------------------------------------------------------------- loader

def load_trace(name: str, path: Optional[PathLike] = None,
               cache_dir: Optional[PathLike] = None, params=None) -> Trace:
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
    if name.endswith("-standin"):
        from alpa_serve.workload import standin

        kind = name[:4]
        raw = standin.ensure_standin(kind, cache_root, params)
        return Trace(name, raw, cache_root)
    env = ENV_PATHS[name]
    chosen = path if path is not None else os.environ.get(env)
    if not chosen:
        raise TraceNotFoundError(f"no path given for the real {name.upper()} trace and ${env} "
                                 f"is not set. " + _standin_hint(name))
    return Trace(name, Path(chosen), cache_root)
