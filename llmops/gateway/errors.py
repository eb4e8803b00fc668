"""The one place where llmops exceptions become HTTP statuses and OpenAI-style error bodies.

Every error answer of the gateway has the body ``{"error": {"message", "type", "code", "param"}}``;
a stream that breaks after it started ends with that object as its last ``data:`` event (and no
``[DONE]``). A 5xx body says only what failed (:func:`public_message`): never a URI, host:port, SQL,
credential or LoRA name; the full error goes to the request log under the request id. A 429 (per-key
rate or concurrency limit) and a 503 ``engine_busy`` (no pooled engine connection freed up in time)
carry a ``Retry-After`` header. A weights write refused because a rollout owns the route is a 409
``rollout_active``; a registry that cannot be reached (admin writes) is a 503 ``registry_unavailable``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import orjson

from llmops.errors import (
    AuthenticationError,
    ConfigError,
    EngineBusyError,
    EngineUnavailableError,
    GatewayError,
    InvalidNameError,
    InvalidRequestError,
    LlmopsError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    RegistryError,
    RenderError,
    RolloutActive,
    RouteNotFoundError,
    RouteUnavailableError,
    UpstreamError,
    UpstreamTimeoutError,
)
from llmops.gateway.asgi import Send
from llmops.redact import redact

log = logging.getLogger(__name__)


# most specific first: (exception class, HTTP status, OpenAI error type)
STATUS: tuple[tuple[type[BaseException], int, str], ...] = (
    (AuthenticationError, 401, "invalid_request_error"),
    (PermissionDeniedError, 403, "permission_error"),
    (PayloadTooLargeError, 413, "invalid_request_error"),
    (InvalidRequestError, 400, "invalid_request_error"),
    (RouteNotFoundError, 404, "invalid_request_error"),
    (RouteUnavailableError, 503, "server_error"),
    (RateLimitError, 429, "requests"),
    (EngineBusyError, 503, "server_error"),
    (EngineUnavailableError, 503, "server_error"),
    (UpstreamTimeoutError, 504, "server_error"),
    (UpstreamError, 502, "server_error"),
    (RenderError, 400, "invalid_request_error"),
    (InvalidNameError, 400, "invalid_request_error"),
    (NotFoundError, 404, "invalid_request_error"),
    (RolloutActive, 409, "invalid_request_error"),
    (RegistryError, 503, "server_error"),
    (ConfigError, 400, "invalid_request_error"),
    (LlmopsError, 500, "server_error"),
)


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "code": code, "param": param}})


def classify(exc: BaseException) -> tuple[int, str, str | None, str | None]:
    """(status, type, code, param) for an exception; anything unexpected is a 500 (and logged)."""
    for cls, status, type_ in STATUS:
        if isinstance(exc, cls):
            if isinstance(exc, GatewayError):
                return status, type_, exc.code, exc.param
            if isinstance(exc, RenderError):
                return status, type_, "invalid_prompt_variables", "prompt_variables"
            if isinstance(exc, NotFoundError):
                return status, type_, "not_found", None
            if isinstance(exc, RolloutActive):
                return status, type_, "rollout_active", "weights"
            if isinstance(exc, RegistryError):
                return status, type_, "registry_unavailable", None
            return status, type_, None, None
    log.error("unexpected error in the gateway", exc_info=exc)
    return 500, "server_error", "internal_error", None


def public_message(exc: BaseException, status: int) -> str:
    """What a client reads: a 4xx says what was wrong with the request; a 5xx names no URI, host:port,
    SQL, credential or internal (LoRA) name, only what failed (the details are logged server-side)."""
    if status < 500:
        return str(exc) if isinstance(exc, LlmopsError) else "invalid request"
    if isinstance(exc, RouteUnavailableError):
        return f"route {exc.route} is not available"
    return next((text for cls, text in _PUBLIC_5XX if isinstance(exc, cls)), "internal error")


# what a 5xx says, most specific first
_PUBLIC_5XX: tuple[tuple[type[BaseException], str], ...] = (
    (EngineBusyError, "the engine is busy; retry shortly"),
    (EngineUnavailableError, "the engine is unavailable (restarting?); retry shortly"),
    (UpstreamTimeoutError, "the engine did not answer in time"),
    (UpstreamError, "the engine failed to answer"),
    (RegistryError, "the registry is unavailable; retry shortly"),
)


def to_http(exc: BaseException) -> tuple[int, bytes]:
    """The HTTP status and OpenAI error body for ``exc``."""
    status, type_, code, param = classify(exc)
    if status >= 500 and isinstance(exc, LlmopsError) and not isinstance(exc, GatewayError):
        # gateway errors reach the request log with their request id; log the others here
        log.warning("answered %d: %s", status, redact(str(exc)))
    return status, error_body(public_message(exc, status), type_, code, param)


def sse_error_event(exc: BaseException) -> bytes:
    """The final event of a stream that broke after it started."""
    _, body = to_http(exc)
    return b"data: " + body + b"\n\n"


async def send_json(send: Send, status: int, body: bytes, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, exc: BaseException, headers: Iterable[tuple[bytes, bytes]] = ()) -> int:
    """Answer with the error for ``exc``; returns the status sent."""
    status, body = to_http(exc)
    extra = list(headers)
    if status == 401:
        extra.append((b"www-authenticate", b'Bearer realm="llmops"'))
    elif isinstance(exc, RateLimitError):
        extra.append((b"retry-after", str(exc.retry_after).encode()))
    elif isinstance(exc, EngineBusyError | EngineUnavailableError):
        extra.append((b"retry-after", b"1"))
    await send_json(send, status, body, extra)
    return status
