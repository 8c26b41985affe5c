"""Device back ends: what a pipeline-stage executor does to run one stage of one request.

An executor (``group.py``) owns one device (one pipeline stage of its group) and calls its back
end once per request. The back end is the only piece that knows whether the device is real;
everything else (controller, group managers, HTTP front end) is the same for every back end.

A back end also carries the request's data: stage 0 receives the request's input (the HTTP
body's ``input``, JSON-decoded; None when absent), every later stage what the previous stage
returned (activations), and what the last stage returns is the request's output (the HTTP
reply's ``output``, JSON-encodable; None when the back end computes nothing).

Back ends by name (:data:`BACKENDS`): ``emulated`` (default; devices busy for the profiled
latency on a real clock, no data) and ``jax`` (``runtime/jax_backend.py``: the JAX models of
``alpa_serve.models`` computing on the group's devices, DESIGN 3.4, 9; needs the ``real``
extra).

Times are seconds on the group manager's ``loop.time()`` clock (``time.monotonic``), in REAL
seconds: the group manager has already divided model seconds by the runtime's speed-up.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Protocol, Sequence


class DeviceBackend(Protocol):
    """Runs one pipeline stage of one request on one device.

    ``execute(model, stage, start, duration, data)`` is awaited by the stage's executor once
    the stage is free and its input is ready: ``start`` is when the device may start the work
    (s, loop clock), ``duration`` the profiled stage latency (s) and ``data`` the stage's input
    (see the module docstring). It returns ``(finish, output)``: the time the device finished
    and the stage's output. The executor then hands the request to the next stage with that
    time as its input-ready time and ``output`` as its input.
    """

    async def execute(self, model: int, stage: int, start: float, duration: float,
                      data: Any = None) -> tuple[float, Any]:
        ...


@dataclass(frozen=True)
class GroupSpec:
    """What one group's back end serves.

    Attributes:
        group: index of the group in the placement.
        op: intra-operator degree (devices per stage).
        pp: pipeline stages (one device back end each).
        models: model index -> the model's type name (its profile's name, e.g. ``bert-mini``;
            a real-compute back end builds that architecture).
        seed: seed of the weights a real-compute back end draws.
    """

    group: int
    op: int
    pp: int
    models: Mapping[int, str] = field(default_factory=dict)
    seed: int = 0


class PreciseTimer:
    """Wakes asyncio futures at given ``time.monotonic()`` deadlines, from one thread.

    asyncio's own timers wake up to ~1 ms late (epoll's timeout is whole milliseconds, rounded
    up); a thread blocked in a timed lock wait wakes within tens of microseconds and then wakes
    the event loop through ``call_soon_threadsafe``. One timer thread serves a whole process.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._count = itertools.count()
        self._thread = threading.Thread(target=self._run, name="alpa-serve-timer", daemon=True)
        self._thread.start()

    def wait_until(self, deadline: float) -> asyncio.Future:
        """A future of the running loop that completes at ``deadline`` (monotonic seconds)."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._cond:
            heapq.heappush(self._heap, (deadline, next(self._count), loop, fut))
            if self._heap[0][3] is fut:
                self._cond.notify()
        return fut

    def _run(self) -> None:
        with self._cond:
            while True:
                if not self._heap:
                    self._cond.wait()
                    continue
                delay = self._heap[0][0] - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                _, _, loop, fut = heapq.heappop(self._heap)
                try:
                    loop.call_soon_threadsafe(_resolve, fut)
                except RuntimeError:  # the loop was closed: nobody waits any more
                    pass


def _resolve(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


_TIMER: Optional[PreciseTimer] = None
_TIMER_LOCK = threading.Lock()


def precise_timer() -> PreciseTimer:
    """The process's :class:`PreciseTimer` (started on first use)."""
    global _TIMER
    with _TIMER_LOCK:
        if _TIMER is None:
            _TIMER = PreciseTimer()
        return _TIMER


class EmulatedBackend:
    """An emulated device: busy for exactly the profiled latency on the real clock.

    The device works from ``start`` to ``start + duration``; ``execute`` returns when that time
    has passed (a :class:`PreciseTimer`; the executor still wakes a little late, see
    docs/runtime.md) and reports ``start + duration`` as the finish: the device's own clock is
    exact, so wake-up lateness delays the notification but never the next stage's start, and
    does not accumulate along a busy pipeline.

    It computes nothing: the data it is given is dropped and its output is None.

    The clock is ``time.monotonic()``, which is also asyncio's ``loop.time()`` on Linux.
    """

    async def execute(self, model: int, stage: int, start: float, duration: float,
                      data: Any = None) -> tuple[float, Any]:
        end = start + duration
        if end > time.monotonic():
            await precise_timer().wait_until(end)
        return end, None


def _emulated_group(spec: GroupSpec) -> list[DeviceBackend]:
    return [EmulatedBackend() for _ in range(spec.pp)]


def _jax_group(spec: GroupSpec) -> list[DeviceBackend]:
    from alpa_serve.runtime.jax_backend import JaxGroupBackend

    return list(JaxGroupBackend(spec).devices)


def _no_check(spec: GroupSpec) -> None:
    return None


def _jax_check(spec: GroupSpec) -> None:
    from alpa_serve.runtime.jax_backend import check_group

    check_group(spec)


@dataclass(frozen=True)
class BackendKind:
    """A back end by name: ``build(spec)`` makes the group's device back ends (one per stage,
    inside the group manager's process); ``check(spec)`` raises ValueError, before any actor
    starts, for a group the back end cannot serve; ``computes``: whether it really computes
    (then the runtime serves in real time only, speed-up 1)."""

    build: Callable[[GroupSpec], Sequence[DeviceBackend]]
    check: Callable[[GroupSpec], None] = _no_check
    computes: bool = False


#: Back ends by name (``RuntimeConfig.backend``).
BACKENDS: dict[str, BackendKind] = {
    "emulated": BackendKind(_emulated_group),
    "jax": BackendKind(_jax_group, _jax_check, computes=True),
}


def backend_kind(name: str) -> BackendKind:
    """The back end called ``name``; ValueError listing the known names otherwise."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown device back end {name!r}; known: {sorted(BACKENDS)}") from None


def make_backends(name: str, spec: GroupSpec) -> list[DeviceBackend]:
    """The ``spec.pp`` device back ends of one group (one per stage)."""
    devices = list(backend_kind(name).build(spec))
    if len(devices) != spec.pp:
        raise RuntimeError(f"back end {name!r} built {len(devices)} devices for {spec.pp} stages")
    return devices
