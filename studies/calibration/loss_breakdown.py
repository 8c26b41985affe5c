"""Where requests are lost: per-policy breakdown of one Fig. 11 trace case (docs/results.md).

    python studies/calibration/loss_breakdown.py S1_maf1.tsv goodput_vs_rate_scale 0.002
    python studies/calibration/loss_breakdown.py S1_maf2.tsv goodput_vs_rate_scale 16 \
        --policies sr-greedy sr-replace-21600 mp-search

Builds the Fig. 11 cases of one column file (stand-in traces) at one point of one sweep, runs
each policy's placement on the shared replay and simulates it with per-request results
(``CaseResult.stats.good``), then prints, per policy: goodput; goodput and share of the lost
requests by the time since the start of the replay window the request falls in (the replay
starts a fresh Gamma process at every window start, DESIGN 4.3); the models and windows that
lose most; and, for each pair of policies, the requests one loses and the other serves. Serial,
one process; a Beta (mp-search) case of S1@MAF2 takes minutes.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

SWEPT = {"goodput_vs_rate_scale": lambda c: c.workload.rate_scale,
         "goodput_vs_cv_scale": lambda c: c.workload.cv_scale,
         "goodput_vs_slo": lambda c: c.slo_scale,
         "goodput_vs_num_devices": lambda c: c.num_devices}


def cases_at(file: str, experiment: str, x: float, policies=None) -> list:
    """The stand-in cases of ``file`` in ``experiment`` whose swept value is ``x``."""
    from alpa_serve.experiments.suites import SuiteOptions, build_suite

    entries = build_suite("fig11", SuiteOptions(only_files=(file,), traces="standin"))
    cases = [e.case for e in entries if e.case.exp_name == experiment
             and abs(SWEPT[experiment](e.case) - x) <= 1e-12 * max(1.0, abs(x))]
    if policies:
        cases = [c for c in cases if c.policy in policies]
    if not cases:
        raise SystemExit(f"no case of {file} {experiment} at {x} (policies {policies})")
    return cases


def breakdown(good: np.ndarray, arrivals: np.ndarray, model_ids: np.ndarray, interval: float,
              start: float, phases=(1.0, 6.0)) -> dict:
    """Loss statistics of per-request ``good`` flags.

    Requests are grouped by the time since the start of their replay window (``interval`` s
    windows from ``start``; bins ``[0, phases[0])``, ``[phases[0], phases[1])``, rest), by model
    and by window. Returns a dict of plain numbers and arrays.
    """
    lost = ~good
    n_lost = max(int(lost.sum()), 1)
    since = (arrivals - start) % interval
    window = ((arrivals - start) // interval).astype(np.int64)
    edges = (0.0, *phases, interval)
    by_phase = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (since >= lo) & (since < hi)
        by_phase.append(dict(lo=lo, hi=hi, share_requests=float(m.mean()),
                             goodput=float(good[m].mean()) if m.any() else float("nan"),
                             share_lost=float(lost[m].sum() / n_lost)))
    M = int(model_ids.max()) + 1
    model_n = np.bincount(model_ids, minlength=M)
    model_lost = np.bincount(model_ids, weights=lost, minlength=M)
    W = int(window.max()) + 1
    win_n = np.bincount(window, minlength=W)
    win_lost = np.bincount(window, weights=lost, minlength=W)
    return dict(goodput=float(good.mean()), by_phase=by_phase, model_n=model_n,
                model_lost=model_lost, win_n=win_n, win_lost=win_lost, n_lost=n_lost)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", help="Fig. 11 column file, e.g. S1_maf1.tsv")
    ap.add_argument("experiment", choices=sorted(SWEPT))
    ap.add_argument("x", type=float, help="the swept value")
    ap.add_argument("--policies", nargs="+", default=None)
    ap.add_argument("--top", type=int, default=6, help="models/windows listed per policy")
    args = ap.parse_args(argv)

    from alpa_serve.experiments import case_runner as R

    cases = cases_at(args.file, args.experiment, args.x, args.policies)
    db = R.default_database()
    inputs = R.prepare_inputs(cases[0])
    interval = cases[0].workload.interval_seconds
    start = float(cases[0].workload.test_trace_window.start_seconds)  # first window's start
    goods = {}
    for case in cases:
        result = R.simulate_prepared(case, db, inputs)
        test = result.workload
        good = np.asarray(result.stats.good, dtype=bool)
        cpu = result.solver_seconds
        goods[case.policy] = good
        b = breakdown(good, test.arrivals, test.model_ids, interval, start)
        print(f"== {case.describe()}: untrimmed goodput {b['goodput']:.4f}, "
              f"{len(good):,} requests, placement {cpu:.0f} s")
        for ph in b["by_phase"]:
            print(f"   {ph['lo']:g}-{ph['hi']:g} s after the window start: "
                  f"{ph['share_requests']:.3f} of requests, goodput {ph['goodput']:.3f}, "
                  f"{ph['share_lost']:.3f} of the losses")
        o = np.argsort(-b["model_lost"])[:args.top]
        print("   models losing most (model: requests, goodput, share of losses): " + "; ".join(
            f"{m}: {b['model_n'][m]:,}, {1 - b['model_lost'][m] / max(b['model_n'][m], 1):.2f}, "
            f"{b['model_lost'][m] / b['n_lost']:.2f}" for m in o))
        o = np.argsort(-b["win_lost"])[:args.top]
        print("   windows losing most (window: requests, goodput, share of losses): " + "; ".join(
            f"{k}: {b['win_n'][k]:,}, {1 - b['win_lost'][k] / max(b['win_n'][k], 1):.2f}, "
            f"{b['win_lost'][k] / b['n_lost']:.2f}" for k in o))
    names = list(goods)
    for i, a in enumerate(names):
        for b_ in names[i + 1:]:
            A, B = goods[a], goods[b_]
            print(f"{a} loses, {b_} serves: {np.mean(~A & B):.4f}; {a} serves, {b_} loses: "
                  f"{np.mean(A & ~B):.4f}; both lose: {np.mean(~A & ~B):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
