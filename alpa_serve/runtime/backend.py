"""Device back ends: what a pipeline-stage executor does to run one stage of one request.

An executor (``group.py``) owns one device (one pipeline stage of its group) and calls its back
end once per request. The back end is the only piece that knows whether the device is real;
everything else (controller, group managers, HTTP front end) is the same for every back end.

Times are seconds on the group manager's ``loop.time()`` clock (``time.monotonic``), in REAL
seconds: the group manager has already divided model seconds by the runtime's speed-up.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from typing import Callable, Optional, Protocol


class DeviceBackend(Protocol):
    """Runs one pipeline stage of one request on one device.

    ``execute(model, stage, start, duration)`` is awaited by the stage's executor once the stage
    is free and its input is ready: ``start`` is when the device starts the work (s, loop
    clock) and ``duration`` the profiled stage latency (s). It returns the time the device
    finished. The executor then hands the request to the next stage with that time as its
    input-ready time.
    """

    async def execute(self, model: int, stage: int, start: float, duration: float) -> float:
        ...


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

    The clock is ``time.monotonic()``, which is also asyncio's ``loop.time()`` on Linux.
    """

    async def execute(self, model: int, stage: int, start: float, duration: float) -> float:
        end = start + duration
        if end > time.monotonic():
            await precise_timer().wait_until(end)
        return end


#: Back ends by name (``RuntimeConfig.backend``); each entry builds one device's back end.
BACKENDS: dict[str, Callable[[], DeviceBackend]] = {"emulated": EmulatedBackend}


def make_backend(name: str) -> DeviceBackend:
    """A device back end by name; ValueError listing the known names otherwise."""
    try:
        return BACKENDS[name]()
    except KeyError:
        raise ValueError(f"unknown device back end {name!r}; known: {sorted(BACKENDS)}") from None
