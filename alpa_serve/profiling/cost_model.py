"""Analytical V100 cost model that produces the committed profiling database (DESIGN 3.3).

The original database was measured on p3.16xlarge nodes and is not public; we reconstruct it.
The *structure* is physical (FLOPs, all-reduce ring cost, activation sends, per-stage
overhead); the few free numbers live in ``params.py`` (``ModelCostParams``, ``HardwareParams``).

Per pipeline stage ``i`` of a configuration (dp=1, op, pp) at batch size b (seconds)::

    latency_i = stage_overhead
              + share_i * F(b) / pp / op / (peak * eff * eta(op))        # compute
              + share_i * (2 L / pp) * allreduce(act(b), op)             # intra-op collectives
              + send(act(b), i)            if i < pp - 1                 # to the next stage

    F(b)      = forward FLOPs of the model (ModelArch.total_flops)
    eff       = F(1) / (peak * (single_latency - stage_overhead))       # derived, see below
    eta(op)   = 1 / (1 + op_efficiency_loss * (op - 1))
    share_0   = 1 + imbalance(pp); share_i = 1 - imbalance(pp) / (pp - 1) for i > 0
    allreduce(x, op) = 2 (op - 1) / op * x / allreduce_bandwidth + allreduce_latency   (op > 1)
    send(x, i) = x / op / p2p_bandwidth + p2p_latency        inside a node
               = x / net_bandwidth + net_latency             when the boundary crosses a node
    act(b)    = b * seq_len * hidden * 2 bytes

Memory per stage (bytes, per device of the stage)::

    weight_i  = (param_bytes / pp + weight_allowance(pp)) / op
    act_mem_i = act_tensors * act(b)

Layers (and embeddings) are split evenly; the imbalance term stands for the uneven stage slicing
seen in the real profiles (shape anchors of DESIGN 3.3).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping

from alpa_serve.profiling.database import (
    ConfigProfile,
    ModelProfile,
    ParallelConfig,
    ProfilingDatabase,
)
from alpa_serve.profiling.params import (
    BATCH_SIZES,
    CONFIG_GRIDS,
    DEFAULT_COST_PARAMS,
    MODEL_ARCHS,
    ConfigGrid,
    HardwareParams,
    ModelArch,
    ModelCostParams,
)

logger = logging.getLogger(__name__)

# Stored numbers are rounded to this many significant digits: enough for any simulation, and
# it makes the committed file independent of the last-bit order of floating-point operations.
SIGNIFICANT_DIGITS = 9


def _round(x: float) -> float:
    return float(f"{x:.{SIGNIFICANT_DIGITS}g}")


@dataclass(frozen=True)
class StageCost:
    """Breakdown of one stage's latency, seconds."""

    overhead: float
    compute: float
    allreduce: float
    send: float

    @property
    def total(self) -> float:
        """Stage latency, seconds."""
        return self.overhead + self.compute + self.allreduce + self.send


def stage_weight(param_bytes: float, allowance: float, op: int, pp: int) -> float:
    """Weight bytes per device of one stage: (param_bytes / pp + allowance) / op.

    Layers and embeddings are split evenly over the stages (the memory evidence rules out the
    embeddings sitting on one stage: 7 bert-6.7b copies fit a pp=8 group). The function is
    linear in ``allowance``, which the memory-evidence solver relies on.
    """
    return (param_bytes / pp + allowance) / op


class CostModel:
    """Latency and memory of one model under any parallel configuration."""

    def __init__(self, arch: ModelArch, params: ModelCostParams,
                 hardware: HardwareParams | None = None):
        self.arch = arch
        self.params = params
        self.hw = hardware or HardwareParams()
        compute_time = params.single_latency - params.stage_overhead
        if compute_time <= 0:
            raise ValueError(f"{arch.name}: single_latency {params.single_latency} s must exceed "
                             f"stage_overhead {params.stage_overhead} s")

    # -- derived quantities -----------------------------------------------------------------
    @property
    def efficiency(self) -> float:
        """Fraction of peak FLOP/s reached on one device (derived from single_latency)."""
        compute_time = self.params.single_latency - self.params.stage_overhead
        return self.arch.total_flops(1) / (self.hw.peak_flops * compute_time)

    def op_efficiency(self, op: int) -> float:
        """Relative per-device efficiency at intra-op degree ``op`` (1.0 at op=1)."""
        return 1.0 / (1.0 + self.params.op_efficiency_loss * (op - 1))

    def stage_shares(self, pp: int) -> list[float]:
        """Compute of each stage relative to the mean stage (sums to pp)."""
        if pp == 1:
            return [1.0]
        eps = self.params.table_value("stage_imbalance", pp)
        # The first stage is the heavy one: it also runs the embedding lookup.
        return [1.0 + eps] + [1.0 - eps / (pp - 1)] * (pp - 1)

    def allreduce_time(self, nbytes: float, op: int) -> float:
        """Seconds of one ring all-reduce of ``nbytes`` over ``op`` GPUs in a node (0 if op=1)."""
        if op == 1:
            return 0.0
        return (2.0 * (op - 1) / op * nbytes / self.hw.allreduce_bandwidth
                + self.hw.allreduce_latency)

    def send_time(self, nbytes: float, op: int, crosses_node: bool) -> float:
        """Seconds to pass ``nbytes`` of activations to the next stage.

        Inside a node the op GPUs of a stage each send their 1/op slice over NVLink in parallel;
        across nodes the whole tensor shares one 25 Gbps link.
        """
        if crosses_node:
            return nbytes / self.hw.net_bandwidth + self.hw.net_latency
        return nbytes / op / self.hw.p2p_bandwidth + self.hw.p2p_latency

    def boundary_crosses_node(self, cfg: ParallelConfig, stage: int) -> bool:
        """True if the link from ``stage`` to ``stage + 1`` leaves a node (groups start at a
        node boundary and stage i holds devices [i*op, (i+1)*op)).

        A group of n devices thus pays n / devices_per_node - 1 network sends, one per node
        boundary, and a group of at most devices_per_node devices none (docs/profiling.md).
        """
        return ((stage + 1) * cfg.op) % self.hw.devices_per_node == 0

    def check_layout(self, cfg: ParallelConfig) -> None:
        """Raise ValueError if a stage's op devices would straddle a node.

        The model prices intra-op all-reduces over NVLink only, which holds when op divides
        devices_per_node (op in {1, 2, 4, 8} on 8-GPU nodes): every stage then lies inside one
        node and only stage-to-stage sends can cross the network.
        """
        per_node = self.hw.devices_per_node
        if cfg.op > per_node or per_node % cfg.op:
            raise ValueError(
                f"{self.arch.name}: op={cfg.op} does not divide devices_per_node={per_node}, so "
                f"a stage of {cfg} would span nodes and its all-reduces would cross the network, "
                f"which the cost model does not price; use op in the divisors of {per_node}")

    # -- per-stage numbers ------------------------------------------------------------------
    def stage_costs(self, cfg: ParallelConfig, batch_size: int = 1) -> list[StageCost]:
        """Latency breakdown (seconds) of every stage of ``cfg`` at ``batch_size``."""
        cfg = ParallelConfig(*cfg)
        self.check_layout(cfg)
        op, pp = cfg.op, cfg.pp
        flops = self.arch.total_flops(batch_size)
        rate = self.hw.peak_flops * self.efficiency * self.op_efficiency(op)
        act = self.arch.activation_bytes(batch_size)
        # Two all-reduces per layer (after attention and after the FFN), Megatron style.
        collectives_per_stage = 2.0 * self.arch.num_layers / pp
        costs = []
        for i, share in enumerate(self.stage_shares(pp)):
            compute = share * flops / pp / op / rate
            allreduce = share * collectives_per_stage * self.allreduce_time(act, op)
            send = (self.send_time(act, op, self.boundary_crosses_node(cfg, i))
                    if i < pp - 1 else 0.0)
            costs.append(StageCost(self.params.stage_overhead, compute, allreduce, send))
        return costs

    def latency(self, cfg: ParallelConfig, batch_size: int = 1) -> list[float]:
        """Per-stage latency in seconds (unrounded)."""
        return [c.total for c in self.stage_costs(cfg, batch_size)]

    def weight_mem(self, cfg: ParallelConfig) -> list[float]:
        """Per-stage weight bytes per device: (param bytes / pp + allowance(pp)) / op."""
        cfg = ParallelConfig(*cfg)
        allowance = self.params.table_value("weight_allowance", cfg.pp)
        return [stage_weight(self.arch.param_bytes(), allowance, cfg.op, cfg.pp)] * cfg.pp

    def act_mem(self, cfg: ParallelConfig, batch_size: int = 1) -> list[float]:
        """Per-stage activation bytes: act_tensors x (b x seq x hidden x 2 bytes)."""
        cfg = ParallelConfig(*cfg)
        return [self.params.act_tensors * self.arch.activation_bytes(batch_size)] * cfg.pp

    # -- profile ----------------------------------------------------------------------------
    def config_profile(self, cfg: ParallelConfig,
                       batch_sizes: tuple[int, ...] = BATCH_SIZES) -> ConfigProfile:
        """ConfigProfile of ``cfg`` with numbers rounded to SIGNIFICANT_DIGITS."""
        return ConfigProfile(
            latency={b: tuple(_round(x) for x in self.latency(cfg, b)) for b in batch_sizes},
            act_mem={b: tuple(_round(x) for x in self.act_mem(cfg, b)) for b in batch_sizes},
            weight_mem=tuple(_round(x) for x in self.weight_mem(cfg)),
        )

    def model_profile(self, grid: ConfigGrid,
                      batch_sizes: tuple[int, ...] = BATCH_SIZES) -> ModelProfile:
        """ModelProfile over every configuration of ``grid``."""
        return ModelProfile(self.arch.name, {
            ParallelConfig(*cfg): self.config_profile(ParallelConfig(*cfg), batch_sizes)
            for cfg in grid.configs()})


def hardware_description(hw: HardwareParams) -> dict:
    """The free-form ``hardware`` section stored in the database (plain types only)."""
    return {
        "description": ("Analytical reconstruction of V100-SXM2 16 GB profiles on AWS "
                        "p3.16xlarge (8 GPUs/node, NVLink in a node, 25 Gbps between nodes); "
                        "alpa_serve.profiling.cost_model, parameters in "
                        "alpa_serve/profiling/params.py, see docs/profiling.md"),
        "peak_flops": hw.peak_flops,
        "allreduce_bandwidth": hw.allreduce_bandwidth,
        "allreduce_latency": hw.allreduce_latency,
        "p2p_bandwidth": hw.p2p_bandwidth,
        "p2p_latency": hw.p2p_latency,
        "net_bandwidth": hw.net_bandwidth,
        "net_latency": hw.net_latency,
        "devices_per_node": hw.devices_per_node,
        "device_memory": hw.device_memory,
        "units": "seconds, bytes",
    }


def build_database(params: Mapping[str, ModelCostParams] | None = None,
                   hardware: HardwareParams | None = None,
                   archs: Mapping[str, ModelArch] | None = None,
                   grids: Mapping[str, ConfigGrid] | None = None,
                   batch_sizes: tuple[int, ...] = BATCH_SIZES) -> ProfilingDatabase:
    """The whole database from the cost model (defaults: the committed calibration).

    Models come in the order of ``archs`` (default MODEL_ARCHS); ``params`` must cover them.
    """
    params = DEFAULT_COST_PARAMS if params is None else params
    hardware = hardware or HardwareParams()
    archs = MODEL_ARCHS if archs is None else archs
    grids = CONFIG_GRIDS if grids is None else grids
    profiles = []
    for name, arch in archs.items():
        model = CostModel(arch, params[name], hardware)
        logger.debug("%s: %.4g params, efficiency %.3f", name, arch.param_count(),
                     model.efficiency)
        profiles.append(model.model_profile(grids[name], batch_sizes))
    return ProfilingDatabase(profiles, hardware_description(hardware))
