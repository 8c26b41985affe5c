"""Simulator fidelity: the same placements through the simulator and the running runtime.

    python -m alpa_serve.runtime.fidelity [--out DIR] [--quick] [--speedup K] [--duration S]
    python -m alpa_serve.runtime.fidelity --backend jax [--quick] [--out DIR] [--profile DB]

``--backend jax`` runs the loop on real compute instead (``fidelity_jax``: small JAX models
profiled on this machine, 2 devices, the JAX back end). Without it:

The paper's fidelity case (24 x bert-2.6b on 16 devices, power-law Gamma arrivals of total
rate 40 and CV 4): for each SLO scale of the ``fidelity-bert2.6b-sim`` calibration set and
each policy (SR = ``sr-greedy``, Beta = ``mp-search``), the case is built and placed exactly as
the calibration suite builds it (``experiments.suites.calibration_targets``,
``experiments.case_runner``), the test workload is simulated and then replayed in real time
(speed-up ``K``) against a runtime serving the same placement over HTTP.

Writes ``DIR/fidelity.tsv`` (one row per policy and SLO scale, see :data:`COLUMNS`) and
``DIR/fidelity.pdf`` / ``.png``: per policy, goodput of our runtime, our simulator and the
published real system (``alpa_serve/data/reference/fidelity_real.tsv``).
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import os
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from alpa_serve import raycluster

logger = logging.getLogger(__name__)

#: Calibration set whose cases are run.
FIDELITY_SET = "fidelity-bert2.6b-sim"

#: Policies of the fidelity figure, in legend order (Beta first).
POLICIES = ("mp-search", "sr-greedy")

#: Defaults of a full run and of ``--quick``: speed-up (model s per real s), replayed model
#: seconds of the 200 s test workload, SLO scales (None: all of the set).
DEFAULT_SPEEDUP = 2.0
DEFAULT_DURATION = 60.0
QUICK_SLO_SCALES = (1.5, 4.0)
QUICK_DURATION = 60.0

#: Columns of ``fidelity.tsv``.
COLUMNS = (
    "policy", "slo_scale", "goodput_runtime", "goodput_simulator", "goodput_published",
    "goodput_simulator_full",
    "diff", "decision_agreement", "late_fraction", "gap_p50_ms", "gap_p99_ms",
    "server_gap_p50_ms", "server_gap_p99_ms", "send_lag_p99_ms", "num_requests", "duration",
    "speedup", "groups", "wall_seconds", "load_avg", "breakdown",
)


def published_real_path() -> Any:
    """The published real-system rows, shipped as package data."""
    return resources.files("alpa_serve") / "data" / "reference" / "fidelity_real.tsv"


def read_published_real() -> dict[tuple[str, float], float]:
    """(policy, slo_scale) -> goodput of the published real system."""
    out = {}
    with resources.as_file(published_real_path()) as path, \
            open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            out[(row["policy"], float(row["slo_scale"]))] = float(row["goodput"])
    return out


def group_summary(placement: Any) -> str:
    """``op4pp1x4``-style summary of a placement's groups (as calibration_targets.tsv)."""
    parts: list[str] = []
    counts: dict[tuple[int, int], int] = {}
    for c in placement.group_configs:
        counts[(c.op, c.pp)] = counts.get((c.op, c.pp), 0) + 1
    for (op, pp), k in counts.items():
        parts.append(f"op{op}pp{pp}x{k}")
    return "+".join(parts)


@dataclass(frozen=True)
class FidelityPoint:
    """One case prepared for both back ends."""

    policy: str
    slo_scale: float
    placement: Any
    profiles: list[Any]
    slos: np.ndarray
    duration: float        # model seconds of the test workload replayed
    workload: Any          # the replayed part of the test workload (SLOs set)
    sim_good: np.ndarray   # simulator's per-request good flags on ``workload``
    goodput_simulator: float
    goodput_simulator_full: float  # the simulator on the whole test workload (the case's row)


def prepare_points(policies: Sequence[str], slo_scales: Optional[Sequence[float]],
                   duration: float, targets_path: Optional[str] = None) -> list[FidelityPoint]:
    """Build, place and simulate every case (the calibration suite's own code path)."""
    from alpa_serve.experiments import (
        case_models,
        inputs_key,
        prepare_inputs,
        run_prepared,
        with_slos,
    )
    from alpa_serve.experiments.suites import calibration_targets
    from alpa_serve.model_sets import default_database
    from alpa_serve.placement import ModelPlacement
    from alpa_serve.simulator import SimTables

    unknown = sorted(set(policies) - set(POLICIES))
    if unknown:
        raise ValueError(f"unknown fidelity policies {unknown}; choose from {list(POLICIES)}")
    targets = [t for t in calibration_targets(targets_path) if t.set == FIDELITY_SET
               and t.case.policy in policies
               and (slo_scales is None or t.case.slo_scale in slo_scales)]
    if not targets:
        raise ValueError(f"no {FIDELITY_SET} case matches policies {list(policies)} and SLO "
                         f"scales {slo_scales}")
    db = default_database()
    inputs: dict[str, Any] = {}
    points = []
    for t in sorted(targets, key=lambda t: (POLICIES.index(t.case.policy), t.case.slo_scale)):
        key = inputs_key(t.case)
        if key not in inputs:
            inputs[key] = prepare_inputs(t.case)
        row = run_prepared(t.case, db, inputs[key])
        placement = ModelPlacement.from_json(row["placement"])
        profiles, slos = case_models(t.case, db)
        test = with_slos(inputs[key].test_workload, slos)
        a = test.arrivals
        replayed = test[: int(np.searchsorted(a, a[0] + duration, side="left"))]
        tables = SimTables(profiles, replayed)
        stats = tables.simulate(placement)
        points.append(FidelityPoint(t.case.policy, t.case.slo_scale, placement, profiles, slos,
                                    duration, replayed, stats.good.copy(),
                                    float(stats.goodput), float(row["goodput"])))
        logger.info("%s slo %g: simulator %.3f (%d requests, %s)", t.case.policy,
                    t.case.slo_scale, stats.goodput, len(replayed), group_summary(placement))
    return points


def run_point(point: FidelityPoint, runtime: Any) -> dict[str, Any]:
    """Deploy ``point``'s placement on ``runtime``, replay its workload, compare with the
    simulator."""
    from alpa_serve.runtime.loadgen import replay
    from alpa_serve.simulator.kernels import FIXED_OVERHEAD

    w = point.workload
    speedup = runtime.config.speedup
    t0 = time.monotonic()
    runtime.deploy(point.placement, point.profiles, w.model_names, point.slos)
    result = replay(runtime.url, w, speedup=speedup)
    stats = result.stats()
    trim = stats.trim
    served = result.accepted
    gap = (result.latency - result.predicted_latency)[served] * 1e3
    server_gap = (result.server_latency - result.predicted_latency)[served] * 1e3
    late = served & ~result.good
    row = {
        "policy": point.policy,
        "slo_scale": point.slo_scale,
        "goodput_runtime": float(np.round(stats.goodput, 3)),
        "goodput_simulator": float(np.round(point.goodput_simulator, 3)),
        "goodput_simulator_full": point.goodput_simulator_full,
        "diff": float(np.round(stats.goodput - point.goodput_simulator, 4)),
        "decision_agreement": float(np.round(np.mean(served[trim] == point.sim_good[trim]), 4)),
        "late_fraction": float(np.round(late.sum() / max(served.sum(), 1), 4)),
        "gap_p50_ms": _pct(gap, 50),
        "gap_p99_ms": _pct(gap, 99),
        "server_gap_p50_ms": _pct(server_gap, 50),
        "server_gap_p99_ms": _pct(server_gap, 99),
        "send_lag_p99_ms": _pct(result.lag[~np.isnan(result.lag)] * 1e3, 99),
        "num_requests": len(w),
        "duration": point.duration,
        "speedup": speedup,
        "groups": group_summary(point.placement),
        "wall_seconds": round(time.monotonic() - t0, 1),
        # The machine's 1-minute load average after the replay: host delays, hence the
        # runtime's lateness, grow with other jobs' load (docs/runtime.md).
        "load_avg": round(os.getloadavg()[0], 2),
    }
    # Where the time of served requests went (model ms): p50/p99 of each component, plus the
    # device lag (actual device finish vs the controller's predicted pipeline end) and the
    # HTTP round trip (client latency - controller latency).
    tm = {k: v[served] * 1e3 for k, v in result.timing.items()}
    if tm:
        lag = (tm["dispatch"] + tm["queue"] + tm["device"]
               - (result.predicted_latency[served] - FIXED_OVERHEAD) * 1e3)
        tm["device_lag"] = lag
    tm["http"] = (result.latency - result.server_latency)[served] * 1e3
    row["breakdown"] = " ".join(f"{k}={_pct(v, 50):g}/{_pct(v, 99):g}" for k, v in tm.items())
    errors = int(np.count_nonzero(result.reason == "client_error"))
    if errors:
        logger.warning("%s slo %g: %d requests got no answer", point.policy, point.slo_scale,
                       errors)
    return row


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.round(np.percentile(values, q), 2)) if len(values) else math.nan


def plot(rows: Sequence[dict[str, Any]], out_base: Path, note: str) -> list[Path]:
    """Goodput vs SLO scale: per policy our runtime (solid), our simulator (dashed) and the
    published real system (dotted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from alpa_serve.plotting.panels import save_figure
    from alpa_serve.plotting.styles import RC_PARAMS, policy_style

    with matplotlib.rc_context(RC_PARAMS):
        fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
        policies = sorted({r["policy"] for r in rows}, key=lambda p: policy_style(p).order)
        for policy in policies:
            style = policy_style(policy)
            pts = sorted((r for r in rows if r["policy"] == policy), key=lambda r: r["slo_scale"])
            x = [r["slo_scale"] for r in pts]
            for column, source, ls, marker in (
                    ("goodput_runtime", "our runtime", "-", style.marker),
                    ("goodput_simulator", "our simulator", "--", None),
                    ("goodput_published", "published real system", ":", "x")):
                y = [r[column] for r in pts]
                if all(isinstance(v, float) and math.isnan(v) for v in y):
                    continue  # no published counterpart (the real-compute case)
                ax.plot(x, [v * 100 for v in y], ls=ls, marker=marker, color=style.color,
                        label=f"{style.label}: {source}", markerfacecolor="none")
        ax.set_xlabel("SLO scale")
        ax.set_ylabel("SLO attainment (%)")
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        ax.set_title(note, fontsize=8)
        written = save_figure(fig, out_base, ["pdf", "png"])
        plt.close(fig)
    return written


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m alpa_serve.runtime.fidelity",
        description="Run the fidelity case through the simulator and the runtime; write "
                    "fidelity.tsv and fidelity.pdf/.png.")
    parser.add_argument("--out", default="fidelity_results", help="output folder")
    parser.add_argument("--quick", action="store_true",
                        help=f"SLO scales {list(QUICK_SLO_SCALES)} only, first "
                             f"{QUICK_DURATION:g} s of the workload")
    parser.add_argument("--speedup", type=float, default=None,
                        help=f"model seconds per real second of the replay (default "
                             f"{DEFAULT_SPEEDUP:g}; emulated back end only)")
    parser.add_argument("--duration", type=float, default=None,
                        help=f"model seconds of the test workload to replay (default "
                             f"{DEFAULT_DURATION:g}, quick {QUICK_DURATION:g})")
    parser.add_argument("--slo-scales", type=float, nargs="+", default=None,
                        help="SLO scales to run (default: all of the set)")
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=POLICIES)
    parser.add_argument("--targets", default=None, help="calibration_targets.tsv path")
    raycluster.add_arguments(parser, address_alias=True)
    parser.add_argument("--backend", default="emulated", choices=("emulated", "jax"),
                        help="emulated: the paper's case with emulated devices (default); jax: "
                             "small JAX models profiled and served on this machine (real time)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="--backend jax: a measured database to reuse instead of profiling")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.backend == "jax":
        return _main_jax(parser, args)
    if args.profile is not None:
        parser.error("--profile goes with --backend jax")
    if args.speedup is None:
        args.speedup = DEFAULT_SPEEDUP
    if args.speedup <= 0:
        parser.error("--speedup must be > 0")
    if args.duration is not None and args.duration <= 0:
        parser.error("--duration must be > 0 seconds")
    duration = args.duration or (QUICK_DURATION if args.quick else DEFAULT_DURATION)
    slo_scales = args.slo_scales or (QUICK_SLO_SCALES if args.quick else None)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tsv = out / "fidelity.tsv"

    from alpa_serve.experiments.tsv import append_row
    from alpa_serve.runtime.runtime import Runtime, RuntimeConfig

    t_start = time.monotonic()
    points = prepare_points(args.policies, slo_scales, duration, args.targets)
    published = read_published_real()
    first = points[0]
    rows = []
    if tsv.exists():
        tsv.unlink()
    config = RuntimeConfig(speedup=args.speedup, address=args.ray_address,
                           connect_timeout=args.connect_timeout, num_cpus=args.num_cpus)
    with Runtime.start(first.placement, first.profiles, first.workload.model_names,
                       [float(s) for s in first.slos],
                       config) as runtime:
        for point in points:
            row = run_point(point, runtime)
            row["goodput_published"] = published.get((point.policy, point.slo_scale), math.nan)
            append_row(tsv, row, COLUMNS)
            rows.append(row)
            print(f"{row['policy']:10s} slo {row['slo_scale']:5g}: runtime "
                  f"{row['goodput_runtime']:.3f} simulator {row['goodput_simulator']:.3f} "
                  f"published-real {row['goodput_published']:.3f} "
                  f"({row['wall_seconds']:.0f} s)", flush=True)
    wall = time.monotonic() - t_start
    note = (f"24 x bert-2.6b, 16 devices, rate 40, CV 4; first {duration:g} s of the workload "
            f"replayed at {args.speedup:g}x real time")
    plot(rows, out / "fidelity", note)
    worst = max(abs(r["diff"]) for r in rows)
    print(f"wrote {tsv} and {out / 'fidelity'}.pdf/.png; largest |runtime - simulator| = "
          f"{worst:.3f}; {wall:.0f} s")
    return 0


def _main_jax(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``--backend jax``: the real-compute loop of ``fidelity_jax``."""
    from dataclasses import replace

    from alpa_serve.models.jaxenv import INSTALL_HINT, jax_available
    from alpa_serve.runtime.fidelity_jax import (
        QUICK_DURATION as JAX_QUICK_DURATION,
        QUICK_SLO_SCALES as JAX_QUICK_SCALES,
        RealCase,
        run_real,
    )

    if args.speedup is not None:
        parser.error("--backend jax computes in real time; --speedup does not apply")
    if args.targets is not None:
        parser.error("--targets goes with the emulated back end")
    if not jax_available():
        parser.error(f"--backend jax needs JAX; {INSTALL_HINT}")
    if args.profile is not None and not args.profile.exists():
        parser.error(f"--profile: {args.profile} does not exist")
    if args.duration is not None and args.duration <= 0:
        parser.error("--duration must be > 0 seconds")
    case = RealCase()
    policies = tuple(p for p in case.policies if p in args.policies)
    case = replace(case, policies=policies,
                   duration=args.duration or (JAX_QUICK_DURATION if args.quick
                                              else case.duration),
                   slo_scales=tuple(args.slo_scales or (JAX_QUICK_SCALES if args.quick
                                                        else case.slo_scales)))
    run_real(Path(args.out), case, args.profile, args.ray_address, progress=True,
             connect_timeout=args.connect_timeout, num_cpus=args.num_cpus)
    return 0


if __name__ == "__main__":
    sys.exit(main())
