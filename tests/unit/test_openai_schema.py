"""Engine answers normalised to OpenAI's schema, the stream relay's bound, and the gateway's OpenAPI document.

vLLM answers ``null`` where OpenAI's published schema types an optional field as an object or array
(``annotations``, ``function_call``, ``prompt_tokens_details`` …); the gateway drops those nulls, in
unary answers and in stream events, and leaves conforming events byte for byte as they came.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import orjson
import pytest

from llmops.config.gateway import GatewayFile
from llmops.gateway.app import build_app
from llmops.gateway.openai_schema import needs_normalising, normalise_chunk, normalise_completion
from llmops.gateway.openapi import openapi_document
from llmops.gateway.resolver import StaticResolver
from llmops.gateway.settings import settings_from_file
from llmops.gateway.streaming import StreamResult, relay

DOC = openapi_document()


def validator(name: str) -> jsonschema.protocols.Validator:
    """A validator for the document's component ``name`` (its ``$ref``s resolved within the document)."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": DOC["components"]}
    return jsonschema.Draft202012Validator(schema)


def vllm_completion() -> dict[str, Any]:
    """A non-streaming answer as vLLM's OpenAI server serialises it (every unset field ``null``)."""
    message = {"role": "assistant", "content": "hi", "refusal": None, "annotations": None, "audio": None,
               "function_call": None, "tool_calls": [], "reasoning_content": None}  # fmt: skip
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop", "stop_reason": None}],
        "service_tier": None, "system_fingerprint": None, "prompt_logprobs": None, "kv_transfer_params": None,
        "usage": {"prompt_tokens": 3, "total_tokens": 5, "completion_tokens": 2, "prompt_tokens_details": None,
                  "completion_tokens_details": None},
    }  # fmt: skip


def test_completion_nulls_dropped_to_openai_schema() -> None:
    body = vllm_completion()
    errors = list(validator("ChatCompletion").iter_errors(body))
    assert errors, "vLLM's shape must break OpenAI's schema, or this test proves nothing"
    assert normalise_completion(body) is True
    validator("ChatCompletion").validate(body)
    message = body["choices"][0]["message"]
    assert "annotations" not in message and "function_call" not in message
    assert message["refusal"] is None and message["audio"] is None  # nullable in OpenAI's schema: kept
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 5, "completion_tokens": 2}
    assert "system_fingerprint" not in body and body["service_tier"] is None
    assert body["choices"][0]["stop_reason"] is None  # not OpenAI's field: left alone
    assert normalise_completion(body) is False  # already conforming


def test_missing_required_nullable_keys_added() -> None:
    body = {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}]}  # fmt: skip
    assert normalise_completion(body) is True
    validator("ChatCompletion").validate(body)
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": {"content": "x", "role": None}}]}  # fmt: skip
    assert normalise_chunk(chunk) is True
    validator("ChatCompletionChunk").validate(chunk)


def sse(obj: Any) -> bytes:
    return b"data: " + (obj if isinstance(obj, bytes) else orjson.dumps(obj)) + b"\n\n"


async def run_relay(
    chunks: AsyncIterator[bytes], *, strip_usage: bool = False, **kw: Any
) -> tuple[list[bytes], Any, StreamResult]:
    sent: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message.get("body", b""))

    result = StreamResult()
    failure = await relay(chunks, send, strip_usage=strip_usage, result=result, **kw)
    return sent, failure, result


async def from_list(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def events(sent: list[bytes]) -> list[bytes]:
    return [e[len(b"data: ") :] for e in b"".join(sent).split(b"\n\n") if e]


def test_stream_chunks_normalised_and_conforming_ones_untouched() -> None:
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    first = {**base, "system_fingerprint": None,
             "choices": [{"index": 0, "delta": {"role": "assistant", "content": "", "tool_calls": None,
                                                "function_call": None}, "logprobs": None, "finish_reason": None}]}  # fmt: skip
    content = sse(
        {**base, "choices": [{"index": 0, "delta": {"content": "x"}, "logprobs": None, "finish_reason": None}]}
    )
    usage = {**base, "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2,
                                              "prompt_tokens_details": None}}  # fmt: skip
    whole = sse(first) + content + sse(usage) + sse(b"[DONE]")
    # the delimiter of the content event is split across two reads
    cut = whole.index(content) + len(content) - 1
    sent, failure, result = asyncio.run(run_relay(from_list([whole[:cut], whole[cut:]])))
    assert failure is None and result.done
    out = events(sent)
    assert out[-1] == b"[DONE]"
    chunk = validator("ChatCompletionChunk")
    for data in out[:-1]:
        chunk.validate(orjson.loads(data))
        assert not needs_normalising(data)
    assert orjson.loads(out[0])["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert orjson.loads(out[2])["usage"] == {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    assert result.usage is not None
    assert out[1] + b"\n\n" == content[len(b"data: ") :]  # a conforming event passes byte for byte


def test_undelimited_stream_fails_with_an_error_event_and_bounded_memory() -> None:
    piece = b"x" * (64 * 1024)
    taken = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal taken
        yield sse({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": []})
        for _ in range(512):  # 32 MiB that never end an event
            taken += 1
            yield b"data: " + piece if taken == 1 else piece

    sent, failure, result = asyncio.run(run_relay(endless()))
    assert failure is not None and "without ending an event" in str(failure)
    assert taken <= 1 + (1 << 20) // len(piece) + 1  # stopped once one event's worth (1 MiB) was exceeded
    last = orjson.loads(events(sent)[-1])
    assert set(last["error"]) == {"message", "type", "code", "param"}
    assert b"[DONE]" not in b"".join(sent) and not result.done


def test_event_bound_is_configurable_and_large_events_within_it_pass() -> None:
    big = sse({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": {"content": "y" * 200_000}, "finish_reason": None}]})  # fmt: skip
    parts = [big[i : i + 4096] for i in range(0, len(big), 4096)] + [sse(b"[DONE]")]
    sent, failure, _ = asyncio.run(run_relay(from_list(parts)))
    assert failure is None and events(sent)[-1] == b"[DONE]"
    sent, failure, _ = asyncio.run(run_relay(from_list(parts), max_event_bytes=100_000))
    assert failure is not None and b"[DONE]" not in b"".join(sent)


# -- the OpenAPI document ---------------------------------------------------------------------------
def test_openapi_document_is_served_to_any_key_and_describes_every_endpoint() -> None:
    spec = GatewayFile.model_validate(
        {
            "engines": {"e": {"url": "http://127.0.0.1:9"}},
            "routes": {"plain": {"targets": [{"name": "base", "weight": 1}]}},
            "auth": {"keys": [{"name": "app", "env": "K"}, {"name": "ops", "env": "A", "scope": "admin"}]},
        }
    )
    settings = settings_from_file(spec, home=Path("/nonexistent"), env={"K": "user-key", "A": "admin-key"})
    app = build_app(settings, StaticResolver())

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
            return [
                await c.get("/openapi.json"),
                await c.get("/openapi.json", headers={"authorization": "Bearer user-key"}),
                await c.get("/openapi.json", headers={"authorization": "Bearer admin-key"}),
            ]

    anonymous, user, admin = asyncio.run(go())
    assert anonymous.status_code == 401
    assert user.status_code == admin.status_code == 200
    doc = user.json()
    assert doc == DOC and doc["openapi"].startswith("3.1")
    assert {(p, m) for p, ops in doc["paths"].items() for m in ops if m != "parameters"} == {
        ("/v1/chat/completions", "post"), ("/v1/feedback", "post"), ("/v1/models", "get"), ("/healthz", "get"), ("/readyz", "get"),
        ("/metrics", "get"), ("/openapi.json", "get"), ("/admin/status", "get"), ("/admin/reload", "post"), ("/admin/routes", "get"),
        ("/admin/routes/{name}", "get"), ("/admin/routes/{name}", "put"),
    }  # fmt: skip
    assert doc["paths"]["/admin/routes"]["get"]["security"] == [{"adminKey": []}]
    assert doc["paths"]["/healthz"]["get"]["security"] == []
    request = doc["components"]["schemas"]["ChatCompletionRequest"]
    assert request["additionalProperties"] is False
    assert request["properties"]["stream"] == {"type": "boolean"}  # a JSON boolean, never 1 or "true"


@pytest.mark.parametrize(
    "name", ["ChatCompletion", "ChatCompletionChunk", "ErrorResponse", "RouteTable", "FeedbackRequest"]
)
def test_document_schemas_are_valid_json_schema(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(DOC["components"]["schemas"][name])
