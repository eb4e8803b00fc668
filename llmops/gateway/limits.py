"""Request limits: body size (read with a bound), ``max_tokens`` and ``n`` ceilings, upstream deadlines."""

from __future__ import annotations

from typing import Any

from llmops.config.gateway import LimitsSpec
from llmops.errors import InvalidRequestError, PayloadTooLargeError
from llmops.gateway.asgi import Receive


class ClientDisconnected(Exception):
    """The client went away before its request body arrived."""


async def read_body(receive: Receive, max_bytes: int, content_length: int | None) -> bytes:
    """The whole request body; PayloadTooLargeError as soon as it passes ``max_bytes``."""
    if content_length is not None and content_length > max_bytes:
        raise PayloadTooLargeError(f"request body of {content_length} bytes exceeds the limit of {max_bytes}")
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnected
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > max_bytes:
            raise PayloadTooLargeError(f"request body exceeds the limit of {max_bytes} bytes")
        return body
    parts = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLargeError(f"request body exceeds the limit of {max_bytes} bytes")
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


def _int_param(payload: dict[str, Any], name: str) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidRequestError(f"'{name}' must be a positive integer", param=name)
    return value


def apply_limits(payload: dict[str, Any], limits: LimitsSpec) -> None:
    """Check ``max_tokens``/``max_completion_tokens`` and ``n`` against the ceilings; default ``max_tokens``."""
    for name in ("max_tokens", "max_completion_tokens"):
        value = _int_param(payload, name)
        if value is not None and value > limits.max_tokens:
            raise InvalidRequestError(
                f"'{name}' is {value}, above this gateway's limit of {limits.max_tokens}", param=name
            )
    if payload.get("max_tokens") is None and payload.get("max_completion_tokens") is None:
        payload["max_tokens"] = limits.max_tokens
    n = _int_param(payload, "n")
    if n is not None and n > limits.max_n:
        raise InvalidRequestError(f"'n' is {n}, above this gateway's limit of {limits.max_n}", param="n")
