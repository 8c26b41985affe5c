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
from dataclasses import asdict, dataclass, field
from typing import Any, Optional, Sequence

from alpa_serve.runtime.channel import GroupChannel, GroupLostError
from alpa_serve.simulator.dispatch import Dispatcher

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InferResult:
    """Outcome of one request (times in model seconds, on the controller's clock).

    Attributes:
        model: model name.
        status: ``"ok"`` (served) or ``"rejected"``.
        reason: ``"ok"`` or why it was rejected: ``"slo"`` (predicted latency exceeds the SLO),
            ``"no_replica"``, ``"config_missing"``, ``"group_lost"`` (the group died while
            serving it), ``"group_error"``.
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
        d = asdict(self)
        if not math.isfinite(d["predicted_latency"]):
            d["predicted_latency"] = None  # JSON has no inf
        return d


class Controller:
    """Admission and dispatch of requests to group managers (asyncio; one event loop).

    Args:
        dispatcher: the simulator's dispatch rule with this placement's stage latencies.
        slos: default SLO (model seconds) per model, used when a request names none.
        speedup: model seconds per real second.
        group_timeout: real seconds past the predicted finish after which a group that has not
            answered is given up on (the request is rejected as ``group_error``).

    :meth:`connect` opens the request channels to the group managers before serving.
    """

    def __init__(self, dispatcher: Dispatcher, slos: Sequence[float],
                 speedup: float = 1.0, group_timeout: float = 30.0) -> None:
        if len(slos) != dispatcher.num_models:
            raise ValueError(f"{len(slos)} SLOs for {dispatcher.num_models} models")
        self.dispatcher = dispatcher
        self.channels: list[Optional[GroupChannel]] = [None] * dispatcher.num_groups
        self.slos = [float(s) for s in slos]
        self.speedup = float(speedup)
        self.group_timeout = float(group_timeout)
        self.model_index = {name: i for i, name in enumerate(dispatcher.model_names)}
        self.origin = time.monotonic()
        self._seq = [0] * dispatcher.num_groups
        self.counts: Counter[str] = Counter()
        self.group_counts = [0] * dispatcher.num_groups
        self.in_flight = 0

    async def connect(self, addresses: Sequence[tuple[str, int]]) -> None:
        """Open one request channel per group; ``addresses[g]`` = (host, port) of group g."""
        if len(addresses) != self.dispatcher.num_groups:
            raise ValueError(f"{len(addresses)} group addresses for a placement of "
                             f"{self.dispatcher.num_groups} groups")
        self.channels = list(await asyncio.gather(*(
            GroupChannel.connect(g, host, port, self._group_lost)
            for g, (host, port) in enumerate(addresses))))

    async def close(self) -> None:
        """Close the request channels (requests still waiting fail)."""
        await asyncio.gather(*(c.close() for c in self.channels if c is not None))

    def _group_lost(self, g: int) -> None:
        if g not in self.dispatcher.removed:
            logger.warning("group %d is gone; its models are served by their other replicas "
                           "from now on", g)
        self.dispatcher.remove_group(g)

    def now(self) -> float:
        """Controller time in model seconds."""
        return (time.monotonic() - self.origin) * self.speedup

    def has_model(self, name: str) -> bool:
        return name in self.model_index

    async def infer(self, name: str, slo: Optional[float] = None,
                    arrival: Optional[float] = None, data: Any = None) -> InferResult:
        """Serve one request of model ``name`` (KeyError if unknown).

        ``arrival``: the controller time it arrived (default: now); ``slo`` in model seconds
        (default: the model's); ``data``: the request's input (JSON-encodable), handed to the
        group's first stage.
        """
        t = self.now() if arrival is None else arrival
        t_real = self.origin + t / self.speedup
        m = self.model_index[name]
        dec = self.dispatcher.admit(m, t, self.slos[m] if slo is None else slo)
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
            timeout = dec.latency / self.speedup + self.group_timeout
            received, started, ended, returned, output = await asyncio.wait_for(
                channel.call(seq, m, data), timeout)
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
        if isinstance(exc, asyncio.TimeoutError):
            return "group_error", f"group {g} did not answer in time"
        logger.warning("group %d failed a request: %r", g, exc)
        return "group_error", f"group {g} failed: {exc!r}"

    def health(self) -> dict[str, Any]:
        """Live groups, counts per outcome, requests in flight."""
        d = self.dispatcher
        return {
            "status": "ok",
            "speedup": self.speedup,
            "time": self.now(),
            "in_flight": self.in_flight,
            "counts": dict(self.counts),
            "groups": [{"group": g, "alive": g not in d.removed,
                        "config": list(d.group_configs[g]),
                        "models": [d.model_names[m] for m in d.group_models[g]],
                        "requests": self.group_counts[g]}
                       for g in range(d.num_groups)],
        }


def _reject_detail(dec: Any) -> str:
    if dec.reason == "slo":
        return (f"predicted latency {dec.latency:.4f} s exceeds the SLO {dec.slo:.4f} s "
                f"on group {dec.group}")
    if dec.reason == "no_replica":
        return "the model has no (live) replica in this placement"
    if dec.reason == "config_missing":
        return f"group {dec.group}'s parallel configuration is not in the model's profile"
    return f"rejected: {dec.reason}"
