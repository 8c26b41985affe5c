"""HTTP front end of the runtime (aiohttp), served from the controller's event loop.

Endpoints (JSON in and out; times in model seconds):

* ``GET /health``: ``{"status": "ok", "groups": [...], "counts": {...}, ...}``.
* ``GET /v1/models``: the models, their default SLOs and their groups.
* ``POST /v1/models/{name}/infer`` with an optional JSON object body
  ``{"slo": seconds, "input": anything}`` (``input`` goes to the model's first stage; the JAX
  back end takes token ids, docs/runtime.md):
  200 ``{"status": "ok", ..., "output": ...}`` when served (``output``: what the last stage
  returned; null for emulated devices); 503 ``{"status": "rejected", "reason": ...}`` when
  rejected (``reason``: ``slo``, ``no_replica``, ``config_missing``, ``overloaded``,
  ``group_lost``, ``group_stalled``, ``group_error``); 404 for an unknown model; 400 for a
  malformed body or an SLO above the controller's ``max_slo``.
* Any other path: 404; a known path with another method: 405 (with ``Allow``).

Every error body is ``{"error": message}`` and every body strict JSON (no NaN/Infinity).

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


def _dumps(data: Any) -> str:
    # Strict JSON: a non-finite number raises here instead of reaching a client as Infinity.
    return json.dumps(data, allow_nan=False)


def _json(data: Any, status: int = 200) -> web.Response:
    try:
        return web.json_response(data, status=status, dumps=_dumps)
    except ValueError as exc:  # a non-finite number: a bug, reported as JSON all the same
        logger.error("reply not sent, it is not strict JSON: %s: %r", exc, data)
        return web.json_response({"error": "internal error: non-finite number in the reply"},
                                 status=500)


def _error(status: int, message: str, headers: Optional[dict[str, str]] = None
           ) -> web.Response:
    response = web.json_response({"error": message}, status=status)
    if headers:
        response.headers.update(headers)
    return response


def parse_body(raw: bytes, max_slo: float = math.inf) -> dict[str, Any]:
    """Validate an infer request body (``slo`` in model seconds, at most ``max_slo``);
    ValueError with a message on bad input."""
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
        if slo > max_slo:
            raise ValueError(f"slo {slo!r} s exceeds the largest SLO this runtime accepts, "
                             f"{max_slo:g} s (RuntimeConfig.max_slo, --max-slo)")
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
        raw = await request.read()
    except web.HTTPException as exc:  # e.g. a chunked body over the size limit
        return _error(exc.status, exc.reason)
    try:
        body = parse_body(raw, ctl.max_slo)
    except ValueError as exc:
        return _error(400, str(exc))
    result = await ctl.infer(name, body.get("slo"), arrival=arrival, data=body.get("input"))
    data = result.to_dict()  # "output": the back end's (None for emulated devices)
    if result.status == "ok":
        return _json(data)
    return _json(data, status=503)


async def _health(request: web.Request) -> web.Response:
    slot = request.app[_SLOT]
    if slot.controller is None:
        return _json({"status": "waiting", "detail": "no placement deployed yet"})
    return _json(slot.controller.health())


async def _models(request: web.Request) -> web.Response:
    ctl = _controller(request)
    d = ctl.dispatcher
    return _json({"models": [
        {"name": name, "slo": ctl.slos[m], "groups": list(d.replicas[m])}
        for m, name in enumerate(d.model_names)]})


def _method_not_allowed(allowed: str):
    async def handler(request: web.Request) -> web.Response:
        return _error(405, f"{request.method} is not allowed on {request.path}; use "
                           f"{allowed}", headers={"Allow": allowed})
    return handler


async def _not_found(request: web.Request) -> web.Response:
    return _error(404, f"no such endpoint {request.method} {request.path}; the API is POST "
                       f"/v1/models/{{name}}/infer, GET /v1/models and GET /health")


def make_app(slot: ControllerSlot) -> web.Application:
    """The aiohttp application serving the controller in ``slot``."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[_SLOT] = slot
    # Every answer is JSON, errors included: the catch-all routes come after the real ones,
    # so a request that matches an endpoint never reaches them (and costs nothing extra).
    for path, method, handler in (("/v1/models/{name}/infer", "POST", _infer),
                                  ("/v1/models", "GET", _models), ("/health", "GET", _health)):
        app.router.add_route(method, path, handler)
        app.router.add_route("*", path, _method_not_allowed(method))
    app.router.add_route("*", "/{tail:.*}", _not_found)
    return app
