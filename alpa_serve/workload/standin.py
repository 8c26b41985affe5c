"""Synthetic stand-ins for the Azure Functions traces, written in the real raw formats.

The real MAF1 (2019) and MAF2 (2021) datasets cannot be downloaded here, so these generators
write files in exactly the raw formats :mod:`alpa_serve.workload.trace` loads (MAF1 daily
per-minute CSVs, MAF2 invocation CSV), deterministically from :class:`StandinParams`. The
replay then runs on them unchanged. Every number that shapes the stand-ins lives in the frozen
dataclasses below, so calibration (docs/calibration.md) changes numbers, not code; the cache
directory name includes a hash of the parameters, so changed numbers regenerate automatically.

Targeted statistics and their sources are listed in ``docs/traces.md``; the statistics report,
its figure and a command line that generates the stand-ins are in
``studies/traces/standin_report.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import json
import logging
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np

from alpa_serve.workload import portable_math as pm
from alpa_serve.workload.tempdirs import make_temp_dir, remove_stale_temp_dirs
from alpa_serve.workload.trace_defs import (
    MAF1_COLUMNS,
    MAF1_FILE_TEMPLATE,
    MAF2_FILE_NAME,
    MINUTES_PER_DAY,
    SECONDS_PER_DAY,
    default_cache_dir,
)

__all__ = ["Maf1StandinParams", "Maf2StandinParams", "StandinParams", "DEFAULT_PARAMS",
           "STANDIN_KINDS", "generate_maf1_standin", "generate_maf2_standin", "ensure_standin"]

logger = logging.getLogger(__name__)

#: Trace formats with a stand-in generator (source names ``<kind>-standin``).
STANDIN_KINDS: tuple[str, ...] = ("maf1", "maf2")

PathLike = Union[str, os.PathLike]


# ----------------------------------------------------------------------------- parameters

@dataclass(frozen=True)
class Maf1StandinParams:
    """Shape of the MAF1 stand-in (per-minute invocation counts of ~46k functions, 14 days).

    Per-function mean daily invocations follow a three-band distribution: a share
    ``frac_le_hourly`` log-uniform in [``min_daily_invocations``, 24] (at most once per hour),
    up to ``frac_le_minutely`` log-uniform in (24, 1440] (at most once per minute), and the rest
    a heavy tail: log10(daily) = log10(1440) + Exp(``tail_log10_scale``), truncated at
    ``max_daily_invocations``. The band shares are set so that the *measured* shares (after
    Poisson sampling, dropping never-invoked functions, timers) are the study's 45% / 81%.
    """

    seed: int = 2019
    num_functions: int = 46_500
    num_days: int = 14
    functions_per_app: float = 1.9
    apps_per_owner: float = 2.0
    frac_le_hourly: float = 0.44
    frac_le_minutely: float = 0.803
    min_daily_invocations: float = 0.1
    tail_log10_scale: float = 0.6
    max_daily_invocations: float = 1e7
    # Timer-triggered functions (15.6% of functions in the study) fire every `period` minutes,
    # the allowed period closest (in log) to their drawn rate; faster than once a minute they
    # fire several times per minute.
    timer_fraction: float = 0.156
    timer_periods_minutes: tuple[int, ...] = (1, 2, 5, 10, 15, 30, 60, 120, 360, 720, 1440)
    # Trigger labels of non-timer functions and their weights (study's function shares).
    triggers: tuple[str, ...] = ("http", "queue", "event", "orchestration", "storage", "others")
    trigger_weights: tuple[float, ...] = (0.550, 0.152, 0.022, 0.069, 0.028, 0.022)
    # Bursty functions alternate on/off (a two-state Markov chain over minutes); while on their
    # rate is divided by the duty cycle, so the mean is kept.
    bursty_fraction: float = 0.35
    burst_duty_min: float = 0.02
    burst_duty_max: float = 0.3
    burst_mean_on_minutes: float = 6.0
    # Minute-to-minute log-normal rate noise of non-timer functions (sigma of ln).
    minute_noise_sigma: float = 0.35
    # Shared diurnal pattern: 1 + a cos(2 pi (hour - peak) / 24), a ~ U(0, 2 * amplitude).
    diurnal_amplitude: float = 0.3
    diurnal_peak_hour: float = 14.0
    diurnal_peak_jitter_hours: float = 2.0
    # Weekly pattern: the trace starts on a Monday (as MAF1 did, 15 July 2019); weekend days
    # get this factor (normalized so the 14-day mean is unchanged).
    weekend_factor: float = 0.75
    first_weekday: int = 0
    # Population churn: some functions first appear on a later day, some stop early.
    late_birth_fraction: float = 0.06
    early_death_fraction: float = 0.04
    # Functions with a daily mean below this are sampled per day and placed into minutes by
    # the rate profile (same distribution as per-minute Poisson counts, much cheaper).
    sparse_daily_threshold: float = 60.0
    compress: bool = True


@dataclass(frozen=True)
class Maf2StandinParams:
    """Shape of the MAF2 stand-in (invocation times of a few hundred functions, 14 days).

    Three kinds of functions (docs/traces.md, "MAF2 stand-in"):

    * timers (``timer_fraction`` of the functions): a fixed period of 1 min .. 1 day, small
      jitter (fitted CV ~ 0);
    * steady streams (machine-driven: queue/event processing, pollers): a renewal process with
      Gamma gaps of CV ``stream_gap_cv`` whose rate follows the daily and on/off pattern (time
      rescaling). A non-timer function with ``d`` expected invocations per day is a stream
      with probability ``d / (d + stream_half_daily_invocations)``, so the busiest functions
      are mostly streams and carry most of the volume at a low fitted CV;
    * bursty functions (the rest): cluster processes: bursts arrive as a Poisson process
      modulated by a diurnal curve and an on/off regime; each burst has a geometric
      number of invocations separated by exponential gaps of 0.2-5 s. Their per-window fitted
      Gamma CV is well above 1, the 2021 trace's character.

    Every function's daily curve peaks at its own hour and its on/off regime has on periods
    of about half a day at a duty of 5-60%: on the real day the mix of busy models changes
    between 6-hour windows (what Clockwork++'s re-placement exploits), and a shared peak hour
    with always-on functions made it nearly constant. How volume splits between streams and
    bursty functions sets how the replay responds to ``cv_scale`` (it multiplies every
    window's fitted CV). Both were calibrated on the S3@MAF2 SR and Clockwork++ sweeps
    (docs/calibration.md).
    """

    seed: int = 2028
    num_functions: int = 424
    num_apps: int = 119
    num_days: int = 14
    total_invocations: int = 2_400_000
    log10_weight_sigma: float = 1.1
    timer_fraction: float = 0.2
    timer_periods_seconds: tuple[float, ...] = (60.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
                                                7200.0, 21600.0, 43200.0, 86400.0)
    timer_jitter_seconds: float = 0.5
    # Steady streams: P(stream) = d / (d + half) for d expected invocations per day.
    stream_half_daily_invocations: float = 2000.0
    stream_gap_cv: float = 0.5
    burst_size_mean_min: float = 1.0
    burst_size_mean_max: float = 4.0
    burst_gap_mean_min: float = 0.2
    burst_gap_mean_max: float = 5.0
    # On/off regime of streams and bursty functions: on periods of about half a day, on for
    # 5-60% of the time, so most functions are busy only part of the day.
    regime_on_hours_mean: float = 12.0
    regime_duty_min: float = 0.05
    regime_duty_max: float = 0.6
    diurnal_amplitude: float = 0.4
    diurnal_peak_hour: float = 14.0
    # Per-function peak hour: diurnal_peak_hour + N(0, jitter) hours (own random stream), so
    # functions peak at their own hours and the mix of busy models changes over the day.
    diurnal_peak_jitter_hours: float = 12.0
    duration_log10_mu: float = -0.7
    duration_log10_sigma: float = 0.7
    timestamp_decimals: int = 6


@dataclass(frozen=True)
class StandinParams:
    """All stand-in parameters in one place (calibration changes these numbers)."""

    maf1: Maf1StandinParams = field(default_factory=Maf1StandinParams)
    maf2: Maf2StandinParams = field(default_factory=Maf2StandinParams)

    def digest(self, kind: str) -> str:
        """Short hash of one stand-in's parameters (names its cache directory)."""
        sub = getattr(self, kind)
        blob = json.dumps(dataclasses.asdict(sub), sort_keys=True, default=list)
        return hashlib.sha256(f"{kind}:{blob}".encode()).hexdigest()[:10]


DEFAULT_PARAMS = StandinParams()


def _rng(seed: int, *stream: int) -> np.random.Generator:
    """Independent deterministic stream per (seed, purpose, day, block)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *stream])))


def _hex_ids(seed: int, label: str, n: int) -> list[str]:
    """``n`` unique 64-hex ids (like the datasets' SHA-256 hashes), deterministic."""
    return [hashlib.sha256(f"{label}:{seed}:{i}".encode()).hexdigest() for i in range(n)]


# ----------------------------------------------------------------------------- MAF1

def _maf1_population(p: Maf1StandinParams) -> dict:
    F = p.num_functions
    rng = _rng(p.seed, 1)
    n_apps = max(1, int(round(F / p.functions_per_app)))
    n_owners = max(1, int(round(n_apps / p.apps_per_owner)))
    app_of = rng.integers(0, n_apps, F)
    owner_of_app = rng.integers(0, n_owners, n_apps)
    is_timer = rng.random(F) < p.timer_fraction
    daily = _maf1_daily_rates(p, rng)
    periods = np.asarray(p.timer_periods_minutes, dtype=np.float64)
    want = MINUTES_PER_DAY / daily          # minutes between invocations
    period = periods[np.argmin(np.abs(pm.log(want[:, None] / periods[None, :])), axis=1)]
    period = period.astype(np.int64)
    fires = np.maximum(1, np.round(daily / MINUTES_PER_DAY)).astype(np.int32)
    fires[period > 1] = 1
    phase = (rng.random(F) * period).astype(np.int64)
    tw = np.asarray(p.trigger_weights, dtype=np.float64)
    trig_idx = rng.choice(len(tw), F, p=tw / tw.sum())
    triggers = np.where(is_timer, "timer", np.asarray(p.triggers)[trig_idx])
    is_bursty = (~is_timer) & (rng.random(F) < p.bursty_fraction)
    duty = rng.uniform(p.burst_duty_min, p.burst_duty_max, F)
    amp = np.minimum(rng.uniform(0, 2 * p.diurnal_amplitude, F), 0.95)
    peak = p.diurnal_peak_hour + rng.normal(0, p.diurnal_peak_jitter_hours, F)
    birth = np.zeros(F, dtype=np.int64)
    late = rng.random(F) < p.late_birth_fraction
    birth[late] = rng.integers(1, p.num_days, late.sum())
    death = np.full(F, p.num_days, dtype=np.int64)  # exclusive last day
    dies = rng.random(F) < p.early_death_fraction
    death[dies] = np.maximum(birth[dies] + 1, rng.integers(1, p.num_days, dies.sum()))
    owners = _hex_ids(p.seed, "maf1-owner", n_owners)
    apps = _hex_ids(p.seed, "maf1-app", n_apps)
    funcs = _hex_ids(p.seed, "maf1-func", F)
    # File order, as in the real files, sorts rows by owner, app, function hash: popularity
    # is then unrelated to position (the stripe mapping sees a random order).
    owner_s = [owners[owner_of_app[app_of[f]]] for f in range(F)]
    app_s = [apps[app_of[f]] for f in range(F)]
    order = sorted(range(F), key=lambda f: (owner_s[f], app_s[f], funcs[f]))
    weekly = np.array([p.weekend_factor if (p.first_weekday + d) % 7 >= 5 else 1.0
                       for d in range(p.num_days)])
    weekly = weekly / weekly.mean()
    return dict(order=np.asarray(order), owner=owner_s, app=app_s, func=funcs,
                triggers=triggers, is_timer=is_timer, is_bursty=is_bursty, daily=daily,
                period=period, fires=fires, phase=phase, duty=duty, amp=amp, peak=peak, birth=birth,
                death=death, weekly=weekly)


def _maf1_daily_rates(p: Maf1StandinParams, rng: np.random.Generator) -> np.ndarray:
    """Mean daily invocations per function (three bands, see :class:`Maf1StandinParams`)."""
    F = p.num_functions
    u = rng.random(F)
    v = rng.random(F)
    lo, hr, mn = math.log10(p.min_daily_invocations), math.log10(24.0), math.log10(1440.0)
    top = math.log10(p.max_daily_invocations)
    log_d = np.where(u < p.frac_le_hourly, lo + v * (hr - lo), hr + v * (mn - hr))
    # Truncated exponential in log10 above once per minute (inverse CDF).
    tail = mn - p.tail_log10_scale * pm.log1p(-v * (1 - math.exp(-(top - mn) /
                                                                   p.tail_log10_scale)))
    log_d = np.where(u >= p.frac_le_minutely, tail, log_d)
    return pm.exp10(log_d)


def _maf1_day_counts(p: Maf1StandinParams, pop: dict, day: int,
                     burst_state: np.ndarray) -> np.ndarray:
    """int32 counts [F, 1440] of one day (function index order). Updates ``burst_state``."""
    F, T = p.num_functions, MINUTES_PER_DAY
    counts = np.zeros((F, T), dtype=np.int32)
    alive = (pop["birth"] <= day) & (day < pop["death"])
    minutes = np.arange(T, dtype=np.float64)
    hours = minutes / 60.0

    # Timers: `fires` invocations at minutes where (trace minute - phase) % period == 0.
    tmin = day * T + np.arange(T, dtype=np.int64)
    timers = np.nonzero(pop["is_timer"] & alive)[0]
    for per in np.unique(pop["period"][timers]):
        rows = timers[pop["period"][timers] == per]
        hit = ((tmin[None, :] - pop["phase"][rows, None]) % per) == 0
        counts[rows] = hit.astype(np.int32) * pop["fires"][rows, None]

    # On/off regimes of bursty functions (state carried across days).
    bursty = np.nonzero(pop["is_bursty"])[0]
    rng_b = _rng(p.seed, 2, day)
    p_off = 1.0 / p.burst_mean_on_minutes
    d = pop["duty"][bursty]
    p_on = np.minimum(1.0, p_off * d / (1.0 - d))
    u = rng_b.random((len(bursty), T))
    on = np.empty((len(bursty), T), dtype=bool)
    st = burst_state
    for t in range(T):
        st = np.where(st, u[:, t] >= p_off, u[:, t] < p_on)
        on[:, t] = st
    burst_state[:] = st
    burst_row = np.full(F, -1, dtype=np.int64)
    burst_row[bursty] = np.arange(len(bursty))

    others = np.nonzero((~pop["is_timer"]) & alive)[0]
    block = 2048
    for b0 in range(0, len(others), block):
        rows = others[b0:b0 + block]
        rng = _rng(p.seed, 3, day, b0)
        base = pop["daily"][rows] * pop["weekly"][day] / T
        prof = 1.0 + pop["amp"][rows, None] * pm.cos(
            2 * np.pi * (hours[None, :] - pop["peak"][rows, None]) / 24.0)
        if p.minute_noise_sigma > 0:
            s = p.minute_noise_sigma
            prof *= pm.exp(s * rng.standard_normal(prof.shape) - s * s / 2)
        br = burst_row[rows]
        isb = br >= 0
        if isb.any():
            prof[isb] *= on[br[isb]] / pop["duty"][rows[isb], None]
        lam = base[:, None] * prof
        sparse = pop["daily"][rows] < p.sparse_daily_threshold
        if (~sparse).any():
            counts[rows[~sparse]] = rng.poisson(lam[~sparse]).astype(np.int32)
        # Sparse rows: a Poisson day total placed into minutes by the rate profile has the
        # same distribution as per-minute Poisson counts.
        sp = np.nonzero(sparse)[0]
        if len(sp):
            tot = lam[sp].sum(axis=1)
            n = rng.poisson(tot)
            for i in np.nonzero(n)[0]:
                cdf = np.cumsum(lam[sp[i]])
                pos = np.searchsorted(cdf, rng.random(n[i]) * cdf[-1], side="right")
                np.add.at(counts[rows[sp[i]]], np.minimum(pos, T - 1), 1)
    return counts


@functools.lru_cache(maxsize=1)
def _count_strings() -> np.ndarray:
    """Decimal strings of 0..65535 (object array): dense rows are written by lookup."""
    return np.array([str(i) for i in range(1 << 16)], dtype=object)


def _csv_row(row: np.ndarray, zeros: list[str]) -> str:
    nz = np.flatnonzero(row)
    if len(nz) < 200:
        parts = zeros.copy()
        for i in nz:
            parts[i] = str(int(row[i]))
        return ",".join(parts)
    if row.max() < (1 << 16):
        return ",".join(_count_strings()[row].tolist())
    return ",".join(map(str, row.tolist()))


def generate_maf1_standin(out_dir: PathLike, params: Maf1StandinParams = Maf1StandinParams()
                          ) -> list[Path]:
    """Write ``invocations_per_function_md.anon.dNN.csv[.gz]`` for each day into ``out_dir``.

    Each day lists the functions with at least one invocation that day, in file order (sorted
    by owner, app, function hash). Deterministic in ``params``. Returns the written paths.
    """
    pm.check_portable()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    p = params
    pop = _maf1_population(p)
    order = pop["order"]
    burst_state = _rng(p.seed, 4).random(int(pop["is_bursty"].sum())) < \
        pop["duty"][pop["is_bursty"]]
    zeros = ["0"] * MINUTES_PER_DAY
    header = ",".join(MAF1_COLUMNS) + "\n"
    paths = []
    for day in range(p.num_days):
        counts = _maf1_day_counts(p, pop, day, burst_state)
        present = counts.sum(axis=1) > 0
        name = MAF1_FILE_TEMPLATE.format(day=day + 1) + (".gz" if p.compress else "")
        path = out_dir / name
        opener = (lambda q: gzip.open(q, "wt", compresslevel=1, newline="")) if p.compress \
            else (lambda q: open(q, "w", newline=""))
        with opener(path) as fh:
            fh.write(header)
            buf = []
            for f in order:
                if not present[f]:
                    continue
                buf.append(f"{pop['owner'][f]},{pop['app'][f]},{pop['func'][f]},"
                           f"{pop['triggers'][f]}," + _csv_row(counts[f], zeros) + "\n")
                if len(buf) >= 2000:
                    fh.write("".join(buf))
                    buf = []
            fh.write("".join(buf))
        logger.info("maf1-standin day %d: %d functions, %d invocations", day + 1,
                    int(present.sum()), int(counts.sum(dtype=np.int64)))
        paths.append(path)
    return paths


# ----------------------------------------------------------------------------- MAF2

def _maf2_population(p: Maf2StandinParams) -> dict:
    """Per-function kinds and volumes of the MAF2 stand-in (function index order).

    ``expected``: expected invocations over the trace; ``is_timer`` / ``is_stream`` (the rest
    are bursty); ``period`` (s, used by timers); ``app_of``; ``apps`` / ``funcs`` (hex ids).
    """
    F = p.num_functions
    rng = _rng(p.seed, 11)
    horizon = p.num_days * SECONDS_PER_DAY
    weights = pm.exp10(rng.normal(0, p.log10_weight_sigma, F))
    expected = weights / weights.sum() * p.total_invocations
    is_timer = rng.random(F) < p.timer_fraction
    # Timers get the period closest to their share; the rest of the volume goes to the
    # non-timer functions in proportion to their weights, so the total matches.
    periods = np.array([min(p.timer_periods_seconds,
                            key=lambda x: abs(math.log(x / (horizon / max(e, 1.0)))))
                        for e in expected])
    timer_total = float(np.sum(horizon / periods[is_timer]))
    rest = max(p.total_invocations - timer_total, 0.0)
    expected = np.where(is_timer, horizon / periods,
                        weights / max(weights[~is_timer].sum(), 1e-300) * rest)
    app_of = np.concatenate([np.arange(min(p.num_apps, F)),
                             rng.integers(0, p.num_apps, max(0, F - p.num_apps))])
    rng.shuffle(app_of)
    # Steady streams: non-timer functions, the more likely the higher their volume (own
    # random stream, so the other functions' realization does not depend on these draws).
    daily = expected / p.num_days
    is_stream = (~is_timer) & (_rng(p.seed, 13).random(F) <
                               daily / (daily + p.stream_half_daily_invocations))
    # Each function's daily peak hour, from its own stream so that the other draws (and with
    # zero jitter the whole stand-in) do not depend on it.
    peak_hour = p.diurnal_peak_hour + p.diurnal_peak_jitter_hours * \
        _rng(p.seed, 14).standard_normal(F)
    return dict(expected=expected, is_timer=is_timer, is_stream=is_stream, period=periods,
                peak_hour=peak_hour, app_of=app_of, apps=_hex_ids(p.seed, "maf2-app", p.num_apps),
                funcs=_hex_ids(p.seed, "maf2-func", F))


def _maf2_function(p: Maf2StandinParams, pop: dict, f: int) -> tuple[np.ndarray, np.ndarray]:
    """Invocation start times (s, in [0, horizon), unsorted for timers) and durations (s) of
    function ``f``, from the function's own random stream."""
    r = _rng(p.seed, 12, f)
    horizon = p.num_days * SECONDS_PER_DAY
    expected = float(pop["expected"][f])
    if pop["is_timer"][f]:
        # Timers: the period closest to the expected volume, small jitter (low CV).
        per = pop["period"][f]
        t = np.arange(r.random() * per, horizon, per)
        t = t + r.normal(0, p.timer_jitter_seconds, len(t))
    else:
        size_mean = math.exp(r.uniform(math.log(p.burst_size_mean_min),
                                       math.log(p.burst_size_mean_max)))
        gap_mean = math.exp(r.uniform(math.log(p.burst_gap_mean_min),
                                      math.log(p.burst_gap_mean_max)))
        # Every listed function has at least one burst (the dataset lists only invoked
        # functions).
        n_bursts = max(1, int(r.poisson(expected / size_mean)))
        duty = r.uniform(p.regime_duty_min, p.regime_duty_max)
        on_edges = _regime(r, horizon, p.regime_on_hours_mean * 3600.0, duty)
        peak = float(pop["peak_hour"][f])
        if pop["is_stream"][f]:
            t = _stream_times(r, p, horizon, on_edges, expected, peak)
        else:
            # Burst starts: thinning of a homogeneous process by diurnal x regime intensity,
            # drawing candidates until enough survive.
            kept: list[np.ndarray] = []
            n_kept = 0
            while n_kept < n_bursts:
                cand = r.random(int(n_bursts * 2 / duty) + 16) * horizon
                ok = (r.random(len(cand)) < _diurnal(p, cand, peak)) & _is_on(on_edges, cand)
                kept.append(cand[ok])
                n_kept += int(ok.sum())
            starts = np.sort(np.concatenate(kept)[:n_bursts])
            sizes = r.geometric(1.0 / size_mean, len(starts))
            offs = np.concatenate([np.cumsum(r.exponential(gap_mean, k))
                                   for k in sizes]) if len(starts) else np.zeros(0)
            t = np.repeat(starts, sizes) + offs
    t = t[(t >= 0) & (t < horizon)]
    # Durations from the function's own stream too: changing one function's invocations does
    # not move another's end timestamps (hence the first-appearance order).
    dur = pm.exp10(r.normal(p.duration_log10_mu, p.duration_log10_sigma, len(t)))
    return t, dur


def generate_maf2_standin(out_dir: PathLike, params: Maf2StandinParams = Maf2StandinParams()
                          ) -> Path:
    """Write ``AzureFunctionsInvocationTraceForTwoWeeksJan2021.txt`` into ``out_dir``.

    Rows ``app,func,end_timestamp,duration`` (seconds since the trace start), sorted by
    end_timestamp. Deterministic in ``params``. Returns the written path.
    """
    import pandas as pd

    pm.check_portable()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    p = params
    F = p.num_functions
    pop = _maf2_population(p)
    parts = [_maf2_function(p, pop, f) for f in range(F)]
    inv = np.concatenate([t for t, _ in parts])
    dur = np.concatenate([d for _, d in parts])
    fid = np.repeat(np.arange(F, dtype=np.int64), [len(t) for t, _ in parts])
    dec = p.timestamp_decimals
    end = np.round(inv + dur, dec)
    dur = np.round(dur, dec)
    order = np.argsort(end, kind="stable")
    df = pd.DataFrame({"app": np.asarray(pop["apps"], dtype=object)[pop["app_of"][fid[order]]],
                       "func": np.asarray(pop["funcs"], dtype=object)[fid[order]],
                       "end_timestamp": end[order], "duration": dur[order]})
    path = out_dir / MAF2_FILE_NAME
    df.to_csv(path, index=False, float_format=f"%.{dec}f")
    logger.info("maf2-standin: %d functions, %d invocations", F, len(df))
    return path


def _diurnal(p: Maf2StandinParams, t: np.ndarray, peak_hour: float) -> np.ndarray:
    """Diurnal factor in (0, 1] at times ``t`` (s): 1 at ``peak_hour`` (hour of day)."""
    hours = (t / 3600.0) % 24
    return (1 + p.diurnal_amplitude * pm.cos(2 * np.pi * (hours - peak_hour) / 24)
            ) / (1 + p.diurnal_amplitude)


def _stream_times(r: np.random.Generator, p: Maf2StandinParams, horizon: float,
                  regime: tuple[np.ndarray, np.ndarray], expected: float,
                  peak_hour: float) -> np.ndarray:
    """Invocation times (s) of a steady stream: a renewal process with Gamma gaps of CV
    ``stream_gap_cv`` in operational time, mapped onto [0, horizon) through the cumulative
    diurnal x regime intensity (time rescaling), so that its local gaps are regular while its
    rate follows the same daily and on/off pattern as the bursty functions'."""
    step = 60.0
    edges = np.arange(0.0, horizon + step, step)
    edges[-1] = horizon
    mid = (edges[:-1] + edges[1:]) / 2
    lam = _diurnal(p, mid, peak_hour) * _is_on(regime, mid) * np.diff(edges)
    cum = np.concatenate([[0.0], np.cumsum(lam)])
    cum *= expected / max(cum[-1], 1e-300)
    shape = 1.0 / p.stream_gap_cv ** 2
    n = int(expected * 1.1) + 16
    u = np.cumsum(r.gamma(shape, 1.0 / shape, n)) - r.random()  # random phase
    while u[-1] < expected:
        u = np.concatenate([u, u[-1] + np.cumsum(r.gamma(shape, 1.0 / shape, n))])
    u = u[(u >= 0) & (u < expected)]
    if len(u) == 0:
        u = np.array([r.random() * expected])
    # Linear inside each cell; side="right" skips the plateaus of `cum` (regime off), so the
    # chosen cell always has a positive intensity.
    k = np.clip(np.searchsorted(cum, u, side="right") - 1, 0, len(lam) - 1)
    width = cum[k + 1] - cum[k]
    frac = np.where(width > 0, (u - cum[k]) / np.where(width > 0, width, 1.0), 0.0)
    return edges[k] + frac * (edges[k + 1] - edges[k])


def _regime(r: np.random.Generator, horizon: float, on_mean: float, duty: float
            ) -> tuple[np.ndarray, np.ndarray]:
    """An alternating on/off renewal process over [0, horizon): (period starts, is-on flags).

    On periods last Exp(on_mean) s, off periods Exp(on_mean * (1 - duty) / duty) s, so the
    long-run on fraction is ``duty``.
    """
    if duty >= 1.0:
        return np.zeros(1), np.ones(1, dtype=bool)
    off_mean = on_mean * (1 - duty) / duty
    edges, states, state, x = [], [], bool(r.random() < duty), 0.0
    while x < horizon:
        edges.append(x)
        states.append(state)
        x += r.exponential(on_mean if state else off_mean)
        state = not state
    if not any(states):
        # One off period covers the whole trace; the function is listed, so it runs sometime:
        # its first period is taken as on (never happens with on fractions >= 0.2).
        states[0] = True
    return np.asarray(edges), np.asarray(states, dtype=bool)


def _is_on(regime: tuple[np.ndarray, np.ndarray], t: np.ndarray) -> np.ndarray:
    edges, states = regime
    return states[np.maximum(np.searchsorted(edges, t, side="right") - 1, 0)]


# ----------------------------------------------------------------------------- cache

def _standin_temp_prefix(kind: str) -> str:
    """Prefix of the hidden folder a stand-in is generated in (renamed when complete)."""
    return f".{kind}-standin-"


def _standin_temp_dir(root: Path, kind: str) -> Path:
    """A new temporary generation folder under ``root`` naming its owner (see tempdirs)."""
    return make_temp_dir(root, _standin_temp_prefix(kind))


def ensure_standin(kind: str, cache_root: Optional[PathLike] = None,
                   params: Optional[StandinParams] = None) -> Path:
    """Raw stand-in files for ``kind`` (one of :data:`STANDIN_KINDS`) under ``cache_root``,
    generated if absent.

    The directory is ``<cache_root>/<kind>-standin-raw-<params digest>``; generation writes a
    temporary directory and renames it, so an interrupted run leaves nothing half-written;
    temporary directories of runs that died are removed here (``tempdirs``).
    """
    if kind not in STANDIN_KINDS:
        raise ValueError(f"stand-in kind must be one of {STANDIN_KINDS}, got {kind!r}")
    params = params or DEFAULT_PARAMS
    root = Path(cache_root) if cache_root else default_cache_dir()
    out = root / f"{kind}-standin-raw-{params.digest(kind)}"
    remove_stale_temp_dirs(root, (_standin_temp_prefix(kind),))
    if (out / "DONE").is_file():
        return out
    root.mkdir(parents=True, exist_ok=True)
    tmp = _standin_temp_dir(root, kind)
    try:
        logger.info("generating the %s stand-in into %s (one time)", kind, out)
        if kind == "maf1":
            generate_maf1_standin(tmp, params.maf1)
        else:
            generate_maf2_standin(tmp, params.maf2)
        (tmp / "params.json").write_text(json.dumps(dataclasses.asdict(getattr(params, kind)),
                                                    indent=1, default=list))
        (tmp / "DONE").write_text("ok\n")
        try:
            os.replace(tmp, out)
        except OSError:
            if not (out / "DONE").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
