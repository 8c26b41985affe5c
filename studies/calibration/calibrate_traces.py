"""Calibrate the Azure trace stand-ins: SR on the S3@MAF1 / S3@MAF2 targets.

    python studies/calibration/calibrate_traces.py                  # both sets, print table
    python studies/calibration/calibrate_traces.py --sets S3@MAF2 \
        --param maf2.total_invocations=3000000                          # try other stand-in numbers
    python studies/calibration/calibrate_traces.py --tsv out.tsv --markdown out.md

Runs every ``S3@MAF1`` / ``S3@MAF2`` row of ``calibration_targets.tsv`` (packaged in
``alpa_serve/data/reference/``; sr-greedy, 72 mixed models, 48 devices, SLO scale 5, rate_scale
sweep) on the stand-in traces (``maf1-standin`` / ``maf2-standin``) whatever the targets file's
source, serially in this process, and prints published vs ours per point and the mean absolute
error per curve.

``--param kind.field=value`` (repeatable) overrides numbers of
:class:`alpa_serve.workload.standin.StandinParams` for this run only (the stand-in is generated
into the cache under the new parameter hash); without it the committed defaults are used. The
committed defaults are the result of this calibration (docs/calibration.md, section "Azure trace
stand-ins").
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import sys
import time
from pathlib import Path

SETS = ("S3@MAF1", "S3@MAF2")


def parse_params(overrides):
    from alpa_serve.workload.standin import DEFAULT_PARAMS

    params = DEFAULT_PARAMS
    for item in overrides:
        key, _, value = item.partition("=")
        kind, _, name = key.partition(".")
        sub = getattr(params, kind)
        if not hasattr(sub, name):
            raise SystemExit(f"unknown stand-in parameter {key!r}")
        sub = dataclasses.replace(sub, **{name: ast.literal_eval(value)})
        params = dataclasses.replace(params, **{kind: sub})
    return params


def run(sets, params, log=print):
    """Rows (set, x, published, ours, diff, num_requests) for the S3@MAF targets in ``sets``."""
    from alpa_serve.experiments import case_runner as R
    from alpa_serve.experiments.suites import calibration_targets
    from alpa_serve.workload.trace import load_trace

    db = R.default_database()
    rows, traces = [], {}
    for t in calibration_targets():
        if t.set not in sets:
            continue
        kind = "maf1" if t.set == "S3@MAF1" else "maf2"
        source = f"{kind}-standin"
        if source not in traces:
            t0 = time.perf_counter()
            traces[source] = load_trace(source, params=params)
            log(f"{source}: loaded in {time.perf_counter() - t0:.0f} s "
                f"(parameters {params.digest(kind)})")
        case = dataclasses.replace(t.case, workload=dataclasses.replace(t.case.workload,
                                                                       source=source))
        t0 = time.perf_counter()
        row = R.run_prepared(case, db, R.prepare_inputs(case, traces))
        ours = float(row["goodput"])
        rows.append(dict(set=t.set, x=t.x, published=t.published, ours=ours,
                         diff=round(ours - t.published, 3),
                         num_requests=int(row["num_requests"])))
        log(f"{t.set} rate_scale={t.x}: published {t.published:.3f} ours {ours:.3f} "
            f"({ours - t.published:+.3f}), {row['num_requests']} requests "
            f"[{time.perf_counter() - t0:.1f} s]")
    return rows


def summary(rows):
    out = {}
    for s in SETS:
        d = [abs(r["diff"]) for r in rows if r["set"] == s]
        if d:
            out[s] = (sum(d) / len(d), max(d))
    return out


def markdown(rows, params):
    lines = ["| set | rate_scale | published SR | stand-in SR | diff | requests |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['set']} | {r['x']} | {r['published']:.3f} | {r['ours']:.3f} | "
                     f"{r['diff']:+.3f} | {r['num_requests']:,} |")
    lines.append("")
    for s, (mae, mx) in summary(rows).items():
        lines.append(f"- {s}: MAE {mae:.3f}, max |diff| {mx:.3f}")
    lines.append(f"- stand-in parameter hashes: maf1 {params.digest('maf1')}, "
                 f"maf2 {params.digest('maf2')}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    ap.add_argument("--param", action="append", default=[],
                    help="override a stand-in parameter, e.g. maf2.total_invocations=3000000")
    ap.add_argument("--tsv", default=None, help="also write the rows as TSV here")
    ap.add_argument("--markdown", default=None, help="also write the Markdown table here")
    args = ap.parse_args(argv)
    params = parse_params(args.param)
    rows = run(set(args.sets), params)
    for s, (mae, mx) in summary(rows).items():
        print(f"{s}: MAE {mae:.4f} (max {mx:.3f})")
    if args.tsv:
        keys = list(rows[0]) if rows else []
        Path(args.tsv).write_text("\t".join(keys) + "\n" + "".join(
            "\t".join(str(r[k]) for k in keys) + "\n" for r in rows))
    if args.markdown:
        Path(args.markdown).write_text(markdown(rows, params))
    return 0


if __name__ == "__main__":
    sys.exit(main())
