"""The paper's fidelity loop on real compute (DESIGN 3.4, 9; docs/runtime.md, "Fidelity on real
compute"): profile the models on this machine, place them with SR and Beta, simulate, then
serve the same placements with the JAX back end and compare.

    python -m alpa_serve.runtime.fidelity --backend jax [--quick] --out DIR [--profile DB]

The case (:class:`RealCase`): several small models of ``alpa_serve.models.zoo`` on 2 devices,
power-law Gamma arrivals, a memory budget per device that holds about half of the models'
single-device weights (so SR cannot put every model on every device and model parallelism has
something to pool), SLO scale swept. Steps:

1. profile: ``profiling.profile`` measures the case's model types at batch size 1 (the runtime
   does not batch, DESIGN 5.3) in every configuration of up to 2 devices, into
   ``DIR/profile.pkl`` (rows ``DIR/profile.rows.tsv``, resumable), unless ``--profile DB``
   names a database to reuse;
2. per SLO scale and policy (SR = ``sr-greedy``, Beta = ``mp-search``): place with the
   measured profiles, simulate the test workload (the simulator column);
3. serve each placement with ``RuntimeConfig(backend="jax")`` (real time) and replay the same
   workload (the runtime column): ``fidelity.run_point``.

Writes ``DIR/fidelity.tsv`` (the columns of ``fidelity.COLUMNS``; no published real system
exists for this case: ``goodput_published`` is NaN) and ``DIR/fidelity.pdf``/``.png``.
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RealCase:
    """The real-compute fidelity case.

    Attributes:
        model_types: type (small-model name) of each served model; model i is named ``m{i}``.
        num_devices: devices of the cluster (host devices on CPU).
        total_rate: requests per second over all models, split by a power law (DESIGN 4.1).
        cv: coefficient of variation of every model's Gamma arrivals.
        budget_share: memory budget per device = this x the sum of the models' single-device
            weights / num_devices.
        duration: seconds of the test workload (replayed in real time).
        slo_scales: SLO = scale x the type's measured single-device latency.
        policies: placement policies (DESIGN 6), Beta first.
        seed: arrivals of model i use seed ``seed + i``; weights and inputs use ``seed``.
    """

    model_types: tuple[str, ...] = ("bert-mini", "bert-mini", "moe-mini", "moe-mini")
    num_devices: int = 2
    total_rate: float = 16.0
    cv: float = 4.0
    budget_share: float = 1.05
    duration: float = 60.0
    slo_scales: tuple[float, ...] = (1.5, 2.0, 3.0, 5.0, 10.0)
    policies: tuple[str, ...] = ("mp-search", "sr-greedy")
    seed: int = 0
    model_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "model_names",
                           tuple(f"m{i}" for i in range(len(self.model_types))))

    def note(self) -> str:
        """One line describing the case (figure title)."""
        types = ", ".join(f"{self.model_types.count(t)} x {t}"
                          for t in dict.fromkeys(self.model_types))
        return (f"{types} on {self.num_devices} devices (JAX), rate {self.total_rate:g}, "
                f"CV {self.cv:g}, {self.duration:g} s in real time")


#: ``--quick``: two SLO scales, 40 s each.
QUICK_SLO_SCALES = (2.0, 5.0)
QUICK_DURATION = 40.0


def profile_case(case: RealCase, out: Path, progress: bool = True) -> Any:
    """Measure the case's model types (batch size 1, every configuration of up to
    ``case.num_devices`` devices) into ``out/profile.pkl``; resumes from its rows.

    The profiler runs as its own process (``python -m alpa_serve.profiling.profile``), so that
    this driver never imports JAX: JAX is multithreaded, and Ray forks its helpers."""
    import subprocess
    import sys

    from alpa_serve.profiling import ProfilingDatabase

    types = list(dict.fromkeys(case.model_types))
    db_path = out / "profile.pkl"
    cmd = [sys.executable, "-m", "alpa_serve.profiling.profile", "--out", str(db_path),
           "--rows", str(out / "profile.rows.tsv"), "--models", *types, "--batch-sizes", "1",
           "--host-devices", str(case.num_devices), "--seed", str(case.seed)]
    if not progress:
        cmd.append("--no-progress")
    logger.info("profiling: %s", " ".join(cmd))
    subprocess.run(cmd, check=True)
    return ProfilingDatabase.load(db_path)


def memory_budget(case: RealCase, profiles: Sequence[Any]) -> float:
    """Bytes per device (see ``RealCase.budget_share``)."""
    from alpa_serve.profiling import ParallelConfig

    single = sum(p.max_stage_weight(ParallelConfig(1, 1, 1)) for p in profiles)
    return case.budget_share * single / case.num_devices


def prepare_real_points(case: RealCase, db: Any) -> list[Any]:
    """Place and simulate every (policy, SLO scale) of ``case`` with the profiles of ``db``."""
    from alpa_serve.model_sets import slo_base
    from alpa_serve.placement import ClusterEnv, ModelData, get_policy
    from alpa_serve.runtime.fidelity import FidelityPoint, group_summary
    from alpa_serve.simulator import SimTables
    from alpa_serve.workload import GammaProcess, Workload, power_law_rates

    profiles = [db.get(t) for t in case.model_types]
    names = list(case.model_names)
    rates = power_law_rates(case.total_rate, len(names))
    env = ClusterEnv(case.num_devices, memory_budget(case, profiles))
    points = []
    for policy_name in case.policies:
        for scale in case.slo_scales:
            slos = np.array([scale * slo_base(p) for p in profiles], dtype=np.float64)
            workload = Workload.merge(*[
                GammaProcess(float(r), case.cv).generate_workload(
                    i, 0.0, case.duration, float(slos[i]), seed=case.seed + i,
                    model_names=names)
                for i, r in enumerate(rates)])
            models = [ModelData(n, float(s), float(r), case.cv, p)
                      for n, s, r, p in zip(names, slos, rates, profiles)]
            placement = get_policy(policy_name).place(models, env, train_workload=None,
                                                      train_seed=case.seed)
            stats = SimTables(profiles, workload).simulate(placement)
            points.append(FidelityPoint(policy_name, float(scale), placement, profiles, slos,
                                        case.duration, workload, stats.good.copy(),
                                        float(stats.goodput), float(stats.goodput)))
            logger.info("%s slo %g: simulator %.3f (%d requests, %s)", policy_name, scale,
                        stats.goodput, len(workload), group_summary(placement))
    return points


def run_real(out: Path, case: RealCase, profile: Optional[Path] = None,
             address: Optional[str] = None, progress: bool = True,
             connect_timeout: Optional[float] = None,
             num_cpus: Optional[int] = None) -> list[dict[str, Any]]:
    """The whole loop (module docstring); returns the rows written to ``out/fidelity.tsv``.
    ``address``, ``connect_timeout``, ``num_cpus``: where Ray runs (``RuntimeConfig``; None:
    its defaults)."""
    from alpa_serve.experiments.tsv import append_row
    from alpa_serve.models.jaxenv import CACHE_ENV
    from alpa_serve.profiling import ProfilingDatabase
    from alpa_serve.runtime.fidelity import COLUMNS, plot, run_point
    from alpa_serve.runtime.runtime import Runtime, RuntimeConfig

    t_start = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    # The profiler and the group managers (Ray workers inherit the driver's environment)
    # share compiled stage functions; JAX's cache key counts the devices a process shows, so
    # the group managers show as many host devices as the profiler.
    os.environ.setdefault(CACHE_ENV, str((out / "jax_cache").resolve()))
    os.environ.setdefault("ALPA_SERVE_HOST_DEVICES", str(case.num_devices))
    db = ProfilingDatabase.load(profile) if profile is not None else \
        profile_case(case, out, progress)
    t_profiled = time.monotonic()
    points = prepare_real_points(case, db)
    tsv = out / "fidelity.tsv"
    if tsv.exists():
        tsv.unlink()
    rows = []
    first = points[0]
    ray_args: dict[str, Any] = {"address": address, "num_cpus": num_cpus}
    if connect_timeout is not None:
        ray_args["connect_timeout"] = connect_timeout
    config = RuntimeConfig(backend="jax", **ray_args)
    with Runtime.start(first.placement, first.profiles, first.workload.model_names,
                       [float(s) for s in first.slos], config) as runtime:
        for point in points:
            row = run_point(point, runtime)
            row["goodput_published"] = math.nan
            append_row(tsv, row, COLUMNS)
            rows.append(row)
            print(f"{row['policy']:10s} slo {row['slo_scale']:5g}: runtime "
                  f"{row['goodput_runtime']:.3f} simulator {row['goodput_simulator']:.3f} "
                  f"diff {row['diff']:+.4f} ({row['groups']}, load {row['load_avg']}, "
                  f"{row['wall_seconds']:.0f} s)", flush=True)
    plot(rows, out / "fidelity", case.note())
    worst = max(abs(r["diff"]) for r in rows)
    wall = time.monotonic() - t_start
    print(f"wrote {tsv} and {out / 'fidelity'}.pdf/.png; largest |runtime - simulator| = "
          f"{worst:.3f}; {wall:.0f} s (profile {t_profiled - t_start:.0f} s)")
    return rows
