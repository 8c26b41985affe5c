"""One Fig. 11 search case spread over the workers of a real multi-node Ray cluster (DESIGN 7.4,
8): wall time of the placement search at 1, 2, ... workers, its serial fraction, and the
speed-up expected at 16-64 workers.

The script starts each cluster itself on this machine with ``ray start --block`` (a head node,
plus one more node per extra worker, one CPU each; token authentication with a fresh token),
connects to it, runs the case's policy with the Ray executor (every greedy run a Ray task, each
search case put in the object store once), and stops the nodes again. For reference the same
search runs serially in this process. Every run must return the same placement.

Measured per run (wall seconds unless noted): ``policy.place``; the executor's ``run`` calls
(the parallel part), of which the driver's ``ray.put`` of the search cases; in the serial run
each greedy job's CPU time. The serial part is everything of ``place`` outside the executor:
search cases and cluster tables, sub-problem keys, the combination and simulation of the device
splits, the final check. The expected time on P workers is the serial part, plus the object
store puts, plus the longest-first list schedule of the measured jobs on P workers (the
executor submits the jobs longest-looking first); Amdahl's law with the serial fraction is
given beside it.

Default case: the S3@MAF2 Beta case (mp-search-sep, 72 models) on 16 devices over the whole
day; ``--window quick`` replays the suite's quick window instead.

Usage: ``PYTHONPATH=$PWD python benchmarks/bench_search_cluster.py [--devices 16]
[--window day|quick] [--workers 1,2] [--repeats 2] [--out FILE.json]``
"""
from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import logging
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
# The local-cluster helpers are test helpers shared with this benchmark (tests/local_cluster.py):
# found by their folder, as the tests find them, not as a package of the library.
sys.path.insert(0, str(ROOT / "tests"))

from bench_search_profile import prepared_case  # noqa: E402
from local_cluster import free_port, port_open, ray_cli, stop_nodes, wait_for  # noqa: E402

from alpa_serve.experiments.case_runner import SearchResources, run_prepared  # noqa: E402
from alpa_serve.placement import executors as executors_mod  # noqa: E402
from alpa_serve.placement.base import Policy  # noqa: E402

logger = logging.getLogger("bench_search_cluster")


# ------------------------------------------------------------------------------------------
# Timing hooks (they wrap, never change, what they time)
# ------------------------------------------------------------------------------------------
class SearchTimers:
    """Wall and CPU seconds of ``Policy.place``, of the executors' ``run`` calls, of the
    ``ray.put`` calls inside them, and per greedy job run in this process."""

    def __init__(self) -> None:
        #: Before a Ray batch, build each search case's per-model request index
        #: (``SimTables.model_counts``, a cache every greedy run builds on first use) in the
        #: driver, so that it travels with the case instead of being rebuilt by every task
        #: (exact: only a cache is filled earlier).
        self.prebuild = False
        #: Submit the Ray tasks with the SPREAD scheduling strategy (over the nodes in turn)
        #: instead of Ray's default, which prefers the node holding the task's arguments
        #: (the driver's node, where the cases were put).
        self.spread = False
        self.reset()

    def reset(self) -> None:
        self.place_wall = self.place_cpu = 0.0
        self.run_wall = self.run_cpu = 0.0
        self.put_wall = 0.0
        self.puts = 0
        self.batches: list[int] = []
        #: Per in-process greedy job: (CPU s, wall s) in job order, with the batch's
        #: longest-first order (executors.largest_first) to replay the Ray schedule.
        self.jobs: list[tuple[float, float]] = []
        self.job_order: list[int] = []
        #: Per job, in job order: (devices, requests of its search case), the size of its
        #: greedy run (steps grow with the devices, each step walks the case's requests).
        self.job_sizes: list[tuple[int, int]] = []
        #: Per Ray task, measured inside the task: (CPU s, wall s, node id), in job order.
        self.tasks: list[tuple[float, float, str]] = []
        #: Wall seconds the driver spent building the cases' per-model request index before
        #: the put (``prebuild`` only).
        self.prebuild_wall = 0.0

    def install(self) -> None:
        """Wrap the timed functions (once per process)."""
        me = self
        place = Policy.place
        local_run = executors_mod.LocalExecutor.run
        ray_run = executors_mod.RayExecutor.run
        run_job = executors_mod.run_job

        def timed_place(policy, *args, **kwargs):
            w, c = time.perf_counter(), time.process_time()
            try:
                return place(policy, *args, **kwargs)
            finally:
                me.place_wall += time.perf_counter() - w
                me.place_cpu += time.process_time() - c

        def timed(run, on_ray: bool):
            def timed_run(executor, jobs):
                w, c = time.perf_counter(), time.process_time()
                me.batches.append(len(jobs))
                base = len(me.job_sizes)
                me.job_order.extend(base + i for i in executors_mod.largest_first(jobs))
                me.job_sizes.extend((sum(c.num_devices for c in configs),
                                     case.tables.num_requests) for case, configs in jobs)
                try:
                    if on_ray and me.prebuild:
                        p = time.perf_counter()
                        for case in {id(case): case for case, _ in jobs}.values():
                            case.tables.model_counts()
                        me.prebuild_wall += time.perf_counter() - p
                    if on_ray and me.spread:
                        with _spread_tasks():
                            results = run(executor, jobs)
                    else:
                        results = run(executor, jobs)
                finally:
                    me.run_wall += time.perf_counter() - w
                    me.run_cpu += time.process_time() - c
                if not on_ray:
                    return results
                me.tasks.extend((cpu, wall, node) for _, _, cpu, wall, node in results)
                return [(placement, score) for placement, score, *_ in results]
            return timed_run

        def timed_job(case, configs):
            w, c = time.perf_counter(), time.process_time()
            try:
                return run_job(case, configs)
            finally:
                me.jobs.append((time.process_time() - c, time.perf_counter() - w))

        Policy.place = timed_place
        executors_mod.LocalExecutor.run = timed(local_run, False)
        executors_mod.RayExecutor.run = timed(ray_run, True)
        executors_mod.run_job = timed_job
        executors_mod._ray_job = _timed_ray_job  # the executor looks it up per batch

    def install_ray_put(self) -> None:
        """Time the driver's ``ray.put`` (the executor looks it up on the module per call)."""
        import ray

        me = self
        put = ray.put

        def timed_put(*args, **kwargs):
            w = time.perf_counter()
            try:
                return put(*args, **kwargs)
            finally:
                me.put_wall += time.perf_counter() - w
                me.puts += 1

        ray.put = timed_put


@contextlib.contextmanager
def _spread_tasks():
    """``ray.remote`` adds ``scheduling_strategy="SPREAD"`` while inside (the executor
    declares its task per batch)."""
    import ray

    remote = ray.remote
    ray.remote = lambda *a, **k: remote(*a, scheduling_strategy="SPREAD", **k)
    try:
        yield
    finally:
        ray.remote = remote


def _timed_ray_job(case, configs):
    """The Ray task of one greedy job, returning its CPU and wall seconds and node id after
    the result (the timed executor strips them again)."""
    import ray

    from alpa_serve.placement.executors import run_job

    w, c = time.perf_counter(), time.process_time()
    placement, score = run_job(case, configs)
    return (placement, score, time.process_time() - c, time.perf_counter() - w,
            ray.get_runtime_context().get_node_id())


# ------------------------------------------------------------------------------------------
# A Ray cluster of one-CPU nodes on this machine
# ------------------------------------------------------------------------------------------
class LocalCluster:
    """``nodes`` Ray nodes on this machine (``ray start --block``: a head, then nodes that join
    it), one CPU each, and this process connected to them as the driver. The nodes run with
    ``PYTHONPATH`` = this repository (workers import this tree) and this process's environment
    (token authentication: see :func:`use_fresh_token`); leaving the ``with`` block
    disconnects and stops them (SIGTERM to each ``ray start --block``, which stops its node's
    processes; never ``ray stop``, which would stop every Ray instance of the machine)."""

    def __init__(self, nodes: int, object_store_bytes: int) -> None:
        if nodes < 1:
            raise ValueError(f"a cluster needs at least one node, got {nodes}")
        self.nodes = nodes
        self.object_store_bytes = int(object_store_bytes)
        self.procs: list[subprocess.Popen] = []
        self.tmp: Optional[Path] = None
        self.address = ""

    def __enter__(self) -> "LocalCluster":
        import ray

        # A short folder: Ray's socket paths must stay under the OS limit (~107 bytes).
        self.tmp = Path(tempfile.mkdtemp(prefix="sbray", dir="/tmp"))
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        common = ["--block", "--num-cpus", "1", "--disable-usage-stats",
                  "--object-store-memory", str(self.object_store_bytes)]
        try:
            self._start(["start", "--head", "--port", str(port), "--include-dashboard", "false",
                         "--temp-dir", str(self.tmp)] + common, env, "head")
            wait_for(lambda: port_open(port), 90, "the head node")
            for k in range(1, self.nodes):
                self._start(["start", "--address", self.address] + common, env, f"node{k}")
            self._connect(ray)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self, args: list[str], env: dict, name: str) -> None:
        assert self.tmp is not None
        log = open(self.tmp / f"{name}.log", "w")
        self.procs.append(subprocess.Popen(ray_cli() + args, env=env, stdout=log,
                                           stderr=subprocess.STDOUT))

    def _connect(self, ray: Any) -> None:
        end = time.monotonic() + 120
        while True:
            try:
                ray.init(address=self.address, log_to_driver=False, logging_level=logging.WARNING)
                break
            except Exception:  # the head's services may still be starting
                if time.monotonic() > end:
                    raise
                time.sleep(1.0)

        def all_joined() -> bool:
            alive = [n for n in ray.nodes() if n["Alive"]]
            return (len(alive) == self.nodes
                    and ray.cluster_resources().get("CPU", 0) == self.nodes)

        wait_for(all_joined, 120, f"{self.nodes} nodes of one CPU each")

    def __exit__(self, *exc: Any) -> None:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        stop_nodes(self.procs[::-1])
        self.procs = []
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


def use_fresh_token() -> None:
    """Token authentication with a fresh random token for this process and the nodes it
    starts (set before Ray is imported, so that the driver uses it too)."""
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16))



# ------------------------------------------------------------------------------------------
# Expected scaling
# ------------------------------------------------------------------------------------------
def list_schedule(durations: Sequence[float], order: Sequence[int], workers: int) -> float:
    """Makespan (s) of running jobs of ``durations`` in ``order`` on ``workers`` workers, each
    job going to the first worker that becomes free (what a task queue does)."""
    free = [0.0] * workers
    for i in order:
        t = heapq.heappop(free)
        heapq.heappush(free, t + durations[i])
    return max(free)


def expected_scaling(serial_cpu: float, runs: Sequence[dict], reference: float,
                     workers: Sequence[int]) -> dict:
    """The time expected on P workers, from the Ray runs of one executor variant.

    Serial part: ``serial_cpu`` (the policy's CPU outside the executor in the in-process run)
    plus the driver's puts and pre-built indexes (median wall over ``runs``). Parallel part:
    the list schedule on P workers, in the executor's submission order, of the tasks' CPU
    seconds (the lower-median 1-worker run), each plus the framework's per-task overhead (the
    1-worker executor's wall time outside tasks, puts and pre-building, per task; median over
    the 1-worker runs). Speed-ups are against ``reference`` (the in-process serial search, CPU
    s); Amdahl's law with the same serial part is given beside it, and the speed-ups with the
    tasks submitted largest first by devices x requests, or by their measured durations.
    """
    ones = sorted((r for r in runs if r["workers"] == 1), key=lambda r: r["place_wall"])
    run = ones[(len(ones) - 1) // 2]
    tasks = run["task_cpu"]
    overhead = median([max(r["executor_wall"] - r["put_wall"] - r["prebuild_wall"]
                           - r["task_wall_sum"], 0.0) / len(r["task_cpu"]) for r in ones])
    durations = [t + overhead for t in tasks]
    serial = (serial_cpu + median([r["put_wall"] for r in runs])
              + median([r["prebuild_wall"] for r in runs]))
    parallel = sum(durations)
    out = {"serial_seconds": round(serial, 2), "task_overhead_seconds": round(overhead, 4),
           "tasks_cpu_sum": round(sum(tasks), 2), "longest_task_cpu": round(max(tasks), 2),
           "serial_fraction": round(serial / (serial + parallel), 4),
           "speedup_bound": round(reference / (serial + max(durations)), 1), "workers": []}
    # Submission orders: the executor's (longest-looking first), by the jobs' size estimate
    # devices x requests, and by the measured durations (the best a list schedule can do).
    n = len(durations)
    size = [d * r for d, r in run["job_sizes"]]
    orders = {"executor": run["job_order"],
              "by_size": sorted(range(n), key=lambda i: -size[i]),
              "by_duration": sorted(range(n), key=lambda i: -durations[i])}
    for p in workers:
        t = {k: serial + list_schedule(durations, o, p) for k, o in orders.items()}
        out["workers"].append({
            "workers": p, "expected_seconds": round(t["executor"], 2),
            "expected_speedup": round(reference / t["executor"], 2),
            "amdahl_speedup": round(reference / (serial + parallel / p), 2),
            "expected_speedup_by_size": round(reference / t["by_size"], 2),
            "expected_speedup_by_duration": round(reference / t["by_duration"], 2)})
    return out


# ------------------------------------------------------------------------------------------
# Runs
# ------------------------------------------------------------------------------------------
def timed_run(case, db, inputs, timers: SearchTimers, resources: SearchResources) -> dict:
    """One run of the case with ``resources``; its timings, placement and the load."""
    timers.reset()
    load = os.getloadavg()[0]
    row = run_prepared(case, db, inputs, resources)
    out = {"place_wall": round(timers.place_wall, 2), "place_cpu": round(timers.place_cpu, 2),
           "executor_wall": round(timers.run_wall, 2),
           "outside_wall": round(timers.place_wall - timers.run_wall, 2),
           "outside_cpu": round(timers.place_cpu - timers.run_cpu, 2),
           "jobs": sum(timers.batches), "goodput": row["goodput"],
           "placement": row["placement"], "load_before": round(load, 2),
           "load_after": round(os.getloadavg()[0], 2)}
    if timers.tasks:
        nodes: dict[str, list[float]] = {}
        for cpu, _, node in timers.tasks:
            nodes.setdefault(node, []).append(cpu)
        per_node = sorted(nodes.values(), key=len, reverse=True)
        out.update(put_wall=round(timers.put_wall, 2), puts=timers.puts,
                   prebuild_wall=round(timers.prebuild_wall, 2),
                   task_wall_sum=round(sum(w for _, w, _ in timers.tasks), 2),
                   tasks_per_node=[len(x) for x in per_node],
                   task_cpu_per_node=[round(sum(x), 2) for x in per_node],
                   task_cpu=[round(c, 4) for c, _, _ in timers.tasks])
    else:
        out.update(job_cpu=[round(c, 4) for c, _ in timers.jobs])
    out["job_order"] = list(timers.job_order)
    out["job_sizes"] = list(timers.job_sizes)
    return out


def median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


#: Ray executor variants: (prebuild, spread) of SearchTimers.
VARIANTS = {"as-is": (False, False), "prebuilt": (True, False), "spread": (False, True),
            "prebuilt+spread": (True, True)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", default="S3_maf2.tsv")
    ap.add_argument("--devices", type=int, default=16)
    ap.add_argument("--window", choices=("day", "quick"), default="day")
    ap.add_argument("--workers", default="1,2", help="comma-separated worker (node) counts")
    ap.add_argument("--variants", default="as-is,prebuilt",
                    help=f"comma-separated, of {sorted(VARIANTS)}: the executor as it is, "
                         "with the per-model request indexes built before the put, with SPREAD "
                         "scheduling, or both")
    ap.add_argument("--repeats", type=int, default=2, help="runs per worker count and variant")
    ap.add_argument("--serial-runs", type=int, default=1, help="in-process serial runs")
    ap.add_argument("--object-store-mb", type=int, default=2048,
                    help="object store per node (MiB)")
    ap.add_argument("--predict", default="1,2,16,32,64", help="worker counts to predict")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    use_fresh_token()
    workers = [int(w) for w in args.workers.split(",") if w]
    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        if v not in VARIANTS:
            raise SystemExit(f"unknown variant {v!r}; choose from {sorted(VARIANTS)}")

    case, inputs, db = prepared_case(args.file, args.devices, args.window == "quick")
    timers = SearchTimers()
    timers.install()
    result: dict[str, Any] = {
        "case": case.describe(), "requests": int(len(inputs.train_workload.arrivals)),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                   f"{platform.processor() or platform.platform()}",
        "load_at_start": [round(x, 2) for x in os.getloadavg()], "serial": [], "ray": []}

    for k in range(args.serial_runs):
        r = timed_run(case, db, inputs, timers, SearchResources())
        result["serial"].append(r)
        logger.info("serial run %d: place %.1f s wall, %.1f s CPU; outside the executor %.2f "
                    "s CPU; %d jobs, longest %.2f s CPU; load %.1f -> %.1f", k + 1,
                    r["place_wall"], r["place_cpu"], r["outside_cpu"], r["jobs"],
                    max(r["job_cpu"]), r["load_before"], r["load_after"])
    placement = result["serial"][0]["placement"]

    timers.install_ray_put()
    for rep in range(args.repeats):
        for w in workers:
            t = time.perf_counter()
            with LocalCluster(w, args.object_store_mb << 20):
                started = time.perf_counter() - t
                t = time.perf_counter()
                run_prepared(case.replace(num_devices=2), db, inputs,
                             SearchResources(split=True))  # start and warm the workers
                warm = time.perf_counter() - t
                for v in variants:
                    timers.prebuild, timers.spread = VARIANTS[v]
                    r = timed_run(case, db, inputs, timers, SearchResources(split=True))
                    r.update(variant=v, workers=w, repeat=rep + 1,
                             cluster_start=round(started, 1), warm_up=round(warm, 1))
                    result["ray"].append(r)
                    logger.info(
                        "ray %s, %d worker(s), run %d: place %.1f s wall (executor %.1f s, "
                        "puts %.2f s, prebuild %.2f s, outside %.2f s; tasks %.1f s CPU, "
                        "per node %s); load %.1f -> %.1f", v, w, rep + 1, r["place_wall"],
                        r["executor_wall"], r["put_wall"], r["prebuild_wall"],
                        r["outside_wall"], sum(r["task_cpu"]), r["tasks_per_node"],
                        r["load_before"], r["load_after"])

    runs = result["serial"] + result["ray"]
    result["placements_identical"] = all(r["placement"] == placement for r in runs)
    if not result["placements_identical"]:
        raise SystemExit("the placements differ between runs")
    for r in runs:
        r.pop("placement")

    ref = result["serial"][0]
    reference = median([r["place_cpu"] for r in result["serial"]])
    job_cpu = ref["job_cpu"]
    result["serial_reference"] = {
        "place_wall_median": median([r["place_wall"] for r in result["serial"]]),
        "place_cpu_median": reference,
        "outside_cpu": median([r["outside_cpu"] for r in result["serial"]]),
        "serial_fraction": round(ref["outside_cpu"] / ref["place_cpu"], 4),
        "jobs": len(job_cpu), "jobs_cpu_sum": round(sum(job_cpu), 2),
        "longest_job_cpu": round(max(job_cpu), 2)}
    measured, expected = [], {}
    predict = [int(p) for p in args.predict.split(",") if p]
    for v in variants:
        for w in workers:
            rs = [r for r in result["ray"] if r["workers"] == w and r["variant"] == v]
            t = median([r["place_wall"] for r in rs])
            measured.append({"variant": v, "workers": w, "runs": len(rs),
                             "place_wall": [r["place_wall"] for r in rs],
                             "place_wall_median": round(t, 2),
                             "speedup_vs_serial_wall": round(
                                 result["serial_reference"]["place_wall_median"] / t, 2)})
        one = [m for m in measured if m["variant"] == v and m["workers"] == 1]
        for m in measured:
            if one and m["variant"] == v:
                m["speedup_vs_1_worker"] = round(one[0]["place_wall_median"]
                                                 / m["place_wall_median"], 2)
        runs = [r for r in result["ray"] if r["variant"] == v]
        if any(r["workers"] == 1 for r in runs):
            expected[v] = expected_scaling(result["serial_reference"]["outside_cpu"], runs,
                                           reference, predict)
    result["measured"] = measured
    result["expected"] = expected
    result["load_at_end"] = [round(x, 2) for x in os.getloadavg()]

    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    brief = {k: result[k] for k in ("case", "requests", "machine", "load_at_start",
                                    "load_at_end", "placements_identical",
                                    "serial_reference", "measured", "expected")}
    print(json.dumps(brief, indent=1))


if __name__ == "__main__":
    main()
