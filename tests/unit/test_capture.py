"""Capture: a route's ``capture`` share puts redacted inputs and outputs into the request log file.

An in-process gateway (a real JsonlSink under tmp_path) over a parrot engine that answers the last
user message back (unary, or streamed in small pieces, so a planted email is split across deltas).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from llmops.config.gateway import GatewayFile
from llmops.gateway.app import Gateway, build_app
from llmops.gateway.resolver import ResolvedPrompt, StaticResolver
from llmops.gateway.settings import settings_from_file
from llmops.prompts.spec import load_spec

REPO = Path(__file__).resolve().parents[2]
USER = {"authorization": "Bearer user-key"}
PLANTED = ("jane.doe@example.com", "+44 20 7946 0958", "4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00")
SECRET_TEXT = (
    "mail jane.doe@example.com, call +44 20 7946 0958, card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00"
)
MASKED = "mail [EMAIL], call [PHONE], card [CARD], IBAN [IBAN]"


class ParrotEngine:
    """Answers the last user message's text (streams it 5 characters per event)."""

    name = "e"
    url = "http://fake"

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def chat(self, body: bytes, *, request_id: str) -> Any:
        return _Parrot(orjson.loads(body))

    async def request_json(self, method: str, path: str, payload: Any | None = None) -> tuple[int, Any]:
        return 200, {"object": "list", "data": [{"id": "base", "parent": None}]}

    async def healthy(self) -> bool:
        return True


class _Parrot:
    status = 200

    def __init__(self, req: dict[str, Any]) -> None:
        self.req = req
        self.text = str([m for m in req["messages"] if m["role"] == "user"][-1]["content"])

    async def read(self) -> bytes:
        msg = {"role": "assistant", "content": self.text}
        usage = {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}
        choice = {"index": 0, "message": msg, "finish_reason": "stop"}
        body = {"id": "c", "object": "chat.completion", "created": 1, "model": "m", "choices": [choice], "usage": usage}
        return orjson.dumps(body)

    async def chunks(self) -> Any:
        base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
        for i in range(0, len(self.text), 5):
            delta = {"index": 0, "delta": {"content": self.text[i : i + 5]}}
            yield b"data: " + orjson.dumps({**base, "choices": [delta]}) + b"\n\n"
        yield b"data: [DONE]\n\n"

    def release(self) -> None:
        return None

    def abort(self) -> None:
        return None


def make_gateway(home: Path, capture: float = 1.0, **request_log: Any) -> Gateway:
    triage = {"name": "base", "weight": 1, "prompt": "support-triage@production"}
    cfg = {
        "engines": {"e": {"url": "http://fake"}},
        "routes": {
            "plain": {"targets": [{"name": "base", "weight": 1}], "capture": capture},
            "triage": {
                "targets": [triage],
                "capture": capture,
                "shadow": {"name": "next", "prompt": "support-triage@production"},
            },
        },
        "auth": {"keys": [{"name": "app", "env": "K"}]},
        "request_log": request_log,
    }
    env = {"K": "user-key", "LLMOPS_STICKY_SECRET": "s"}
    settings = settings_from_file(GatewayFile.model_validate(cfg), home=home, env=env)
    prompt = ResolvedPrompt("support-triage", 3, load_spec(REPO / "prompts" / "support-triage.yaml"))
    return build_app(settings, StaticResolver({"support-triage": prompt}), upstreams={"e": ParrotEngine()})


def send(app: Gateway, bodies: list[dict[str, Any]]) -> tuple[list[httpx.Response], list[dict[str, Any]], bytes]:
    """Send ``bodies`` in order; return the responses, the log's records and its raw bytes."""

    async def go() -> list[httpx.Response]:
        async with app.running():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw", headers=USER) as c:
                answers = [await c.post("/v1/chat/completions", json=b) for b in bodies]
            while app.shadows.in_flight:
                await asyncio.sleep(0.01)
            await app.request_log.flush()
        return answers

    answers = asyncio.run(go())
    path = app.settings.request_log_path
    assert path is not None
    raw = path.read_bytes()
    return answers, [orjson.loads(line) for line in raw.splitlines()], raw


@pytest.mark.parametrize("stream", [False, True])
def test_captured_messages_and_answer_are_redacted_before_they_reach_the_file(tmp_path: Path, stream: bool) -> None:
    app = make_gateway(tmp_path)
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": SECRET_TEXT}]
    answers, records, raw = send(app, [{"model": "plain", "messages": messages, "stream": stream}])
    assert answers[0].status_code == 200
    if not stream:  # the client gets the answer as it is; only the log is redacted
        assert answers[0].json()["choices"][0]["message"]["content"] == SECRET_TEXT
    for planted in PLANTED:
        assert planted.encode() not in raw
    (record,) = records
    assert list(record)[0] == "id" and record["id"] == answers[0].headers["x-request-id"]
    assert record["captured"] is True and record["stream"] is stream
    assert record["input"] == {
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": MASKED}]
    }
    assert record["output"] == MASKED  # a stream: the deltas joined first, then redacted
    metrics = app.metrics.expose().decode()
    assert 'llmops_gateway_captured_total{route="plain",target="base"} 1.0' in metrics


def test_prompt_variables_are_the_input_and_the_shadow_copy_is_captured_too(tmp_path: Path) -> None:
    app = make_gateway(tmp_path)
    body = {"model": "triage", "messages": [], "prompt_variables": {"message": SECRET_TEXT}}
    answers, records, raw = send(app, [body])
    assert answers[0].status_code == 200
    for planted in PLANTED:  # whole values: a bare "4111" can occur in a record's timestamps or latencies
        assert planted.encode() not in raw
    primary = next(r for r in records if "shadow_of" not in r)
    shadow = next(r for r in records if "shadow_of" in r)
    assert primary["input"] == shadow["input"] == {"variables": {"message": MASKED}}
    assert primary["output"] == shadow["output"] == MASKED and shadow["captured"] is True


def test_content_parts_are_joined_and_long_texts_are_cut(tmp_path: Path) -> None:
    app = make_gateway(tmp_path, capture_max_chars=64)
    parts = [{"type": "text", "text": "first part"}, {"type": "text", "text": "second " * 30}]
    _, (record,), _ = send(app, [{"model": "plain", "messages": [{"role": "user", "content": parts}]}])
    content = record["input"]["messages"][0]["content"]
    assert content.startswith("first part\nsecond ") and content.endswith("…[truncated]")
    assert len(content) == 64 + len("…[truncated]")


def test_requests_outside_the_capture_share_keep_no_text(tmp_path: Path) -> None:
    app = make_gateway(tmp_path, capture=0.0)
    body = {"model": "triage", "messages": [], "prompt_variables": {"message": SECRET_TEXT}}
    _, records, raw = send(app, [body, {"model": "plain", "messages": [{"role": "user", "content": SECRET_TEXT}]}])
    assert b"jane.doe" not in raw  # not even the shadow's answer
    assert all("captured" not in r and "input" not in r for r in records)
    assert [r.get("output") for r in records if "shadow_of" in r] == [MASKED]
    assert "llmops_gateway_captured_total{" not in app.metrics.expose().decode()
