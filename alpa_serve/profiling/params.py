"""Every number of the V100 cost model, in one place (DESIGN 3.2, 3.3; docs/profiling.md).

Three kinds of numbers live here:

* ``HardwareParams`` - the machine being modelled (AWS p3.16xlarge: 8 x V100-SXM2 16 GB per node,
  NVLink inside a node, 25 Gbps between nodes);
* ``ModelArch`` - architecture facts of each model (DESIGN 3.2); not free parameters (the class
  lives in ``alpa_serve.models.arch``, shared with the JAX models; the instances live here);
* ``ModelCostParams`` - the free parameters of the cost model, one frozen instance per model.

Calibration (docs/calibration.md) changes values in ``DEFAULT_COST_PARAMS`` (or passes a modified
copy made with ``dataclasses.replace``) and never touches the code in ``cost_model.py``.
Units: seconds, bytes, FLOP/s, bytes/s.
"""
from __future__ import annotations

from dataclasses import dataclass

from alpa_serve.models.arch import ModelArch
from alpa_serve.units import GiB

#: Batch sizes every configuration is profiled for (DESIGN 3.1).
BATCH_SIZES: tuple[int, ...] = (1, 2, 4, 8, 16)


@dataclass(frozen=True)
class HardwareParams:
    """The modelled hardware: V100-SXM2 GPUs in p3.16xlarge nodes."""

    #: fp16 tensor-core peak of one V100-SXM2, FLOP/s (NVIDIA datasheet).
    peak_flops: float = 125e12
    #: NCCL all-reduce bus bandwidth inside a p3.16xlarge node over NVLink, bytes/s
    #: (typical nccl-tests busbw for the hybrid cube mesh at tens-of-MB messages).
    allreduce_bandwidth: float = 100e9
    #: Fixed cost of one collective (launch + ring synchronisation), seconds.
    allreduce_latency: float = 30e-6
    #: Point-to-point NVLink bandwidth between two GPUs of a node, bytes/s (one or two 25 GB/s
    #: NVLink-2 links per GPU pair).
    p2p_bandwidth: float = 40e9
    #: Fixed cost of one point-to-point send inside a node, seconds.
    p2p_latency: float = 20e-6
    #: Inter-node network, 25 Gbps Ethernet, bytes/s.
    net_bandwidth: float = 25e9 / 8
    #: Fixed cost of one inter-node send, seconds.
    net_latency: float = 50e-6
    #: GPUs per node; a pipeline boundary at a multiple of this crosses the network.
    devices_per_node: int = 8
    #: Physical memory of one device, bytes (documentation only: placement uses its own budget).
    device_memory: float = 16 * GiB


#: The seven models of DESIGN 3.2, in database order.
MODEL_ARCHS: dict[str, ModelArch] = {
    a.name: a for a in (
        ModelArch("bert-1.3b", "dense", 24, 2048, 32, 2048, 51200),
        ModelArch("bert-2.6b", "dense", 32, 2560, 32, 2048, 51200),
        ModelArch("bert-6.7b", "dense", 32, 4096, 32, 2048, 51200),
        ModelArch("bert-103.5b", "dense", 128, 8192, 64, 1024, 51200),
        ModelArch("moe-1.3b", "moe", 16, 768, 16, 1024, 32000, num_experts=32),
        ModelArch("moe-2.4b", "moe", 16, 1024, 16, 1024, 32000, num_experts=32),
        ModelArch("moe-5.3b", "moe", 16, 1536, 16, 1024, 32000, num_experts=32),
    )
}


@dataclass(frozen=True)
class ModelCostParams:
    """Free parameters of the cost model for one model (all calibrated; see docs/profiling.md).

    Tables keyed by the number of pipeline stages are tuples of (pp, value) pairs so that the
    dataclass stays hashable and frozen; every pp the model is profiled with must be present.
    """

    #: Latency of the whole model on one device (dp=op=pp=1) at batch size 1, seconds. The
    #: compute efficiency is *derived* from it (efficiency = FLOPs / (peak * (this - overhead)));
    #: for bert-103.5b, which has no single-device configuration, it is the hypothetical value
    #: that makes the (1, 1, 16) stage sum equal the published 4.6 s.
    single_latency: float
    #: Per-device weight allowance of one stage at op=1, bytes, by pp (divided by op for op>1):
    #: what the measured weights hold beyond fp16 parameters. Fitted to memory_evidence.tsv.
    weight_allowance: tuple[tuple[int, float], ...]
    #: Fixed dispatch overhead paid once per pipeline stage, seconds (shape anchors: stage sums
    #: of 1.04x, 1.12x, 1.16x for pp=2, 4, 8).
    stage_overhead: float = 4.0e-3
    #: Per-device efficiency at intra-op degree op is efficiency / (1 + op_efficiency_loss*(op-1))
    #: (smaller matrices per device). Tuned so that op=2 -> ~0.6x and op=4 -> ~0.41x latency.
    op_efficiency_loss: float = 0.13
    #: Compute of the heaviest stage is (1 + imbalance) x the mean stage compute, by pp (the
    #: other stages share the rest evenly). Shape anchor: slowest stage 1.05x, 1.17x, 1.29x of
    #: (single / pp) for pp=2, 4, 8; 16 and up extrapolated.
    stage_imbalance: tuple[tuple[int, float], ...] = (
        (1, 0.0), (2, 0.0210), (4, 0.0867), (8, 0.0949), (16, 0.10), (32, 0.10), (64, 0.10))
    #: Activation memory of a stage = act_tensors x (b x s x h x 2 bytes).
    act_tensors: float = 4.0

    def table_value(self, table: str, pp: int) -> float:
        """Value of the pp-keyed table ``table`` ('weight_allowance' or 'stage_imbalance')."""
        for key, value in getattr(self, table):
            if key == pp:
                return float(value)
        raise KeyError(f"{table} has no entry for pp={pp}; add one to the model's ModelCostParams")


def _allowance(pp1: float, pp2: float, pp4: float, pp8: float,
               extra_pps: tuple[int, ...] = (16, 32)) -> tuple[tuple[int, float], ...]:
    """Allowance table from the four fitted values; pp >= 16 reuses the pp=8 value (no
    evidence exists beyond pp=8: the allowance stopped shrinking between pp=4 and pp=8)."""
    table = [(1, pp1), (2, pp2), (4, pp4), (8, pp8)]
    table += [(pp, pp8) for pp in extra_pps]
    return tuple(table)


#: Intra-op efficiency loss of the dense models (docs/calibration.md): fitted on the mp-search
#: rows of fidelity-bert2.6b-sim (op=4 groups at SLO scale 0.5-1.5) and the synthetic Beta rows
#: (published placements avoid op > 1 at SLO scale 5). MoE models keep the default 0.13.
DENSE_OP_EFFICIENCY_LOSS = 0.17

#: Stage imbalance of bert-2.6b and bert-6.7b (docs/calibration.md): the fidelity mp-search rows
#: at SLO scale >= 3 (op1pp8x2) need a balanced pp=8 pipeline (the slowest stage is then
#: single/8 + stage overhead, 1.13x of single/8 for bert-2.6b); pp=4 stays uneven (0.19, fitted
#: on the same rows where the published search prefers op4pp1 / op1pp8 over op2pp4); pp=2 keeps
#: the bert-1.3b value; pp >= 16 follows pp=8. bert-1.3b keeps its shape-anchor values.
CALIBRATED_STAGE_IMBALANCE: tuple[tuple[int, float], ...] = (
    (1, 0.0), (2, 0.0210), (4, 0.19), (8, 0.0), (16, 0.0), (32, 0.0), (64, 0.0))

#: Calibrated parameters, one entry per model of MODEL_ARCHS. Allowances: values chosen inside
#: the intervals solved by ``python -m alpa_serve.profiling.memory_evidence --solve`` (its
#: chosen point, rounded to 0.1 MB; the pp=4 values from the solve that counts mp-greedy-4 as
#: a filling policy, the others kept from the earlier solve: docs/profiling.md).
DEFAULT_COST_PARAMS: dict[str, ModelCostParams] = {
    "bert-1.3b": ModelCostParams(
        single_latency=0.151,
        weight_allowance=_allowance(0.1893e9, 0.1145e9, 0.0887e9, 0.0844e9),
        op_efficiency_loss=DENSE_OP_EFFICIENCY_LOSS),
    "bert-2.6b": ModelCostParams(
        single_latency=0.238,
        weight_allowance=_allowance(0.2602e9, 0.0984e9, 0.1421e9, 0.0753e9),
        op_efficiency_loss=DENSE_OP_EFFICIENCY_LOSS,
        stage_imbalance=CALIBRATED_STAGE_IMBALANCE),
    "bert-6.7b": ModelCostParams(
        single_latency=0.395,
        weight_allowance=_allowance(0.5024e9, 0.1585e9, 0.1803e9, 0.2315e9),
        op_efficiency_loss=DENSE_OP_EFFICIENCY_LOSS,
        stage_imbalance=CALIBRATED_STAGE_IMBALANCE),
    "bert-103.5b": ModelCostParams(
        op_efficiency_loss=DENSE_OP_EFFICIENCY_LOSS,
        single_latency=4.528,
        weight_allowance=((1, 0.50e9), (2, 0.25e9), (4, 0.25e9), (8, 0.25e9), (16, 0.25e9),
                          (32, 0.25e9), (64, 0.25e9))),
    "moe-1.3b": ModelCostParams(
        single_latency=0.140,
        weight_allowance=_allowance(0.1252e9, 0.0857e9, 0.0515e9, 0.0482e9)),
    "moe-2.4b": ModelCostParams(
        single_latency=0.140,
        weight_allowance=_allowance(0.1347e9, 0.1231e9, 0.0768e9, 0.0704e9)),
    "moe-5.3b": ModelCostParams(
        single_latency=0.180,
        weight_allowance=_allowance(0.5778e9, 0.2125e9, 0.1598e9, 0.1320e9)),
}


@dataclass(frozen=True)
class ConfigGrid:
    """Which parallel configurations a model is profiled under (DESIGN 3.1).

    Without ``group_sizes``: every op in ``ops`` times every pp in ``pps``. With it: every op in
    ``ops`` and pp = size / op for each group size (bert-103.5b needs at least 16 devices).
    """

    ops: tuple[int, ...] = (1, 2, 4, 8)
    pps: tuple[int, ...] = (1, 2, 4, 8, 16)
    group_sizes: tuple[int, ...] | None = None

    def configs(self) -> list[tuple[int, int, int]]:
        """Sorted (dp, op, pp) tuples; dp is always 1."""
        if self.group_sizes is not None:
            return sorted((1, op, size // op) for size in self.group_sizes for op in self.ops
                          if size % op == 0)
        return sorted((1, op, pp) for op in self.ops for pp in self.pps)


#: Profiled configurations per model (DESIGN 3.1).
CONFIG_GRIDS: dict[str, ConfigGrid] = {
    "bert-1.3b": ConfigGrid(),
    "bert-2.6b": ConfigGrid(pps=(1, 2, 4, 8, 16, 32)),
    "bert-6.7b": ConfigGrid(pps=(1, 2, 4, 8, 16, 32)),
    "bert-103.5b": ConfigGrid(group_sizes=(16, 32, 64)),
    "moe-1.3b": ConfigGrid(),
    "moe-2.4b": ConfigGrid(),
    "moe-5.3b": ConfigGrid(),
}
