"""Measure a profiling database on the devices at hand (DESIGN 3.4; docs/profiling.md,
"Measured profiles").

    python -m alpa_serve.profiling.profile --out DB.pkl [--models bert-tiny bert-mini moe-mini]
        [--rows ROWS.tsv] [--configs 1x1 2x1 1x2] [--max-devices N] [--host-devices 2]
        [--batch-sizes 1 2 4 8 16] [--platform cpu|gpu] [--seed 0] [--rounds 3] [--no-progress]

For every model (``alpa_serve.models.zoo.SMALL_MODELS``), parallel configuration (op, pp) and
batch size, the JAX model (``alpa_serve.models``) is built on ``op * pp`` devices, each stage
compiled, run ``--warmup`` times, then timed stage by stage: per-stage latency = the median of
the warm runs of that stage (input placed on its devices, compiled stage, wait for the result;
exactly what the runtime's JAX back end runs); MeanTime/StdTime over the same whole-pipeline
runs. The timed runs of a model's rows are interleaved in ``--rounds`` rounds (each round times
every row of the model in turn), so that a burst of other load on a shared machine does not
land on all samples of one configuration. Weight bytes per device come from the placed arrays'
shards, activation bytes from XLA's memory analysis of the compiled stage (temp + output bytes
per device).

Each row is appended to the raw benchmark rows (``ROWS``, the original benchmark's layout,
``profiling.benchmark_rows``) as soon as its rounds are done, with the device kind; a rerun
skips the rows already there (resume). At the end all rows of ``ROWS`` are converted into the
database schema (DESIGN 3.1) and written to ``DB`` (``.pkl`` or ``.json``).

Devices are whatever JAX shows: GPUs when a CUDA build of jaxlib finds them, else host (CPU)
devices, ``--host-devices`` of them (set before JAX is imported; they share the machine's
cores, one thread each, see ``alpa_serve.models.jaxenv``). JAX is the optional extra
``pip install -e '.[real]'``. Model names and every configuration are checked before anything
is built.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import platform as platform_mod
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from alpa_serve.models.jaxenv import (
    INSTALL_HINT,
    configure_host_devices,
    enable_compile_cache,
    jax_available,
)
from alpa_serve.models.zoo import (
    DEFAULT_PROFILE_MODELS,
    SMALL_MODELS,
    get_arch,
    parallel_config_problem,
)
from alpa_serve.profiling.benchmark_rows import (
    BenchmarkRow,
    append_row,
    read_rows,
    rows_to_database,
)
from alpa_serve.profiling.database import ParallelConfig, ProfilingDatabase
from alpa_serve.profiling.params import BATCH_SIZES

logger = logging.getLogger(__name__)

#: Host (CPU) devices JAX shows when none is asked for.
DEFAULT_HOST_DEVICES = 2

#: Rows whose whole-pipeline passes vary by more than this (std / mean) are reported.
NOISY_SPREAD = 0.25

#: How stages are timed. ``busy`` (default): while a row is timed every device is working:
#: the configuration's stages run concurrently (a pipeline in steady state) and every device
#: it leaves free runs a filler computation (another group at work); this is what serving sees
#: when the cluster is busy, and on host devices, which share the machine's cores, it includes
#: their contention. ``isolated``: one stage at a time, every other device idle (on GPUs the
#: two agree).
TIMING_MODES = ("busy", "isolated")


class ProfileError(ValueError):
    """A profiling request that cannot be run (bad model name, too few devices, ...)."""


@dataclass(frozen=True)
class TimingOptions:
    """How each row is timed.

    warmup: untimed passes after compilation (at least one is run). The timed whole-pipeline
    passes of a row are spread over ``rounds`` rounds; each round times every row of the model
    in turn, at least ``ceil(min_repeats / rounds)`` passes per row and round, more until
    ``min_seconds / rounds`` seconds, at most ``ceil(max_repeats / rounds)``. So a row's
    samples come from several moments, and a burst of other load on a shared machine lands on
    one round of all configurations rather than on all samples of one (the latency is the
    median of all).
    """

    warmup: int = 1
    min_repeats: int = 6
    max_repeats: int = 30
    min_seconds: float = 0.6
    rounds: int = 3

    def __post_init__(self) -> None:
        if self.warmup < 0 or not 1 <= self.min_repeats <= self.max_repeats or self.rounds < 1:
            raise ValueError(f"need warmup >= 0, 1 <= min_repeats <= max_repeats and rounds >= "
                             f"1, got {self.warmup}, {self.min_repeats}, {self.max_repeats}, "
                             f"{self.rounds}")

    def per_round(self) -> tuple[int, int, float]:
        """(min passes, max passes, min seconds) of one round of one row."""
        r = self.rounds
        return (math.ceil(self.min_repeats / r), math.ceil(self.max_repeats / r),
                self.min_seconds / r)


@dataclass(frozen=True)
class ProfilePlan:
    """What to measure: model name -> its (op, pp) configurations, and the batch sizes."""

    configs: dict[str, tuple[ParallelConfig, ...]]
    batch_sizes: tuple[int, ...]
    num_devices: int
    device_kind: str

    def items(self) -> list[tuple[str, ParallelConfig, int]]:
        """(model, configuration, batch size) in measurement order."""
        return [(m, c, b) for m, cfgs in self.configs.items() for c in cfgs
                for b in self.batch_sizes]


def parse_config(text: str) -> tuple[int, int]:
    """``"OPxPP"`` (e.g. ``2x1``) -> (op, pp)."""
    try:
        op, pp = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ProfileError(f"configuration {text!r} is not OPxPP (e.g. 2x1 = op 2, pp 1)") \
            from None
    return op, pp


def default_configs(num_devices: int) -> list[tuple[int, int]]:
    """Every (op, pp) of powers of two with op x pp <= ``num_devices``, by size then pp."""
    sizes = [1 << i for i in range(int(math.log2(max(num_devices, 1))) + 1)]
    return [(s // pp, pp) for s in sizes for pp in sizes if pp <= s]


def make_plan(models: Sequence[str], configs: Optional[Sequence[tuple[int, int]]],
              batch_sizes: Sequence[int], num_devices: int, device_kind: str) -> ProfilePlan:
    """Check every request before any work: model names, configurations that fit the model
    and the ``num_devices`` devices, batch sizes. ProfileError with one line otherwise.

    ``configs`` None: every default configuration (:func:`default_configs`) that the model
    supports."""
    if not models:
        raise ProfileError("no model to profile; pass --models NAME ...")
    unknown = [m for m in models if m not in SMALL_MODELS]
    if unknown:
        raise ProfileError(f"unknown model(s) {', '.join(map(repr, unknown))}; known: "
                           f"{', '.join(SMALL_MODELS)}")
    if len(set(models)) != len(models):
        raise ProfileError(f"model names repeat: {list(models)}")
    if not batch_sizes or any(b < 1 for b in batch_sizes):
        raise ProfileError(f"batch sizes must be >= 1, got {list(batch_sizes)}")
    plan: dict[str, tuple[ParallelConfig, ...]] = {}
    for name in models:
        arch = get_arch(name)
        cfgs = []
        for op, pp in (configs if configs is not None else default_configs(num_devices)):
            if op * pp > num_devices:
                raise ProfileError(
                    f"configuration op={op} x pp={pp} needs {op * pp} devices but JAX shows "
                    f"{num_devices} ({device_kind}); on CPU pass --host-devices {op * pp}")
            problem = parallel_config_problem(arch, op, pp)
            if problem and configs is not None:
                raise ProfileError(problem)
            if not problem:
                cfgs.append(ParallelConfig(1, op, pp))
        if not cfgs:
            raise ProfileError(f"no configuration of {name} fits {num_devices} devices")
        plan[name] = tuple(cfgs)
    return ProfilePlan(plan, tuple(sorted(set(int(b) for b in batch_sizes))), num_devices,
                       device_kind)


def _row_key(row: BenchmarkRow) -> tuple[str, ParallelConfig, int]:
    return row.model_name, ParallelConfig.coerce(row.config), row.batch_size


@dataclass
class _Measurement:
    """One row being measured: the built model, its input, each stage's input, and the
    samples so far (s)."""

    model: Any
    batch_size: int
    tokens: np.ndarray
    stage_inputs: list[Any]
    stage_times: list[list[float]]
    totals: list[float] = field(default_factory=list)


def _prepare(model: Any, batch_size: int, timing: TimingOptions, seed: int) -> _Measurement:
    """Compile the stages for ``batch_size``, run the warm-up passes, keep each stage's input."""
    from alpa_serve.models.transformer import example_tokens

    tokens = example_tokens(model.arch, batch_size, seed)
    model.compile(batch_size)
    inputs: list[Any] = []
    for _ in range(max(timing.warmup, 1)):
        inputs = []
        x: Any = tokens
        for stage in model.stages:
            inputs.append(x)
            x = stage(x)
    return _Measurement(model, batch_size, tokens, inputs, [[] for _ in model.stages])


def _time_round(m: _Measurement, timing: TimingOptions) -> None:
    """One round of timed whole-pipeline passes, each stage timed on its own, one stage at a
    time (``isolated``)."""
    low, high, seconds = timing.per_round()
    clock = time.perf_counter
    begin, n = clock(), 0
    while n < high and (n < low or clock() - begin < seconds):
        x: Any = m.tokens
        t0 = clock()
        for k, stage in enumerate(m.model.stages):
            ts = clock()
            x = stage(x)
            m.stage_times[k].append(clock() - ts)
        m.totals.append(clock() - t0)
        n += 1


class Filler:
    """Keeps one device busy: a loop of a compiled 384 x 384 float32 matmul (a few ms per call),
    standing for another group computing on it."""

    SIZE = 384

    def __init__(self, device: Any) -> None:
        import jax

        a = np.random.default_rng(0).normal(size=(self.SIZE, self.SIZE)).astype(np.float32)
        self.x = jax.device_put(a / self.SIZE, device)
        self.fn = jax.jit(lambda v: v @ v).lower(self.x).compile()
        self.fn(self.x).block_until_ready()

    def __call__(self) -> None:
        self.fn(self.x).block_until_ready()


def _time_round_busy(m: _Measurement, timing: TimingOptions, fillers: Sequence[Filler]) -> None:
    """One round with every device busy (``busy``): each stage of the model runs in its own
    thread in a loop on its input (a pipeline in steady state, stages overlapping as they do
    under load), and each device the configuration leaves free runs a :class:`Filler`; every
    stage call is timed. A pass's time is the sum of its stages' times."""
    import threading

    low, high, seconds = timing.per_round()
    clock = time.perf_counter
    stop = threading.Event()
    samples: list[list[float]] = [[] for _ in m.model.stages]

    def run_stage(k: int) -> None:
        stage, x, out = m.model.stages[k], m.stage_inputs[k], samples[k]
        while not stop.is_set():
            ts = clock()
            stage(x)
            out.append(clock() - ts)

    def run_filler(f: Filler) -> None:
        while not stop.is_set():
            f()

    threads = [threading.Thread(target=run_stage, args=(k,), daemon=True)
               for k in range(len(samples))]
    threads += [threading.Thread(target=run_filler, args=(f,), daemon=True) for f in fillers]
    begin = clock()
    for t in threads:
        t.start()
    while True:
        counts = [len(x) for x in samples]
        if max(counts) >= high or (min(counts) >= low and clock() - begin >= seconds):
            break
        time.sleep(0.002)
    stop.set()
    for t in threads:
        t.join()
    n = min(len(x) for x in samples)
    for k, x in enumerate(samples):
        m.stage_times[k].extend(x)
    m.totals.extend(float(sum(x[i] for x in samples)) for i in range(n))


def _row(m: _Measurement, device_kind: str) -> BenchmarkRow:
    model, b = m.model, m.batch_size
    weights = tuple(model.weight_bytes())
    acts = [s.activation_bytes(model.arch, b) for s in model.stages]
    mean = float(np.mean(m.totals))
    return BenchmarkRow(
        model_name=model.arch.name, batch_size=b, config=ParallelConfig(1, model.op, model.pp),
        mean_time=mean, std_time=float(np.std(m.totals)), stage_weights=weights,
        stage_peak_mem=tuple(w + (a or 0.0) for w, a in zip(weights, acts)),
        stage_latencies=tuple(float(np.median(t)) for t in m.stage_times),
        tflops=model.arch.total_flops(b) / mean / 1e12, device_kind=device_kind)


def measure_row(model: Any, batch_size: int, timing: TimingOptions, seed: int,
                device_kind: str) -> BenchmarkRow:
    """Time one (model, configuration, batch size) on its own (all rounds back to back);
    ``model`` is a built ShardedModel. The profiler interleaves the rounds of a model's rows
    instead (:func:`run_profile`)."""
    m = _prepare(model, batch_size, timing, seed)
    for _ in range(timing.rounds):
        _time_round(m, timing)
    return _row(m, device_kind)


@dataclass
class ProfileResult:
    """What a profiling run did: the database, its rows, and counts."""

    database: ProfilingDatabase
    rows: list[BenchmarkRow]
    measured: int
    skipped: int
    seconds: float
    hardware: dict[str, Any] = field(default_factory=dict)


def hardware_description(devices: Sequence[Any], device_kind: str, act_reported: bool
                         ) -> dict[str, Any]:
    """The database's free-form ``hardware`` section for a measured profile."""
    import jax

    from alpa_serve.models.sharding import ACT_MEM_SOURCE

    desc: dict[str, Any] = {
        "source": "measured: python -m alpa_serve.profiling.profile (DESIGN 3.4)",
        "device_kind": device_kind,
        "num_devices": len(devices),
        "jax": jax.__version__,
        "dtype": "float32",
        "latency": "median of warm runs after compilation, per stage (input placement, "
                   "compiled stage, wait)",
        "activation_memory": ACT_MEM_SOURCE if act_reported else
        "not reported by this backend's memory analysis: act_mem = 0",
        "machine": f"{platform_mod.machine()}, {os.cpu_count()} cores",
    }
    if devices and devices[0].platform == "cpu":
        desc["note"] = (f"{len(devices)} host devices sharing the machine's {os.cpu_count()} "
                        f"cores, one thread each")
    return desc


def run_profile(models: Sequence[str], out: Optional[Path], rows_path: Path,
                configs: Optional[Sequence[tuple[int, int]]] = None,
                batch_sizes: Sequence[int] = BATCH_SIZES, host_devices: int =
                DEFAULT_HOST_DEVICES, max_devices: Optional[int] = None,
                platform: Optional[str] = None, seed: int = 0,
                timing: TimingOptions = TimingOptions(), progress: bool = True,
                on_row: Optional[Callable[[BenchmarkRow], None]] = None,
                compile_cache: Optional[Path] = None, mode: str = "busy") -> ProfileResult:
    """Measure what is not yet in ``rows_path``, then convert all its rows into a database
    (written to ``out`` unless None). See the module docstring; errors before any work raise
    :class:`ProfileError`. ``compile_cache``: a folder for JAX's persistent compilation cache
    (default ``$ALPA_SERVE_JAX_CACHE``, or none). ``mode``: ``busy`` (every device busy while
    a row is timed) or ``isolated`` (one stage at a time), see :data:`TIMING_MODES`."""
    if mode not in TIMING_MODES:
        raise ProfileError(f"unknown timing mode {mode!r}; choose from {list(TIMING_MODES)}")
    if not jax_available():
        raise ProfileError(f"the profiler needs JAX; {INSTALL_HINT}")
    configure_host_devices(host_devices)
    import jax

    enable_compile_cache(compile_cache)

    try:
        devices = list(jax.devices(platform) if platform else jax.devices())
    except RuntimeError as exc:
        raise ProfileError(f"JAX finds no {platform} device: {exc}") from None
    if max_devices is not None:
        devices = devices[:max_devices]
    if devices[0].platform == "cpu":
        devices = devices[:host_devices]
    from alpa_serve.models.sharding import ShardedModel, device_description

    kind = device_description(devices[0])
    plan = make_plan(models, configs, batch_sizes, len(devices), kind)
    done: dict[tuple[str, ParallelConfig, int], BenchmarkRow] = {}
    if rows_path.exists() and rows_path.stat().st_size:
        for row in read_rows(rows_path):
            done[_row_key(row)] = row
        other = sorted({r.device_kind for r in done.values()} - {kind})
        if other:
            raise ProfileError(f"{rows_path} holds rows measured on {', '.join(other)}, not "
                               f"{kind}; pass another --rows file")
    todo = [item for item in plan.items() if item not in done]
    rows_path.parent.mkdir(parents=True, exist_ok=True)
    logger.info("%d rows to measure on %d x %s (%d already in %s)", len(todo), len(devices),
                kind, len(plan.items()) - len(todo), rows_path)
    begin = time.monotonic()
    bar: Any = None
    if progress and todo:
        from tqdm import tqdm

        # One step per row compiled, and per row and round timed.
        bar = tqdm(total=len(todo) * (1 + timing.rounds), desc="profile", unit="step",
                   file=sys.stderr)
    from alpa_serve.models.transformer import init_params

    act_reported = True
    fillers: dict[int, Filler] = {}
    try:
        for name in plan.configs:
            mine = [(c, b) for (n, c, b) in todo if n == name]
            if not mine:
                continue
            arch = get_arch(name)
            params = init_params(arch, seed)
            built = {cfg: ShardedModel.build(arch, cfg.op, cfg.pp, params, devices=devices)
                     for cfg in dict.fromkeys(c for c, _ in mine)}
            measuring = []
            for cfg, b in mine:
                if bar is not None:
                    bar.set_postfix_str(f"{name} op{cfg.op}pp{cfg.pp} bs{b} compile")
                measuring.append(_prepare(built[cfg], b, timing, seed))
                if bar is not None:
                    bar.update(1)
            for r in range(timing.rounds):
                for (cfg, b), m in zip(mine, measuring):
                    if bar is not None:
                        bar.set_postfix_str(f"{name} op{cfg.op}pp{cfg.pp} bs{b} round {r + 1}")
                    if mode == "busy":
                        free = devices[cfg.op * cfg.pp:]
                        for d in free:
                            if d.id not in fillers:
                                fillers[d.id] = Filler(d)
                        _time_round_busy(m, timing, [fillers[d.id] for d in free])
                    else:
                        _time_round(m, timing)
                    if bar is not None:
                        bar.update(1)
            spreads = []
            for (cfg, b), m in zip(mine, measuring):
                row = _row(m, kind)
                spreads.append(float(np.std(m.totals) / np.mean(m.totals)))
                act_reported &= any(p > w for p, w in zip(row.stage_peak_mem,
                                                          row.stage_weights))
                append_row(rows_path, row)
                done[(name, cfg, b)] = row
                if on_row is not None:
                    on_row(row)
            noisy = sum(x > NOISY_SPREAD for x in spreads)
            if noisy:
                logger.warning("%s: the passes of %d of %d rows vary by more than %.0f%% (std / "
                               "mean, largest %.0f%%): the machine's other load shows in the "
                               "profile", name, noisy, len(spreads), 100 * NOISY_SPREAD,
                               100 * max(spreads))
            del built, measuring
    finally:
        if bar is not None:
            bar.close()
    rows = read_rows(rows_path)
    hardware = hardware_description(devices, kind, act_reported)
    db = rows_to_database(rows, hardware)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        db.save(out)
    return ProfileResult(db, rows, len(todo), len(plan.items()) - len(todo),
                         time.monotonic() - begin, hardware)


def default_rows_path(out: Path) -> Path:
    """``DB.rows.tsv`` beside ``DB``."""
    return out.with_name(out.stem + ".rows.tsv")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m alpa_serve.profiling.profile",
        description="Measure a profiling database on the devices JAX shows (docs/profiling.md).")
    parser.add_argument("--out", required=True, type=Path,
                        help="database to write (.pkl or .json)")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_PROFILE_MODELS),
                        help=f"small models to measure (default: %(default)s; known: "
                             f"{', '.join(SMALL_MODELS)})")
    parser.add_argument("--rows", type=Path, default=None,
                        help="raw benchmark rows, appended and resumed (default: "
                             "DB.rows.tsv beside --out)")
    parser.add_argument("--configs", nargs="+", default=None, metavar="OPxPP",
                        help="parallel configurations (default: every op x pp <= devices)")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=list(BATCH_SIZES))
    parser.add_argument("--host-devices", type=int, default=DEFAULT_HOST_DEVICES,
                        help="host (CPU) devices to show when JAX runs on CPU "
                             "(default %(default)s)")
    parser.add_argument("--max-devices", type=int, default=None,
                        help="use at most this many of the devices JAX shows")
    parser.add_argument("--platform", default=None, choices=("cpu", "gpu"),
                        help="JAX platform (default: JAX's default, a GPU when present)")
    parser.add_argument("--seed", type=int, default=0, help="weights and inputs seed")
    parser.add_argument("--warmup", type=int, default=TimingOptions.warmup)
    parser.add_argument("--min-repeats", type=int, default=TimingOptions.min_repeats)
    parser.add_argument("--max-repeats", type=int, default=TimingOptions.max_repeats)
    parser.add_argument("--min-seconds", type=float, default=TimingOptions.min_seconds,
                        help="timed seconds per row before stopping (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=TimingOptions.rounds,
                        help="rounds the timed passes of each row are spread over, all rows "
                             "of a model in turn per round (default %(default)s)")
    parser.add_argument("--timing", choices=TIMING_MODES, default="busy",
                        help="busy: every device working while a row is timed (default); "
                             "isolated: one stage at a time")
    parser.add_argument("--compile-cache", type=Path, default=None,
                        help="folder for JAX's persistent compilation cache (default: "
                             "$ALPA_SERVE_JAX_CACHE, or none)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.out.suffix not in (".pkl", ".json"):
        parser.error(f"--out must end in .pkl or .json, got {args.out}")
    if args.host_devices < 1:
        parser.error("--host-devices must be >= 1")
    try:
        configs = None if args.configs is None else [parse_config(c) for c in args.configs]
        timing = TimingOptions(args.warmup, args.min_repeats, args.max_repeats,
                               args.min_seconds, args.rounds)
        # Names are checked before JAX starts; devices once it shows them.
        make_plan(args.models, configs, args.batch_sizes, 1 << 30, "?")
        result = run_profile(args.models, args.out, args.rows or default_rows_path(args.out),
                             configs, args.batch_sizes, args.host_devices, args.max_devices,
                             args.platform, args.seed, timing, not args.no_progress,
                             compile_cache=args.compile_cache, mode=args.timing)
    except (ProfileError, ValueError) as exc:
        parser.error(str(exc))
    db = result.database
    print(f"wrote {args.out}: {len(db)} models, {len(result.rows)} rows "
          f"({result.measured} measured, {result.skipped} resumed) on "
          f"{result.hardware['device_kind']} in {result.seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
