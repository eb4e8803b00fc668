"""Relay an engine's server-sent events to the client as they arrive.

Bytes are forwarded as soon as they complete an event (``\\n\\n``); nothing waits for more. Reading
along, the relay notes the time of the first event (TTFT), the usage event (token counts; dropped
when the gateway asked for it on the client's behalf), an error event, and ``[DONE]``.

Events whose JSON holds a ``null`` that OpenAI's schema does not allow are re-serialised without it
(:mod:`llmops.gateway.openai_schema`); the others pass through untouched.

A stream that ends without ``[DONE]``, whose connection breaks or stalls past the read deadline, or
that sends more than ``max_event_bytes`` without ending an event (the relay holds at most one
incomplete event, never an unbounded buffer), ends with an OpenAI-style error event and never with
``[DONE]``; an error event from the engine is
replaced by the gateway's own (same shape as every error body), and any ``[DONE]`` after it is dropped.

For a captured request only (``StreamResult.captured`` is a list), the relay keeps references to the
blocks it forwarded (up to 8 MiB); their text is extracted later, off the event loop
(:mod:`llmops.gateway.capture`). Other streams pay nothing for capture.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from llmops.errors import GatewayError, UpstreamError
from llmops.gateway.asgi import Send
from llmops.gateway.errors import sse_error_event
from llmops.gateway.openai_schema import needs_normalising, normalise_chunk

DONE = b"[DONE]"
MAX_EVENT_BYTES = 1 << 20  # one SSE event (a chunk with logprobs included) is far smaller
MAX_CAPTURED_BYTES = 8 << 20  # a captured stream keeps at most this much of its events


@dataclass(slots=True)
class StreamResult:
    first_event_at: float | None = None
    usage: dict[str, Any] | None = None
    done: bool = False
    error: str | None = None
    captured: list[bytes] | None = None  # a list: keep the relayed blocks (a captured request; up to a bound)
    captured_bytes: int = 0


def _data(event: bytes) -> bytes:
    """The ``data:`` payload of a one-line event (vLLM and OpenAI send one data line per event)."""
    if event.startswith(b"data:"):
        return event[5:].strip()
    return b""


def _scan(block: bytes, result: StreamResult, strip_usage: bool) -> bytes:
    """Note what ``block`` (one or more complete events) holds; return the bytes to forward."""
    if b'"usage"' not in block and b"[DONE]" not in block and b'"error"' not in block and not needs_normalising(block):
        return block  # the common case: conforming content events only
    kept = []
    for event in block.split(b"\n\n"):
        if not event.strip():
            continue
        data = _data(event)
        if data == DONE:
            if result.error is not None:
                continue  # an error ends the stream: no [DONE] after it
            result.done = True
        elif data.startswith(b"{") and (b'"usage"' in data or b'"error"' in data or needs_normalising(data)):
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError:
                obj = None
            if isinstance(obj, dict):
                if isinstance(obj.get("error"), dict):
                    # replaced by the gateway's own well-formed error event at the end of the stream
                    result.error = str(obj["error"].get("message") or "engine error")
                    continue
                if isinstance(obj.get("usage"), dict):
                    result.usage = obj["usage"]
                    if strip_usage and not obj.get("choices"):
                        continue
                if normalise_chunk(obj):
                    event = b"data: " + orjson.dumps(obj)
        kept.append(event + b"\n\n")
    return b"".join(kept)


async def relay(
    chunks: AsyncIterator[bytes],
    send: Send,
    *,
    strip_usage: bool,
    result: StreamResult,
    max_event_bytes: int = MAX_EVENT_BYTES,
) -> GatewayError | None:
    """Forward events from ``chunks`` to ``send``; return the error the stream ended with, if any."""
    buffer = b""
    failure: GatewayError | None = None
    try:
        async for chunk in chunks:
            held = len(buffer)
            buffer = buffer + chunk if buffer else chunk
            # search only the new bytes (and the one before them: a delimiter split across chunks)
            end = buffer.rfind(b"\n\n", max(held - 1, 0))
            if end < 0:
                if len(buffer) > max_event_bytes:
                    failure = UpstreamError(f"the engine sent over {max_event_bytes} bytes without ending an event")
                    break
                continue
            block, buffer = buffer[: end + 2], buffer[end + 2 :]
            out = _scan(block, result, strip_usage)
            if out:
                if result.first_event_at is None:
                    result.first_event_at = time.perf_counter()
                if result.captured is not None and result.captured_bytes < MAX_CAPTURED_BYTES:
                    result.captured.append(out)  # parsed later, in the request log's writer thread
                    result.captured_bytes += len(out)
                await send({"type": "http.response.body", "body": out, "more_body": True})
    except GatewayError as exc:
        if not result.done:  # a connection closed after [DONE] is no failure
            failure = exc
    if failure is None and result.error is not None:
        failure = UpstreamError(f"the engine reported an error mid-stream: {result.error}")
    if failure is None and not result.done:
        failure = UpstreamError("the engine ended the stream early")
    if failure is not None:
        result.error = str(failure)
        await send({"type": "http.response.body", "body": sse_error_event(failure), "more_body": False})
        return failure
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    return None
