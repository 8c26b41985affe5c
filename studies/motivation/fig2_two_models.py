"""Fig. 2: the two-model example (DESIGN 7.6).

Two bert-6.7b models on 2 devices with a 14 GiB budget each, Gamma arrivals at a total rate of
3 req/s, SLO infinite (see ``common.INFINITE_SLO_SCALE``). "Simple Placement" is sr-greedy (one
model per device); "Model Parallelism" is mp-search, which chooses among (1,1,1) x 2, (1,2,1)
and (1,1,2) for both models.

* (a) latency CDF, equal rates, CV 1, 20000 s;
* (b) latency CDF, rates 20% / 80%, CV 1, 20000 s;
* (c) latency CDF, equal rates, CV 3, 20000 s;
* (d) cluster utilisation over 0-40 s of a 500-s run at CV 3 (equal rates): each good request
  keeps one device busy over [finish - single latency, finish]; utilisation = busy devices / 2.

Run: ``python -m studies.motivation.fig2_two_models [--quick]``.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from alpa_serve.units import GiB
from studies.motivation import common

logger = logging.getLogger(__name__)

MODEL = "bert-6.7b"
NUM_DEVICES = 2
MEM_BUDGET = 14 * GiB
TOTAL_RATE = 3.0  # req/s over both models
DURATION = 20000.0  # s, panels (a)-(c)
UTIL_DURATION = 500.0  # s, panel (d)
UTIL_WINDOW = (0.0, 40.0)  # s shown in panel (d)
UTIL_POINTS = 400
POLICIES = (("sr-greedy", "Simple Placement", "tab:blue"),
            ("mp-search", "Model Parallelism", "tab:red"))

#: panel -> (rate shares of the two models, CV); durations above.
PANELS = {
    "a": ((0.5, 0.5), 1.0),
    "b": ((0.2, 0.8), 1.0),
    "c": ((0.5, 0.5), 3.0),
}


def utilisation(finish: np.ndarray, good: np.ndarray, busy_seconds: Any, num_devices: int,
                times: np.ndarray) -> np.ndarray:
    """Cluster utilisation in % at each of ``times`` (s).

    Each good request keeps one device busy over the half-open interval
    [finish - busy, finish), with ``busy_seconds`` (s) a scalar or one value per request
    (its model's single-device latency); failed requests occupy nothing. Utilisation at t is
    the number of intervals containing t divided by ``num_devices``, in percent.
    (It can exceed 100% only if more requests overlap than there are devices, which the
    placements of Fig. 2 do not allow: a device serves one stage at a time and a request
    takes at least its single latency.)
    """
    finish = np.asarray(finish, dtype=np.float64)
    good = np.asarray(good, dtype=bool)
    busy = np.broadcast_to(np.asarray(busy_seconds, dtype=np.float64), finish.shape)
    ends = np.sort(finish[good])
    starts = np.sort(finish[good] - busy[good])
    t = np.asarray(times, dtype=np.float64)
    # Intervals with start <= t minus those that already ended (end <= t).
    active = np.searchsorted(starts, t, side="right") - np.searchsorted(ends, t, side="right")
    return active.astype(np.float64) / num_devices * 100.0


def case(policy: str, shares: Sequence[float], cv: float, duration: float) -> Any:
    """The Fig. 2 case of ``policy``: the total rate split by ``shares``, Gamma ``cv``, the
    policy placing on the workload it is evaluated on (as the published drivers do)."""
    from alpa_serve.experiments import Case, SyntheticWorkload

    workload = SyntheticWorkload(total_rate=TOTAL_RATE, cv=cv, duration=duration,
                                 rate_dist="shares", rate_shares=tuple(shares))
    return Case(exp_name="fig2_two_models", model_set=MODEL, num_devices=NUM_DEVICES,
                num_models=2, policy=policy, slo_scale=common.INFINITE_SLO_SCALE,
                workload=workload, mem_budget=MEM_BUDGET)


def _run(db: Any, shares: Sequence[float], cv: float, duration: float) -> list[Any]:
    """Both policies on one workload, in-process (their CaseResults keep every request)."""
    from alpa_serve.experiments import simulate_case

    results = []
    for policy, _, _ in POLICIES:
        res = simulate_case(case(policy, shares, cv, duration), db)
        logger.info("%s: %s, %d requests, mean latency %.3f s, p99 %.3f s", policy,
                    res.placement.to_json(), len(res.workload), res.stats.latency_mean,
                    res.stats.latency_p99)
        results.append(res)
    return results


def _placement_label(result: Any) -> str:
    cfgs = sorted({tuple(c) for c in result.placement.group_configs})
    return "+".join(f"({c[0]},{c[1]},{c[2]})" for c in cfgs)


def make(settings: common.Settings, db: Any) -> list[Path]:
    """Run Fig. 2's cases in-process and write fig2a-c_latency_cdf and fig2d_utilisation."""
    plt = common.pyplot()
    duration = DURATION / 10 if settings.quick else DURATION
    paths: list[Path] = []
    for panel, (shares, cv) in PANELS.items():
        results = _run(db, shares, cv, duration)
        fig, ax = plt.subplots(figsize=(5.2, 3.6))
        for (_, label, color), res in zip(POLICIES, results):
            lat = np.sort(res.good_latencies())
            cdf = np.arange(1, len(lat) + 1) / len(lat)
            ax.plot(lat, cdf, color=color,
                    label=f"{label} {_placement_label(res)}\nmean {np.mean(lat):.2f} s, "
                          f"p99 {np.percentile(lat, 99):.2f} s")
        ax.set_xlabel("Latency (s)")
        ax.set_ylabel("CDF")
        ax.set_ylim(0, 1.01)
        ax.set_xlim(left=0)
        ax.set_title(f"({panel}) rates {int(shares[0] * 100)}%/{int(shares[1] * 100)}%, "
                     f"CV {cv:g}", fontsize=12)
        ax.legend(fontsize=9, loc="lower right")
        paths += common.save_figure(fig, f"fig2{panel}_latency_cdf", settings)

    results = _run(db, (0.5, 0.5), 3.0, UTIL_DURATION)
    times = np.linspace(UTIL_WINDOW[0], UTIL_WINDOW[1], UTIL_POINTS)
    fig, axes = plt.subplots(2, 1, figsize=(6.4, 4.6), sharex=True)
    single = np.array([db.get(MODEL).single_latency] * 2)  # s, per model
    for ax, (policy, label, color), res in zip(axes, POLICIES, results):
        busy = single[res.workload.model_ids]
        util = utilisation(res.stats.finish, res.stats.good, busy, NUM_DEVICES, times)
        ax.fill_between(times, util, step=None, color=color, alpha=0.35, linewidth=0)
        ax.plot(times, util, color=color, linewidth=1.2)
        ax.set_ylim(0, 105)
        ax.set_ylabel("Util. (%)")
        ax.set_title(f"{label} {_placement_label(res)}: mean {util.mean():.1f}% over "
                     f"{UTIL_WINDOW[0]:g}-{UTIL_WINDOW[1]:g} s", fontsize=11)
        logger.info("fig2d %s: mean utilisation %.1f%% over %g-%g s", policy, util.mean(),
                    *UTIL_WINDOW)
    axes[-1].set_xlabel("Time (s)")
    paths += common.save_figure(fig, "fig2d_utilisation", settings)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    return common.make_script_main(__doc__.splitlines()[0], make, common.motivation_database,
                                   argv)


if __name__ == "__main__":
    sys.exit(main())
