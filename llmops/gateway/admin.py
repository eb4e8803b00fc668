"""Everything besides the hot path, as a FastAPI app: models, health, metrics, admin.

``GET /v1/models`` lists routes (the names clients send as ``model``); ``GET /healthz`` answers while
the process runs; ``GET /readyz`` answers 200 once every route is resolved and every engine in use
is healthy; ``GET /metrics`` is the Prometheus exposition. Under ``/admin`` (admin scope):
``POST /admin/reload`` re-resolves aliases now; ``GET /admin/routes[/NAME]`` shows the resolved
releases and weights; ``PUT /admin/routes/NAME`` with ``{"weights": {"stable": 50, "canary": 50}}``
sets weights. Nothing of the engines' own API (adapter loading, tokenizer, …) is reachable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from llmops.config.base import StrictModel
from llmops.errors import LlmopsError
from llmops.gateway.errors import error_body, to_http
from llmops.gateway.metrics import CONTENT_TYPE, GatewayMetrics
from llmops.gateway.routes import RouteManager, RouteTable
from llmops.gateway.upstream import Upstream


class WeightsBody(StrictModel):
    """``PUT /admin/routes/NAME`` body."""

    weights: dict[str, int]


def _json_error(status: int, body: bytes) -> Response:
    return Response(body, status_code=status, media_type="application/json")


def _summary(table: RouteTable) -> dict[str, Any]:
    return {
        "generation": table.generation,
        "resolved_at": table.resolved_at,
        "routes": {name: route.describe() for name, route in table.routes.items()},
        "errors": dict(table.errors),
    }


def update_weight_metrics(metrics: GatewayMetrics, table: RouteTable) -> None:
    for route in table.routes.values():
        for release, weight in zip(route.targets, route.weights, strict=True):
            metrics.weight.labels(route.name, release.target).set(weight)


def build_api(routes: RouteManager, upstreams: Mapping[str, Upstream], metrics: GatewayMetrics) -> FastAPI:
    api = FastAPI(title="llmops gateway", docs_url=None, redoc_url=None, openapi_url=None)
    created = int(time.time())

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
        used = {r.engine for route in routes.table.routes.values() for r in route.targets}
        names = sorted(used or upstreams)
        health = await asyncio.gather(*(upstreams[n].healthy() for n in names))
        engines = dict(zip(names, health, strict=True))
        missing = sorted(set(routes.specs) - set(routes.table.routes))
        ready = all(health) and not missing
        body = {"ready": ready, "engines": engines, "unresolved_routes": missing, "errors": dict(routes.table.errors)}
        return JSONResponse(body, status_code=200 if ready else 503)

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
        return _summary(await routes.refresh())

    @api.get("/admin/routes")
    async def all_routes() -> dict[str, Any]:
        return _summary(routes.table)

    @api.get("/admin/routes/{name}")
    async def get_route(name: str) -> dict[str, Any]:
        route = routes.route(name)
        return {**route.describe(), "error": routes.table.errors.get(name)}

    @api.put("/admin/routes/{name}")
    async def put_route(name: str, body: WeightsBody) -> dict[str, Any]:
        return (await routes.set_weights(name, body.weights)).describe()

    return api
