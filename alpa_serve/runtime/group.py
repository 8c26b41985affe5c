"""Group manager: one per placement group, running the group's pipeline (DESIGN 9).

A :class:`GroupManager` (a Ray actor, see ``runtime.py``) owns the ``pp`` devices of its group,
one :class:`StageExecutor` per device/stage. A request enters stage 0 when the controller sends
it; each executor takes requests in order, starts one when both the device is free and the
request's previous stage has finished, keeps the device busy for the stage latency (through its
:class:`~alpa_serve.runtime.backend.DeviceBackend`) and hands the request on, with the stage's
output as the next stage's input (the request's input enters stage 0; the last stage's output
is the request's output). So the stages of
one request run in order and different requests overlap across stages, as in the simulator's
recurrence ``x = max(x, free[k]) + L[k]``.

Requests arrive over the group's request channel (``channel.py``; :meth:`GroupManager.listen`);
Ray creates, configures and stops the actor.

Clocks: ``time.monotonic()`` in real seconds. Latencies arrive in model seconds and are
divided by the runtime's speed-up (model seconds per real second); :meth:`GroupManager.run`
returns real instants (the controller converts them), :meth:`GroupManager.info` model seconds.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from alpa_serve.runtime.backend import DeviceBackend, GroupSpec, backend_kind, make_backends
from alpa_serve.runtime.channel import (
    CANCEL,
    PING,
    REPLY,
    REQUEST,
    STATUS_FAILED,
    STATUS_OK,
    STATUS_PONG,
    decode_payload,
    encode_payload,
)

logger = logging.getLogger(__name__)


@dataclass
class _Job:
    """One request inside a group (times: real seconds, monotonic clock)."""

    seq: int
    model: int
    latencies: tuple[float, ...]
    received: float
    done: asyncio.Future
    ready: float = 0.0
    #: The next stage's input (the request's input before stage 0); the output at the end.
    data: Any = None
    starts: list[float] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)
    #: The controller answered it without this group (CANCEL): its remaining stages are
    #: skipped.
    cancelled: bool = False


class RequestCancelled(RuntimeError):
    """The controller gave up on the request (it had stopped hearing from this group)."""


class StageExecutor:
    """One device of a group: runs pipeline stage ``stage`` of each request, in order."""

    def __init__(self, stage: int, backend: DeviceBackend,
                 next_stage: Optional["StageExecutor"]) -> None:
        self.stage = stage
        self.backend = backend
        self.next_stage = next_stage
        self.queue: asyncio.Queue[_Job] = asyncio.Queue()
        #: Real time (s) the device finishes its current work; -inf when it never worked.
        self.free = -math.inf
        self.busy_seconds = 0.0

    async def run_forever(self) -> None:
        while True:
            job = await self.queue.get()
            if job.cancelled:  # answered by the controller already: free the device at once
                if not job.done.done():
                    job.done.set_exception(RequestCancelled(f"request {job.seq} cancelled"))
                continue
            try:
                start = max(job.ready, self.free)
                duration = job.latencies[self.stage]
                end, out = await self.backend.execute(job.model, self.stage, start, duration,
                                                      job.data)
            except asyncio.CancelledError:
                if not job.done.done():
                    job.done.cancel()
                raise
            except Exception as exc:  # a failing device fails the request, not the executor
                if not job.done.done():
                    job.done.set_exception(exc)
                continue
            self.free = end
            self.busy_seconds += end - start
            job.starts.append(start)
            job.ends.append(end)
            job.ready = end
            job.data = out
            if self.next_stage is not None:
                self.next_stage.queue.put_nowait(job)
            elif not job.done.done():
                job.done.set_result(None)


class GroupManager:
    """The devices of one group and their pipeline.

    Args:
        group: index of the group in the placement.
        num_stages: pipeline stages (pp) = executors.
        latencies: model index -> per-stage latencies (model seconds) of that model on this
            group; models absent from the mapping are not hosted here.
        speedup: model seconds per real second (1: real time).
        backend: device back end name (``backend.BACKENDS``).
        op: intra-operator degree of the group (devices per stage; real-compute back ends).
        models: model index -> type name of each hosted model (real-compute back ends build
            that architecture; default: ``m<index>``).

    :meth:`configure` turns an existing manager into another group (the runtime reuses its
    actors when it deploys a new placement).
    """

    def __init__(self, group: int, num_stages: int,
                 latencies: Mapping[int, Sequence[float]], speedup: float = 1.0,
                 backend: str = "emulated", op: int = 1,
                 models: Optional[Mapping[int, str]] = None) -> None:
        self._tasks: list[asyncio.Task] = []
        self._server: Optional[asyncio.AbstractServer] = None
        self._requests: set[asyncio.Task] = set()
        self._setup(group, num_stages, latencies, speedup, backend, op, models)

    def _setup(self, group: int, num_stages: int, latencies: Mapping[int, Sequence[float]],
               speedup: float, backend: str, op: int = 1,
               models: Optional[Mapping[int, str]] = None) -> None:
        if num_stages < 1:
            raise ValueError(f"group {group}: num_stages must be >= 1, got {num_stages}")
        if not speedup > 0:
            raise ValueError(f"speedup must be > 0, got {speedup}")
        lat_real: dict[int, tuple[float, ...]] = {}
        for m, lat in latencies.items():
            if len(lat) != num_stages:
                raise ValueError(f"group {group}: model {m} has {len(lat)} stage latencies, "
                                 f"expected {num_stages}")
            lat_real[int(m)] = tuple(float(x) / speedup for x in lat)
        self.group = group
        self.num_stages = num_stages
        self.speedup = float(speedup)
        self._latencies = lat_real
        names = {m: (models or {}).get(m, f"m{m}") for m in lat_real}
        spec = GroupSpec(group, int(op), num_stages, names)
        backend_kind(backend).check(spec)
        devices = make_backends(backend, spec)  # a real back end loads its weights here
        executors: list[StageExecutor] = []
        nxt: Optional[StageExecutor] = None
        for k in reversed(range(num_stages)):
            nxt = StageExecutor(k, devices[k], nxt)
            executors.append(nxt)
        executors.reverse()
        self.executors = executors
        self._next_seq = 0
        self._held: dict[int, _Job] = {}
        #: Requests inside the group (received, not finished), by seq.
        self._inside: dict[int, _Job] = {}
        #: Requests numbered <= this were cancelled by the controller.
        self._cancel_upto = -1
        self.num_served = 0

    async def configure(self, group: int, num_stages: int,
                        latencies: Mapping[int, Sequence[float]], speedup: float = 1.0,
                        backend: str = "emulated", op: int = 1,
                        models: Optional[Mapping[int, str]] = None) -> int:
        """Become a fresh manager of another group (idle devices, sequence numbers from 0).
        Requests still inside fail. Returns the group index."""
        await self.stop()
        self._setup(group, num_stages, latencies, speedup, backend, op, models)
        return await self.start()

    async def start(self) -> int:
        """Start the executors (inside the actor's event loop); returns the group index."""
        if not self._tasks:
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(e.run_forever()) for e in self.executors]
        return self.group

    async def run(self, seq: int, model: int, data: Any = None
                  ) -> tuple[float, float, float, float, Any]:
        """Run request number ``seq`` (0, 1, ... in the controller's dispatch order to this
        group) of ``model`` with input ``data`` through the pipeline.

        Requests enter stage 0 in ``seq`` order even if the calls arrive out of order, so the
        group serves them in the order the controller's bookkeeping assumed. Returns the
        ``time.monotonic()`` instants (real seconds) the request was received, stage 0 started,
        the last stage's device finished, and the executor returned, and the output.
        """
        if model not in self._latencies:
            raise ValueError(f"group {self.group} does not host model {model}")
        await self.start()
        now = time.monotonic()
        job = _Job(seq=seq, model=model, latencies=self._latencies[model], received=now,
                   done=asyncio.get_running_loop().create_future(), ready=now, data=data,
                   cancelled=seq <= self._cancel_upto)
        self._held[seq] = job
        self._inside[seq] = job
        while self._next_seq in self._held:
            self.executors[0].queue.put_nowait(self._held.pop(self._next_seq))
            self._next_seq += 1
        try:
            await job.done
        finally:
            self._inside.pop(seq, None)
        self.num_served += 1
        return now, job.starts[0], job.ends[-1], time.monotonic(), job.data

    def cancel(self, upto: int) -> None:
        """Skip the remaining stages of requests numbered ``<= upto`` (the controller has
        answered them; a stage already running finishes)."""
        self._cancel_upto = max(self._cancel_upto, upto)
        for job in self._inside.values():
            if job.seq <= upto:
                job.cancelled = True

    async def listen(self, host: Optional[str] = "127.0.0.1") -> tuple[str, int]:
        """Open the request channel (``channel.py``) on ``host`` (None: this Ray node's IP
        address, for a controller on another node); returns (host, port)."""
        if self._server is None:
            if host is None:
                import ray

                host = ray.util.get_node_ip_address()
            self._server = await asyncio.start_server(self._serve_channel, host, 0)
            self._address = (host, int(self._server.sockets[0].getsockname()[1]))
        return self._address

    async def _serve_channel(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        """One controller connection: each request starts at once (in arrival order, which
        ``run`` keeps by ``seq``), and its reply is written when it finishes."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                seq, model, size = REQUEST.unpack(await reader.readexactly(REQUEST.size))
                payload = await reader.readexactly(size) if size else b""
                if model == PING:  # heartbeat: answered by this loop, so a frozen one is seen
                    writer.write(REPLY.pack(seq, STATUS_PONG, time.monotonic(),
                                            float(len(self._inside)), 0.0, 0.0, 0))
                    continue
                if model == CANCEL:
                    self.cancel(seq)
                    continue
                task = loop.create_task(self._reply(seq, model, payload, writer))
                self._requests.add(task)
                task.add_done_callback(self._requests.discard)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _reply(self, seq: int, model: int, payload: bytes,
                     writer: asyncio.StreamWriter) -> None:
        try:
            *times, output = await self.run(seq, model, decode_payload(payload))
            status, body = STATUS_OK, encode_payload(output)
        except RequestCancelled:
            times, status, body = [math.nan] * 4, STATUS_FAILED, b""
        except (Exception, asyncio.CancelledError) as exc:  # noqa: BLE001 - reported back
            logger.warning("group %d: request %d failed: %r", self.group, seq, exc)
            times, status = [math.nan] * 4, STATUS_FAILED
            body = str(exc).encode("utf-8", "replace")
        if not writer.is_closing():
            writer.write(REPLY.pack(seq, status, *times, len(body)) + body)

    async def stop(self) -> None:
        """Cancel the executors (requests still inside fail); call before killing the actor."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for job in self._held.values():
            if not job.done.done():
                job.done.cancel()
        for e in self.executors:
            while not e.queue.empty():
                job = e.queue.get_nowait()
                if not job.done.done():
                    job.done.cancel()

    def info(self) -> dict:
        """Group index, stage count, process id, requests served and inside, and per-stage
        busy model seconds."""
        return {"group": self.group, "num_stages": self.num_stages, "pid": os.getpid(),
                "served": self.num_served, "waiting_out_of_order": len(self._held),
                "inside": len(self._inside),
                "busy": [e.busy_seconds * self.speedup for e in self.executors]}
