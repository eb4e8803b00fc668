"""Engines demand an API key (issue 12, item 9) and adapters are loaded under names carrying their digest.

The engine here is a small aiohttp app on loopback that checks ``Authorization`` the way vLLM's
``--api-key`` middleware does (401 on ``/v1/*`` without the key) and keeps adapters by name, like
``/v1/load_lora_adapter``.
"""

from __future__ import annotations

import asyncio
import stat
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from llmops.config.gateway import GatewayFile
from llmops.engine import EngineSettings, engine_argv, engine_env
from llmops.engine.client import EngineClient, HttpxTransport
from llmops.engine.keys import ENGINE_KEY_ENV, client_key, engine_key_path, serve_key
from llmops.engine.local import attach
from llmops.errors import ServerError, UpstreamError
from llmops.gateway.adapters import AdapterSync
from llmops.gateway.resolver import ResolvedAdapter
from llmops.gateway.settings import settings_from_file
from llmops.gateway.upstream import AiohttpUpstream
from llmops.process import free_port
from llmops.registry.adapters import lora_name

KEY = "engine-test-key"


@asynccontextmanager
async def keyed_engine(adapters: dict[str, str]) -> AsyncIterator[str]:
    """A loopback engine demanding ``KEY`` on /v1/*; ``adapters`` (name -> path) is its LoRA table."""

    @web.middleware
    async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/v1") and request.headers.get("authorization") != f"Bearer {KEY}":
            return web.json_response({"error": "Unauthorized"}, status=401)
        return await handler(request)

    async def models(_: web.Request) -> web.Response:
        cards = [{"id": "base"}] + [{"id": n, "parent": "base"} for n in adapters]
        return web.json_response({"data": cards})

    async def load(request: web.Request) -> web.Response:
        body = await request.json()
        adapters[body["lora_name"]] = body["lora_path"]
        return web.json_response({})

    async def chat(request: web.Request) -> web.Response:
        return web.json_response({"model": (await request.json())["model"]})

    app = web.Application(middlewares=[auth])
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/load_lora_adapter", load)
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def test_the_engine_gets_its_key_in_the_environment_not_on_the_command_line() -> None:
    settings = EngineSettings(model="/models/ref", api_key=KEY)
    assert engine_env(settings, {}, device="cpu")["VLLM_API_KEY"] == KEY  # vLLM's own variable for --api-key
    assert KEY not in " ".join(engine_argv(settings, device="cpu"))  # ps shows argv to every local user
    assert KEY not in repr(settings)


def test_serve_engine_key_is_generated_once_private_and_an_env_var_wins(tmp_path: Path) -> None:
    key, path = serve_key(tmp_path, "local", env={})
    assert path == engine_key_path(tmp_path, "local") == tmp_path / "engines" / "local.key"
    assert len(key) >= 40 and path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert serve_key(tmp_path, "local", env={})[0] == key  # restarts keep it: gateways keep working
    assert serve_key(tmp_path, "other", env={})[0] != key
    assert serve_key(tmp_path, "local", env={ENGINE_KEY_ENV: "given"})[0] == "given"
    assert client_key(tmp_path, "local", None, env={}) == "given"  # written where clients look
    assert client_key(tmp_path, "local", "MY_KEY", env={"MY_KEY": "from-env"}) == "from-env"
    assert client_key(tmp_path, "local", "MY_KEY", env={}) == "given"
    assert client_key(tmp_path, "nowhere", None, env={}) is None


def test_gateway_settings_read_each_engines_key(tmp_path: Path) -> None:
    serve_key(tmp_path, "a", env={ENGINE_KEY_ENV: "key-a"})
    spec = GatewayFile.model_validate(
        {
            "engines": {"a": {"url": "http://127.0.0.1:1"}, "b": {"url": "http://127.0.0.1:2", "api_key_env": "B"}},
            "routes": {"r": {"targets": [{"name": "t", "weight": 1, "engine": "a"}]}},
            "auth": {"enabled": False},
        }
    )
    assert settings_from_file(spec, home=tmp_path, env={"B": "key-b"}).engine_keys == {"a": "key-a", "b": "key-b"}
    assert settings_from_file(spec, home=tmp_path, env={}).engine_keys == {"a": "key-a"}


def test_the_gateway_and_the_engine_client_send_the_key() -> None:
    async def go() -> None:
        async with keyed_engine({}) as url:
            without = EngineClient("e", HttpxTransport(url))
            with pytest.raises(UpstreamError, match="401"):
                await without.models()
            await EngineClient("e", HttpxTransport(url, api_key=KEY)).load_adapter("x-v1-0123456789ab", Path("/a"))
            upstream = AiohttpUpstream("e", url, api_key=KEY)
            await upstream.start()
            try:
                assert (await EngineClient("e", upstream).models()).adapters == {"x-v1-0123456789ab"}
                resp = await upstream.chat(b'{"model": "base"}', request_id="r1")
                assert resp.status == 200 and b"base" in await resp.read()
            finally:
                await upstream.close()

    asyncio.run(go())


def test_adapters_are_loaded_under_a_name_that_carries_their_digest() -> None:
    sha = "0123456789abcdef" * 4
    adapter = ResolvedAdapter("tri", 1, sha, Path("/cache/tri/v1"))
    assert adapter.lora_name == lora_name("tri", 1, sha) == "tri-v1-0123456789ab"
    # someone loaded other weights under the plain version name: the gateway must not take them for v1
    engine_adapters = {"tri-v1": "/tmp/evil"}

    async def go() -> None:
        async with keyed_engine(engine_adapters) as url:
            upstream = AiohttpUpstream("e", url, api_key=KEY)
            await upstream.start()
            try:
                report = await AdapterSync({"e": upstream}, {"e": 4}).sync("e", [adapter])
            finally:
                await upstream.close()
        assert report.loaded == ("tri-v1-0123456789ab",)

    asyncio.run(go())
    assert engine_adapters["tri-v1-0123456789ab"] == "/cache/tri/v1"


def test_attach_sends_the_engine_key_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``llmops eval run --endpoint URL`` attaches with ``LLMOPS_ENGINE_KEY`` and loads adapters with it."""
    ready, done = threading.Event(), threading.Event()
    found: dict[str, str] = {}
    adapters: dict[str, str] = {}

    async def serve() -> None:
        async with keyed_engine(adapters) as url:
            found["url"] = url
            ready.set()
            await asyncio.get_running_loop().run_in_executor(None, done.wait)

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    try:
        assert ready.wait(30)
        monkeypatch.delenv(ENGINE_KEY_ENV, raising=False)
        with pytest.raises(ServerError, match="API key"):
            attach(found["url"])
        monkeypatch.setenv(ENGINE_KEY_ENV, KEY)
        endpoint = attach(found["url"])
        assert endpoint.base_model_name == "base" and KEY not in repr(endpoint)
        endpoint.ensure_adapter("tri-v1-0123456789ab", tmp_path)
        assert adapters == {"tri-v1-0123456789ab": str(tmp_path)}
    finally:
        done.set()
        thread.join(30)
