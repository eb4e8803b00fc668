"""``POST /v1/feedback``: checked, size-bounded, idempotent per (request id, key), redacted, in the feedback log."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

USER = {"authorization": "Bearer user-key"}
OTHER = {"authorization": "Bearer other-key"}


def post_all(
    make_echo_gateway: Callable[..., Any], tmp_path: Path, calls: list[tuple[Any, dict[str, str]]]
) -> tuple[list[httpx.Response], list[dict[str, Any]], str]:
    """POST each (body, headers) to /v1/feedback; return the answers, the feedback log's records, the metrics."""
    gateway, _ = make_echo_gateway(request_log={"path": str(tmp_path / "logs" / "gateway-requests.jsonl")})

    async def go() -> list[httpx.Response]:
        async with gateway.running():
            transport = httpx.ASGITransport(app=gateway)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
                answers = []
                for body, headers in calls:
                    content = body if isinstance(body, bytes) else orjson.dumps(body)
                    answers.append(await c.post("/v1/feedback", content=content, headers=headers))
            await gateway.feedback_log.flush()
        return answers

    answers = asyncio.run(go())
    path = tmp_path / "logs" / "feedback.jsonl"
    assert gateway.settings.feedback_log_path == path
    records = [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []
    return answers, records, gateway.metrics.expose().decode()


def test_feedback_is_recorded_redacted_and_idempotent_per_key(make_echo_gateway: Any, tmp_path: Path) -> None:
    rid = os.urandom(16).hex()  # an id no gateway served: accepted all the same (the monitor counts orphans)
    body = {
        "request_id": rid,
        "score": 0,
        "label": "wrong-intent",
        "correction": '{"intent":"billing","priority":"high"}',
        "comment": "customer jane@example.com, call 555-123-4567",
    }
    changed = {**body, "score": 0.5}
    calls = [(body, USER), (body, USER), (changed, USER), (changed, USER), (body, OTHER)]
    answers, records, metrics = post_all(make_echo_gateway, tmp_path, calls)
    assert [a.status_code for a in answers] == [200] * 5
    assert [a.json() for a in answers] == [
        {"request_id": rid, "status": s} for s in ("recorded", "unchanged", "recorded", "unchanged", "recorded")
    ]
    assert [(r["api_key"], r["score"]) for r in records] == [("app", 0.0), ("app", 0.5), ("other", 0.0)]
    first = records[0]
    assert list(first) == ["id", "time", "api_key", "score", "label", "correction", "comment"]
    assert first["id"] == rid and first["label"] == "wrong-intent"
    assert first["correction"] == '{"intent":"billing","priority":"high"}'
    assert first["comment"] == "customer [EMAIL], call [PHONE]"
    assert 'llmops_gateway_feedback_total{result="recorded"} 3.0' in metrics
    assert 'llmops_gateway_feedback_total{result="unchanged"} 2.0' in metrics


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"request_id": "', None),
        (b"[1, 2]", None),
        ({"score": 1}, "request_id"),
        ({"request_id": "ABC", "score": 1}, "request_id"),
        ({"request_id": "0" * 32}, "score"),
        ({"request_id": "0" * 32, "score": 1.5}, "score"),
        ({"request_id": "0" * 32, "score": True}, "score"),
        ({"request_id": "0" * 32, "score": "1"}, "score"),
        ({"request_id": "0" * 32, "score": 1, "label": "x" * 65}, "label"),
        ({"request_id": "0" * 32, "score": 1, "correction": 42}, "correction"),
        ({"request_id": "0" * 32, "score": 1, "comment": "x" * 2049}, "comment"),
        ({"request_id": "0" * 32, "score": 1, "user": "bob"}, "user"),
    ],
)
def test_a_malformed_body_is_a_400_naming_the_field_and_nothing_is_written(
    make_echo_gateway: Any, tmp_path: Path, body: Any, param: str | None
) -> None:
    answers, records, metrics = post_all(make_echo_gateway, tmp_path, [(body, USER)])
    assert answers[0].status_code == 400
    error = answers[0].json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert records == []
    assert 'llmops_gateway_feedback_total{result="rejected"} 1.0' in metrics


def test_an_oversized_body_is_a_413_and_no_key_is_a_401(make_echo_gateway: Any, tmp_path: Path) -> None:
    big = {"request_id": "0" * 32, "score": 1, "comment": "x" * 17_000}
    answers, records, _ = post_all(
        make_echo_gateway, tmp_path, [(big, USER), ({"request_id": "0" * 32, "score": 1}, {})]
    )
    assert [a.status_code for a in answers] == [413, 401]
    assert records == []


def test_the_idempotency_memory_is_bounded() -> None:
    from llmops.gateway.feedback import Feedback
    from llmops.gateway.metrics import GatewayMetrics
    from llmops.gateway.requestlog import NullSink, RequestLog

    async def go() -> list[bool]:
        fb = Feedback(RequestLog(NullSink()), GatewayMetrics(), remember=2)
        seen = [fb._is_repeat((k, "app"), b"h") for k in ("a", "b", "a", "c", "b", "a")]
        return seen

    # "a" is remembered until two other ids push it out: then a repeat is written again
    assert asyncio.run(go()) == [False, False, True, False, False, False]
