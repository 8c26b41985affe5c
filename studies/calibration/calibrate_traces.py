"""Calibrate the Azure trace stand-ins: SR on the S3@MAF1 / S3@MAF2 targets.

    python studies/calibration/calibrate_traces.py                  # all sweeps, print table
    python studies/calibration/calibrate_traces.py --sets S3@MAF2 \
        --param maf2.total_invocations=3000000                          # try other stand-in numbers
    python studies/calibration/calibrate_traces.py --sets S3@MAF2 --sweeps goodput_vs_cv_scale
    python studies/calibration/calibrate_traces.py --sets S3@MAF2 \
        --also-policy sr-replace-21600                                  # Clockwork++ beside SR
    python studies/calibration/calibrate_traces.py --tsv out.tsv --markdown out.md

Runs every ``S3@MAF1`` / ``S3@MAF2`` row of ``calibration_targets.tsv`` (packaged in
``alpa_serve/data/reference/``; sr-greedy, 72 mixed models, 48 devices; S3@MAF1: rate_scale
sweep; S3@MAF2: the rate_scale, cv_scale and SLO-scale sweeps around rate_scale 32, cv_scale 1,
SLO scale 5) on the stand-in traces (``maf1-standin`` / ``maf2-standin``) whatever the targets
file's source, serially in this process, and prints published vs ours per point and the mean
absolute error and largest error per sweep (set, experiment). A point shared by several sweeps
(the S3@MAF2 fixed point) is simulated once.

``--param kind.field=value`` (repeatable) overrides numbers of
:class:`alpa_serve.workload.standin.StandinParams` for this run only (the stand-in is generated
into the cache under the new parameter hash); without it the committed defaults are used. The
committed defaults are the result of this calibration (docs/calibration.md, section "Azure trace
stand-ins").

``--also-policy NAME`` (repeatable) runs the same cases with another policy as well (e.g.
``sr-replace-21600``, Clockwork++ on MAF2); the targets hold no published value for them, so
they are reported without an error.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import sys
import time
from pathlib import Path

SETS = ("S3@MAF1", "S3@MAF2")
SWEEPS = ("goodput_vs_rate_scale", "goodput_vs_cv_scale", "goodput_vs_slo")
#: The swept quantity of each experiment (for the tables).
SWEPT = {"goodput_vs_rate_scale": "rate_scale", "goodput_vs_cv_scale": "cv_scale",
         "goodput_vs_slo": "slo_scale"}


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


def run(sets, params, sweeps=SWEEPS, also_policies=(), log=print):
    """Rows (set, experiment, x, policy, published, ours, diff, num_requests) for the S3@MAF
    targets in ``sets`` and ``sweeps``; ``published``/``diff`` are None for ``also_policies``."""
    from alpa_serve.experiments import case_runner as R
    from alpa_serve.experiments.suites import calibration_targets
    from alpa_serve.workload.trace import load_trace

    db = R.default_database()
    rows, traces, done, inputs = [], {}, {}, {}
    for t in calibration_targets():
        if t.set not in sets or t.case.exp_name not in sweeps:
            continue
        kind = "maf1" if t.set == "S3@MAF1" else "maf2"
        source = f"{kind}-standin"
        if source not in traces:
            t0 = time.perf_counter()
            traces[source] = load_trace(source, params=params)
            log(f"{source}: loaded in {time.perf_counter() - t0:.0f} s "
                f"(parameters {params.digest(kind)})")
        base = dataclasses.replace(t.case, workload=dataclasses.replace(t.case.workload,
                                                                       source=source))
        for policy in (t.case.policy, *also_policies):
            case = dataclasses.replace(base, policy=policy)
            # The fixed point appears in several sweeps: simulate it once.
            wkey = R.inputs_key(case)
            key = (policy, wkey, case.slo_scale)
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
                             num_requests=n))
            ref = "" if published is None else \
                f"published {published:.3f} ours {ours:.3f} ({ours - published:+.3f})"
            log(f"{t.set} {t.case.exp_name} {SWEPT[t.case.exp_name]}={t.x} {policy}: "
                f"{ref or f'ours {ours:.3f}'}, {n} requests [{time.perf_counter() - t0:.1f} s]")
    return rows


def summary(rows):
    """{(set, experiment): (MAE, max |diff|, points)} over the rows with a published value."""
    out = {}
    for s in SETS:
        for e in SWEEPS:
            d = [abs(r["diff"]) for r in rows
                 if r["set"] == s and r["experiment"] == e and r["diff"] is not None]
            if d:
                out[(s, e)] = (sum(d) / len(d), max(d), len(d))
    return out


def _xkey(x):
    try:
        return float(x)
    except ValueError:
        return float("inf")


def markdown(rows, params):
    lines = ["| set | sweep | x | policy | published | stand-in | diff | requests |",
             "|---|---|---|---|---|---|---|---|"]
    order = sorted(rows, key=lambda r: (r["set"], SWEEPS.index(r["experiment"]), r["policy"],
                                        _xkey(r["x"])))
    for r in order:
        pub = "-" if r["published"] is None else f"{r['published']:.3f}"
        diff = "-" if r["diff"] is None else f"{r['diff']:+.3f}"
        lines.append(f"| {r['set']} | {SWEPT[r['experiment']]} | {r['x']} | {r['policy']} | "
                     f"{pub} | {r['ours']:.3f} | {diff} | {r['num_requests']:,} |")
    lines.append("")
    for (s, e), (mae, mx, n) in summary(rows).items():
        lines.append(f"- {s} {SWEPT[e]} sweep (SR, {n} points): MAE {mae:.3f}, "
                     f"max |diff| {mx:.3f}")
    lines.append(f"- stand-in parameter hashes: maf1 {params.digest('maf1')}, "
                 f"maf2 {params.digest('maf2')}")
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
    ap.add_argument("--tsv", default=None, help="also write the rows as TSV here")
    ap.add_argument("--markdown", default=None, help="also write the Markdown table here")
    args = ap.parse_args(argv)
    params = parse_params(args.param)
    rows = run(set(args.sets), params, tuple(args.sweeps), tuple(args.also_policy))
    for (s, e), (mae, mx, n) in summary(rows).items():
        print(f"{s} {SWEPT[e]} sweep: MAE {mae:.4f} (max {mx:.3f}, {n} points)")
    if args.tsv:
        keys = list(rows[0]) if rows else []
        Path(args.tsv).write_text("\t".join(keys) + "\n" + "".join(
            "\t".join(str(r[k]) for k in keys) + "\n" for r in rows))
    if args.markdown:
        Path(args.markdown).write_text(markdown(rows, params))
    return 0


if __name__ == "__main__":
    sys.exit(main())
