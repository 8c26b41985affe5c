"""Does GEMM shape (tile and wave quantisation on a V100) explain the intra-op efficiency loss?

    python studies/calibration/op_efficiency_shapes.py --table          # the physics only
    python studies/calibration/op_efficiency_shapes.py --scales 1,35 --tsv /tmp/shapes.tsv

Tensor (op) parallelism in Megatron style shards every GEMM of a layer: per device the QKV and
first FFN GEMMs are [T x h] x [h x 3h/op] and [T x h] x [h x 4h/op] (output dimension split),
the attention output and second FFN GEMMs [T x h/op] x [h/op x h] and [T x 4h/op] x [4h/op x h]
(inner dimension split), and the attention score and context GEMMs run heads/op batched
[s x d] x [d x s] and [s x s] x [s x d] (T = b x s tokens, d = h / heads). A cuBLAS/CUTLASS
tensor-core kernel covers the output with tile_m x tile_n thread-block tiles, iterates over K in
steps of tile_k, and runs the tiles in waves of one tile per SM (80 SMs on a V100), so a GEMM
costs ceil(tiles / 80) x ceil(K / tile_k) tile-steps and reaches the fraction
q = 2 M N K / (waves x 80 x 2 tile_m tile_n tile_k ceil(K / tile_k)) of the tile rate.
The FLOP-weighted efficiency of a layer's GEMMs at op is Q(op) = sum F / sum (F / q).

The candidate model replaces the constant loss of the dense models by

    eta(op) = 1 / (1 + scale x (Q(1) / Q(op) - 1))

(scale = 1: the physics alone; one fitted scale shared by the dense models; MoE models keep
their constant). ``--table`` prints the equivalent constant loss (1 / eta - 1) / (op - 1) per
model, op and batch; ``--scales`` rebuilds the database for each scale and reruns the
Beta rows of the calibration targets (the SR rows use op = 1 only and cannot change) and the
Fig. 12 cases, next to the committed constant ('const'). Results: docs/profiling.md, "Intra-op
efficiency and GEMM shapes".
"""
from __future__ import annotations

import argparse
import collections
import logging
import math
import sys
import time
from dataclasses import dataclass

import numpy as np

from alpa_serve.profiling.cost_model import CostModel, hardware_description
from alpa_serve.profiling.database import ProfilingDatabase
from alpa_serve.profiling.params import (
    CONFIG_GRIDS,
    DEFAULT_COST_PARAMS,
    MODEL_ARCHS,
    HardwareParams,
    ModelArch,
)

#: Streaming multiprocessors of a V100-SXM2 (NVIDIA Tesla V100 architecture whitepaper).
V100_SMS = 80


@dataclass(frozen=True)
class Tile:
    """Thread-block tile of a tensor-core GEMM kernel (elements)."""

    m: int = 128
    n: int = 128
    k: int = 32


def wave_efficiency(m: int, n: int, k: int, batch: int = 1, tile: Tile = Tile(),
                    sms: int = V100_SMS) -> float:
    """Fraction of the tile rate a batched [m x k] x [k x n] GEMM reaches (tile and wave
    quantisation; one tile per SM per wave)."""
    tiles = math.ceil(m / tile.m) * math.ceil(n / tile.n) * batch
    waves = math.ceil(tiles / sms)
    steps = math.ceil(k / tile.k)
    return (m * n * k * batch) / (waves * sms * tile.m * tile.n * tile.k * steps)


def layer_gemms(arch: ModelArch, op: int, batch: int = 1) -> list[tuple[str, int, int, int, int]]:
    """Per-device GEMMs of one dense layer at intra-op degree ``op``: (name, M, N, K, batch)."""
    s, h = arch.seq_len, arch.hidden
    t, d, heads = batch * s, h // arch.heads, arch.heads // op
    return [("qkv", t, 3 * h // op, h, 1), ("scores", s, s, d, batch * heads),
            ("context", s, d, s, batch * heads), ("out", t, h, h // op, 1),
            ("ffn1", t, 4 * h // op, h, 1), ("ffn2", t, h, 4 * h // op, 1)]


def shape_efficiency(arch: ModelArch, op: int, batch: int = 1, tile: Tile = Tile()) -> float:
    """FLOP-weighted GEMM efficiency Q(op) of one layer's per-device GEMMs."""
    flops = time_units = 0.0
    for _, m, n, k, b in layer_gemms(arch, op, batch):
        f = 2.0 * m * n * k * b
        flops += f
        time_units += f / wave_efficiency(m, n, k, b, tile)
    return flops / time_units


def shape_eta(arch: ModelArch, op: int, scale: float, batch: int = 1,
              tile: Tile = Tile()) -> float:
    """Candidate relative per-device efficiency at ``op`` (1.0 at op = 1)."""
    deficit = shape_efficiency(arch, 1, batch, tile) / shape_efficiency(arch, op, batch, tile) - 1
    return 1.0 / (1.0 + scale * deficit)


def equivalent_loss(eta: float, op: int) -> float:
    """The constant op_efficiency_loss giving the same eta at this op."""
    return (1.0 / eta - 1.0) / (op - 1)


class ShapeCostModel(CostModel):
    """CostModel with the shape-derived eta(op) (batch-1 shapes; larger batches quantise
    less, see --table)."""

    def __init__(self, arch, params, hardware=None, scale: float = 1.0, tile: Tile = Tile()):
        super().__init__(arch, params, hardware)
        self.scale, self.tile = scale, tile

    def op_efficiency(self, op: int) -> float:
        return shape_eta(self.arch, op, self.scale, 1, self.tile)


def build_shape_database(scale: float, tile: Tile = Tile()) -> ProfilingDatabase:
    """The committed database with the dense models' eta(op) replaced by :func:`shape_eta`."""
    hw = HardwareParams()
    profiles = []
    for name, arch in MODEL_ARCHS.items():
        params = DEFAULT_COST_PARAMS[name]
        model = (ShapeCostModel(arch, params, hw, scale, tile) if arch.kind == "dense"
                 else CostModel(arch, params, hw))
        profiles.append(model.model_profile(CONFIG_GRIDS[name]))
    return ProfilingDatabase(profiles, hardware_description(hw))


def print_table(tiles: list[Tile]) -> None:
    dense = [n for n, a in MODEL_ARCHS.items() if a.kind == "dense"]
    for tile in tiles:
        print(f"\ntile {tile.m}x{tile.n}x{tile.k}, {V100_SMS} SMs: Q(1) and the equivalent "
              f"constant loss at op = 2 / 4 / 8 (scale 1)")
        print("| model | batch | Q(1) | op=2 | op=4 | op=8 |")
        print("|---|---|---|---|---|---|")
        for name in dense:
            arch = MODEL_ARCHS[name]
            for b in (1, 2, 4, 8, 16):
                losses = " | ".join(f"{equivalent_loss(shape_eta(arch, op, 1.0, b, tile), op):.3f}"
                                    for op in (2, 4, 8))
                print(f"| {name} | {b} | {shape_efficiency(arch, 1, b, tile):.3f} | {losses} |")


def beta_rows(db, cache, log):
    """Goodput of every Beta (mp-search*) calibration row outside S3@MAF*."""
    from alpa_serve.experiments import case_runner as R
    from alpa_serve.experiments.suites import calibration_targets

    out = []
    for t in calibration_targets():
        if t.set.startswith("S3@MAF") or not t.case.policy.startswith("mp-search"):
            continue
        key = R.inputs_key(t.case)
        if key not in cache:
            cache[key] = R.prepare_inputs(t.case)
        row = R.run_prepared(t.case, db, cache[key])
        out.append(dict(kind="calibration", set=t.set, policy=t.case.policy, x=t.x,
                        published=t.published, ours=row["goodput"]))
        log(f"  {t.set} {t.case.policy} {t.x}: {t.published:.3f} -> {row['goodput']:.3f}")
    return out


def fig12_rows(db, cache, log):
    """Goodput of every Fig. 12 case."""
    from alpa_serve.experiments import case_runner as R
    from alpa_serve.experiments.suites import SuiteOptions, build_suite

    out = []
    for e in build_suite("fig12", SuiteOptions()):
        key = R.inputs_key(e.case)
        if key not in cache:
            cache[key] = R.prepare_inputs(e.case)
        row = R.run_prepared(e.case, db, cache[key])
        w = e.case.workload
        x = {"goodput_vs_rate": w.total_rate, "goodput_vs_cv": w.cv,
             "goodput_vs_slo": e.case.slo_scale}[e.case.exp_name]
        out.append(dict(kind="fig12", set=e.case.exp_name, policy=e.case.policy, x=str(x),
                        published=float("nan"), ours=row["goodput"]))
        log(f"  fig12 {e.case.exp_name} {x} {e.case.policy}: {row['goodput']:.3f}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", action="store_true", help="print the shape-model losses")
    ap.add_argument("--scales", default="", help="comma-separated scales to rerun (with 'const')")
    ap.add_argument("--no-fig12", action="store_true", help="calibration rows only")
    ap.add_argument("--tile", default="128x128x32", help="thread-block tile MxNxK of --scales")
    ap.add_argument("--no-const", action="store_true", help="skip the committed database")
    ap.add_argument("--tsv", default=None, help="write all rows here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    if args.table:
        print_table([Tile(128, 128, 32), Tile(256, 128, 32), Tile(128, 256, 32)])
    scales = [s for s in args.scales.split(",") if s]
    if not scales:
        return 0
    parts = args.tile.split("x")
    if len(parts) != 3 or not all(v.isdigit() and int(v) > 0 for v in parts):
        ap.error(f"--tile {args.tile!r}: give three positive integers MxNxK, e.g. 128x256x32")
    tile = Tile(*(int(v) for v in parts))
    cache: dict = {}
    rows = []
    for s in ([] if args.no_const else ["const"]) + scales:
        db = ProfilingDatabase.default() if s == "const" else build_shape_database(float(s), tile)
        t0 = time.process_time()
        print(f"variant {s} (database {db.fingerprint()})", flush=True)
        log = lambda m: print(m, flush=True)  # noqa: E731
        vrows = beta_rows(db, cache, log)
        if not args.no_fig12:
            vrows += fig12_rows(db, cache, log)
        for r in vrows:
            r["variant"] = s if s == "const" else f"{s}@{args.tile}"
        rows += vrows
        print(f"variant {s}: {time.process_time() - t0:.0f} s CPU", flush=True)
    groups = collections.OrderedDict()
    for r in rows:
        if r["kind"] == "calibration":
            groups.setdefault((r["set"], r["policy"], r["variant"]), []).append(
                abs(r["ours"] - r["published"]))
    print("\n| set | policy | variant | MAE | max |\n|---|---|---|---|---|")
    for (st, p, v), d in groups.items():
        print(f"| {st} | {p} | {v} | {np.mean(d):.4f} | {np.max(d):.3f} |")
    points = collections.OrderedDict()
    for r in rows:
        if r["kind"] == "fig12":
            points.setdefault((r["variant"], r["set"], r["x"]), {})[r["policy"]] = r["ours"]
    below = collections.OrderedDict()
    for (v, st, x), by_policy in points.items():
        best_fixed = max(g for p, g in by_policy.items() if p != "mp-search")
        if by_policy["mp-search"] < best_fixed:
            below.setdefault(v, []).append(f"{st} {x}")
    for v in dict.fromkeys(k[0] for k in points):
        print(f"Fig. 12, {v}: Beta below a fixed split at {', '.join(below.get(v, [])) or 'none'}")
    if args.tsv:
        cols = ["variant", "kind", "set", "policy", "x", "published", "ours"]
        with open(args.tsv, "w", encoding="utf-8") as f:
            f.write("\t".join(cols) + "\n")
            for r in rows:
                f.write("\t".join(str(r[c]) for c in cols) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
