"""MAF1, the Azure Functions 2019 trace (DESIGN 4.3): daily CSVs of per-minute invocation
counts, preprocessed into a minute-major sparse cache and replayed with the counts' rates.

The format behind :class:`~alpa_serve.workload.trace.Trace` (see that module for the sources,
the cache and the time origin); registered as ``"maf1"``.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np

from alpa_serve.workload.arrival import GammaProcess
from alpa_serve.workload.tempdirs import make_temp_dir
from alpa_serve.workload.trace import (
    _BUILD_PREFIX,
    _CACHE_VERSION,
    _TMP_PREFIX,
    Trace,
    _Generated,
    _publish,
    _standin_hint,
    register_format,
)
from alpa_serve.workload.trace_defs import (
    MAF1_COLUMNS,
    MAF1_FILE_TEMPLATE,
    MAF_DAYS,
    MINUTES_PER_DAY,
    TraceFormatError,
    TraceNotFoundError,
)

__all__ = ["Maf1Trace"]

logger = logging.getLogger(__name__)


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
