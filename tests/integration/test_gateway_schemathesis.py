"""Schemathesis against the gateway's own OpenAPI document, served by the real gateway under uvicorn.

The gateway (``llmops serve gateway``) fronts the fake engine (bench/fake_upstream.py), which answers
with vLLM's nulls. Schemathesis generates requests from ``GET /openapi.json`` for every operation
(more than 1,000 cases in all, derandomised so a run repeats) and checks each answer: never a 5xx,
a status, content type and body the document declares. Streamed answers are checked event by event
against the document's ``ChatCompletionChunk`` (and a stream ends with ``[DONE]``). Admin operations
run with the admin key, after the chat operations, and the test checks the gateway still serves
afterwards.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jsonschema
import orjson
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.integration

ROUTE = "echo"
LIMITS = "{read_timeout_s: 10, max_tokens: 64, per_key_max_concurrent: null}"


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
    start_fake_engine: Callable[..., Any],
    start_gateway: Callable[..., Any],
    fake_gateway_config: Callable[..., str],
) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("schemathesis")
    engine, url = start_fake_engine(folder, "--chunks", "4")
    try:
        gw = start_gateway(folder / "ws", fake_gateway_config(url, LIMITS))
        try:
            yield gw
        finally:
            gw.process.stop()
    finally:
        engine.stop()


def narrow(document: dict[str, Any]) -> dict[str, Any]:
    """The document with the chat request's objects closed (no generated extra properties) and at most
    three messages: generating arbitrary nested JSON is what makes cases slow. Answers are still checked
    against the document as served (its response schemas are unchanged)."""
    narrowed = copy.deepcopy(document)
    request = narrowed["components"]["schemas"]["ChatCompletionRequest"]
    request["properties"]["messages"]["maxItems"] = 3

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node.setdefault("additionalProperties", False)
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(request)
    return narrowed


def sse_check(document: dict[str, Any]) -> Callable[[Any], None]:
    components = {"components": document["components"]}
    chunk = jsonschema.Draft202012Validator({"$ref": "#/components/schemas/ChatCompletionChunk", **components})
    error = jsonschema.Draft202012Validator({"$ref": "#/components/schemas/ErrorResponse", **components})

    def check(response: Any) -> None:
        events = [e for e in response.content.split(b"\n\n") if e.strip()]
        assert events and events[-1] == b"data: [DONE]", events[-1:]
        for event in events[:-1]:
            assert event.startswith(b"data: ")
            obj = orjson.loads(event[6:])
            (error if "error" in obj else chunk).validate(obj)

    return check


def run_operation(
    document: dict[str, Any],
    method: str,
    path: str,
    *,
    examples: int,
    mode: GenerationMode,
    base_url: str,
    headers: dict[str, str],
    seen: list[int],
) -> None:
    """Generate up to ``examples`` cases for one operation and check every answer."""
    operation = schemathesis.openapi.from_dict(document)[path][method]
    check_stream = sse_check(document)
    session = requests.Session()
    checks = [status_code_conformance, content_type_conformance, response_schema_conformance]

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def test(case: Any) -> None:
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
        assert response.status_code < 500, (case.body, response.status_code, response.content[:500])
        if mode is GenerationMode.POSITIVE or response.status_code < 300:
            case.validate_response(response, checks=checks, headers=headers)
        if response.headers.get("content-type", [""])[0].startswith("text/event-stream"):
            check_stream(response)
        seen.append(response.status_code)

    try:
        test()
    finally:
        session.close()


def test_gateway_conforms_to_its_openapi_document(gateway: Any, gateway_keys: Any) -> None:
    document = httpx.get(f"{gateway.url}/openapi.json", headers=gateway_keys.user, timeout=10).json()
    narrowed = narrow(document)
    # and most cases name the test's route, so that they reach the engine (other names are 404s)
    reaching = copy.deepcopy(narrowed)
    reaching["components"]["schemas"]["ChatCompletionRequest"]["properties"]["model"] = {"enum": [ROUTE]}
    statuses: dict[str, list[int]] = {}
    plan = [
        # (document, method, path, examples, mode, key)
        (reaching, "POST", "/v1/chat/completions", 450, GenerationMode.POSITIVE, gateway_keys.user),
        (narrowed, "POST", "/v1/chat/completions", 100, GenerationMode.POSITIVE, gateway_keys.user),
        (reaching, "POST", "/v1/chat/completions", 150, GenerationMode.NEGATIVE, gateway_keys.user),
        (document, "GET", "/v1/models", 5, GenerationMode.POSITIVE, gateway_keys.user),
        (document, "GET", "/healthz", 5, GenerationMode.POSITIVE, {}),
        (document, "GET", "/readyz", 5, GenerationMode.POSITIVE, {}),
        (document, "GET", "/metrics", 5, GenerationMode.POSITIVE, {}),
        (document, "GET", "/openapi.json", 5, GenerationMode.POSITIVE, gateway_keys.user),
        (document, "GET", "/admin/status", 5, GenerationMode.POSITIVE, gateway_keys.admin),
        (document, "GET", "/admin/routes", 5, GenerationMode.POSITIVE, gateway_keys.admin),
        (document, "GET", "/admin/routes/{name}", 150, GenerationMode.POSITIVE, gateway_keys.admin),
        (document, "PUT", "/admin/routes/{name}", 200, GenerationMode.POSITIVE, gateway_keys.admin),
        (document, "PUT", "/admin/routes/{name}", 50, GenerationMode.NEGATIVE, gateway_keys.admin),
        (document, "POST", "/admin/reload", 5, GenerationMode.POSITIVE, gateway_keys.admin),
    ]
    for doc, method, path, examples, mode, key in plan:
        seen = statuses.setdefault(f"{method} {path} {mode.value}{' echo' if doc is reaching else ''}", [])
        t0 = time.monotonic()
        run_operation(doc, method, path, examples=examples, mode=mode, base_url=gateway.url, headers=key, seen=seen)
        print(f"{method} {path} {mode.value}: {len(seen)} cases in {time.monotonic() - t0:.1f} s")
    total = sum(len(s) for s in statuses.values())
    assert total >= 1000, {k: len(v) for k, v in statuses.items()}
    assert all(s < 500 for v in statuses.values() for s in v)
    chat = statuses["POST /v1/chat/completions positive echo"]
    assert chat.count(200) >= len(chat) // 2, "most positive chat cases must reach the engine"
    assert statuses["POST /v1/chat/completions positive"].count(404) > 0  # unknown routes answer the documented 404
    # the admin cases left the gateway serving
    body = {"model": ROUTE, "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=gateway_keys.user, timeout=10)
    assert r.status_code == 200


def test_vllm_nulls_reach_the_client_normalised(gateway: Any, gateway_keys: Any) -> None:
    """The fake engine answers ``"annotations": null`` … like vLLM; an OpenAI client gets none of it."""
    body = {"model": ROUTE, "messages": [{"role": "user", "content": "hi"}]}
    url = f"{gateway.url}/v1/chat/completions"
    r = httpx.post(url, json=body, headers=gateway_keys.user, timeout=10)
    assert r.status_code == 200
    answer = r.json()
    message = answer["choices"][0]["message"]
    assert {"annotations", "function_call"} & set(message) == set()
    assert message["refusal"] is None and message["content"]
    assert "prompt_tokens_details" not in answer["usage"] and "system_fingerprint" not in answer
    stream = {**body, "stream": True, "stream_options": {"include_usage": True}}
    r = httpx.post(url, json=stream, headers=gateway_keys.user, timeout=10)
    assert r.status_code == 200 and b":null" in r.content  # nullable fields (finish_reason …) stay
    for needle in (b'"tool_calls":null', b'"function_call":null', b'"system_fingerprint":null', b'_details":null'):
        assert needle not in r.content
    assert b'"usage":{' in r.content and r.content.endswith(b"data: [DONE]\n\n")
