"""Real-compute device back end: the JAX models of ``alpa_serve.models`` on the group's devices
(DESIGN 3.4, 9; docs/runtime.md, "Real compute").

A group manager with ``backend="jax"`` builds, when it is deployed, every hosted model as a
:class:`~alpa_serve.models.sharding.ShardedModel` with the group's (op, pp): weights drawn from
the seed and placed once, each stage compiled for batch size 1 and run once (so no request pays
a compilation). Stage k of every model runs on the group's devices ``[k op, (k + 1) op)``; each
stage has one worker thread (one device runs one stage at a time, in the executor's order) that
runs exactly what the profiler timed (:meth:`Stage.__call__`: input placed on the stage's
devices, compiled stage, wait). The reported finish is the instant the stage's result was
ready; the activations go to the next stage's executor, the last stage's output back to the
client.

Input: the request's ``input`` is a list of at most ``seq_len`` token ids (integers in
[0, vocab)), padded with id 0 to ``seq_len``; no input runs a fixed row of random ids (seeded).
Output: the final hidden state of the first token, ``hidden`` floats.

Devices: whatever JAX shows in the group manager's process. On CPU each process shows
``ALPA_SERVE_HOST_DEVICES`` host devices (default 8, set before JAX is imported; one thread
each, ``models.jaxenv``), so every group has its own devices, and groups share the machine's
cores. Built models are kept per process, so a group redeployed with a model it had already
built reuses it.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

import numpy as np

from alpa_serve.models.jaxenv import (
    INSTALL_HINT,
    configure_host_devices,
    enable_compile_cache,
    jax_available,
)
from alpa_serve.models.zoo import SMALL_MODELS, get_arch, parallel_config_problem
from alpa_serve.runtime.backend import GroupSpec

logger = logging.getLogger(__name__)

#: Host devices a group manager's process shows on CPU unless ``ALPA_SERVE_HOST_DEVICES`` says.
DEFAULT_HOST_DEVICES = 8

#: Built models of this process: (type name, op, pp, seed, first device id) -> ShardedModel.
_BUILT: dict[tuple[str, int, int, int, int], Any] = {}

#: The worker thread of each stage index, kept for the process (a redeployed group reuses it).
_POOLS: dict[int, ThreadPoolExecutor] = {}


def check_group(spec: GroupSpec) -> None:
    """ValueError (one line) if the JAX back end cannot serve ``spec``: JAX missing, a model
    type that is not a model of ``alpa_serve.models.zoo``, or an (op, pp) the architecture
    does not split into. Imports no JAX."""
    if not jax_available():
        raise ValueError(f"the jax back end needs JAX; {INSTALL_HINT}")
    for m, name in spec.models.items():
        if name not in SMALL_MODELS:
            raise ValueError(f"group {spec.group}: model {m} has type {name!r}, which the jax "
                             f"back end cannot build; known: {', '.join(SMALL_MODELS)} (profile "
                             f"them with python -m alpa_serve.profiling.profile)")
        problem = parallel_config_problem(get_arch(name), spec.op, spec.pp)
        if problem:
            raise ValueError(f"group {spec.group}: {problem}")


def host_device_count(spec: GroupSpec) -> int:
    """Host devices this process asks JAX for (at least the group's op x pp)."""
    wanted = int(os.environ.get("ALPA_SERVE_HOST_DEVICES", DEFAULT_HOST_DEVICES))
    return max(wanted, spec.op * spec.pp)


def input_tokens(arch: Any, data: Any, default: np.ndarray) -> np.ndarray:
    """A request's input as token ids [1, seq_len] (see the module docstring)."""
    if data is None:
        return default
    arr = np.asarray(data)
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 1 or not 1 <= len(arr) <= arch.seq_len or not (
            np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"input of {arch.name} must be a list of 1 to {arch.seq_len} token "
                         f"ids (integers in [0, {arch.vocab}))")
    if arr.min() < 0 or arr.max() >= arch.vocab:
        raise ValueError(f"input of {arch.name}: token ids must be in [0, {arch.vocab})")
    tokens = np.zeros((1, arch.seq_len), dtype=np.int32)
    tokens[0, : len(arr)] = arr
    return tokens


class JaxStageDevice:
    """One stage's device(s) of a JAX group: a worker thread running that stage."""

    def __init__(self, group: "JaxGroupBackend", stage: int) -> None:
        self.group = group
        self.stage = stage
        if stage not in _POOLS:
            _POOLS[stage] = ThreadPoolExecutor(max_workers=1,
                                               thread_name_prefix=f"jax-stage{stage}")
        self.pool = _POOLS[stage]

    async def execute(self, model: int, stage: int, start: float, duration: float,
                      data: Any = None) -> tuple[float, Any]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, self.group.run_stage, model, stage, data)


class JaxGroupBackend:
    """The JAX models of one group, built and compiled at construction (see the module
    docstring); :attr:`devices` are the per-stage device back ends."""

    def __init__(self, spec: GroupSpec) -> None:
        check_group(spec)
        configure_host_devices(host_device_count(spec))
        import jax

        enable_compile_cache()  # $ALPA_SERVE_JAX_CACHE, e.g. the profiler's

        from alpa_serve.models.sharding import ShardedModel
        from alpa_serve.models.transformer import example_tokens

        devices = jax.devices()
        need = spec.op * spec.pp
        if need > len(devices):
            raise ValueError(f"group {spec.group} needs op x pp = {need} devices; JAX shows "
                             f"{len(devices)} in this process")
        self.spec = spec
        self.models: dict[int, Any] = {}
        self.defaults: dict[int, np.ndarray] = {}
        t0 = time.monotonic()
        for m, name in spec.models.items():
            key = (name, spec.op, spec.pp, spec.seed, int(devices[0].id))
            model = _BUILT.get(key)
            if model is None:
                model = ShardedModel.build(get_arch(name), spec.op, spec.pp, seed=spec.seed,
                                           devices=devices[:need])
                _BUILT[key] = model
            self.defaults[m] = example_tokens(model.arch, 1, spec.seed)
            model.forward(self.defaults[m])  # compiles batch size 1, warms up
            self.models[m] = model
        logger.info("group %d: %d models built on %d devices in %.1f s", spec.group,
                    len(self.models), need, time.monotonic() - t0)
        self.devices = [JaxStageDevice(self, k) for k in range(spec.pp)]

    def run_stage(self, model: int, stage: int, data: Any) -> tuple[float, Any]:
        """Run stage ``stage`` of ``model`` on ``data`` (in the stage's thread); returns the
        instant the result was ready (monotonic s) and the stage's output."""
        sm = self.models.get(model)
        if sm is None:
            raise ValueError(f"group {self.spec.group} does not host model {model}")
        st = sm.stages[stage]
        x: Optional[Any] = input_tokens(sm.arch, data, self.defaults[model]) if st.first \
            else data
        y = st(x)
        finish = time.monotonic()
        if st.last:
            y = np.asarray(y)[0].tolist()
        return finish, y
