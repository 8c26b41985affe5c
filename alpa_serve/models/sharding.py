"""A model split into pipeline stages, each stage sharded over its own devices (DESIGN 3.4).

``ShardedModel.build(arch, op, pp)``: ``pp`` consecutive layer slices
(``zoo.layer_partition``; the embeddings on stage 0); stage k runs on devices
``[k op, (k + 1) op)`` of the device list, a one-axis mesh ``("op",)`` of ``op`` devices, as
one ``jax.jit`` of a ``jax.shard_map`` whose collectives are the explicit ``psum`` of
``transformer`` (two per layer). Activations move to the next stage's devices with
``jax.device_put``. The profiler times exactly :meth:`Stage.__call__`, and the runtime's JAX
back end runs exactly it (input placed on the stage's devices, the compiled stage, wait for the
result; the last stage also copies the output to the host).

Importing this module imports JAX.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from alpa_serve.models.arch import ModelArch
from alpa_serve.models.jaxenv import require_jax
from alpa_serve.models.transformer import (
    Params,
    init_params,
    param_specs,
    stage_forward,
)
from alpa_serve.models.zoo import layer_partition, parallel_config_problem

jax = require_jax()
from jax.sharding import Mesh, NamedSharding, PartitionSpec  # noqa: E402

logger = logging.getLogger(__name__)

#: Name of the mesh axis of a stage's op devices.
AXIS = "op"

#: Where activation memory comes from (recorded in the database's hardware description).
ACT_MEM_SOURCE = "XLA memory analysis of the compiled stage: temp + output bytes per device"


def device_description(device: Any) -> str:
    """What measured a row: ``cpu`` for host devices, else ``platform:device kind`` (e.g.
    ``gpu:NVIDIA H100 80GB HBM3``)."""
    kind = str(getattr(device, "device_kind", "") or "")
    platform = str(device.platform)
    return platform if kind in ("", platform) else f"{platform}:{kind}"


@dataclass
class Stage:
    """One pipeline stage: its layers, devices, weights (sharded) and compiled function.

    ``__call__(x)`` places ``x`` on the stage's devices (replicated over op), runs the compiled
    stage for ``x``'s batch size (compiling it the first time) and waits for the result; the
    last stage returns a host array.
    """

    index: int
    layers: range
    first: bool
    last: bool
    devices: tuple[Any, ...]
    mesh: Any
    params: Any
    in_sharding: Any
    fn: Any
    _compiled: dict[tuple[int, ...], Any] = field(default_factory=dict)

    def input_spec(self, arch: ModelArch, batch_size: int) -> Any:
        """Shape, dtype and sharding of the stage's input for ``batch_size`` sequences."""
        if self.first:
            shape: tuple[int, ...] = (batch_size, arch.seq_len)
            dtype: Any = np.int32
        else:
            shape, dtype = (batch_size, arch.seq_len, arch.hidden), np.float32
        return jax.ShapeDtypeStruct(shape, dtype, sharding=self.in_sharding)

    def compiled(self, spec: Any) -> Any:
        """The executable for inputs like ``spec`` (compiled once per shape)."""
        key = tuple(spec.shape)
        exe = self._compiled.get(key)
        if exe is None:
            exe = self.fn.lower(self.params, spec).compile()
            self._compiled[key] = exe
        return exe

    def __call__(self, x: Any) -> Any:
        x = jax.device_put(x, self.in_sharding)
        spec = jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=self.in_sharding)
        y = self.compiled(spec)(self.params, x)
        y.block_until_ready()
        return np.asarray(y) if self.last else y

    def weight_bytes_per_device(self) -> float:
        """Bytes of the stage's weights held by its fullest device (from the arrays' shards)."""
        per_device: dict[Any, int] = {}
        for leaf in jax.tree_util.tree_leaves(self.params):
            for shard in leaf.addressable_shards:
                per_device[shard.device] = per_device.get(shard.device, 0) + shard.data.nbytes
        return float(max(per_device.values()))

    def activation_bytes(self, arch: ModelArch, batch_size: int) -> Optional[float]:
        """Temporary + output bytes per device of the compiled stage at ``batch_size`` (XLA's
        memory analysis); None where the backend reports none."""
        exe = self.compiled(self.input_spec(arch, batch_size))
        try:
            stats = exe.memory_analysis()
        except Exception:  # noqa: BLE001 - not implemented on some backends
            return None
        if stats is None:
            return None
        temp = getattr(stats, "temp_size_in_bytes", None)
        out = getattr(stats, "output_size_in_bytes", None)
        if temp is None or out is None:
            return None
        return float(temp + out)


@dataclass
class ShardedModel:
    """A model as ``pp`` stages of ``op`` devices each (see the module docstring)."""

    arch: ModelArch
    op: int
    pp: int
    stages: list[Stage]

    @classmethod
    def build(cls, arch: ModelArch, op: int, pp: int, params: Optional[Params] = None,
              seed: int = 0, devices: Optional[Sequence[Any]] = None) -> "ShardedModel":
        """Place ``params`` (default: ``init_params(arch, seed)``) on ``op * pp`` devices of
        ``devices`` (default: ``jax.devices()``) and build the stage functions.

        ValueError if the configuration does not fit the architecture or the devices."""
        problem = parallel_config_problem(arch, op, pp)
        if problem:
            raise ValueError(problem)
        devs = list(jax.devices() if devices is None else devices)
        if op * pp > len(devs):
            raise ValueError(f"op={op} x pp={pp} needs {op * pp} devices; JAX shows "
                             f"{len(devs)} ({device_description(devs[0])})")
        if params is None:
            params = init_params(arch, seed)
        stages = []
        for k, layers in enumerate(layer_partition(arch.num_layers, pp)):
            first, last = k == 0, k == pp - 1
            sub: Params = {"layers": [params["layers"][i] for i in layers]}
            if first:
                sub["embed"] = params["embed"]
            stage_devs = tuple(devs[k * op:(k + 1) * op])
            mesh = Mesh(np.array(stage_devs), (AXIS,))
            specs = param_specs(sub, AXIS)
            placed = jax.tree_util.tree_map(
                lambda a, s, mesh=mesh: jax.device_put(a, NamedSharding(mesh, s)), sub, specs)

            def body(p: Params, x: Any, layers: range = layers, first: bool = first,
                     last: bool = last) -> Any:
                return stage_forward(arch, layers, first, last, AXIS, p, x)

            fn = jax.jit(jax.shard_map(body, mesh=mesh, in_specs=(specs, PartitionSpec()),
                                       out_specs=PartitionSpec()))
            stages.append(Stage(k, layers, first, last, stage_devs, mesh, placed,
                                NamedSharding(mesh, PartitionSpec()), fn))
        return cls(arch, op, pp, stages)

    @property
    def devices(self) -> list[Any]:
        return [d for s in self.stages for d in s.devices]

    def forward(self, tokens: Any) -> np.ndarray:
        """Token ids [b, seq] through every stage -> [b, hidden] on the host."""
        x: Any = np.asarray(tokens, dtype=np.int32)
        for stage in self.stages:
            x = stage(x)
        return x

    def compile(self, batch_size: int) -> None:
        """Compile every stage for ``batch_size`` sequences (done lazily otherwise)."""
        for stage in self.stages:
            stage.compiled(stage.input_spec(self.arch, batch_size))

    def weight_bytes(self) -> list[float]:
        """Per-stage weight bytes per device."""
        return [s.weight_bytes_per_device() for s in self.stages]


def num_parameters(params: Params) -> int:
    """Parameters (count) of a weight tree (the padding rows of the word table included)."""
    return int(sum(math.prod(np.shape(a)) for a in jax.tree_util.tree_leaves(params)))
