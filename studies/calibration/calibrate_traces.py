"""Calibrate the Azure trace stand-ins: SR and Clockwork++ on the S3@MAF1 / S3@MAF2 targets.

    python studies/calibration/calibrate_traces.py                  # all sweeps, print table
    python studies/calibration/calibrate_traces.py --sets S3@MAF2 \
        --param maf2.total_invocations=3000000                          # try other stand-in numbers
    python studies/calibration/calibrate_traces.py --sets S3@MAF2 --sweeps goodput_vs_cv_scale
    python studies/calibration/calibrate_traces.py --sets S3@MAF2 --seeds 2026 2027 2028 \
        --markdown out.md                                               # mean and spread over draws
    python studies/calibration/calibrate_traces.py --tsv out.tsv --markdown out.md

Runs every ``S3@MAF1`` / ``S3@MAF2`` row of ``calibration_targets.tsv`` (packaged in
``alpa_serve/data/reference/``; 72 mixed models; S3@MAF1: sr-greedy on 48 devices, rate_scale
sweep; S3@MAF2: sr-greedy on the rate_scale, cv_scale, SLO-scale and device sweeps around
rate_scale 32, cv_scale 1, SLO scale 5, 48 devices, and Clockwork++ (``sr-replace-21600``) on the
rate_scale and device sweeps) on the stand-in traces (``maf1-standin`` / ``maf2-standin``)
whatever the targets file's source, serially in this process, and prints published vs ours per
point, the mean absolute error and largest error per (sweep, policy), and Clockwork++'s gain
over SR where both are published. A point shared by several sweeps (the S3@MAF2 fixed point) is
simulated once.

``--param kind.field=value`` (repeatable) overrides numbers of
:class:`alpa_serve.workload.standin.StandinParams` for this run only (the stand-in is generated
into the cache under the new parameter hash); without it the committed defaults are used. The
committed defaults are the result of this calibration (docs/calibration.md, section "Azure trace
stand-ins"). ``--seeds S ...`` runs the MAF2 targets on each of these stand-in seeds
(``maf2.seed``; other draws of the same parameters) and reports the mean and standard deviation
of every point and the errors of the mean.

``--also-policy NAME`` (repeatable) runs the same cases with another policy as well; points
without a published value are reported without an error.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import sys
import time
from pathlib import Path

SETS = ("S3@MAF1", "S3@MAF2")
SWEEPS = ("goodput_vs_rate_scale", "goodput_vs_cv_scale", "goodput_vs_slo",
          "goodput_vs_num_devices")
#: The swept quantity of each experiment (for the tables).
SWEPT = {"goodput_vs_rate_scale": "rate_scale", "goodput_vs_cv_scale": "cv_scale",
         "goodput_vs_slo": "slo_scale", "goodput_vs_num_devices": "devices"}
SR, CLOCKWORK = "sr-greedy", "sr-replace-21600"


def parse_params(overrides):
    from alpa_serve.workload.standin import DEFAULT_PARAMS

    params = DEFAULT_PARAMS
    for item in overrides:
        key, _, value = item.partition("=")
        kind, _, name = key.partition(".")
        sub = getattr(params, kind, None)
        if sub is None or not hasattr(sub, name):
            raise SystemExit(f"unknown stand-in parameter {key!r} (expected maf1.FIELD or "
                             f"maf2.FIELD of StandinParams)")
        sub = dataclasses.replace(sub, **{name: ast.literal_eval(value)})
        params = dataclasses.replace(params, **{kind: sub})
    return params


def _with_seed(params, seed):
    """``params`` with the MAF2 stand-in drawn from ``seed`` (None: unchanged)."""
    if seed is None:
        return params
    return dataclasses.replace(params, maf2=dataclasses.replace(params.maf2, seed=seed))


def run(sets, params, sweeps=SWEEPS, also_policies=(), log=print, seed=None):
    """Rows (set, experiment, x, policy, published, ours, diff, num_requests, seed) for the
    S3@MAF targets in ``sets`` and ``sweeps``; ``published``/``diff`` are None for
    ``also_policies``. ``seed``: the MAF2 stand-in's seed (None: the one in ``params``)."""
    from alpa_serve.experiments import case_runner as R
    from alpa_serve.experiments.suites import calibration_targets
    from alpa_serve.workload.trace import load_trace

    params = _with_seed(params, seed)
    db = R.default_database()
    rows, traces, done, inputs = [], {}, {}, {}
    targets = [t for t in calibration_targets()
               if t.set in sets and t.case.exp_name in sweeps]
    # Cases sharing a replay run back to back: one replay is held at a time.
    targets.sort(key=lambda t: (t.set, t.case.workload.rate_scale, t.case.workload.cv_scale))
    for t in targets:
        kind = "maf1" if t.set == "S3@MAF1" else "maf2"
        source = f"{kind}-standin"
        if source not in traces:
            t0 = time.perf_counter()
            traces[source] = load_trace(source, params=params)
            log(f"{source}: loaded in {time.perf_counter() - t0:.0f} s "
                f"(parameters {params.digest(kind)})")
        base = dataclasses.replace(t.case, workload=dataclasses.replace(t.case.workload,
                                                                       source=source))
        for policy in dict.fromkeys((t.case.policy, *also_policies)):
            case = dataclasses.replace(base, policy=policy)
            # The fixed point appears in several sweeps: simulate it once.
            wkey = R.inputs_key(case)
            key = (policy, wkey, case.slo_scale, case.num_devices)
            t0 = time.perf_counter()
            if key not in done:
                if wkey not in inputs:
                    inputs.clear()  # one replay at a time: a day at rate 64 is 15 M requests
                    inputs[wkey] = R.prepare_inputs(case, traces)
                row = R.run_prepared(case, db, inputs[wkey])
                done[key] = (float(row["goodput"]), int(row["num_requests"]))
            ours, n = done[key]
            published = t.published if policy == t.case.policy else None
            rows.append(dict(set=t.set, experiment=t.case.exp_name, x=t.x, policy=policy,
                             published=published, ours=ours,
                             diff=None if published is None else round(ours - published, 3),
                             num_requests=n, seed=params.maf2.seed if kind == "maf2" else
                             params.maf1.seed))
            ref = "" if published is None else \
                f"published {published:.3f} ours {ours:.3f} ({ours - published:+.3f})"
            log(f"{t.set} {t.case.exp_name} {SWEPT[t.case.exp_name]}={t.x} {policy}: "
                f"{ref or f'ours {ours:.3f}'}, {n} requests [{time.perf_counter() - t0:.1f} s]")
    return rows


def _xkey(x):
    try:
        return float(x)
    except ValueError:
        return float("inf")


def points(rows):
    """Rows merged over seeds: one per (set, experiment, policy, x) with ``ours`` the mean over
    seeds, ``sd`` their standard deviation (0 for one seed), ``diff`` = mean - published and
    ``seeds`` the number of draws."""
    import numpy as np

    groups = {}
    for r in rows:
        groups.setdefault((r["set"], r["experiment"], r["policy"], r["x"]), []).append(r)
    out = []
    for (s, e, pol, x), rs in groups.items():
        vals = np.array([r["ours"] for r in rs])
        pub = rs[0]["published"]
        mean = float(vals.mean())
        out.append(dict(set=s, experiment=e, policy=pol, x=x, published=pub, ours=mean,
                        sd=float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                        diff=None if pub is None else mean - pub, seeds=len(vals),
                        num_requests=rs[0]["num_requests"]))
    out.sort(key=lambda r: (r["set"], SWEEPS.index(r["experiment"]), r["policy"], _xkey(r["x"])))
    return out


def summary(rows):
    """{(set, experiment, policy): (MAE, max |diff|, points)} over the (seed-averaged) points
    with a published value."""
    out = {}
    merged = points(rows)
    for s in SETS:
        for e in SWEEPS:
            for pol in (SR, CLOCKWORK):
                d = [abs(r["diff"]) for r in merged if r["set"] == s and r["experiment"] == e
                     and r["policy"] == pol and r["diff"] is not None]
                if d:
                    out[(s, e, pol)] = (sum(d) / len(d), max(d), len(d))
    return out


def gains(rows):
    """Clockwork++'s gain over SR where both are published: {(experiment, x): (published gain,
    ours (mean over seeds), sd over seeds)}."""
    import numpy as np

    by_seed = {}
    for r in rows:
        by_seed.setdefault((r["experiment"], r["x"], r["seed"]), {})[r["policy"]] = r
    per_point = {}
    for (e, x, _), pol in by_seed.items():
        if SR in pol and CLOCKWORK in pol and pol[CLOCKWORK]["published"] is not None \
                and pol[SR]["published"] is not None:
            per_point.setdefault((e, x), []).append(
                (pol[CLOCKWORK]["published"] - pol[SR]["published"],
                 pol[CLOCKWORK]["ours"] - pol[SR]["ours"]))
    out = {}
    for key, vals in per_point.items():
        ours = np.array([v[1] for v in vals])
        out[key] = (vals[0][0], float(ours.mean()),
                    float(ours.std(ddof=1)) if len(ours) > 1 else 0.0)
    return dict(sorted(out.items(), key=lambda kv: (kv[0][0], _xkey(kv[0][1]))))


def markdown(rows, params):
    merged = points(rows)
    seeds = sorted({r["seed"] for r in rows})
    lines = ["| set | sweep | x | policy | published | stand-in (mean) | sd | diff | requests |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in merged:
        pub = "-" if r["published"] is None else f"{r['published']:.3f}"
        diff = "-" if r["diff"] is None else f"{r['diff']:+.3f}"
        lines.append(f"| {r['set']} | {SWEPT[r['experiment']]} | {r['x']} | {r['policy']} | "
                     f"{pub} | {r['ours']:.3f} | {r['sd']:.3f} | {diff} | "
                     f"{r['num_requests']:,} |")
    lines.append("")
    for (s, e, pol), (mae, mx, n) in summary(rows).items():
        lines.append(f"- {s} {SWEPT[e]} sweep ({pol}, {n} points): MAE {mae:.3f}, "
                     f"max |diff| {mx:.3f}")
    for (e, x), (pub, ours, sd) in gains(rows).items():
        lines.append(f"- Clockwork++ gain over SR at {SWEPT[e]} {x}: published {pub:+.3f}, "
                     f"ours {ours:+.3f} (sd {sd:.3f})")
    lines.append(f"- stand-in parameter hashes: maf1 {params.digest('maf1')}, "
                 f"maf2 {params.digest('maf2')}; MAF2 seeds {seeds}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    ap.add_argument("--sweeps", nargs="+", choices=SWEEPS, default=list(SWEEPS),
                    help="experiments to run (default all)")
    ap.add_argument("--param", action="append", default=[],
                    help="override a stand-in parameter, e.g. maf2.total_invocations=3000000")
    ap.add_argument("--also-policy", action="append", default=[],
                    help="also run the cases with this policy (no published value), e.g. "
                         "sr-replace-21600")
    ap.add_argument("--seeds", nargs="+", type=int, default=None,
                    help="MAF2 stand-in seeds to average over (default: the committed one)")
    ap.add_argument("--tsv", default=None, help="also write the rows as TSV here")
    ap.add_argument("--markdown", default=None, help="also write the Markdown table here")
    args = ap.parse_args(argv)
    params = parse_params(args.param)
    rows = []
    for seed in args.seeds or [None]:
        rows += run(set(args.sets), params, tuple(args.sweeps), tuple(args.also_policy),
                    seed=seed)
    for (s, e, pol), (mae, mx, n) in summary(rows).items():
        print(f"{s} {SWEPT[e]} sweep {pol}: MAE {mae:.4f} (max {mx:.3f}, {n} points)")
    for (e, x), (pub, ours, sd) in gains(rows).items():
        print(f"Clockwork++ gain at {SWEPT[e]} {x}: published {pub:+.3f}, ours {ours:+.3f} "
              f"(sd {sd:.3f})")
    if args.tsv:
        keys = list(rows[0]) if rows else []
        Path(args.tsv).write_text("\t".join(keys) + "\n" + "".join(
            "\t".join(str(r[k]) for k in keys) + "\n" for r in rows))
    if args.markdown:
        Path(args.markdown).write_text(markdown(rows, params))
    return 0


if __name__ == "__main__":
    sys.exit(main())
