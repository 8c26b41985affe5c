"""Request channel between the controller and a group manager: one TCP stream per group.

Ray starts, places, configures and monitors the group-manager actors; the per-request traffic
goes over a plain asyncio TCP connection that the group manager opens for its controller. A
Ray actor call costs a few milliseconds per hop on a busy 2-core machine (several thread
hand-offs per call), a socket round trip a few tenths of a millisecond (docs/runtime.md,
"Where the time goes"); under time compression every real millisecond counts k-fold.

Wire format (little endian): a fixed-size record, then ``size`` bytes of payload:

* controller -> group: ``seq`` (uint64), ``model`` (int32), ``size`` (uint32). ``model >= 0``:
  request number ``seq`` (0, 1, ... per group in dispatch order), payload: the request's input
  as JSON (none: no input); :data:`PING`: a heartbeat numbered ``seq``; :data:`CANCEL`: drop
  every request numbered ``<= seq`` (the controller has answered them without the group, see
  below); control records carry no payload;
* group -> controller: ``seq``, ``status`` (int32), four float64 values and ``size`` (uint32).
  For a request (:data:`STATUS_OK` served, :data:`STATUS_FAILED` failed) the
  ``time.monotonic()`` instants received, stage 0 start, last-stage device finish, executor
  returned (real seconds), payload: the output as JSON (none: no output), or, when failed, the
  error message (UTF-8); for :data:`STATUS_PONG` (the answer to a ping) the group's clock, the
  number of requests inside the group, and two zeros, no payload.

A group that dies closes its end: every request still waiting on it fails at once with
:class:`GroupLostError`. A group that stops answering (a frozen process) keeps its end open;
the controller notices it with :meth:`GroupChannel.overdue` (a request past its deadline, or a
ping unanswered for too long) and answers its requests itself (:meth:`GroupChannel.fail_all`).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import struct
import time
from typing import Any, Callable, Optional

logger = logging.getLogger(__name__)

REQUEST = struct.Struct("<QiI")
REPLY = struct.Struct("<Qi4dI")


def encode_payload(value: Any) -> bytes:
    """A request's input or output as payload bytes (None: empty)."""
    return b"" if value is None else json.dumps(value, separators=(",", ":")).encode()


def decode_payload(data: bytes) -> Any:
    """The value of :func:`encode_payload`'s bytes."""
    return json.loads(data) if data else None


#: ``model`` values of control records (controller -> group).
PING = -1
CANCEL = -2

STATUS_OK = 0
STATUS_FAILED = 1
STATUS_PONG = 2


class GroupLostError(ConnectionError):
    """The group's channel closed (its actor died or was reconfigured)."""


class GroupFailedError(RuntimeError):
    """The group could not run the request (e.g. a device back end raised)."""


class GroupStalledError(RuntimeError):
    """The group stopped answering; the controller answered the request without it."""


class GroupChannel:
    """Controller side of one group's channel: send requests, await their replies, and watch
    the group's progress (deadlines of pending requests, heartbeats)."""

    def __init__(self, group: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 on_lost: Optional[Callable[[int], None]] = None) -> None:
        self.group = group
        self._reader = reader
        self._writer = writer
        self._on_lost = on_lost
        self._pending: dict[int, asyncio.Future] = {}
        # (seq, deadline) in sending order; deadlines increase with seq because a group
        # finishes its requests in order. Entries already answered are skipped lazily.
        self._deadlines: collections.deque[tuple[int, float]] = collections.deque()
        self.closed = False
        #: Heartbeats: number and send time (monotonic s) of the unanswered ping, if any.
        self._ping_seq = 0
        self.ping_sent: Optional[float] = None
        #: Monotonic time (s) of the last pong, and the requests inside the group it reported.
        self.last_pong = -float("inf")
        self.inside = 0
        self._task = asyncio.get_running_loop().create_task(self._read_replies())

    @classmethod
    async def connect(cls, group: int, host: str, port: int,
                      on_lost: Optional[Callable[[int], None]] = None) -> "GroupChannel":
        """Open the channel to the group listening on ``host:port``."""
        reader, writer = await asyncio.open_connection(host, port)
        return cls(group, reader, writer, on_lost)

    @property
    def num_pending(self) -> int:
        """Requests sent and not answered yet."""
        return len(self._pending)

    def call(self, seq: int, model: int, data: Any = None,
             deadline: float = float("inf")) -> asyncio.Future:
        """Send request ``seq`` of ``model`` with input ``data`` (JSON-encodable); the future
        gives the four reply instants and the output. ``deadline`` (monotonic s): when the
        group is overdue without an answer."""
        fut = asyncio.get_running_loop().create_future()
        if self.closed:
            fut.set_exception(GroupLostError(f"group {self.group} is gone"))
            return fut
        self._pending[seq] = fut
        payload = encode_payload(data)
        self._deadlines.append((seq, deadline))
        self._writer.write(REQUEST.pack(seq, model, len(payload)) + payload)
        return fut

    def ping(self) -> None:
        """Send a heartbeat unless one is unanswered."""
        if self.closed or self.ping_sent is not None:
            return
        self._ping_seq += 1
        self.ping_sent = time.monotonic()
        self._writer.write(REQUEST.pack(self._ping_seq, PING, 0))

    def cancel(self, upto: int) -> None:
        """Tell the group to drop its requests numbered ``<= upto`` (already answered)."""
        if not self.closed and upto >= 0:
            self._writer.write(REQUEST.pack(upto, CANCEL, 0))

    def overdue(self, now: float, grace: float) -> Optional[str]:
        """Why the group counts as stalled at monotonic time ``now``, or None: its oldest
        pending request is past its deadline, or a ping is unanswered after ``grace`` s."""
        dl = self._deadlines
        while dl and dl[0][0] not in self._pending:
            dl.popleft()
        if dl and now > dl[0][1]:
            return f"request {dl[0][0]} is {now - dl[0][1] + grace:.1f} s past its predicted " \
                   f"finish"
        if self.ping_sent is not None and now - self.ping_sent > grace:
            return f"no answer to a heartbeat for {now - self.ping_sent:.1f} s"
        return None

    def fail_all(self, exc: BaseException) -> int:
        """Answer every pending request with ``exc`` and forget them (their late replies are
        ignored); returns how many there were."""
        n = 0
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(exc)
                n += 1
        self._pending.clear()
        self._deadlines.clear()
        return n

    async def _read_replies(self) -> None:
        try:
            while True:
                data = await self._reader.readexactly(REPLY.size)
                seq, status, *times, size = REPLY.unpack(data)
                payload = await self._reader.readexactly(size) if size else b""
                if status == STATUS_PONG:
                    if seq == self._ping_seq:
                        self.ping_sent = None
                    self.last_pong = time.monotonic()
                    self.inside = int(times[1])
                    continue
                fut = self._pending.pop(seq, None)
                if fut is None or fut.done():
                    continue
                if status == STATUS_OK:
                    fut.set_result((*times, decode_payload(payload)))
                else:
                    why = payload.decode("utf-8", "replace")
                    fut.set_exception(GroupFailedError(
                        f"group {self.group} failed request {seq}" + (f": {why}" if why else "")))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self._lost()

    def _lost(self) -> None:
        was_open = not self.closed
        self.closed = True
        self.fail_all(GroupLostError(f"group {self.group} closed its channel"))
        if was_open and self._on_lost is not None:
            self._on_lost(self.group)

    async def close(self) -> None:
        """Close the channel (requests still waiting fail; ``on_lost`` is not called)."""
        self._on_lost = None
        self.closed = True
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except (ConnectionError, OSError):
            pass
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
