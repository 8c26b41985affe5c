"""MAF2, the Azure Functions 2021 trace (DESIGN 4.3): one CSV of invocations, preprocessed
into per-function sorted invocation times and replayed with a Gamma fit per window
(:func:`fit_gamma_window`, computed by :func:`gamma_mle_floc0`).

The format behind :class:`~alpa_serve.workload.trace.Trace` (see that module for the sources,
the cache and the time origin); registered as ``"maf2"``.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import warnings
from pathlib import Path
from typing import Optional

import numpy as np

from alpa_serve.workload import portable_math as pm
from alpa_serve.workload.arrival import GammaProcess
from alpa_serve.workload.tempdirs import make_temp_dir
from alpa_serve.workload.trace import (
    _BUILD_PREFIX,
    _CACHE_VERSION,
    Trace,
    _Generated,
    _publish,
    _standin_hint,
    register_format,
)
from alpa_serve.workload.trace_defs import (
    MAF2_COLUMNS,
    MAF2_FILE_NAME,
    MAF_DAYS,
    MINUTES_PER_DAY,
    TraceFormatError,
    TraceNotFoundError,
)

__all__ = ["Maf2Trace", "fit_gamma_window", "gamma_mle_floc0"]

logger = logging.getLogger(__name__)

# Added to MAF2 inter-arrival gaps before the Gamma fit (DESIGN 4.3): identical invocation
# times would give zero gaps, on which the Gamma log-likelihood is undefined.
_GAP_EPS = 1e-6
# A fitted rate larger than this multiple of the window's empirical rate is replaced by the
# empirical rate (the original artifact's rule; strict comparison).
_FIT_RATE_FACTOR = 5.0


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
