"""Statistics report, figure and command line of the Azure trace stand-ins (docs/traces.md).

    python studies/traces/standin_report.py [--out DIR] [--which maf1|maf2|both] [--report]
                                            [--json PATH] [--figure PATH]

generates the stand-ins (:mod:`alpa_serve.workload.standin`, deterministic from
``StandinParams``) into the trace cache, preprocesses them and optionally prints the statistics
report (:func:`trace_report`, :func:`format_report`) and saves its figure
(:func:`report_figure`). The report works on any :class:`~alpa_serve.workload.trace.Trace`, so
the same statistics can be computed for the real datasets when they are available.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any, Optional

import numpy as np

from alpa_serve.workload import standin
from alpa_serve.workload.trace import (
    Maf1Trace,
    Maf2Trace,
    Trace,
    fit_gamma_window,
    load_trace,
)
from alpa_serve.workload.trace_defs import (
    MINUTES_PER_DAY,
    STANDIN_SUFFIX,
    default_cache_dir,
    parse_time,
)

_PCTS = (10, 25, 50, 75, 90, 99, 99.9)


def _pct(x: np.ndarray, weights: Optional[np.ndarray] = None) -> dict[str, float]:
    """Percentiles of ``x``; with ``weights``, of the distribution that gives each value its
    weight (the smallest value whose cumulative weight share reaches q%)."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        return {f"p{q:g}": float("nan") for q in _PCTS}
    if weights is None:
        return {f"p{q:g}": float(np.percentile(x, q)) for q in _PCTS}
    o = np.argsort(x, kind="stable")
    cum = np.cumsum(np.asarray(weights, dtype=np.float64)[o])
    cum /= cum[-1]
    return {f"p{q:g}": float(x[o][min(np.searchsorted(cum, q / 100), len(x) - 1)])
            for q in _PCTS}


#: Fitted-CV classes of the volume shares in the MAF2 report: regular, Poisson-like, bursty.
_CV_CLASSES = ((0.0, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, math.inf))


def _volume_shares(cvs: np.ndarray, volume: np.ndarray) -> dict[str, float]:
    """Share of ``volume`` in windows whose fitted CV is in each of :data:`_CV_CLASSES`."""
    tot = max(float(np.sum(volume)), 1e-300)
    return {f"cv {lo:g}-{hi:g}": float(np.sum(volume[(cvs >= lo) & (cvs < hi)]) / tot)
            for lo, hi in _CV_CLASSES}


def _mix_statistics(trace: Trace, num_models: int, start: float, end: float,
                    block_seconds: float = 21600.0) -> dict[str, Any]:
    """How the mix of busy models changes over a window (what Clockwork++'s re-placement
    every ``block_seconds`` exploits): invocations of the stripe-mapped models (function i ->
    model i mod ``num_models``, as the replay maps them) counted per block; the mean over blocks
    of the total variation distance between the block's model shares and the whole window's
    (0: the same mix all day; 1: disjoint sets of busy models), the largest block's share of
    the window, and the busiest hour over the mean hour."""
    blocks = max(1, int(round((end - start) / block_seconds)))
    counts = np.zeros((blocks, num_models))
    hourly = np.zeros(max(1, int(math.ceil((end - start) / 3600.0))))
    active = 0
    for f in range(trace.num_functions):
        t = trace.function_times(f)
        t = t[(t >= start) & (t < end)]
        if len(t) == 0:
            continue
        counts[:, active % num_models] += np.bincount(
            np.minimum(((t - start) // block_seconds).astype(np.int64), blocks - 1),
            minlength=blocks)
        hourly += np.bincount(((t - start) // 3600.0).astype(np.int64), minlength=len(hourly))
        active += 1
    day = counts.sum(axis=0) / max(counts.sum(), 1e-300)
    tv = [0.5 * float(np.abs(c / max(c.sum(), 1e-300) - day).sum()) for c in counts]
    return {"model_mix_change_6h": float(np.mean(tv)),
            "largest_6h_block_share": float(counts.sum(axis=1).max() / max(counts.sum(), 1)),
            "busiest_hour_over_mean": float(hourly.max() / max(hourly.mean(), 1e-300))}


def trace_report(trace: Trace, num_models: int = 72,
                 window: Optional[tuple[str, str, float]] = None) -> dict[str, Any]:
    """Statistics of a trace (real or stand-in) as a JSON-able dict.

    Per-function mean daily invocations (percentiles, share <= 1/hour and <= 1/minute), share
    of invocations in the top 1% (and 18.6%) of functions, hourly diurnal profile and daily
    totals, and the per-window CV distribution: for MAF2 the Gamma-fitted CV
    (:func:`~alpa_serve.workload.trace.fit_gamma_window`) per function and per stripe-mapped
    model (``num_models``) on ``window`` (default the Fig. 11 day); for MAF1 (minute counts
    only) the CV of per-minute counts per function within each hour of the first day.
    """
    totals = trace.function_totals()
    days = trace.num_days
    per_day = totals / days
    tot = int(totals.sum())
    srt = np.sort(totals)[::-1]
    F = len(totals)

    def top(frac: float) -> float:
        """Share of all invocations in the busiest ``frac`` of the functions."""
        return float(srt[:max(1, int(round(frac * F)))].sum() / max(tot, 1))

    minutes = trace.minute_totals().astype(np.float64)
    hourly = minutes.reshape(days * 24, 60).sum(axis=1)
    hod = hourly.reshape(days, 24).mean(axis=0)
    daily = minutes.reshape(days, MINUTES_PER_DAY).sum(axis=1)
    rep: dict[str, Any] = {
        "source": trace.source, "num_functions": F, "num_days": days,
        "total_invocations": tot, "invocations_per_day": tot / days,
        "daily_invocations_per_function": _pct(per_day),
        "frac_functions_le_1_per_hour": float(np.mean(per_day <= 24)),
        "frac_functions_le_1_per_minute": float(np.mean(per_day <= 1440)),
        "share_top_1pct_functions": top(0.01),
        "share_top_18.6pct_functions": top(0.186),
        "hour_of_day_profile": (hod / hod.mean()).round(3).tolist() if hod.mean() > 0 else [],
        "diurnal_peak_to_trough": float(hod.max() / max(hod.min(), 1e-12)),
        "daily_totals": daily.astype(np.int64).tolist(),
    }
    if isinstance(trace, Maf2Trace):
        start, end, interval = window or ("13.0.0", "13.23.60", 5400.0)
        s, e = parse_time(start), parse_time(end)
        edges = np.arange(s, e + 1e-9, interval)
        cv_list: list[float] = []
        n_list: list[int] = []
        for f in range(F):
            t = trace.function_times(f)
            b = np.searchsorted(t, edges)
            for k in range(len(edges) - 1):
                fit = fit_gamma_window(t[b[k]:b[k + 1]], interval)
                if fit:
                    cv_list.append(fit[1])
                    n_list.append(b[k + 1] - b[k])
        f_cvs, f_n = np.asarray(cv_list), np.asarray(n_list, dtype=np.float64)
        rp = trace.replay(num_models, start, end, interval, 1.0, 1.0, 0)
        used = rp.window_cvs > 0
        m_cvs, m_vol = rp.window_cvs[used], rp.window_rates[used]
        rep["cv_window"] = f"{start}-{end}, {interval:g} s windows"
        rep["fitted_cv_per_function_window"] = _pct(f_cvs)
        rep["frac_function_windows_cv_gt_1"] = float(np.mean(f_cvs > 1)) \
            if len(f_cvs) else float("nan")
        # Weighted by invocations (function windows) or by replayed rate (model windows): the
        # CV that a request sees, on which cv_scale acts.
        rep["fitted_cv_per_function_window_by_volume"] = _pct(f_cvs, f_n)
        rep["volume_share_function_windows"] = _volume_shares(f_cvs, f_n)
        rep["fitted_cv_per_model_window"] = _pct(m_cvs)
        rep["frac_model_windows_cv_gt_1"] = float(np.mean(m_cvs > 1)) if len(m_cvs) else \
            float("nan")
        rep["fitted_cv_per_model_window_by_volume"] = _pct(m_cvs, m_vol)
        rep["volume_share_model_windows"] = _volume_shares(m_cvs, m_vol)
        rep["replay_rate_per_model"] = _pct(rp.rates)
        model_vol = np.sort(rp.rates)[::-1]
        rep["replay_share_top_5_models"] = float(model_vol[:5].sum() /
                                                 max(model_vol.sum(), 1e-300))
        rep.update(_mix_statistics(trace, num_models, s, e))
    elif isinstance(trace, Maf1Trace):
        hour_cvs = []
        for h in range(24):
            lo, hi = int(trace.indptr[h * 60]), int(trace.indptr[(h + 1) * 60])
            f = np.asarray(trace.func[lo:hi])
            c = np.asarray(trace.count[lo:hi], dtype=np.float64)
            uf, inv = np.unique(f, return_inverse=True)
            s1 = np.bincount(inv, weights=c, minlength=len(uf))
            s2 = np.bincount(inv, weights=c * c, minlength=len(uf))
            ok = s1 >= 10
            mean = s1[ok] / 60
            var = s2[ok] / 60 - mean ** 2
            hour_cvs.append(np.sqrt(np.maximum(var, 0)) / mean)
        cvs = np.concatenate(hour_cvs) if hour_cvs else np.zeros(0)
        rep["cv_window"] = "day 1, 1-hour windows, functions with >= 10 invocations"
        rep["minute_count_cv_per_function_hour"] = _pct(cvs)
        rp = trace.replay(num_models, "0.0.0", "0.1.0", 60, 1.0, 1.0, 0)
        rep["first_hour_active_functions"] = rp.num_active_functions
        rep["first_hour_invocations"] = int(minutes[:60].sum())
        rep["first_hour_model_share_max"] = float(
            rp.window_rates.sum(axis=1).max() / max(rp.window_rates.sum(), 1e-12))
    return rep


def format_report(rep: dict[str, Any]) -> str:
    """Human-readable text of :func:`trace_report`."""
    lines = [f"== {rep['source']}: {rep['num_functions']} functions, {rep['num_days']} days, "
             f"{rep['total_invocations']:,} invocations ({rep['invocations_per_day']:,.0f}/day)"]
    pd_ = rep["daily_invocations_per_function"]
    lines.append("mean daily invocations per function: " +
                 ", ".join(f"{k}={v:.3g}" for k, v in pd_.items()))
    lines.append(f"functions <= 1/hour: {rep['frac_functions_le_1_per_hour']:.3f}; "
                 f"<= 1/minute: {rep['frac_functions_le_1_per_minute']:.3f}")
    lines.append(f"share of invocations in top 1% functions: "
                 f"{rep['share_top_1pct_functions']:.3f}; top 18.6%: "
                 f"{rep['share_top_18.6pct_functions']:.4f}")
    lines.append("hour-of-day profile (x mean): " +
                 " ".join(f"{v:.2f}" for v in rep["hour_of_day_profile"]))
    lines.append(f"diurnal peak/trough: {rep['diurnal_peak_to_trough']:.2f}; daily totals: " +
                 " ".join(f"{v:,}" for v in rep["daily_totals"]))
    lines.append(f"per-window CV ({rep['cv_window']}):")
    for key in ("fitted_cv_per_function_window", "fitted_cv_per_function_window_by_volume",
                "volume_share_function_windows", "fitted_cv_per_model_window",
                "fitted_cv_per_model_window_by_volume", "volume_share_model_windows",
                "minute_count_cv_per_function_hour", "replay_rate_per_model"):
        if key in rep:
            lines.append(f"  {key}: " + ", ".join(f"{k}={v:.3g}" for k, v in rep[key].items()))
    for key in ("frac_function_windows_cv_gt_1", "frac_model_windows_cv_gt_1",
                "replay_share_top_5_models", "model_mix_change_6h", "largest_6h_block_share",
                "busiest_hour_over_mean",
                "first_hour_active_functions", "first_hour_invocations",
                "first_hour_model_share_max"):
        if key in rep:
            v = rep[key]
            lines.append(f"  {key}: {v:.3f}" if isinstance(v, float) else f"  {key}: {v}")
    return "\n".join(lines)


def report_figure(reps: list[dict[str, Any]], traces: list[Trace]) -> Any:
    """A matplotlib figure of the reports, one row per trace: per-function rate CDF, invocations
    per hour, and the report's per-window CV percentiles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(reps), 3, figsize=(13, 3.6 * len(reps)), squeeze=False)
    for row, (rep, t) in enumerate(zip(reps, traces)):
        totals = t.function_totals() / t.num_days
        ax = axes[row, 0]
        x = np.sort(np.maximum(totals, 1e-2))
        ax.plot(x, np.arange(1, len(x) + 1) / len(x))
        ax.set_xscale("log")
        for v, lab in ((24, "1/hour"), (1440, "1/min")):
            ax.axvline(v, ls=":", c="gray")
            ax.text(v, 0.05, lab, rotation=90, fontsize=7)
        ax.set_xlabel("mean invocations per day (per function)")
        ax.set_ylabel("CDF of functions")
        ax.set_title(f"{rep['source']}: rate distribution")
        ax = axes[row, 1]
        hourly = t.minute_totals().reshape(-1, 60).sum(axis=1)
        ax.plot(np.arange(len(hourly)) / 24.0, hourly)
        ax.set_xlabel("day")
        ax.set_ylabel("invocations per hour")
        ax.set_title("diurnal / weekly pattern")
        ax = axes[row, 2]
        key = "fitted_cv_per_model_window" if isinstance(t, Maf2Trace) else \
            "minute_count_cv_per_function_hour"
        ax.bar(range(len(rep[key])), list(rep[key].values()), tick_label=list(rep[key]))
        ax.set_title(key.replace("_", " "), fontsize=9)
    fig.tight_layout()
    return fig


def plot_report(reps: list[dict[str, Any]], traces: list[Trace], path: str | Path) -> None:
    """Save :func:`report_figure` to ``path`` (png/pdf)."""
    import matplotlib.pyplot as plt

    fig = report_figure(reps, traces)
    fig.savefig(path)
    plt.close(fig)


# ----------------------------------------------------------------------------- CLI

def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python studies/traces/standin_report.py",
        description="Generate the MAF1/MAF2 stand-in traces (real raw formats) into a cache "
                    "directory and optionally print their statistics report.")
    ap.add_argument("--out", default=None,
                    help="cache directory (default $ALPA_SERVE_CACHE/traces or "
                         "~/.cache/alpa_serve/traces)")
    ap.add_argument("--which", choices=(*standin.STANDIN_KINDS, "both"), default="both")
    ap.add_argument("--report", action="store_true", help="print the statistics report")
    ap.add_argument("--json", default=None, help="also write the report as JSON here")
    ap.add_argument("--figure", default=None, help="save the report figure here (png/pdf)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    root = Path(args.out) if args.out else default_cache_dir()
    kinds = standin.STANDIN_KINDS if args.which == "both" else (args.which,)
    reps: list[dict[str, Any]] = []
    traces: list[Trace] = []
    for kind in kinds:
        t = load_trace(f"{kind}{STANDIN_SUFFIX}", cache_dir=root)
        print(f"{kind}{STANDIN_SUFFIX}: raw files in {standin.ensure_standin(kind, root)}; "
              f"cache {t.cache_path}")
        if args.report or args.figure or args.json:
            reps.append(trace_report(t))
            traces.append(t)
    if args.report:
        for rep in reps:
            print(format_report(rep))
    if args.json:
        Path(args.json).write_text(json.dumps(reps, indent=1))
    if args.figure:
        plot_report(reps, traces, args.figure)
        print(f"figure written to {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
