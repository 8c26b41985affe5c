"""HTTP front end of the runtime (aiohttp), served from the controller's event loop.

Endpoints (JSON in and out; times in model seconds):

* ``GET /health``: ``{"status": "ok", "groups": [...], "counts": {...}, ...}``.
* ``GET /v1/models``: the models, their default SLOs and their groups.
* ``POST /v1/models/{name}/infer`` with an optional JSON object body
  ``{"slo": seconds, "input": anything}`` (``input`` goes to the model's first stage; the JAX
  back end takes token ids, docs/runtime.md):
  200 ``{"status": "ok", ..., "output": ...}`` when served (``output``: what the last stage
  returned; null for emulated devices); 503 ``{"status": "rejected", "reason": ...}`` when
  rejected (``reason``: ``slo``, ``no_replica``, ``config_missing``, ``group_lost``,
  ``group_error``); 404 for an unknown model; 400 for a malformed body. Every error body is
  ``{"error": message}``.

The arrival time of a request is taken when its handler starts, before the body is read.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any, Optional

from aiohttp import web

from alpa_serve.runtime.controller import Controller

logger = logging.getLogger(__name__)

#: Keys a request body may have.
BODY_KEYS = ("slo", "input")

#: Largest request body accepted (bytes).
MAX_BODY_BYTES = 1 << 20

class ControllerSlot:
    """The controller currently deployed (None before the first deployment); a new placement
    replaces it without restarting the HTTP server."""

    def __init__(self) -> None:
        self.controller: Optional[Controller] = None


_SLOT = web.AppKey("controller_slot", ControllerSlot)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def parse_body(raw: bytes) -> dict[str, Any]:
    """Validate an infer request body; ValueError with a message on bad input."""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"body is not valid JSON ({exc}); send a JSON object such as "
                         '{"slo": 0.5}') from None
    if not isinstance(body, dict):
        raise ValueError(f"body must be a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - set(BODY_KEYS))
    if unknown:
        raise ValueError(f"unknown body keys {unknown}; allowed: {list(BODY_KEYS)}")
    if "slo" in body:
        slo = body["slo"]
        if isinstance(slo, bool) or not isinstance(slo, (int, float)) \
                or not math.isfinite(slo) or slo <= 0:
            raise ValueError(f"slo must be a positive number of seconds, got {slo!r}")
        body["slo"] = float(slo)
    return body


def _controller(request: web.Request) -> Controller:
    ctl = request.app[_SLOT].controller
    if ctl is None:
        raise web.HTTPServiceUnavailable(
            text=json.dumps({"error": "no placement is deployed yet"}),
            content_type="application/json")
    return ctl


async def _infer(request: web.Request) -> web.Response:
    ctl = _controller(request)
    arrival = ctl.now()
    name = request.match_info["name"]
    if not ctl.has_model(name):
        return _error(404, f"unknown model {name!r}; GET /v1/models lists the models")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return _error(413, f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        body = parse_body(await request.read())
    except ValueError as exc:
        return _error(400, str(exc))
    result = await ctl.infer(name, body.get("slo"), arrival=arrival, data=body.get("input"))
    data = result.to_dict()  # "output": the back end's (None for emulated devices)
    if result.status == "ok":
        return web.json_response(data)
    return web.json_response(data, status=503)


async def _health(request: web.Request) -> web.Response:
    slot = request.app[_SLOT]
    if slot.controller is None:
        return web.json_response({"status": "waiting", "detail": "no placement deployed yet"})
    return web.json_response(slot.controller.health())


async def _models(request: web.Request) -> web.Response:
    ctl = _controller(request)
    d = ctl.dispatcher
    return web.json_response({"models": [
        {"name": name, "slo": ctl.slos[m], "groups": list(d.replicas[m])}
        for m, name in enumerate(d.model_names)]})


def make_app(slot: ControllerSlot) -> web.Application:
    """The aiohttp application serving the controller in ``slot``."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[_SLOT] = slot
    app.router.add_post("/v1/models/{name}/infer", _infer)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/health", _health)
    return app
