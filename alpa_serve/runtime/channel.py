"""Request channel between the controller and a group manager: one TCP stream per group.

Ray starts, places, configures and monitors the group-manager actors; the per-request traffic
goes over a plain asyncio TCP connection that the group manager opens for its controller. A
Ray actor call costs a few milliseconds per hop on a busy 2-core machine (several thread
hand-offs per call), a socket round trip a few tenths of a millisecond (docs/runtime.md,
"Where the time goes"); under time compression every real millisecond counts k-fold.

Wire format (little endian): a fixed-size record, then ``size`` bytes of payload:

* request, controller -> group: ``seq`` (uint64, 0, 1, ... per group in dispatch order),
  ``model`` (int32), ``size`` (uint32); payload: the request's input as JSON (none: no input);
* reply, group -> controller: ``seq``, ``status`` (int32: 0 served, 1 failed), four float64
  ``time.monotonic()`` instants: received, stage 0 start, last-stage device finish, executor
  returned (real seconds), ``size`` (uint32); payload: the output as JSON (none: no output),
  or, when failed, the error message (UTF-8).

A group that dies closes its end: every request still waiting on it fails at once with
:class:`GroupLostError`, and the controller stops sending to it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
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

STATUS_OK = 0
STATUS_FAILED = 1


class GroupLostError(ConnectionError):
    """The group's channel closed (its actor died or was reconfigured)."""


class GroupFailedError(RuntimeError):
    """The group could not run the request (e.g. a device back end raised)."""


class GroupChannel:
    """Controller side of one group's channel: send requests, await their replies."""

    def __init__(self, group: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 on_lost: Optional[Callable[[int], None]] = None) -> None:
        self.group = group
        self._reader = reader
        self._writer = writer
        self._on_lost = on_lost
        self._pending: dict[int, asyncio.Future] = {}
        self.closed = False
        self._task = asyncio.get_running_loop().create_task(self._read_replies())

    @classmethod
    async def connect(cls, group: int, host: str, port: int,
                      on_lost: Optional[Callable[[int], None]] = None) -> "GroupChannel":
        reader, writer = await asyncio.open_connection(host, port)
        return cls(group, reader, writer, on_lost)

    def call(self, seq: int, model: int, data: Any = None) -> asyncio.Future:
        """Send request ``seq`` of ``model`` with input ``data`` (JSON-encodable); the future
        gives the four reply instants and the output."""
        fut = asyncio.get_running_loop().create_future()
        if self.closed:
            fut.set_exception(GroupLostError(f"group {self.group} is gone"))
            return fut
        self._pending[seq] = fut
        payload = encode_payload(data)
        self._writer.write(REQUEST.pack(seq, model, len(payload)) + payload)
        return fut

    async def _read_replies(self) -> None:
        try:
            while True:
                data = await self._reader.readexactly(REPLY.size)
                seq, status, *times, size = REPLY.unpack(data)
                payload = await self._reader.readexactly(size) if size else b""
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
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(GroupLostError(f"group {self.group} closed its channel"))
        self._pending.clear()
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
