"""The gateway's own OpenAPI 3.1 document, served at ``GET /openapi.json`` (any valid API key).

It describes what this gateway answers, not OpenAI's whole API: ``POST /v1/chat/completions``
(unary JSON, or ``text/event-stream`` when ``stream`` is true; each ``data:`` event is a
``ChatCompletionChunk``, and a broken stream ends with an ``ErrorResponse`` event instead of
``[DONE]``), ``POST /v1/feedback``, ``GET /v1/models``, ``/healthz``, ``/readyz``, ``/metrics`` and the ``/admin``
endpoints, with the error body every non-2xx answer has. Response schemas follow OpenAI's published
schema (github.com/openai/openai-openapi) for the fields the gateway passes on; the gateway
normalises engine answers to them (:mod:`llmops.gateway.openai_schema`).

Request fields are typed as strictly as the gateway checks them: a boolean is a JSON boolean, an
integer a JSON integer; parameters not listed are refused (``additionalProperties: false``).
Two bearer schemes name the two key scopes: ``userKey`` (any valid key) and ``adminKey`` (a key
with the ``admin`` scope).
"""

from __future__ import annotations

import copy
from typing import Any

from llmops.gateway.openapi_schemas import INT, NAME_PATTERN, OBJECT, STRING, component_schemas, ref


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    reasons = {
        400: "Invalid request (malformed body, wrong type, unknown or forbidden parameter, limit exceeded)",
        401: "No API key, or an unknown one",
        403: "The key lacks the admin scope",
        404: "No such route (or path)",
        409: "A rollout owns the route's weights: the write needs force (code rollout_active)",
        413: "Request body over the size limit",
        429: "The key is over its request rate or concurrency limit",
        502: "The engine failed or answered an error",
        503: "The route is not resolved yet, or no engine connection freed up in time",
        504: "The engine missed its deadline",
    }
    return {str(s): _json(ref("ErrorResponse"), reasons[s]) for s in statuses}


def _op(summary: str, responses: dict[str, Any], *, scope: str | None = "userKey", **extra: Any) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": responses, **extra}
    op["security"] = [{scope: []}] if scope else []
    return op


def _paths() -> dict[str, Any]:
    event = {
        "type": "object",
        "required": ["data"],
        "properties": {"data": STRING, "event": STRING, "id": STRING},
        "description": "one server-sent event (OpenAPI 3.1: `schema` describes each event): its `data` is a "
        "ChatCompletionChunk as JSON, or `[DONE]` last; a stream that broke ends with an ErrorResponse "
        "event instead of `[DONE]`",
    }
    stream = {"schema": event}
    chat_ok = {
        "description": "The completion (JSON), or its chunks (server-sent events) when `stream` is true",
        "content": {"application/json": {"schema": ref("ChatCompletion")}, "text/event-stream": stream},
    }
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "pattern": NAME_PATTERN}}
    text = {"description": "Prometheus text exposition", "content": {"text/plain": {"schema": STRING}}}
    status = {"type": "object", "required": ["status"], "properties": {"status": STRING}}
    word = {"enum": ["ok", "degraded", "unavailable"]}
    ready = {"type": "object", "required": ["status"], "properties": {"status": word}, "additionalProperties": False}
    ready_details = {
        "type": "object",
        "required": ["status", "engines", "unresolved_routes", "stale_targets", "errors"],
        "properties": {
            "status": word,
            "engines": {"type": "object", "additionalProperties": {"type": "boolean"}},
            "unresolved_routes": {"type": "array", "items": STRING},
            "stale_targets": {"type": "object", "additionalProperties": {"type": "array", "items": STRING}},
            "errors": {"type": "object", "additionalProperties": STRING},
            "generation": INT,
            "resolved_at": {"type": "number"},
        },
    }
    admin_errors = _errors(400, 401, 403, 404)
    return {
        "/v1/chat/completions": {
            "post": _op(
                "Create a chat completion on a route",
                {"200": chat_ok, **_errors(400, 401, 403, 404, 413, 429, 502, 503, 504)},
                requestBody={
                    "required": True,
                    "content": {"application/json": {"schema": ref("ChatCompletionRequest")}},
                },
            )
        },
        "/v1/feedback": {
            "post": _op(
                "Score an answer (by its x-request-id); an identical repeat per key is 'unchanged', nothing written",
                {"200": _json(ref("FeedbackResult"), "Recorded, or unchanged"), **_errors(400, 401, 413)},
                requestBody={"required": True, "content": {"application/json": {"schema": ref("FeedbackRequest")}}},
            )
        },
        "/v1/models": {"get": _op("List the routes", {"200": _json(ref("ModelList"), "Routes"), **_errors(401)})},
        "/healthz": {"get": _op("Liveness", {"200": _json(status, "The process runs")}, scope=None)},
        "/readyz": {
            "get": _op(
                "Readiness",
                {"200": _json(ready, "Serving (ok, or degraded)"), "503": _json(ready, "Unavailable")},
                scope=None,
            )
        },
        "/metrics": {
            "get": _op("Prometheus metrics (public unless auth.public_metrics is false)", {"200": text, **_errors(401)})
        },
        "/openapi.json": {"get": _op("This document", {"200": _json(OBJECT, "OpenAPI 3.1"), **_errors(401)})},
        "/admin/status": {
            "get": _op(
                "Readiness with its details (engines, unresolved routes, stale targets, errors)",
                {
                    "200": _json(ready_details, "Serving (ok, or degraded)"),
                    "503": _json(ready_details, "Unavailable"),
                    **_errors(401, 403),
                },
                scope="adminKey",
            )
        },
        "/admin/reload": {
            "post": _op(
                "Re-resolve every route's aliases now",
                {"200": _json(ref("RouteTable"), "The new table"), **_errors(401, 403, 503)},
                scope="adminKey",
            )
        },
        "/admin/routes": {
            "get": _op(
                "The resolved routes",
                {"200": _json(ref("RouteTable"), "The route table"), **_errors(401, 403)},
                scope="adminKey",
            )
        },
        "/admin/routes/{name}": {
            "parameters": [name],
            "get": _op("One route", {"200": _json(ref("Route"), "The route"), **admin_errors}, scope="adminKey"),
            "put": _op(
                "Record a route's target weights in the registry (every target named, integers >= 0, one "
                "positive); every replica applies them within refresh.state_interval_s",
                {
                    "200": _json(ref("Route"), "The route with its new weights"),
                    **admin_errors,
                    **_errors(409),
                    "503": _json(ref("ErrorResponse"), "The registry is unreachable: nothing was changed"),
                },
                scope="adminKey",
                requestBody={"required": True, "content": {"application/json": {"schema": ref("WeightsBody")}}},
            ),
        },
    }


def openapi_document(version: str = "0") -> dict[str, Any]:
    """The OpenAPI 3.1 document of the gateway (a fresh dict each call, sharing nothing with the next)."""
    bearer = {"type": "http", "scheme": "bearer"}
    document = {
        "openapi": "3.1.0",
        "info": {"title": "llmops gateway", "version": version},
        "paths": _paths(),
        "components": {
            "schemas": component_schemas(),
            "securitySchemes": {
                "userKey": {**bearer, "description": "any key from auth.keys"},
                "adminKey": {**bearer, "description": "a key with scope admin"},
            },
        },
    }
    return copy.deepcopy(document)  # the schema constants are shared between parts of the document
