"""Starting and stopping the serving runtime on Ray (DESIGN 9).

``Runtime.start(placement, profiles, model_names, slos)`` brings up:

* one :class:`~alpa_serve.runtime.group.GroupManager` actor per placement group (its executors,
  one per stage, run inside it);
* one :class:`ServeActor` holding the :class:`~alpa_serve.runtime.controller.Controller` and
  the HTTP front end (aiohttp) on the same event loop, so a request goes from the socket to the
  dispatch decision without another hop. It is placed on the driver's node so that a loopback
  address is reachable from the caller.

``Runtime.deploy`` serves another placement with the same actors (reconfigured).

Ray is started embedded (``ray.init()`` on this machine) unless ``RuntimeConfig.address`` names
a cluster to join, through :mod:`alpa_serve.raycluster` (the experiments runner's connection
path). All actors ask for 0 CPUs: they are event loops that mostly wait on timers, so many of
them share a small machine.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence, cast

from alpa_serve import raycluster
from alpa_serve.placement_types import ModelPlacement, Placement
from alpa_serve.profiling import ModelProfile
from alpa_serve.runtime.backend import BACKENDS, GroupSpec
from alpa_serve.runtime.controller import (
    DEFAULT_HEARTBEAT,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_SLO,
    DEFAULT_STALL_TIMEOUT,
    Controller,
)
from alpa_serve.runtime.group import GroupManager
from alpa_serve.simulator.dispatch import Dispatcher

logger = logging.getLogger(__name__)

#: Concurrent method calls an actor accepts (requests queued in a group are pending calls).
_MAX_CONCURRENCY = 10000


@dataclass(frozen=True)
class RuntimeConfig:
    """How to run the runtime.

    Attributes:
        host: address the HTTP front end binds (loopback by default).
        port: TCP port; 0 picks a free one (see ``Runtime.port``).
        speedup: model seconds per real second. 1 serves in real time; k > 1 compresses time
            k-fold (stage latencies and SLOs are model seconds; devices are busy L / k real
            seconds), e.g. to replay a long workload quickly. Host overheads (HTTP, actor
            calls, timers) are then worth k times more model time: see docs/runtime.md.
        backend: device back end (``alpa_serve.runtime.backend.BACKENDS``): ``emulated``
            (default) or ``jax`` (real compute, docs/runtime.md; speed-up 1 only, and every
            model's profile must name a model of ``alpa_serve.models.zoo``).
        address: Ray cluster address to join (``auto``, ``host:port``, ``ray://...``);
            None starts an embedded instance (see :mod:`alpa_serve.raycluster`).
        connect_timeout: seconds within which ``address`` must answer and ``ray.init``
            complete.
        num_cpus: CPUs of an embedded Ray instance (None: all cores).
        stall_timeout: real seconds a group may be late (past the predicted finish of its
            oldest request, or without answering a heartbeat) before it counts as stalled: its
            requests are answered at once (``group_stalled``) and it gets no new ones until
            it answers again.
        heartbeat: real seconds between heartbeats to each group.
        max_slo: largest SLO (model seconds) a request may ask for (and a model's default
            may be); larger ones are refused with HTTP 400. It bounds every group's queue.
        max_in_flight: most admitted requests waiting for their groups; beyond it requests
            are rejected at once (``overloaded``).
    """

    host: str = "127.0.0.1"
    port: int = 0
    speedup: float = 1.0
    backend: str = "emulated"
    address: Optional[str] = None
    connect_timeout: float = raycluster.DEFAULT_CONNECT_TIMEOUT
    num_cpus: Optional[int] = None
    stall_timeout: float = DEFAULT_STALL_TIMEOUT
    heartbeat: float = DEFAULT_HEARTBEAT
    max_slo: float = DEFAULT_MAX_SLO
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT

    def __post_init__(self) -> None:
        for name in ("speedup", "stall_timeout", "heartbeat", "max_slo"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not self.max_in_flight >= 1:
            raise ValueError(f"max_in_flight must be >= 1, got {self.max_in_flight!r}")
        self.ray_connection()  # a bad connect_timeout or num_cpus fails here
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown device back end {self.backend!r}; known: "
                             f"{sorted(BACKENDS)}")
        if BACKENDS[self.backend].computes and self.speedup != 1:
            raise ValueError(f"the {self.backend!r} back end computes in real time; speedup "
                             f"must be 1, got {self.speedup}")
        if not 0 <= int(self.port) < 65536:
            raise ValueError(f"port must be in 0..65535, got {self.port}")

    def ray_connection(self) -> raycluster.RayConnection:
        """Where Ray runs; an embedded instance's workers run at :data:`WORKER_NICENESS`."""
        return raycluster.RayConnection(address=self.address,
                                        connect_timeout=self.connect_timeout,
                                        num_cpus=self.num_cpus,
                                        worker_niceness=WORKER_NICENESS)

    def limits(self) -> dict[str, Any]:
        """The controller's keyword arguments (speed-up and limits)."""
        return {"speedup": self.speedup, "stall_timeout": self.stall_timeout,
                "heartbeat": self.heartbeat, "max_slo": self.max_slo,
                "max_in_flight": self.max_in_flight}


class ServeActor:
    """Controller + HTTP front end in one asyncio event loop (a Ray async actor)."""

    def __init__(self) -> None:
        from alpa_serve.runtime.frontend import ControllerSlot

        self.slot = ControllerSlot()
        self._runner: Any = None

    async def start_http(self, host: str, port: int) -> int:
        """Serve HTTP on host:port (0: a free port); returns the bound port."""
        from aiohttp import web

        from alpa_serve.runtime.frontend import make_app

        self._runner = web.AppRunner(make_app(self.slot), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        return int(self._runner.addresses[0][1])  # the bound port (port 0 picks a free one)

    async def deploy(self, placement_json: str, profiles: Sequence[ModelProfile],
                     model_names: Sequence[str], slos: Sequence[float],
                     addresses: Sequence[tuple[str, int]], limits: dict[str, Any]) -> None:
        """Serve a placement from now on (a fresh controller: idle devices, clock from 0);
        ``addresses[g]``: the request channel of group g; ``limits``: the controller's
        keyword arguments (:meth:`RuntimeConfig.limits`)."""
        placement = ModelPlacement.from_json(placement_json)
        controller = Controller(Dispatcher(placement, profiles, model_names), slos, **limits)
        await controller.connect([(str(h), int(p)) for h, p in addresses])
        old, self.slot.controller = self.slot.controller, controller
        if old is not None:
            await old.close()

    async def pause_watch(self) -> None:
        """Stop the current controller's heartbeats and stall detection (before its groups
        are reconfigured, see :meth:`Runtime.deploy`); it keeps answering HTTP."""
        if self.slot.controller is not None:
            await self.slot.controller.stop_watch()

    async def health(self) -> dict:
        """The controller's health report (``GET /health``)."""
        ctl = self.slot.controller
        return {"status": "waiting"} if ctl is None else ctl.health()

    async def stop_http(self) -> None:
        """Stop the HTTP server, then close the controller's channels (so that the groups,
        killed next, are not reported lost)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        ctl, self.slot.controller = self.slot.controller, None
        if ctl is not None:
            await ctl.close()


#: Nice value of the Ray workers (the runtime's actors) of an embedded instance. Ray's default
#: (15) lets any busy nice-0 process of the same session (the load generator, the raylet)
#: starve the group managers for 100-200 ms on a loaded 2-core machine; these actors are
#: latency-critical and mostly asleep, so they run at the driver's priority.
WORKER_NICENESS = 0


def _check_slos(names: Sequence[str], slos: Sequence[float], max_slo: float) -> None:
    """ValueError unless every default SLO (model seconds) is finite, > 0 and <= max_slo."""
    bad = [(str(n), float(s)) for n, s in zip(names, slos)
           if not (math.isfinite(float(s)) and 0 < float(s) <= max_slo)]
    if bad:
        raise ValueError(f"default SLOs must be > 0 and at most max_slo = {max_slo:g} s; got "
                         f"{bad[:5]}{' ...' if len(bad) > 5 else ''}: lower them or raise "
                         f"RuntimeConfig.max_slo (--max-slo)")


def group_specs(dispatcher: Dispatcher, profiles: Sequence[ModelProfile],
                config: RuntimeConfig) -> list[tuple]:
    """The ``GroupManager`` arguments of every group of a deployment: (group, stages,
    per-model stage latencies, speed-up, back end, op, per-model type names). The back end
    checks each group (``BackendKind.check``: ValueError for a group it cannot serve)."""
    kind = BACKENDS[config.backend]
    specs = []
    for g in range(dispatcher.num_groups):
        lat = {m: v for m in dispatcher.group_models[g]
               if (v := dispatcher.latencies(m, g)) is not None}
        op = int(dispatcher.group_configs[g].op)
        types = {m: str(profiles[m].name) for m in lat}
        kind.check(GroupSpec(g, op, dispatcher.group_stages[g], types))
        specs.append((g, dispatcher.group_stages[g], lat, config.speedup, config.backend, op,
                      types))
    return specs


class Runtime:
    """A running runtime; see :meth:`start`. Use as a context manager or call :meth:`stop`."""

    def __init__(self, config: RuntimeConfig, serve: Any, port: int, owns_ray: bool) -> None:
        self.config = config
        #: Group-manager actor handles, by group index of the deployed placement.
        self.groups: list[Any] = []
        #: The controller/HTTP actor handle.
        self.serve = serve
        #: Bound HTTP port.
        self.port = port
        self._owns_ray = owns_ray

    @property
    def url(self) -> str:
        """Base URL of the HTTP front end."""
        host = self.config.host
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @classmethod
    def start(cls, placement: Placement, profiles: Sequence[ModelProfile],
              model_names: Sequence[str], slos: Sequence[float],
              config: RuntimeConfig = RuntimeConfig()) -> "Runtime":
        """Start Ray (or join ``config.address``), the HTTP front end, and deploy
        ``placement`` (see :meth:`deploy` for the arguments)."""
        # Bad input, or a group the back end cannot serve, fails before Ray starts.
        group_specs(Dispatcher(placement, profiles, model_names), profiles, config)
        _check_slos(model_names, slos, config.max_slo)
        owns_ray = raycluster.connect(config.ray_connection())  # imports ray first
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        try:
            # On the driver's node, so that a loopback address is reachable from the caller.
            here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(),
                                                  soft=False)
            serve = cast(Any, ray.remote(ServeActor)).options(
                num_cpus=0, max_concurrency=_MAX_CONCURRENCY, scheduling_strategy=here).remote()
            port = int(ray.get(serve.start_http.remote(config.host, int(config.port))))
        except BaseException:
            if owns_ray:
                ray.shutdown()
            raise
        rt = cls(config, serve, port, owns_ray)
        try:
            rt.deploy(placement, profiles, model_names, slos)
        except BaseException:
            rt.stop()
            raise
        logger.info("runtime up at %s (speed-up %g)", rt.url, config.speedup)
        return rt

    def deploy(self, placement: Placement, profiles: Sequence[ModelProfile],
               model_names: Sequence[str], slos: Sequence[float]) -> None:
        """Serve ``placement`` from now on, reusing the group-manager actors already started
        (a new placement on the same machine costs no process start-up).

        Call it when no request is in flight: requests still inside the old groups fail.

        Args:
            placement: a ``ModelPlacement`` (model indices into ``model_names``).
            profiles: ``profiles[i]`` is model i's ``ModelProfile``.
            model_names: names used in URLs (``/v1/models/{name}/infer``).
            slos: default SLO (model seconds) of each model.
        """
        import ray

        names = [str(n) for n in model_names]
        if len(set(names)) != len(names):
            raise ValueError(f"model names must be unique, got {names}")
        if len(slos) != len(names) or len(profiles) != len(names):
            raise ValueError(f"got {len(names)} model names, {len(profiles)} profiles and "
                             f"{len(slos)} SLOs; pass one of each per model")
        dispatcher = Dispatcher(placement, profiles, names)
        cfg = self.config
        _check_slos(names, slos, cfg.max_slo)
        # A group the back end cannot serve fails here, before any actor changes.
        specs = group_specs(dispatcher, profiles, cfg)
        group_cls = ray.remote(GroupManager).options(num_cpus=0,
                                                     max_concurrency=_MAX_CONCURRENCY)
        old, new = self.groups, []
        if old:
            # A reconfigured group is busy building (a real-compute one compiles for seconds)
            # and does not answer heartbeats: the old controller must not call it stalled.
            ray.get(self.serve.pause_watch.remote())
        ready = []
        for g, spec in enumerate(specs):
            if g < len(old):
                new.append(old[g])
                ready.append(old[g].configure.remote(*spec))
            else:
                new.append(group_cls.remote(*spec))
                ready.append(new[-1].start.remote())
        surplus = old[len(specs):]
        self.groups = new
        ray.get(ready)
        # Request channels on loopback when everything runs on this machine; on a cluster
        # each group listens on its node's address.
        host = "127.0.0.1" if cfg.address is None else None
        addresses = ray.get([h.listen.remote(host) for h in new])
        ray.get(self.serve.deploy.remote(
            placement.to_json(), list(profiles), names, [float(s) for s in slos],
            addresses, cfg.limits()))
        # Only now, with the old controller's channels closed, so that nobody mourns them.
        self._kill(surplus)
        logger.info("deployed %d groups, %d models", len(new), len(names))

    def health(self) -> dict:
        """The controller's health report (as ``GET /health``)."""
        import ray

        return ray.get(self.serve.health.remote())

    @staticmethod
    def _kill(groups: Sequence[Any]) -> None:
        """Stop the executors, then kill the actors (groups that already died are skipped)."""
        import ray

        if not groups:
            return
        refs = [h.stop.remote() for h in groups]
        ray.wait(refs, num_returns=len(refs), timeout=10)
        for h in groups:
            try:
                ray.kill(h)
            except Exception:  # noqa: BLE001 - already dead
                pass

    def stop(self) -> None:
        """Stop serving, kill the actors, and shut Ray down if :meth:`start` started it."""
        import ray

        if self.serve is None:
            return
        try:
            ray.get(self.serve.stop_http.remote(), timeout=10)
        except Exception as exc:  # noqa: BLE001 - stopping must go on
            logger.warning("stopping the HTTP front end failed: %r", exc)
        self._kill(self.groups)
        self.groups = []
        try:
            ray.kill(self.serve)
        except Exception:  # noqa: BLE001 - already dead
            pass
        self.serve = None
        if self._owns_ray:
            ray.shutdown()

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
