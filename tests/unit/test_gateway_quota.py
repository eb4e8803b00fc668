"""No key can exhaust the gateway: per-key concurrency and rate limits (429 with Retry-After), and a
bounded wait for a pooled engine connection (503 ``engine_busy``) instead of an unbounded hang."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from llmops.config.gateway import GatewayFile
from llmops.errors import RateLimitError
from llmops.gateway.app import build_app
from llmops.gateway.quota import KeyQuota
from llmops.gateway.resolver import StaticResolver
from llmops.gateway.settings import settings_from_file
from llmops.process import free_port

USER = {"authorization": "Bearer user-key"}
OTHER = {"authorization": "Bearer other-key"}
URL = "/v1/chat/completions"
BODY = {"model": "plain", "messages": [{"role": "user", "content": "hi"}]}


def test_one_key_cannot_hold_every_slot(make_echo_gateway: Callable[..., Any]) -> None:
    gateway, engine = make_echo_gateway(limits={"per_key_max_concurrent": 2})
    engine.hold = asyncio.Event()

    async def go() -> tuple[httpx.Response, list[httpx.Response], httpx.Response]:
        transport = httpx.ASGITransport(app=gateway)
        async with gateway.running(), httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
            held = [asyncio.create_task(c.post(URL, json=BODY, headers=USER)) for _ in range(2)]
            other = asyncio.create_task(c.post(URL, json=BODY, headers=OTHER))
            while len(engine.requests) < 3:
                await asyncio.sleep(0.01)
            # before: this request waited behind the key's others, unboundedly
            refused = await asyncio.wait_for(c.post(URL, json=BODY, headers=USER), 5)
            engine.hold.set()
            done = await asyncio.gather(*held, other)
            again = await c.post(URL, json=BODY, headers=USER)  # slots are given back
            return refused, list(done), again

    refused, done, again = asyncio.run(go())
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    error = refused.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and "'app'" in error["message"] and "in flight" in error["message"]
    assert [r.status_code for r in done] == [200, 200, 200] and again.status_code == 200
    assert len(engine.requests) == 4


def test_a_key_over_its_rate_gets_429_with_retry_after(make_echo_gateway: Callable[..., Any]) -> None:
    gateway, engine = make_echo_gateway(limits={"per_key_rps": 0.5, "per_key_burst": 2})

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=gateway)
        async with gateway.running(), httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
            return [await c.post(URL, json=BODY, headers=h) for h in (USER, USER, USER, OTHER)]

    first, second, third, other = asyncio.run(go())
    assert [first.status_code, second.status_code, other.status_code] == [200, 200, 200]
    assert third.status_code == 429 and third.json()["error"]["code"] == "rate_limit_exceeded"
    assert third.headers["retry-after"] == "2"  # one token at 0.5/s
    assert len(engine.requests) == 3


def test_token_bucket_refills_with_time() -> None:
    now = [0.0]
    quota = KeyQuota(rps=2, burst=1, max_concurrent=1, clock=lambda: now[0])
    quota.acquire("k")
    with pytest.raises(RateLimitError, match="in flight"):
        quota.acquire("k")  # concurrency first: nothing counted
    quota.release("k")
    with pytest.raises(RateLimitError, match="2 requests per second") as info:
        quota.acquire("k")
    assert info.value.retry_after == 1
    now[0] = 0.5
    quota.acquire("k")
    quota.release("k")
    assert quota.in_flight("k") == 0 and not KeyQuota().enabled


# -- the engine connection pool ------------------------------------------------------------------------
def test_a_full_engine_pool_answers_503_after_the_pool_timeout(tmp_path: Path) -> None:
    async def go() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        release = asyncio.Event()

        async def completions(request: web.Request) -> web.Response:
            body = await request.json()
            if body["messages"][0]["content"] == "hold":
                await release.wait()
            usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
            message = {"role": "assistant", "content": "ok"}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            return web.json_response({"id": "c", "object": "chat.completion", "created": 1, "model": "base",
                                      "choices": [choice], "usage": usage})  # fmt: skip

        async def models(request: web.Request) -> web.Response:
            return web.json_response({"object": "list", "data": [{"id": "base", "parent": None}]})

        engine_app = web.Application()
        engine_app.router.add_post("/v1/chat/completions", completions)
        engine_app.router.add_get("/v1/models", models)
        runner = web.AppRunner(engine_app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        spec = GatewayFile.model_validate(
            {
                "engines": {"e": {"url": f"http://127.0.0.1:{port}", "model": "base", "max_connections": 1,
                                  "sync_adapters": False}},
                "routes": {"plain": {"targets": [{"name": "base", "weight": 1}]}},
                "auth": {"keys": [{"name": "app", "env": "K"}, {"name": "other", "env": "O"}]},
                "limits": {"pool_timeout_s": 0.3},
                "request_log": {"enabled": False},
            }
        )  # fmt: skip
        env = {"K": "user-key", "O": "other-key", "LLMOPS_STICKY_SECRET": "s"}
        gateway = build_app(settings_from_file(spec, home=tmp_path, env=env), StaticResolver())
        transport = httpx.ASGITransport(app=gateway)
        try:
            async with gateway.running(), httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
                hold = {**BODY, "messages": [{"role": "user", "content": "hold"}]}
                holding = asyncio.create_task(c.post(URL, json=hold, headers=USER))
                await asyncio.sleep(0.2)  # it holds the only connection
                # before: this waited for the pool with no deadline
                busy = await asyncio.wait_for(c.post(URL, json=BODY, headers=OTHER), 5)
                release.set()
                held = await holding
                after = await c.post(URL, json=BODY, headers=OTHER)  # the connection is back in the pool
                return busy, held, after
        finally:
            await runner.cleanup()

    busy, held, after = asyncio.run(go())
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
    assert busy.json()["error"]["code"] == "engine_busy" and "127.0.0.1" not in busy.text
    assert "engine e" not in busy.text
    assert held.status_code == 200 and after.status_code == 200
