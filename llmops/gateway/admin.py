"""Everything besides the hot path, as a FastAPI app: models, health, metrics, admin.

``GET /v1/models`` lists routes (the names clients send as ``model``); ``GET /healthz`` answers while
the process runs; ``GET /readyz`` answers ``{"status": "ok" | "degraded"}`` (200) or
``{"status": "unavailable"}`` (503), nothing more (:mod:`llmops.gateway.health`); ``GET /metrics`` is
the Prometheus exposition. Under ``/admin`` (admin scope): ``GET /admin/status`` is readiness with its
details (engines, unresolved routes, stale targets, errors);
``POST /admin/reload`` re-resolves aliases now; ``GET /admin/routes[/NAME]`` shows the resolved
releases, weights and route state; ``PUT /admin/routes/NAME`` with ``{"weights": {"stable": 50,
"canary": 50}, "force": false, "reason": ""}`` records the weights in the registry (actor: the admin
key's name) and applies them here; every replica applies them within ``refresh.state_interval_s``
(:mod:`llmops.gateway.routes`). While a rollout owns the route it answers 409 ``rollout_active``
unless ``force``; with the registry unreachable, 503 and nothing changes. ``GET /openapi.json`` is the
gateway's OpenAPI document (:mod:`llmops.gateway.openapi`), served to any valid key (not public: it names the admin endpoints; the routes themselves are not in it).
Nothing of the engines' own API (adapter loading, tokenizer, …) is reachable.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from llmops.config.base import StrictModel
from llmops.errors import LlmopsError
from llmops.gateway.auth import PRINCIPAL
from llmops.gateway.errors import error_body, to_http
from llmops.gateway.health import EngineHealth, readiness
from llmops.gateway.metrics import CONTENT_TYPE, NO_LABEL, GatewayMetrics
from llmops.gateway.openapi import openapi_document
from llmops.gateway.routes import RouteManager, RouteTable
from llmops.gateway.upstream import Upstream


class WeightsBody(StrictModel):
    """``PUT /admin/routes/NAME`` body."""

    weights: dict[str, int]
    force: bool = False  # write even while a rollout owns the route (audited as forced)
    reason: str = ""


def _json_error(status: int, body: bytes) -> Response:
    return Response(body, status_code=status, media_type="application/json")


def _summary(manager: RouteManager, table: RouteTable) -> dict[str, Any]:
    return {
        "generation": table.generation,
        "resolved_at": table.resolved_at,
        "routes": {name: route.describe() for name, route in table.routes.items()},
        "errors": dict(table.errors),
        "stale_targets": {route: list(targets) for route, targets in table.stale.items()},
        "state": {name: manager.states.describe(name) for name in manager.specs},
    }


def update_weight_metrics(metrics: GatewayMetrics, table: RouteTable) -> None:
    """On every table swap: the weights in force, the refresh's failures, stale targets, degraded."""
    for route in table.routes.values():
        for release, weight in zip(route.targets, route.weights, strict=True):
            metrics.weight.labels(route.name, release.target).set(weight)
        metrics.stale_targets.labels(route.name).set(len(table.stale.get(route.name, ())))
    for failure in table.failures:
        metrics.resolve_failures.labels(failure.route, failure.target, failure.kind).inc()
    metrics.degraded.set(1 if table.degraded else 0)


def count_state_failure(metrics: GatewayMetrics, route: str) -> None:
    """A route state read failed (the route keeps its last state): ``resolve_failures{kind="state"}``."""
    metrics.resolve_failures.labels(route, NO_LABEL, "state").inc()


def build_api(routes: RouteManager, upstreams: Mapping[str, Upstream], metrics: GatewayMetrics) -> FastAPI:
    api = FastAPI(title="llmops gateway", docs_url=None, redoc_url=None, openapi_url=None)
    created = int(time.time())
    health = EngineHealth(upstreams)  # cached: /readyz probes never hammer the engines
    document = orjson.dumps(openapi_document())

    @api.exception_handler(LlmopsError)
    async def _llmops_error(request: Request, exc: LlmopsError) -> Response:
        return _json_error(*to_http(exc))

    @api.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        code = "not_found" if exc.status_code == 404 else None
        return _json_error(exc.status_code, error_body(str(exc.detail), "invalid_request_error", code))

    @api.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        message = f"invalid request: {first.get('msg', 'malformed body')}"
        return _json_error(400, error_body(message, "invalid_request_error", "invalid_body", param))

    @api.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/readyz")
    async def readyz() -> Response:
        state = await readiness(routes, health, upstreams)
        return JSONResponse(state.public(), status_code=state.http_status)

    @api.get("/admin/status")
    async def status() -> Response:
        state = await readiness(routes, health, upstreams)
        return JSONResponse(state.details(), status_code=state.http_status)

    @api.get("/openapi.json")
    async def openapi() -> Response:
        return Response(document, media_type="application/json")

    @api.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.expose(), media_type=CONTENT_TYPE)

    @api.get("/v1/models")
    async def models() -> dict[str, Any]:
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": "llmops"}
            for name in sorted(routes.table.routes)
        ]
        return {"object": "list", "data": data}

    @api.post("/admin/reload")
    async def reload() -> dict[str, Any]:
        return _summary(routes, await routes.refresh())

    @api.get("/admin/routes")
    async def all_routes() -> dict[str, Any]:
        return _summary(routes, routes.table)

    @api.get("/admin/routes/{name}")
    async def get_route(name: str) -> dict[str, Any]:
        route = routes.route(name)
        return {**route.describe(), "error": routes.table.errors.get(name), "state": routes.states.describe(name)}

    @api.put("/admin/routes/{name}")
    async def put_route(name: str, body: WeightsBody, request: Request) -> dict[str, Any]:
        principal = request.scope.get(PRINCIPAL)
        actor = principal.name if principal is not None else "anonymous"
        route = await routes.write_weights(name, body.weights, actor=actor, force=body.force, reason=body.reason)
        return route.describe()

    return api
