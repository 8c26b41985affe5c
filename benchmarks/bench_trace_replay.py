"""Trace replay speed: wall time of the Fig. 11 replays once the caches exist.

Goals: a full MAF2 day ("13.0.0"-"13.23.60", 5400 s windows) for 72 models at rate_scale 32
in under 5 s, and MAF1's first hour ("0.0.0"-"0.1.0", 60 s windows) for 72 models in under 2 s.
Runs on the stand-ins (generated into the cache on first use; that one-time cost is reported
separately and not part of the replay time). Writes the "Trace replay" section of
docs/performance.md (only that section is replaced).

    python benchmarks/bench_trace_replay.py [--repeat 3] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from perfdoc import PERF, write_section

from alpa_serve.workload import trace as tr

ROOT = Path(__file__).resolve().parent.parent
HEADING = "## Trace replay"

CASES = [
    # (label, source, start, end, interval, rate_scale, cv_scale, goal seconds)
    ("MAF1 first hour, 72 models, 60 s windows, rate_scale 0.008, cv_scale 4",
     "maf1-standin", "0.0.0", "0.1.0", 60, 0.008, 4.0, 2.0),
    ("MAF2 day 14, 72 models, 5400 s windows, rate_scale 32, cv_scale 1",
     "maf2-standin", "13.0.0", "13.23.60", 5400, 32.0, 1.0, 5.0),
]


def run(repeat: int) -> list[dict]:
    results = []
    for label, source, start, end, interval, rs, cs, goal in CASES:
        t0 = time.perf_counter()
        trace = tr.load_trace(source)
        prep = time.perf_counter() - t0
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            # Includes opening the cached (memory-mapped) trace, as a fresh process would.
            trace = tr.open_trace(source, trace.cache_path)
            rep = trace.replay(72, start, end, interval, rs, cs, seed=0)
            w = rep.to_workload(5.0)
            times.append(time.perf_counter() - t0)
        results.append(dict(label=label, source=source, load=prep, best=min(times),
                            worst=max(times), goal=goal, requests=len(w)))
        print(f"{label}: best {min(times):.3f} s (goal < {goal} s), {len(w):,} requests; "
              f"load/generate-once {prep:.1f} s")
    return results


def section(results: list[dict], repeat: int) -> str:
    lines = [HEADING, "",
             "`python benchmarks/bench_trace_replay.py`: opening the cached trace, the replay "
             "and the merge into",
             f"one Workload, after the trace cache exists; best of {repeat} runs; "
             f"{platform.machine()}, {os.cpu_count()} cores",
             "shared with other jobs. Generating and preprocessing the stand-ins is a one-time "
             "cost (docs/traces.md).", "",
             "| replay | requests | time (s) | goal (s) | met |",
             "|---|---:|---:|---:|:-:|"]
    for r in results:
        lines.append(f"| {r['label']} ({r['source']}) | {r['requests']:,} | {r['best']:.3f} | "
                     f"< {r['goal']:g} | {'yes' if r['best'] < r['goal'] else 'NO'} |")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    results = run(args.repeat)
    if not args.no_write:
        write_section(HEADING, section(results, args.repeat))
        print(f"wrote the '{HEADING[3:]}' section of {PERF}")


if __name__ == "__main__":
    main()
