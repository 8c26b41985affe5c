"""Open-loop load generator: replays a ``Workload`` against the HTTP front end in real time.

Request i is sent at ``(arrivals[i] - arrivals[0]) / speedup`` real seconds after the start,
whether or not earlier requests were answered (open loop), as
``POST {url}/v1/models/{model_names[id]}/infer`` with body ``{"slo": slos[i]}``. Its latency
is measured by the client, from the moment it is sent to the moment the response is read, and
converted to model seconds (x speedup). A request is good when it was served (HTTP 200) and
its latency is within its SLO as the simulator compares it (float32 SLO, DESIGN 5.1); the
goodput is then the simulator's own trimmed statistic (``simulator.stats.compute_stats``,
DESIGN 5.2), over the workload's arrival times.

Requests of model id -1 (a model outside the case) are not sent and count as failed, as in the
simulator.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional
from urllib.parse import quote, urlsplit

import numpy as np

from alpa_serve.runtime.backend import precise_timer
from alpa_serve.simulator.stats import SimStats, compute_stats

if TYPE_CHECKING:  # the workload package is imported by whoever builds the Workload
    from alpa_serve.workload import Workload

logger = logging.getLogger(__name__)

#: Real seconds between starting the replay and sending the first request.
_LEAD_SECONDS = 0.2


@dataclass(frozen=True)
class ReplayResult:
    """Per-request outcome of a replay (index i = request i of the workload).

    Times are model seconds unless stated. Attributes:
        workload: the replayed workload.
        speedup: model seconds per real second of the replay.
        status: HTTP status (0: not sent or no response).
        reason: ``"ok"``, the server's rejection reason, ``"unknown_model"`` (id -1, not
            sent) or ``"client_error"``.
        latency: client-measured latency (send to response read); NaN without response.
        lag: how late the request was sent relative to its scheduled time.
        group: serving group reported by the server (-1: none).
        predicted_latency: the controller's predicted latency (NaN when none).
        server_latency: latency measured by the controller (arrival there to result back
            from the group; 0 when rejected, NaN without response).
        timing: the controller's breakdown of served requests (``InferResult.timing``):
            component name -> float64[n] (NaN when not served).
        wall_seconds: real seconds the replay took.
    """

    workload: Workload
    speedup: float
    status: np.ndarray
    reason: np.ndarray
    latency: np.ndarray
    lag: np.ndarray
    group: np.ndarray
    predicted_latency: np.ndarray
    server_latency: np.ndarray
    timing: dict[str, np.ndarray]
    wall_seconds: float

    @property
    def accepted(self) -> np.ndarray:
        """bool[n]: served (HTTP 200)."""
        return self.status == 200

    @property
    def good(self) -> np.ndarray:
        """bool[n]: served within the SLO (float32 SLO, as the simulator compares)."""
        slo32 = np.asarray(self.workload.slos, dtype=np.float64).astype(np.float32)
        with np.errstate(invalid="ignore"):
            return self.accepted & (self.latency <= slo32.astype(np.float64))

    def stats(self) -> SimStats:
        """Trimmed statistics exactly as the simulator computes them (DESIGN 5.2), with the
        client-measured latencies as finish - arrival."""
        w = self.workload
        good = self.good
        arrivals = np.asarray(w.arrivals, dtype=np.float64)
        finish = np.where(good, arrivals + np.nan_to_num(self.latency), arrivals)
        num_groups = int(self.group.max()) + 1 if len(self.group) else 0
        group_num = np.bincount(self.group[self.group >= 0], minlength=num_groups)
        return compute_stats(arrivals, np.asarray(w.model_ids), finish, good,
                             group_num.astype(np.int64), w.model_names)


class HttpError(ConnectionError):
    """The server closed the connection or sent something that is not an HTTP response with a
    Content-Length."""


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection carrying one request at a time.

    The load generator must disturb the timing it measures as little as possible: this minimal
    client (fixed request bytes, a response parsed only for its status line and Content-Length)
    costs about half the CPU of aiohttp's client per request (docs/runtime.md). It only needs
    to understand the runtime's own front end.
    """

    def __init__(self) -> None:
        self.transport: Optional[asyncio.Transport] = None
        self.buffer = bytearray()
        self.waiter: Optional[asyncio.Future] = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(HttpError(f"connection closed: {exc!r}"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None or self.waiter.done():
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).split(b"\r\n")
        try:
            status = int(head[0].split(b" ", 2)[1])
            length = next(int(line.split(b":", 1)[1]) for line in head[1:]
                          if line[:15].lower() == b"content-length:")
        except (IndexError, ValueError, StopIteration):
            self.waiter.set_exception(HttpError(f"bad response head {head[:3]!r}"))
            self._connected().close()
            return
        total = end + 4 + length
        if len(self.buffer) < total:
            return
        body = bytes(self.buffer[end + 4:total])
        del self.buffer[:total]
        if any(line.lower() == b"connection: close" for line in head[1:]):
            self.closed = True
        self.waiter.set_result((status, body, time.monotonic()))

    def request(self, data: bytes) -> asyncio.Future:
        self.waiter = asyncio.get_running_loop().create_future()
        self._connected().write(data)
        return self.waiter

    def _connected(self) -> asyncio.Transport:
        if self.transport is None:
            raise HttpError("the connection is not open")
        return self.transport


class _Client:
    """A pool of :class:`_Connection` to one host:port (grows to the peak concurrency)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[_Connection] = []
        self.all: list[_Connection] = []

    async def post(self, data: bytes) -> tuple[int, bytes, float]:
        """Send the request bytes; returns (status, body, monotonic time the response was
        complete)."""
        conn = None
        while self.idle:
            c = self.idle.pop()
            if not c.closed:
                conn = c
                break
        if conn is None:
            loop = asyncio.get_running_loop()
            _, conn = await loop.create_connection(_Connection, self.host, self.port)
            self.all.append(conn)
        result = await conn.request(data)
        if not conn.closed:
            self.idle.append(conn)
        return result

    def close(self) -> None:
        for c in self.all:
            if c.transport is not None:
                c.transport.close()


async def replay_async(url: str, workload: Workload, speedup: float = 1.0,
                       timeout: float = 120.0) -> ReplayResult:
    """Replay ``workload`` against the runtime at ``url`` (see the module docstring).

    ``timeout``: real seconds a single request may take before it counts as a client error.
    """
    if not speedup > 0:
        raise ValueError(f"speedup must be > 0, got {speedup}")
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None or parts.port is None:
        raise ValueError(f"url must look like http://HOST:PORT, got {url!r}")
    host, port = parts.hostname, parts.port
    n = len(workload)
    arrivals = np.asarray(workload.arrivals, dtype=np.float64)
    ids = np.asarray(workload.model_ids)
    names = list(workload.model_names)
    heads = [f"POST {parts.path.rstrip('/')}/v1/models/{quote(str(name), safe='')}/infer "
             f"HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
             for name in names]
    status = np.zeros(n, dtype=np.int32)
    reason = np.full(n, "client_error", dtype=object)
    latency = np.full(n, np.nan)
    lag = np.full(n, np.nan)
    group = np.full(n, -1, dtype=np.int32)
    predicted = np.full(n, np.nan)
    server = np.full(n, np.nan)
    timing: dict[str, np.ndarray] = {}
    loop = asyncio.get_running_loop()
    client = _Client(host, port)

    async def send(i: int, scheduled: float) -> None:
        body = json.dumps({"slo": float(workload.slos[i])})
        data = f"{heads[ids[i]]}Content-Length: {len(body)}\r\n\r\n{body}".encode()
        sent = time.monotonic()
        lag[i] = (sent - scheduled) * speedup
        try:
            code, payload, done = await asyncio.wait_for(client.post(data), timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            logger.debug("request %d failed: %r", i, exc)
            return
        status[i] = code
        latency[i] = (done - sent) * speedup
        try:
            info = json.loads(payload)
        except ValueError:
            info = {}
        reason[i] = info.get("reason", "ok" if code == 200 else "client_error")
        group[i] = int(info.get("group", -1))
        p = info.get("predicted_latency")
        predicted[i] = np.nan if p is None else float(p)
        server[i] = float(info.get("latency", np.nan))
        for key, value in (info.get("timing") or {}).items():
            if key not in timing:
                timing[key] = np.full(n, np.nan)
            timing[key][i] = float(value)

    tasks = []
    timer = precise_timer()  # asyncio.sleep would send up to ~1 ms late (whole-ms epoll)
    start = time.monotonic() + _LEAD_SECONDS
    a0 = arrivals[0] if n else 0.0
    try:
        for i in range(n):
            if ids[i] < 0:
                reason[i] = "unknown_model"
                continue
            scheduled = start + (arrivals[i] - a0) / speedup
            if scheduled > time.monotonic():
                await timer.wait_until(scheduled)
            tasks.append(loop.create_task(send(i, scheduled)))
        await asyncio.gather(*tasks)
    finally:
        client.close()
    wall = time.monotonic() - start + _LEAD_SECONDS
    return ReplayResult(workload, float(speedup), status, reason, latency, lag, group,
                        predicted, server, timing, wall)


def replay(url: str, workload: Workload, speedup: float = 1.0, timeout: float = 120.0
           ) -> ReplayResult:
    """Blocking :func:`replay_async` (runs its own event loop)."""
    return asyncio.run(replay_async(url, workload, speedup, timeout))
