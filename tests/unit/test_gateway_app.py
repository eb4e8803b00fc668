"""The gateway app in-process: a fake engine behind the Upstream protocol, a static resolver, httpx.

Covers auth, request checks and limits, routing headers and stickiness, prompt rendering, streaming
relay (usage, broken streams), upstream errors, client disconnects, weight changes in flight, the
request log, metrics, admin endpoints, shadow traffic, route resolution failures, and adapter sync (loading
and unloading LoRA adapters on the fake engine).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from llmops.config.gateway import GatewayFile
from llmops.errors import NotFoundError, RegistryError, UpstreamError, UpstreamTimeoutError
from llmops.gateway.adapters import AdapterSync
from llmops.gateway.app import Gateway, build_app
from llmops.gateway.requestlog import RequestLogSink
from llmops.gateway.resolver import ResolvedAdapter, ResolvedPrompt, StaticResolver
from llmops.gateway.settings import settings_from_file
from llmops.prompts.spec import load_spec
from llmops.release import Release

REPO = Path(__file__).resolve().parents[2]
USER = {"authorization": "Bearer user-key"}
ADMIN = {"authorization": "Bearer admin-key"}


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


@dataclass
class FakeResponse:
    status: int
    body: bytes = b""
    events: list[bytes] = field(default_factory=list)
    delay: float = 0.0
    fail: Exception | None = None  # raised after the events
    released: bool = False
    aborted: bool = False

    async def read(self) -> bytes:
        await asyncio.sleep(self.delay)
        return self.body

    async def chunks(self) -> AsyncIterator[bytes]:
        for event in self.events:
            await asyncio.sleep(self.delay)
            yield event
        if self.fail is not None:
            raise self.fail

    def release(self) -> None:
        self.released = True

    def abort(self) -> None:
        self.aborted = True


def sse(obj: Any) -> bytes:
    return b"data: " + (obj if isinstance(obj, bytes) else orjson.dumps(obj)) + b"\n\n"


def completion(model: str, text: str = "hello") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }


def stream_events(model: str, words: list[str], usage: bool) -> list[bytes]:
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": model}
    out = [sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})]
    out += [sse({**base, "choices": [{"index": 0, "delta": {"content": w}}]}) for w in words]
    if usage:
        out.append(sse({**base, "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": len(words)}}))
    out.append(sse(b"[DONE]"))
    return out


class FakeUpstream:
    """An engine: records requests; ``respond`` decides the answer (default: a normal completion)."""

    def __init__(self, name: str = "e", base: str = "base") -> None:
        self.name = name
        self.url = "http://fake"
        self.base = base
        self.adapters: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []
        self.responses: list[FakeResponse] = []
        self.respond: Callable[[dict[str, Any]], FakeResponse] = self.default
        self.up = True

    def default(self, req: dict[str, Any]) -> FakeResponse:
        if req.get("stream"):
            include = bool((req.get("stream_options") or {}).get("include_usage"))
            return FakeResponse(200, events=stream_events(req["model"], ["a", "b", "c"], include))
        return FakeResponse(200, orjson.dumps(completion(req["model"])))

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def chat(self, body: bytes, *, request_id: str) -> FakeResponse:
        req = orjson.loads(body)
        self.requests.append(req)
        resp = self.respond(req)
        self.responses.append(resp)
        return resp

    async def request_json(self, method: str, path: str, payload: Any | None = None) -> tuple[int, Any]:
        if not self.up:
            raise UpstreamError("connection refused", engine=self.name)
        if path == "/v1/models":
            data = [{"id": self.base, "parent": None}] + [{"id": n, "parent": self.base} for n in self.adapters]
            return 200, {"object": "list", "data": data}
        if path == "/v1/load_lora_adapter":
            self.adapters[payload["lora_name"]] = payload["lora_path"]
            return 200, "Success"
        if path == "/v1/unload_lora_adapter":
            return (200, "ok") if self.adapters.pop(payload["lora_name"], None) else (404, "no")
        return 404, None

    async def healthy(self) -> bool:
        return self.up


class ListSink:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def write(self, lines: list[bytes]) -> None:
        self.records.extend(orjson.loads(line) for line in lines)

    def close(self) -> None:
        return None


def triage_prompt() -> ResolvedPrompt:
    return ResolvedPrompt("support-triage", 3, load_spec(REPO / "prompts" / "support-triage.yaml"))


def config(**overrides: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "engines": {"e": {"url": "http://fake"}},
        "routes": {
            "triage": {
                "targets": [
                    {
                        "name": "stable",
                        "weight": 90,
                        "adapter": "tri@production",
                        "prompt": "support-triage@production",
                    },
                    {"name": "canary", "weight": 10, "adapter": "tri@canary", "prompt": "support-triage@production"},
                ]
            },
            "plain": {"targets": [{"name": "base", "weight": 1, "params": {"temperature": 0.5}}]},
        },
        "auth": {"keys": [{"name": "app", "env": "K"}, {"name": "ops", "env": "A", "scope": "admin"}]},
        "limits": {"max_tokens": 64, "max_n": 2, "max_body_bytes": 4096},
    }
    cfg.update(overrides)
    return cfg


def make_gateway(
    cfg: dict[str, Any] | None = None,
    resolver: StaticResolver | None = None,
    upstream: FakeUpstream | None = None,
    sink: RequestLogSink | None = None,
) -> tuple[Gateway, FakeUpstream, ListSink]:
    spec = GatewayFile.model_validate(cfg or config())
    env = {"K": "user-key", "A": "admin-key", "LLMOPS_STICKY_SECRET": "test-secret"}
    settings = settings_from_file(spec, home=Path("/nonexistent"), env=env)
    resolver = resolver or StaticResolver(
        {"support-triage": triage_prompt()},
        {
            "tri@production": ResolvedAdapter("tri", 1, "a" * 64, Path("/adapters/tri/v1")),
            "tri@canary": ResolvedAdapter("tri", 2, "b" * 64, Path("/adapters/tri/v2")),
        },
    )
    upstream = upstream or FakeUpstream()
    list_sink = ListSink()
    app = build_app(settings, resolver, upstreams={"e": upstream}, sink=sink or list_sink)
    return app, upstream, list_sink


def client(app: Gateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


def chat_body(**extra: Any) -> dict[str, Any]:
    return {"model": "plain", "messages": [{"role": "user", "content": "hi"}], **extra}


# -- auth and request checks ---------------------------------------------------------------------
def test_keys_and_scopes() -> None:
    app, _, _ = make_gateway()

    async def go() -> None:
        async with app.running(), client(app) as c:
            r = await c.post("/v1/chat/completions", json=chat_body())
            assert r.status_code == 401
            assert set(r.json()["error"]) == {"message", "type", "code", "param"}
            assert r.json()["error"]["code"] == "invalid_api_key"
            r = await c.post("/v1/chat/completions", json=chat_body(), headers={"authorization": "Bearer wrong"})
            assert r.status_code == 401
            r = await c.get("/admin/routes", headers=USER)
            assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
            assert (await c.get("/admin/routes", headers=ADMIN)).status_code == 200
            assert (await c.get("/healthz")).status_code == 200
            assert (await c.get("/metrics")).status_code == 200
            assert (await c.get("/v1/models")).status_code == 401
            models = (await c.get("/v1/models", headers=USER)).json()
            assert [m["id"] for m in models["data"]] == ["plain", "triage"]
            # vLLM's own control endpoints do not exist here
            for path in ("/v1/load_lora_adapter", "/v1/unload_lora_adapter", "/v1/completions", "/tokenize"):
                assert (await c.post(path, json={}, headers=ADMIN)).status_code == 404

    run(go())


@pytest.mark.parametrize("param", ["lora_path", "api_base", "base_url", "chat_template", "lora_request"])
def test_engine_steering_parameters_are_refused(param: str) -> None:
    app, upstream, _ = make_gateway()

    async def go() -> None:
        async with app.running(), client(app) as c:
            r = await c.post("/v1/chat/completions", json=chat_body(**{param: "/etc"}), headers=USER)
            assert r.status_code == 400
            assert r.json()["error"]["param"] == param

    run(go())
    assert upstream.requests == []


def test_limits() -> None:
    app, upstream, _ = make_gateway()

    async def go() -> None:
        async with app.running(), client(app) as c:
            post = c.post
            assert (await post("/v1/chat/completions", json=chat_body(max_tokens=65), headers=USER)).status_code == 400
            r = await post("/v1/chat/completions", json=chat_body(n=3), headers=USER)
            assert r.status_code == 400 and r.json()["error"]["param"] == "n"
            big = chat_body(messages=[{"role": "user", "content": "x" * 5000}])
            assert (await post("/v1/chat/completions", json=big, headers=USER)).status_code == 413
            assert (await post("/v1/chat/completions", content=b"{nope", headers=USER)).status_code == 400
            r = await post("/v1/chat/completions", json=chat_body(foo=1), headers=USER)
            assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_parameter"
            r = await post("/v1/chat/completions", json=chat_body(model="nope"), headers=USER)
            assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
            assert (await c.get("/v1/chat/completions", headers=USER)).status_code == 400
            # no max_tokens: the limit becomes the default; the target's params are defaults too
            assert (await post("/v1/chat/completions", json=chat_body(), headers=USER)).status_code == 200

    run(go())
    assert len(upstream.requests) == 1
    sent = upstream.requests[0]
    assert sent["max_tokens"] == 64 and sent["temperature"] == 0.5 and sent["model"] == "base"


# -- routing, prompts, headers ---------------------------------------------------------------------
def test_headers_stickiness_and_prompt_rendering() -> None:
    app, upstream, _ = make_gateway()

    async def go() -> None:
        async with app.running(), client(app) as c:
            seen: dict[str, set[str]] = {}
            for i in range(40):
                for _ in range(3):
                    body = {"model": "triage", "prompt_variables": {"message": f"order {i} late"}, "user": f"u{i}"}
                    r = await c.post("/v1/chat/completions", json=body, headers=USER)
                    assert r.status_code == 200, r.text
                    seen.setdefault(f"u{i}", set()).add(r.headers["x-llmops-target"])
            assert all(len(targets) == 1 for targets in seen.values())
            assert r.headers["x-llmops-route"] == "triage"
            assert r.headers["x-llmops-prompt-version"] == "support-triage/3"
            assert r.headers["x-llmops-adapter-version"] in ("tri/1", "tri/2")
            assert len(r.headers["x-request-id"]) == 32
            # the session header is a sticky key too
            hdrs = {**USER, "x-llmops-session": "s-1"}
            targets = {
                (await c.post("/v1/chat/completions", json=chat_body(model="triage"), headers=hdrs)).headers[
                    "x-llmops-target"
                ]
                for _ in range(5)
            }
            assert len(targets) == 1
            # plain messages pass through untouched; no prompt version applied
            r = await c.post("/v1/chat/completions", json=chat_body(model="triage", user="u1"), headers=USER)
            assert r.headers["x-llmops-prompt-version"] == "none"

    run(go())
    rendered = upstream.requests[0]
    assert [m["role"] for m in rendered["messages"]] == ["system", "user"]
    assert rendered["messages"][1]["content"] == "order 0 late"
    assert rendered["model"] in ("tri-v1-aaaaaaaaaaaa", "tri-v2-bbbbbbbbbbbb")
    assert rendered["temperature"] == 0 and rendered["max_tokens"] == 48  # the prompt version's params
    assert upstream.requests[-1]["messages"] == [{"role": "user", "content": "hi"}]
    # loaded at route resolution (not per request), under names that carry their sha256
    assert set(upstream.adapters) == {"tri-v1-aaaaaaaaaaaa", "tri-v2-bbbbbbbbbbbb"}


def test_client_messages_follow_the_rendered_prompt_and_bad_variables_are_400() -> None:
    app, upstream, _ = make_gateway()

    async def go() -> None:
        async with app.running(), client(app) as c:
            turns = [{"role": "assistant", "content": "{}"}, {"role": "user", "content": "and now?"}]
            body = {"model": "triage", "prompt_variables": {"message": "{{7*7}}"}, "messages": turns, "max_tokens": 5}
            assert (await c.post("/v1/chat/completions", json=body, headers=USER)).status_code == 200
            r = await c.post("/v1/chat/completions", json={"model": "triage", "prompt_variables": {}}, headers=USER)
            assert r.status_code == 400 and r.json()["error"]["param"] == "prompt_variables"
            assert "message" in r.json()["error"]["message"]
            r = await c.post(
                "/v1/chat/completions", json={"model": "plain", "prompt_variables": {"message": "x"}}, headers=USER
            )
            assert r.status_code == 400 and "has no prompt" in r.json()["error"]["message"]

    run(go())
    sent = upstream.requests[0]
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user"]
    assert sent["messages"][1]["content"] == "{{7*7}}"  # values are data, never templates
    assert sent["max_tokens"] == 5  # the client's value wins over the release default


# -- streaming ------------------------------------------------------------------------------------
def parse_sse(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.split("\n\n") if line.startswith("data: ")]


def test_streaming_relays_events_and_handles_usage() -> None:
    app, upstream, sink = make_gateway()

    async def go() -> None:
        async with app.running(), client(app) as c:
            r = await c.post("/v1/chat/completions", json=chat_body(stream=True), headers=USER)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            events = parse_sse(r.text)
            assert events[-1] == "[DONE]"
            assert not any('"usage"' in e for e in events)  # asked for on the client's behalf, then dropped
            body = chat_body(stream=True, stream_options={"include_usage": True})
            events = parse_sse((await c.post("/v1/chat/completions", json=body, headers=USER)).text)
            assert orjson.loads(events[-2])["usage"]["completion_tokens"] == 3
            await app.request_log.flush()

    run(go())
    assert upstream.requests[0]["stream_options"] == {"include_usage": True}
    first = sink.records[0]
    assert first["stream"] is True and first["tokens_out"] == 3 and first["ttft_ms"] is not None
    assert all(resp.released for resp in upstream.responses)


def test_a_broken_stream_ends_with_an_error_event_and_no_done() -> None:
    app, upstream, sink = make_gateway()
    cases = iter(
        [
            # the connection breaks after two events
            FakeResponse(200, events=stream_events("base", ["a"], False)[:2], fail=UpstreamError("reset", engine="e")),
            # the engine stops without [DONE]
            FakeResponse(200, events=stream_events("base", ["a"], False)[:2]),
            # the engine sends its own error event, then [DONE]
            FakeResponse(
                200,
                events=[*stream_events("base", ["a"], False)[:2], sse({"error": {"message": "boom"}}), sse(b"[DONE]")],
            ),
            # the read deadline passes
            FakeResponse(200, events=stream_events("base", ["a"], False)[:1], fail=UpstreamTimeoutError("slow")),
        ]
    )
    upstream.respond = lambda req: next(cases)

    async def go() -> None:
        async with app.running(), client(app) as c:
            for _ in range(4):
                r = await c.post("/v1/chat/completions", json=chat_body(stream=True), headers=USER)
                events = parse_sse(r.text)
                assert "[DONE]" not in events
                error = orjson.loads(events[-1])["error"]
                assert set(error) == {"message", "type", "code", "param"}
            assert (await c.get("/healthz")).status_code == 200
            await app.request_log.flush()
            metrics = (await c.get("/metrics")).text
            assert (
                'llmops_gateway_upstream_errors_total{kind="upstream_timeout",route="plain",target="base"} 1.0'
                in metrics
            )

    run(go())
    assert [r["status"] for r in sink.records] == [502, 502, 502, 504]
    assert all(r["error"] for r in sink.records)
    assert all(resp.aborted for resp in upstream.responses)


def test_upstream_errors_map_to_openai_errors() -> None:
    app, upstream, _ = make_gateway()
    answers = iter(
        [
            FakeResponse(
                400, orjson.dumps({"error": {"message": "prompt too long", "param": "messages", "code": 400}})
            ),
            FakeResponse(500, b"Internal Server Error"),
        ]
    )

    def respond(req: dict[str, Any]) -> FakeResponse:
        try:
            return next(answers)
        except StopIteration:
            raise UpstreamTimeoutError("deadline exceeded", engine="e") from None

    upstream.respond = respond

    async def go() -> None:
        async with app.running(), client(app) as c:
            r = await c.post("/v1/chat/completions", json=chat_body(), headers=USER)
            assert r.status_code == 400 and r.json()["error"]["message"] == "prompt too long"
            assert r.json()["error"]["param"] == "messages"
            r = await c.post("/v1/chat/completions", json=chat_body(), headers=USER)
            assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_error"
            r = await c.post("/v1/chat/completions", json=chat_body(stream=True), headers=USER)
            assert r.status_code == 504 and r.json()["error"]["code"] == "upstream_timeout"

    run(go())


# -- disconnects and weight changes in flight -------------------------------------------------------
def test_a_client_disconnect_cancels_the_engine_request() -> None:
    app, upstream, sink = make_gateway()
    upstream.respond = lambda req: FakeResponse(200, events=stream_events("base", ["w"] * 50, True), delay=0.02)
    sent: list[dict[str, Any]] = []

    async def go() -> None:
        async with app.running():
            body = orjson.dumps(chat_body(stream=True))
            messages = [{"type": "http.request", "body": body, "more_body": False}]

            async def receive() -> dict[str, Any]:
                if messages:
                    return messages.pop()
                await asyncio.sleep(0.15)  # the client goes away mid-stream
                return {"type": "http.disconnect"}

            async def send(message: dict[str, Any]) -> None:
                sent.append(message)

            scope = {
                "type": "http",
                "method": "POST",
                "path": "/v1/chat/completions",
                "headers": [(b"authorization", b"Bearer user-key"), (b"content-length", str(len(body)).encode())],
            }
            await asyncio.wait_for(app(scope, receive, send), timeout=5)
            await app.request_log.flush()

    run(go())
    assert upstream.responses[0].aborted  # the engine connection was closed: it stops generating
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert 1 < len(bodies) < 50
    assert sink.records[0]["status"] == 499 and sink.records[0]["error"] == "client disconnected"


def test_weights_change_while_requests_are_in_flight() -> None:
    app, upstream, _ = make_gateway()
    upstream.respond = lambda req: FakeResponse(200, orjson.dumps(completion(req["model"])), delay=0.05)

    async def go() -> None:
        async with app.running(), client(app) as c:

            async def one(i: int) -> httpx.Response:
                return await c.post("/v1/chat/completions", json=chat_body(model="triage", user=f"k{i}"), headers=USER)

            tasks = [asyncio.create_task(one(i)) for i in range(100)]
            await asyncio.sleep(0.01)
            for weights in ({"stable": 50, "canary": 50}, {"stable": 0, "canary": 1}, {"stable": 1, "canary": 0}):
                r = await c.put("/admin/routes/triage", json={"weights": weights}, headers=ADMIN)
                assert r.status_code == 200, r.text
                await asyncio.sleep(0.01)
            responses = await asyncio.gather(*tasks)
            assert all(r.status_code == 200 for r in responses)
            # the last weights hold: everything goes to stable now, and survives a reload
            assert (await c.post("/admin/reload", headers=ADMIN)).status_code == 200
            r = await one(1)
            assert r.headers["x-llmops-target"] == "stable"
            route = (await c.get("/admin/routes/triage", headers=ADMIN)).json()
            assert [t["weight"] for t in route["targets"]] == [1, 0]
            bad = await c.put("/admin/routes/triage", json={"weights": {"stable": 1}}, headers=ADMIN)
            assert bad.status_code == 400 and bad.json()["error"]["param"] == "weights"
            bad = await c.put("/admin/routes/triage", json={"weights": {"stable": 0, "canary": 0}}, headers=ADMIN)
            assert bad.status_code == 400
            assert (await c.put("/admin/routes/nope", json={"weights": {}}, headers=ADMIN)).status_code == 404
            metrics = (await c.get("/metrics")).text
            assert 'llmops_gateway_route_weight{route="triage",target="stable"} 1.0' in metrics

    run(go())


# -- request log, metrics, shadow ------------------------------------------------------------------
def test_request_log_records_and_metrics() -> None:
    app, _, sink = make_gateway()

    async def go() -> None:
        async with app.running(), client(app) as c:
            body = {"model": "triage", "prompt_variables": {"message": "refund please"}, "user": "alice"}
            r = await c.post("/v1/chat/completions", json=body, headers=USER)
            await app.request_log.flush()
            record = sink.records[-1]
            assert record["id"] == r.headers["x-request-id"]
            assert record["api_key"] == "app" and record["route"] == "triage" and record["status"] == 200
            assert record["prompt_version"] == "support-triage/3"
            assert record["adapter_version"] == r.headers["x-llmops-adapter-version"]
            assert record["tokens_in"] == 7 and record["tokens_out"] == 3
            assert record["key_hash"] and "alice" not in orjson.dumps(record).decode()
            text = (await c.get("/metrics")).text
            target = r.headers["x-llmops-target"]
            assert f'llmops_gateway_requests_total{{route="triage",status="200",target="{target}"}} 1.0' in text
            assert f'llmops_gateway_tokens_total{{direction="out",route="triage",target="{target}"}} 3.0' in text
            assert "llmops_gateway_request_seconds_bucket" in text

    run(go())


def test_a_full_request_log_queue_drops_and_counts() -> None:
    cfg = config(request_log={"queue_size": 1})
    app, _, _ = make_gateway(cfg)

    async def go() -> None:
        async with app.running(), client(app) as c:
            app.request_log._task.cancel()  # type: ignore[union-attr]  # a writer that never catches up
            for _ in range(3):
                await c.post("/v1/chat/completions", json=chat_body(), headers=USER)
            assert app.request_log.dropped == 2
            assert "llmops_gateway_request_log_dropped_total 2.0" in (await c.get("/metrics")).text

    run(go())


def test_shadow_gets_a_copy_logged_with_the_primary_id() -> None:
    cfg = config()
    cfg["routes"]["triage"]["shadow"] = {"name": "next", "adapter": "tri@canary", "prompt": "support-triage@production"}
    app, upstream, sink = make_gateway(cfg)

    async def go() -> None:
        async with app.running(), client(app) as c:
            body = {"model": "triage", "prompt_variables": {"message": "hi"}, "stream": True, "user": "bob"}
            r = await c.post("/v1/chat/completions", json=body, headers=USER)
            assert parse_sse(r.text)[-1] == "[DONE]"
            for _ in range(50):
                if app.shadows.in_flight == 0:
                    break
                await asyncio.sleep(0.01)
            await app.request_log.flush()
            shadow = [rec for rec in sink.records if rec.get("shadow_of")]
            assert len(shadow) == 1 and shadow[0]["shadow_of"] == r.headers["x-request-id"]
            assert shadow[0]["target"] == "next" and shadow[0]["output"] == "hello" and shadow[0]["status"] == 200

    run(go())
    copies = [req for req in upstream.requests if not req.get("stream")]
    assert len(copies) == 1 and copies[0]["model"] == "tri-v2-bbbbbbbbbbbb"


# -- resolution --------------------------------------------------------------------------------------
class FlakyResolver(StaticResolver):
    def __init__(self, inner: StaticResolver) -> None:
        super().__init__()
        self.inner = inner
        self.broken = False

    def prompt(self, ref: str) -> ResolvedPrompt:
        if self.broken:
            raise NotFoundError(f"prompt {ref} not found")
        return self.inner.prompt(ref)

    def adapter(self, ref: str) -> ResolvedAdapter:
        return self.inner.adapter(ref)


def test_a_failed_refresh_keeps_the_last_good_routes_and_readiness_reports_it() -> None:
    inner = StaticResolver(
        {"support-triage": triage_prompt()},
        {"tri": ResolvedAdapter("tri", 1, "a" * 64, Path("/a"))},
    )
    resolver = FlakyResolver(inner)
    resolver.broken = True
    upstream = FakeUpstream()
    app, _, _ = make_gateway(resolver=resolver, upstream=upstream)  # type: ignore[arg-type]

    async def go() -> None:
        async with app.running(), client(app) as c:
            r = await c.post("/v1/chat/completions", json=chat_body(model="triage"), headers=USER)
            assert r.status_code == 503 and r.json()["error"]["code"] == "route_unavailable"
            ready = await c.get("/readyz")
            assert ready.status_code == 503 and ready.json() == {"status": "unavailable"}
            status = (await c.get("/admin/status", headers=ADMIN)).json()
            assert status["unresolved_routes"] == ["triage"]
            resolver.broken = False
            summary = (await c.post("/admin/reload", headers=ADMIN)).json()
            assert summary["errors"] == {} and (await c.get("/readyz")).status_code == 200
            resolver.broken = True
            upstream.up = False
            summary = (await c.post("/admin/reload", headers=ADMIN)).json()
            assert "triage" in summary["errors"]
            assert (await c.get("/readyz")).status_code == 503
            r = await c.post("/v1/chat/completions", json=chat_body(model="triage"), headers=USER)
            assert r.status_code == 200  # still served by the last good release set

    run(go())


def test_an_unexpected_error_is_a_well_formed_500_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    app, upstream, sink = make_gateway()

    def broken(req: dict[str, Any]) -> FakeResponse:
        raise RuntimeError("a bug")

    upstream.respond = broken

    async def go() -> None:
        async with app.running(), client(app) as c:
            r = await c.post("/v1/chat/completions", json=chat_body(), headers=USER)
            assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
            assert (await c.get("/healthz")).status_code == 200
            await app.request_log.flush()

    run(go())
    assert sink.records[-1]["status"] == 500
    assert "a bug" in caplog.text


class PointerResolver(StaticResolver):
    """A static table plus release pointers, as `llmops promote` records them."""

    def __init__(self, pointers: dict[tuple[str, str], Release], **kw: Any) -> None:
        super().__init__(**kw)
        self.pointers = pointers

    def release(self, route: str, stage: str) -> Release | None:
        return self.pointers.get((route, stage))


def test_release_stage_targets_follow_the_pointer_and_admins_can_pin_a_target() -> None:
    cfg = config(
        routes={
            "triage": {
                "targets": [
                    {"name": "stable", "weight": 100, "release": "production", "prompt": "support-triage@production"},
                    {"name": "canary", "weight": 0, "release": "canary", "prompt": "support-triage@production"},
                ]
            }
        }
    )
    adapters = {
        "tri/1": ResolvedAdapter("tri", 1, "a" * 64, Path("/adapters/tri/v1")),
        "tri/2": ResolvedAdapter("tri", 2, "b" * 64, Path("/adapters/tri/v2")),
    }
    pointers = {
        ("triage", "production"): Release.of("m", "tri/1", "support-triage/3"),
        ("triage", "canary"): Release.of("m", "tri/2", "support-triage/3"),
    }
    resolver = PointerResolver(pointers, prompts={"support-triage": triage_prompt()}, adapters=adapters)
    app, upstream, _ = make_gateway(cfg, resolver=resolver)

    async def go() -> None:
        async with app.running(), client(app) as c:
            body = {"model": "triage", "prompt_variables": {"message": "refund"}, "user": "u1"}
            r = await c.post("/v1/chat/completions", json=body, headers=USER)
            assert r.headers["x-llmops-target"] == "stable" and r.headers["x-llmops-adapter-version"] == "tri/1"
            pinned = await c.post("/v1/chat/completions", json=body, headers={**ADMIN, "x-llmops-target": "canary"})
            assert pinned.status_code == 200, pinned.text
            assert (
                pinned.headers["x-llmops-target"] == "canary" and pinned.headers["x-llmops-adapter-version"] == "tri/2"
            )
            denied = await c.post("/v1/chat/completions", json=body, headers={**USER, "x-llmops-target": "canary"})
            assert denied.status_code == 403
            unknown = await c.post("/v1/chat/completions", json=body, headers={**ADMIN, "x-llmops-target": "nope"})
            assert unknown.status_code == 400
            # a promotion moves the pointer: the next refresh serves the new release for both refs at once
            resolver.pointers[("triage", "production")] = Release.of("m", "tri/2", "support-triage/3")
            await c.post("/admin/reload", headers=ADMIN)
            r = await c.post("/v1/chat/completions", json=body, headers=USER)
            assert r.headers["x-llmops-adapter-version"] == "tri/2"

    run(go())
    assert upstream.requests[1]["model"] == "tri-v2-bbbbbbbbbbbb"


# -- adapter sync (the fake engine's LoRA endpoints) ------------------------------------------------
def test_adapter_sync_loads_what_routes_need_and_unloads_least_recently_routed() -> None:
    engine = FakeUpstream()
    sync = AdapterSync({"e": engine}, {"e": 2})

    def adapter(v: int) -> ResolvedAdapter:
        return ResolvedAdapter("tri", v, f"{v}" * 64, Path(f"/cache/tri/v{v}"))

    async def go() -> None:
        report = await sync.sync("e", [adapter(1), adapter(2)])
        assert report.loaded == ("tri-v1-111111111111", "tri-v2-222222222222") and report.base_model == "base"
        assert set(engine.adapters) == {"tri-v1-111111111111", "tri-v2-222222222222"}
        await sync.sync("e", [adapter(2)])  # v1 no longer routed, but within capacity: stays warm
        assert set(engine.adapters) == {"tri-v1-111111111111", "tri-v2-222222222222"}
        report = await sync.sync("e", [adapter(3)])
        assert report.loaded == ("tri-v3-333333333333",) and report.unloaded == ("tri-v1-111111111111",)
        assert set(engine.adapters) == {"tri-v2-222222222222", "tri-v3-333333333333"}
        assert sync.known("e") == ["tri-v2-222222222222", "tri-v3-333333333333"]
        engine.adapters.clear()  # the engine restarted: everything needed is loaded again
        report = await sync.sync("e", [adapter(3)])
        assert report.loaded == ("tri-v3-333333333333",)
        assert engine.adapters == {"tri-v3-333333333333": "/cache/tri/v3"}

    asyncio.run(go())


# -- registry faults: last-known-good per target, degraded readiness, nothing leaks -------------------
LEAKY_URI = "postgresql://mlflow:s3cr3t@db.internal:5432/mlflow"
LOCKED = "(sqlite3.OperationalError) database is locked"


class FaultyPointers(PointerResolver):
    """Release pointers whose stage reads fail (as a locked registry does) for the stages in ``failing``."""

    def __init__(self, pointers: dict[tuple[str, str], Release], **kw: Any) -> None:
        super().__init__(pointers, **kw)
        self.failing: set[str] = set()
        self.reads = 0

    def release(self, route: str, stage: str) -> Release | None:
        self.reads += 1
        if stage in self.failing:
            raise RegistryError(f"cannot read the {stage} release of route {route}: {LOCKED}", uri=LEAKY_URI)
        return super().release(route, stage)


def staged_config() -> dict[str, Any]:
    """Two targets following release stages, each with configured fallback refs (tri@production / tri@canary)."""
    targets = [
        {"name": "stable", "weight": 100, "release": "production", "adapter": "tri@production"},
        {"name": "canary", "weight": 0, "release": "canary", "adapter": "tri@canary"},
    ]
    return config(routes={"triage": {"targets": targets}})


def faulty_pointers() -> FaultyPointers:
    adapters = {f"tri/{v}": ResolvedAdapter("tri", v, f"{v}" * 64, Path(f"/adapters/tri/v{v}")) for v in (1, 2, 3)}
    # the configured fallbacks resolve to versions no release names: serving one of them would show a fallback
    adapters["tri@production"] = ResolvedAdapter("tri", 8, "8" * 64, Path("/adapters/tri/v8"))
    adapters["tri@canary"] = ResolvedAdapter("tri", 9, "9" * 64, Path("/adapters/tri/v9"))
    pointers = {("triage", "production"): Release.of("m", "tri/1"), ("triage", "canary"): Release.of("m", "tri/2")}
    return FaultyPointers(pointers, adapters=adapters)


async def served_by(c: httpx.AsyncClient, target: str) -> str:
    """The adapter version a request pinned to ``target`` is served with (header x-llmops-adapter-version)."""
    r = await c.post(
        "/v1/chat/completions", json=chat_body(model="triage"), headers={**ADMIN, "x-llmops-target": target}
    )
    assert r.status_code == 200, r.text
    return r.headers["x-llmops-adapter-version"]


def test_a_registry_failure_keeps_that_target_on_its_last_known_good_and_readiness_says_degraded() -> None:
    resolver = faulty_pointers()
    app, upstream, _ = make_gateway(staged_config(), resolver=resolver)  # type: ignore[arg-type]

    async def go() -> None:
        async with app.running(), client(app) as c:
            assert await served_by(c, "stable") == "tri/1" and await served_by(c, "canary") == "tri/2"
            assert (await c.get("/readyz")).json() == {"status": "ok"}
            # the registry fails reading production, while canary moves on: each target is judged alone
            resolver.failing = {"production"}
            resolver.pointers[("triage", "canary")] = Release.of("m", "tri/3")
            await c.post("/admin/reload", headers=ADMIN)
            assert await served_by(c, "stable") == "tri/1"  # last-known-good: not the fallback tri@production (v8)
            assert await served_by(c, "canary") == "tri/3"
            assert "tri-v1-111111111111" in upstream.adapters  # the adapter it keeps serving stays loaded
            ready = await c.get("/readyz")
            assert ready.status_code == 200 and ready.json() == {"status": "degraded"}
            status = (await c.get("/admin/status", headers=ADMIN)).json()
            assert status["status"] == "degraded" and status["stale_targets"] == {"triage": ["stable"]}
            assert "database is locked" in status["errors"]["triage"] and "s3cr3t" not in str(status)
            assert (await c.get("/admin/status", headers=USER)).status_code == 403
            metrics = (await c.get("/metrics")).text
            failures = 'llmops_gateway_resolve_failures_total{kind="registry",route="triage",target="stable"}'
            assert f"{failures} 1.0" in metrics and "llmops_gateway_degraded 1.0" in metrics
            await c.post("/admin/reload", headers=ADMIN)  # still failing: counted again, still last-known-good
            assert f"{failures} 2.0" in (await c.get("/metrics")).text
            assert await served_by(c, "stable") == "tri/1"
            # recovery
            resolver.failing = set()
            await c.post("/admin/reload", headers=ADMIN)
            assert (await c.get("/readyz")).json() == {"status": "ok"}
            assert "llmops_gateway_degraded 0.0" in (await c.get("/metrics")).text
            # a real "not found" (no release recorded at the stage) is the one case that falls back
            del resolver.pointers[("triage", "production")]
            await c.post("/admin/reload", headers=ADMIN)
            assert await served_by(c, "stable") == "tri/8"
            assert (await c.get("/readyz")).json() == {"status": "ok"}

    run(go())


def test_a_route_that_never_resolved_is_unavailable_and_public_answers_leak_nothing() -> None:
    resolver = faulty_pointers()
    resolver.failing = {"production", "canary"}
    app, _, _ = make_gateway(staged_config(), resolver=resolver)  # type: ignore[arg-type]

    async def go() -> None:
        async with app.running(), client(app) as c:
            ready = await c.get("/readyz")
            assert ready.status_code == 503 and ready.json() == {"status": "unavailable"}
            r = await c.post("/v1/chat/completions", json=chat_body(model="triage"), headers=USER)
            assert r.status_code == 503 and r.json()["error"]["code"] == "route_unavailable"
            assert r.json()["error"]["message"] == "route triage is not available"
            status = await c.get("/admin/status", headers=ADMIN)
            assert status.status_code == 503 and status.json()["unresolved_routes"] == ["triage"]
            for leaked in ("s3cr3t", "db.internal", "database is locked", "tri-v", "http://fake"):
                assert leaked not in ready.text and leaked not in r.text, leaked
            resolver.failing = set()  # the registry is back: the route resolves (no fallback was ever served)
            await c.post("/admin/reload", headers=ADMIN)
            assert (await c.get("/readyz")).json() == {"status": "ok"}
            assert await served_by(c, "stable") == "tri/1"

    run(go())


def test_engine_failures_answer_5xx_bodies_without_hosts_or_lora_names() -> None:
    app, upstream, sink = make_gateway()

    def refused(req: dict[str, Any]) -> FakeResponse:
        raise UpstreamError(f"request failed: ClientConnectorError('127.0.0.1:8011') for {req['model']}", engine="e")

    upstream.respond = refused

    async def go() -> None:
        async with app.running(), client(app) as c:
            body = chat_body(model="triage", prompt_variables={"message": "refund"})
            r = await c.post("/v1/chat/completions", json=body, headers=USER)
            assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_error"
            assert "127.0.0.1" not in r.text and "tri-v" not in r.text
            await app.request_log.flush()
            record = sink.records[-1]
            assert record["id"] == r.headers["x-request-id"] and "127.0.0.1:8011" in record["error"]

    run(go())


def test_readiness_probes_share_a_cached_engine_check() -> None:
    upstream = FakeUpstream()
    checks = 0
    healthy = upstream.healthy

    async def counted() -> bool:
        nonlocal checks
        checks += 1
        return await healthy()

    upstream.healthy = counted  # type: ignore[method-assign]
    app, _, _ = make_gateway(upstream=upstream)

    async def go() -> None:
        async with app.running(), client(app) as c:
            before = checks
            answers = await asyncio.gather(*(c.get("/readyz") for _ in range(50)))
            assert {a.json()["status"] for a in answers} == {"ok"}
            assert checks - before <= 1

    run(go())


def test_after_a_failed_reload_the_refresher_recovers_by_itself() -> None:
    resolver = faulty_pointers()
    cfg = {**staged_config(), "refresh": {"interval_s": 600}}
    app, _, _ = make_gateway(cfg, resolver=resolver)  # type: ignore[arg-type]

    async def go() -> None:
        async with app.running(), client(app) as c:
            resolver.failing = {"production"}
            await c.post("/admin/reload", headers=ADMIN)
            assert (await c.get("/readyz")).json() == {"status": "degraded"}
            resolver.failing = set()  # no reload from here on: the background refresher retries soon (not in 600 s)
            for _ in range(200):
                if (await c.get("/readyz")).json() == {"status": "ok"}:
                    break
                await asyncio.sleep(0.1)
            assert (await c.get("/readyz")).json() == {"status": "ok"}

    run(go())
