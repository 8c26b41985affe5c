"""Serving runtime front end: the request rate it sustains with little host overhead.

Host overhead of a served request = client-measured latency - queue - device time (model
seconds = real seconds here, speed-up 1): everything the runtime adds around the emulated
device (HTTP parsing and answer, controller, request channel, timer wake-up, reply). An
open-loop Poisson load of a given rate is replayed against a runtime whose devices are
almost free (2 groups x 2 models, one 0.2 ms stage each, SLO 10 s: every request is admitted
and devices are busy a few percent of the time, so the overhead is the front end's); the
first second of each run is not counted. For each rate the benchmark reports the median over
``--repeat`` runs of the overhead's p50 and p99 and of the load generator's send lag p99, and
the highest rate whose p99 overhead stays under 5 ms.

Placement of the processes: on a machine with 2 or more cores the load generator (this
process, all its threads) runs on the last core and the runtime's actors (controller with the
HTTP server, group managers) on the others, so that the client does not compete with the
server; Ray's own daemons are not pinned. Other jobs on the machine are not controlled: the
1-minute load average is reported with the results.

Writes the "Serving runtime front end" section of docs/performance.md (only that section).

    python benchmarks/bench_frontend.py [--rates 100 200 ...] [--seconds 6] [--repeat 3]
        [--no-write] [--label TEXT]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import textwrap
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from perfdoc import PERF, write_section

ROOT = Path(__file__).resolve().parent.parent
HEADING = "## Serving runtime front end"

#: Overhead goal (ms, p99).
GOAL_MS = 5.0
STAGE_SECONDS = 0.0002
WARMUP_SECONDS = 1.0


def _pin(pid: int, cpus: Iterable[int]) -> None:
    """Pin every thread of process ``pid`` to ``cpus`` (sched_setaffinity acts per thread)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), set(cpus))
        except OSError:  # a thread that ended meanwhile
            pass


def _profiles(n: int) -> list[Any]:
    from alpa_serve.profiling import ConfigProfile, ModelProfile, ParallelConfig

    config = ConfigProfile(latency={1: (STAGE_SECONDS,)}, act_mem={1: (0.0,)},
                           weight_mem=(1e9,))
    return [ModelProfile(f"m{i}", {ParallelConfig(1, 1, 1): config}) for i in range(n)]


def _workload(rate: float, seconds: float, num_models: int, seed: int) -> Any:
    from alpa_serve.workload import Workload

    rng = np.random.default_rng(seed)
    n = int(rate * (seconds + WARMUP_SECONDS) * 1.2) + 10
    arrivals = np.cumsum(rng.exponential(1.0 / rate, n))
    arrivals = arrivals[arrivals < seconds + WARMUP_SECONDS]
    ids = rng.integers(0, num_models, len(arrivals)).astype(np.int32)
    return Workload(arrivals, ids, np.full(len(arrivals), 10.0),
                    [f"m{i}" for i in range(num_models)])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(rate: float, seconds: float, url: str, seed: int,
            server_pids: Iterable[int] = ()) -> dict[str, float]:
    """One open-loop run at ``rate`` req/s: overhead percentiles (ms) and CPU per request
    (ms) of the server processes and of this one (the load generator)."""
    from alpa_serve.runtime import replay

    w = _workload(rate, seconds, 4, seed)
    pids = list(server_pids)
    before = [_cpu_seconds(p) for p in pids], _cpu_seconds(os.getpid())
    result = replay(url, w, speedup=1.0, timeout=30.0)
    after = [_cpu_seconds(p) for p in pids], _cpu_seconds(os.getpid())
    n = max(len(w), 1)
    cpu = {"cpu_controller": (after[0][0] - before[0][0]) / n * 1e3 if pids else math.nan,
           "cpu_groups": sum(a - b for a, b in zip(after[0][1:], before[0][1:])) / n * 1e3,
           "cpu_client": (after[1] - before[1]) / n * 1e3}
    keep = np.asarray(w.arrivals) >= WARMUP_SECONDS
    served = keep & result.accepted
    overhead = (result.latency - result.timing["queue"] - result.timing["device"])[served]
    return {"p50": float(np.percentile(overhead, 50)) * 1e3,
            "p99": float(np.percentile(overhead, 99)) * 1e3,
            "lag99": float(np.nanpercentile(result.lag[keep], 99)) * 1e3,
            "served": float(served.sum() / max(keep.sum(), 1)),
            "achieved": float(keep.sum() / seconds), **cpu}


def run(rates: list[float], seconds: float, repeat: int) -> tuple[list[dict], dict]:
    import ray

    from alpa_serve.placement import ModelPlacement
    from alpa_serve.profiling import ParallelConfig
    from alpa_serve.runtime import Runtime, RuntimeConfig

    c1 = ParallelConfig(1, 1, 1)
    placement = ModelPlacement((c1, c1), ((0, 1), (2, 3)))
    profiles = _profiles(4)
    cpus = sorted(os.sched_getaffinity(0))
    client_cpus = cpus[-1:] if len(cpus) > 1 else cpus
    server_cpus = cpus[:-1] if len(cpus) > 1 else cpus
    info: dict[str, Any] = {"cores": len(cpus), "client_cpus": client_cpus,
                            "server_cpus": server_cpus, "load": []}
    rows = []
    with Runtime.start(placement, profiles, [p.name for p in profiles], [10.0] * 4,
                       RuntimeConfig()) as rt:
        # (Actor pids through __ray_call__, so that the script also measures older versions
        # of the runtime for a baseline.)
        pids = [ray.get(h.__ray_call__.remote(lambda self: os.getpid()))
                for h in [rt.serve, *rt.groups]]
        for pid in pids:
            _pin(pid, server_cpus)
        _pin(os.getpid(), client_cpus)
        measure(100, 1.0, rt.url, 0)  # warm-up: connections, code paths
        for rate in rates:
            runs = []
            for k in range(repeat):
                runs.append(measure(rate, seconds, rt.url, seed=k + 1, server_pids=pids))
                info["load"].append(os.getloadavg()[0])
            row = {"rate": rate, **{key: statistics.median(r[key] for r in runs)
                                    for key in runs[0]}}
            rows.append(row)
            print(f"{rate:7.0f} req/s: overhead p50 {row['p50']:.2f} ms, p99 {row['p99']:.2f} "
                  f"ms, send lag p99 {row['lag99']:.2f} ms, served {row['served']:.3f}, CPU/req "
                  f"controller {row['cpu_controller']:.3f} groups {row['cpu_groups']:.3f} "
                  f"client {row['cpu_client']:.3f} ms, load {os.getloadavg()[0]:.1f}",
                  flush=True)
    return rows, info


def section(rows: list[dict], info: dict, seconds: float, repeat: int, label: str) -> str:
    """The markdown section written into docs/performance.md."""
    ok = [r["rate"] for r in rows if r["p99"] < GOAL_MS and r["served"] > 0.999]
    best = max(ok) if ok else None
    load = info["load"]
    wrap = textwrap.TextWrapper(width=100, break_on_hyphens=False)
    lines = [
        HEADING, "",
        wrap.fill(
            f"`benchmarks/bench_frontend.py`: open-loop Poisson load against the runtime's HTTP "
            f"front end, 2 groups x 2 models with one {STAGE_SECONDS * 1e3:g} ms stage each "
            f"(devices nearly idle, SLO 10 s: every request admitted), {seconds:g} s per run "
            f"after a {WARMUP_SECONDS:g} s warm-up, median of {repeat} runs per rate. Host "
            f"overhead = client latency - queue - device time; CPU per request = the process's "
            f"CPU time during a run / requests (it includes the process's fixed background "
            f"costs, which weigh more at low rates). {label}".strip()),
        "",
        wrap.fill(
            f"Machine: {platform.processor() or platform.machine()}, {info['cores']} cores; "
            f"load generator pinned to core(s) {info['client_cpus']}, controller and group "
            f"managers to {info['server_cpus']} (Ray's daemons unpinned). Other jobs were "
            f"running on the machine: 1-minute load average {min(load):.1f}-{max(load):.1f} "
            f"during the runs (a load of {info['cores']} fills every core), so the numbers are "
            f"what a shared, over-subscribed VM gives, not a quiet machine's."),
        "",
        "| offered rate (req/s) | overhead p50 (ms) | overhead p99 (ms) | send lag p99 (ms) "
        "| served | CPU per request: controller + HTTP / groups / client (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['rate']:g} | {r['p50']:.2f} | {r['p99']:.2f} | {r['lag99']:.2f} | "
                     f"{r['served']:.3f} | {r['cpu_controller']:.2f} / {r['cpu_groups']:.2f} / "
                     f"{r['cpu_client']:.2f} |")
    lines.append("")
    if best is None:
        lines.append(f"No rate measured kept the p99 overhead under {GOAL_MS:g} ms.")
    else:
        lines.append(f"Highest rate measured with the p99 overhead under {GOAL_MS:g} ms: "
                     f"**{best:g} req/s**.")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description="Front-end rate at which the host overhead stays "
                                             f"under {GOAL_MS:g} ms p99.")
    ap.add_argument("--rates", type=float, nargs="+",
                    default=[100, 200, 400, 600, 800, 1000, 1200, 1500],
                    help="offered rates (req/s)")
    ap.add_argument("--seconds", type=float, default=6.0, help="measured seconds per run")
    ap.add_argument("--repeat", type=int, default=3, help="runs per rate (median reported)")
    ap.add_argument("--label", default="", help="a sentence added to the section")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()
    t0 = time.monotonic()
    rows, info = run(args.rates, args.seconds, args.repeat)
    text = section(rows, info, args.seconds, args.repeat, args.label)
    print(text)
    print(f"({time.monotonic() - t0:.0f} s)")
    if not args.no_write:
        write_section(HEADING, text)
        print(f"wrote the '{HEADING[3:]}' section of {PERF}")


if __name__ == "__main__":
    main()
