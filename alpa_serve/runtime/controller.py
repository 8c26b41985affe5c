"""Controller: admits each request by the simulator's rule and sends it to a group manager.

The controller keeps its own bookkeeping of every group's per-stage free times in a
:class:`~alpa_serve.simulator.dispatch.Dispatcher` (the simulator's rule, DESIGN 5.1): a request
arriving at controller time t goes to the replica whose last stage is free earliest, and is
rejected at once when its predicted finish misses the SLO. Accepted requests are then really run
by the chosen group manager, whose executors keep the devices busy on a real clock; the
controller measures when the result comes back, so the gap between the predicted and the actual
finish is observable (``InferResult.latency`` vs ``predicted_latency``).

Times are model seconds: ``(time.monotonic() - origin) * speedup``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from alpa_serve.runtime.channel import GroupChannel, GroupLostError, GroupStalledError
from alpa_serve.simulator.dispatch import Dispatcher, float32_slo

logger = logging.getLogger(__name__)

#: Defaults of the controller's limits (see :class:`Controller`): real seconds a group may be
#: late before it counts as stalled, real seconds between heartbeats, the largest SLO a request
#: may ask for (model seconds), and the most admitted requests waiting for their groups.
DEFAULT_STALL_TIMEOUT = 2.0
DEFAULT_HEARTBEAT = 0.5
DEFAULT_MAX_SLO = 100.0
DEFAULT_MAX_IN_FLIGHT = 10000


@dataclass(frozen=True)
class InferResult:
    """Outcome of one request (times in model seconds, on the controller's clock).

    Attributes:
        model: model name.
        status: ``"ok"`` (served) or ``"rejected"``.
        reason: ``"ok"`` or why it was rejected: ``"slo"`` (predicted latency exceeds the SLO),
            ``"no_replica"``, ``"config_missing"``, ``"overloaded"`` (too many requests in
            flight), ``"group_lost"`` (the group died while serving it), ``"group_stalled"``
            (the group stopped answering), ``"group_error"`` (the group failed it).
        group: the group chosen (-1: none).
        arrival: controller time the request arrived.
        slo: the SLO compared (float32-rounded).
        predicted_latency: predicted finish - arrival (inf when no pipeline was evaluated).
        latency: measured finish - arrival when served (result back at the controller), else 0.
        detail: a sentence for people.
        timing: where the time of a served request went (model seconds): ``dispatch``
            (controller arrival to the group receiving it), ``queue`` (received to stage 0
            start), ``device`` (stage 0 start to the last stage's finish, device clock),
            ``wake`` (device finish to the executor noticing it), ``reply`` (back at the
            controller). Cross-process differences assume one machine (a shared monotonic
            clock); empty when rejected.
        output: what the last stage returned (a real-compute back end's output; None for
            emulated devices and rejected requests).
    """

    model: str
    status: str
    reason: str
    group: int
    arrival: float
    slo: float
    predicted_latency: float
    latency: float
    detail: str
    timing: dict[str, float] = field(default_factory=dict)
    output: Any = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of the reply; non-finite times become None (JSON has no inf);
        ``output`` as the back end returned it (JSON-encodable)."""
        return {"model": self.model, "status": self.status, "reason": self.reason,
                "group": self.group, "arrival": _finite(self.arrival), "slo": _finite(self.slo),
                "predicted_latency": _finite(self.predicted_latency),
                "latency": _finite(self.latency), "detail": self.detail,
                "timing": {k: _finite(v) for k, v in self.timing.items()},
                "output": self.output}


def _finite(x: float) -> Optional[float]:
    return x if math.isfinite(x) else None


class Controller:
    """Admission and dispatch of requests to group managers (asyncio; one event loop).

    Args:
        dispatcher: the simulator's dispatch rule with this placement's stage latencies.
        slos: default SLO (model seconds) per model, used when a request names none.
        speedup: model seconds per real second.
        stall_timeout: real seconds a group may be late (past the predicted finish of its
            oldest pending request, or without answering a heartbeat) before it counts as
            stalled: its pending requests are answered at once (``group_stalled``), it gets no
            new requests, and it rejoins, idle, once it answers a heartbeat with nothing left
            inside.
        heartbeat: real seconds between heartbeats to each group.
        max_slo: largest SLO (model seconds) a request may ask for; it bounds how far ahead
            admission can commit a group, hence every group's queue.
        max_in_flight: admitted requests waiting for their groups at most; more are rejected
            at once (``overloaded``).

    :meth:`connect` opens the request channels to the group managers before serving.
    """

    def __init__(self, dispatcher: Dispatcher, slos: Sequence[float],
                 speedup: float = 1.0, stall_timeout: float = DEFAULT_STALL_TIMEOUT,
                 heartbeat: float = DEFAULT_HEARTBEAT, max_slo: float = DEFAULT_MAX_SLO,
                 max_in_flight: int = DEFAULT_MAX_IN_FLIGHT) -> None:
        if len(slos) != dispatcher.num_models:
            raise ValueError(f"{len(slos)} SLOs for {dispatcher.num_models} models")
        for name, value in (("speedup", speedup), ("stall_timeout", stall_timeout),
                            ("heartbeat", heartbeat), ("max_slo", max_slo)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not max_in_flight >= 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight!r}")
        too_long = [(n, s) for n, s in zip(dispatcher.model_names, slos) if not s <= max_slo]
        if too_long:
            raise ValueError(f"default SLOs {too_long} exceed max_slo = {max_slo:g} s; raise "
                             f"max_slo (--max-slo) or lower the SLOs")
        self.dispatcher = dispatcher
        self.channels: list[Optional[GroupChannel]] = [None] * dispatcher.num_groups
        self.slos = [float(s) for s in slos]
        self.speedup = float(speedup)
        self.stall_timeout = float(stall_timeout)
        self.heartbeat = float(heartbeat)
        self.max_slo = float(max_slo)
        self.max_in_flight = int(max_in_flight)
        self.model_index = {name: i for i, name in enumerate(dispatcher.model_names)}
        self.origin = time.monotonic()
        self._seq = [0] * dispatcher.num_groups
        self.counts: Counter[str] = Counter()
        self.group_counts = [0] * dispatcher.num_groups
        self.in_flight = 0
        #: Groups that stopped answering (out of service until they answer again).
        self.stalled: set[int] = set()
        #: Groups whose channel closed (out of service for good).
        self.lost: set[int] = set()
        self._stalled_at: dict[int, float] = {}
        self._watchdog: Optional[asyncio.Task] = None

    async def connect(self, addresses: Sequence[tuple[str, int]]) -> None:
        """Open one request channel per group; ``addresses[g]`` = (host, port) of group g.
        Starts the watchdog that sends heartbeats and detects stalled groups."""
        if len(addresses) != self.dispatcher.num_groups:
            raise ValueError(f"{len(addresses)} group addresses for a placement of "
                             f"{self.dispatcher.num_groups} groups")
        self.channels = list(await asyncio.gather(*(
            GroupChannel.connect(g, host, port, self._group_lost)
            for g, (host, port) in enumerate(addresses))))
        self._watchdog = asyncio.get_running_loop().create_task(self._watch())

    async def stop_watch(self) -> None:
        """Stop the watchdog: no more heartbeats or stall detection (before the groups are
        reconfigured for another placement: a real-compute group builds and compiles its
        models in ``configure``, its event loop busy for seconds, and must not count as
        stalled)."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
            self._watchdog = None

    async def close(self) -> None:
        """Stop the watchdog and close the request channels (requests still waiting fail;
        no group is reported lost)."""
        await self.stop_watch()
        await asyncio.gather(*(c.close() for c in self.channels if c is not None))

    def _group_lost(self, g: int) -> None:
        if g not in self.lost:
            logger.warning("group %d is gone; its models are served by their other replicas "
                           "from now on", g)
        self.lost.add(g)
        self.stalled.discard(g)
        self.dispatcher.remove_group(g)

    async def _watch(self) -> None:
        """Every tick: heartbeats, stall detection, and rejoining of recovered groups."""
        tick = min(0.1, self.stall_timeout / 4, self.heartbeat / 2)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for g, ch in enumerate(self.channels):
                if ch is None or ch.closed or g in self.lost:
                    continue
                if g in self.stalled:
                    # Recovered: it answered a heartbeat sent after it stalled, and the requests
                    # it held (cancelled) have drained, so it is idle as the dispatcher assumes.
                    if ch.ping_sent is None and ch.inside == 0 \
                            and ch.last_pong > self._stalled_at[g]:
                        self._rejoin(g)
                    elif ch.ping_sent is None and now - ch.last_pong >= self.heartbeat:
                        ch.ping()
                    continue
                why = ch.overdue(now, self.stall_timeout)
                if why is not None:
                    self._stall(g, why)
                elif ch.ping_sent is None and now - ch.last_pong >= self.heartbeat:
                    ch.ping()

    def _stall(self, g: int, why: str) -> None:
        """Take group g out of service and answer its pending requests now."""
        ch = self.channels[g]
        assert ch is not None
        self.stalled.add(g)
        self._stalled_at[g] = time.monotonic()
        self.dispatcher.remove_group(g)
        n = ch.fail_all(GroupStalledError(f"group {g} stopped answering ({why})"))
        ch.cancel(self._seq[g] - 1)  # when it wakes up, it drops what was answered here
        logger.warning("group %d stopped answering (%s): %d pending request(s) rejected; its "
                       "models go to their other replicas until it answers again", g, why, n)

    def _rejoin(self, g: int) -> None:
        self.stalled.discard(g)
        self.dispatcher.restore_group(g)
        logger.warning("group %d answers again; serving its models from now on", g)

    def now(self) -> float:
        """Controller time in model seconds."""
        return (time.monotonic() - self.origin) * self.speedup

    def has_model(self, name: str) -> bool:
        """Whether ``name`` is a model of this deployment."""
        return name in self.model_index

    def check_slo(self, slo: float) -> float:
        """``slo`` (model seconds) if finite, > 0 and <= :attr:`max_slo`; ValueError saying
        so otherwise."""
        if isinstance(slo, bool) or not isinstance(slo, (int, float)) \
                or not math.isfinite(slo) or slo <= 0:
            raise ValueError(f"slo must be a positive number of seconds, got {slo!r}")
        if slo > self.max_slo:
            raise ValueError(f"slo {slo!r} s exceeds the largest SLO this runtime accepts, "
                             f"{self.max_slo:g} s (RuntimeConfig.max_slo, --max-slo)")
        return float(slo)

    async def infer(self, name: str, slo: Optional[float] = None,
                    arrival: Optional[float] = None, data: Any = None) -> InferResult:
        """Serve one request of model ``name`` (KeyError if unknown).

        ``arrival``: the controller time it arrived (default: now); ``slo`` in model seconds
        (default: the model's; ValueError beyond :meth:`check_slo`'s bounds); ``data``: the
        request's input (JSON-encodable), handed to the group's first stage.
        """
        t = self.now() if arrival is None else arrival
        t_real = self.origin + t / self.speedup
        m = self.model_index[name]
        slo = self.slos[m] if slo is None else self.check_slo(slo)
        if self.in_flight >= self.max_in_flight:
            self.counts["overloaded"] += 1
            return InferResult(name, "rejected", "overloaded", -1, t, float32_slo(slo),
                               math.inf, 0.0, f"{self.in_flight} requests are in flight, the "
                               f"most this runtime holds (RuntimeConfig.max_in_flight)")
        dec = self.dispatcher.admit(m, t, slo)
        if dec.group >= 0:
            self.group_counts[dec.group] += 1
        if not dec.accepted:
            self.counts[dec.reason] += 1
            return InferResult(name, "rejected", dec.reason, dec.group, t, dec.slo,
                               dec.latency, 0.0, _reject_detail(dec))
        g = dec.group
        seq = self._seq[g]
        self._seq[g] += 1
        self.in_flight += 1
        try:
            channel = self.channels[g]
            if channel is None:
                raise GroupLostError(f"group {g} is not connected")
            deadline = t_real + dec.latency / self.speedup + self.stall_timeout
            received, started, ended, returned, output = await channel.call(
                seq, m, data=data, deadline=deadline)
        except Exception as exc:  # noqa: BLE001 - any failure of the group rejects the request
            reason, detail = self._group_failure(g, exc)
            self.counts[reason] += 1
            return InferResult(name, "rejected", reason, g, t, dec.slo, dec.latency, 0.0,
                               detail)
        finally:
            self.in_flight -= 1
        back = time.monotonic()
        c = self.speedup
        latency = (back - t_real) * c
        timing = {"dispatch": (received - t_real) * c, "queue": (started - received) * c,
                  "device": (ended - started) * c, "wake": (returned - ended) * c,
                  "reply": (back - returned) * c}
        self.counts["ok"] += 1
        return InferResult(name, "ok", "ok", g, t, dec.slo, dec.latency, latency,
                           f"served by group {g}", timing, output)

    def _group_failure(self, g: int, exc: BaseException) -> tuple[str, str]:
        """Classify a failed group call; a lost group leaves the dispatch rule's replicas."""
        if isinstance(exc, GroupLostError):
            self._group_lost(g)
            return "group_lost", f"group {g} is gone (its actor died or was replaced)"
        if isinstance(exc, GroupStalledError):
            return "group_stalled", str(exc)
        logger.warning("group %d failed a request: %r", g, exc)
        return "group_error", f"group {g} failed: {exc!r}"

    def group_state(self, g: int) -> str:
        """``serving``, ``stalled`` (stopped answering; may rejoin) or ``lost`` (gone)."""
        if g in self.lost:
            return "lost"
        return "stalled" if g in self.stalled else "serving"

    def health(self) -> dict[str, Any]:
        """Group states, counts per outcome, requests in flight."""
        d = self.dispatcher
        groups = []
        for g in range(d.num_groups):
            state = self.group_state(g)
            ch = self.channels[g]
            groups.append({"group": g, "alive": state == "serving", "state": state,
                           "config": list(d.group_configs[g]),
                           "models": [d.model_names[m] for m in d.group_models[g]],
                           "requests": self.group_counts[g],
                           "pending": 0 if ch is None else ch.num_pending})
        return {"status": "ok", "speedup": self.speedup, "time": self.now(),
                "in_flight": self.in_flight, "max_in_flight": self.max_in_flight,
                "max_slo": self.max_slo, "counts": dict(self.counts), "groups": groups}


def _reject_detail(dec: Any) -> str:
    if dec.reason == "slo":
        return (f"predicted latency {dec.latency:.4f} s exceeds the SLO {dec.slo:.4f} s "
                f"on group {dec.group}")
    if dec.reason == "no_replica":
        return "the model has no (live) replica in this placement"
    if dec.reason == "config_missing":
        return f"group {dec.group}'s parallel configuration is not in the model's profile"
    return f"rejected: {dec.reason}"
