"""The gateway reads requests exactly as the engine would, and is safe to deploy.

Every boolean, integer and number parameter is strictly typed (vLLM would read ``"stream": 1`` as a
stream, ``"include_usage": "false"`` as true); an open (auth-less) gateway only binds to loopback; the
sticky hash is keyed with a per-deployment secret, so ``user`` values cannot be ground onto a canary.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from llmops.cli.main import app as cli
from llmops.config.gateway import GatewayFile
from llmops.gateway.routing import bounds, digest_point, key_digest, pick
from llmops.gateway.settings import settings_from_file

USER = {"authorization": "Bearer user-key"}
URL = "/v1/chat/completions"


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": "plain", "messages": [{"role": "user", "content": "hi"}], **extra}


def post_all(make_echo_gateway: Callable[..., Any], bodies: list[dict[str, Any]]) -> tuple[list[httpx.Response], Any]:
    gateway, engine = make_echo_gateway()

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=gateway)
        async with gateway.running(), httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
            return [await c.post(URL, json=b, headers=USER) for b in bodies]

    return asyncio.run(go()), engine


# -- strict types ---------------------------------------------------------------------------------
def test_stream_1_is_refused_not_answered_as_json(make_echo_gateway: Callable[..., Any]) -> None:
    # before: vLLM streamed, the gateway took the unary path (an SSE body sent as JSON, no token accounting)
    (r,), engine = post_all(make_echo_gateway, [chat(stream=1)])
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "stream" and r.json()["error"]["code"] == "invalid_type"
    assert engine.requests == []


def test_include_usage_as_a_string_is_refused(make_echo_gateway: Callable[..., Any]) -> None:
    # before: bool("false") is True for the gateway; the usage chunk it then passed on evaded its accounting
    (r,), engine = post_all(make_echo_gateway, [chat(stream=True, stream_options={"include_usage": "false"})])
    assert r.status_code == 400 and r.json()["error"]["param"] == "stream_options.include_usage"
    assert engine.requests == []


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("stream", "true"),
        ("n", True),
        ("max_tokens", "16"),
        ("max_tokens", 16.0),
        ("max_completion_tokens", True),
        ("top_logprobs", 1.5),
        ("seed", "7"),
        ("top_k", False),
        ("min_tokens", "1"),
        ("logprobs", 1),
        ("ignore_eos", "on"),
        ("skip_special_tokens", 0),
        ("include_stop_str_in_output", "yes"),
        ("parallel_tool_calls", 1),
        ("store", "false"),
        ("temperature", "0.5"),
        ("temperature", True),
        ("top_p", [1]),
        ("presence_penalty", "0"),
        ("frequency_penalty", False),
        ("repetition_penalty", "1.1"),
        ("min_p", True),
        ("length_penalty", "1"),
        ("stop", 5),
        ("stop_token_ids", [1, True]),
        ("logit_bias", {"42": "1"}),
        ("user", 5),
    ],
)
def test_every_typed_parameter_is_strict(make_echo_gateway: Callable[..., Any], param: str, value: Any) -> None:
    (r,), engine = post_all(make_echo_gateway, [chat(**{param: value})])
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert param in error["message"]
    assert engine.requests == []


def test_well_typed_requests_pass_unchanged(make_echo_gateway: Callable[..., Any]) -> None:
    typed = chat(
        n=1, max_tokens=8, temperature=0, top_p=0.9, seed=3, logprobs=True, top_logprobs=2, top_k=5, min_p=0.1,
        ignore_eos=False, skip_special_tokens=True, stop=["\n"], stop_token_ids=[2], logit_bias={"5": -1.5},
        presence_penalty=None, user="u1",
    )  # fmt: skip
    streamed = chat(stream=True, stream_options={"include_usage": True, "continuous_usage_stats": False})
    rs, engine = post_all(make_echo_gateway, [typed, streamed, chat(stream=None, stream_options=None)])
    assert [r.status_code for r in rs] == [200, 200, 200]
    assert engine.requests[0]["logit_bias"] == {"5": -1.5} and engine.requests[0]["temperature"] == 0
    assert rs[1].headers["content-type"].startswith("text/event-stream") and '"usage"' in rs[1].text
    assert rs[2].headers["content-type"] == "application/json"
    (bad,), _ = post_all(make_echo_gateway, [chat(stream=True, stream_options={"include_obfuscation": True})])
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "unsupported_parameter"


# -- an open gateway binds to loopback only ------------------------------------------------------------
OPEN = {"engines": {"e": {"url": "http://x"}}, "routes": {"r": {"targets": [{"name": "a", "weight": 1}]}}}


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "gateway.example.com"])
def test_auth_off_needs_a_loopback_host(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        GatewayFile.model_validate({**OPEN, "auth": {"enabled": False}, "server": {"host": host}})
    GatewayFile.model_validate({**OPEN, "server": {"host": host}})  # with keys: any host


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_auth_off_on_loopback_is_fine(host: str) -> None:
    assert not GatewayFile.model_validate({**OPEN, "auth": {"enabled": False}, "server": {"host": host}}).auth.enabled


def test_serve_gateway_refuses_a_public_host_option_without_auth(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import uvicorn

    started: list[Any] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: started.append(self.config))
    config = tmp_path / "gateway.yaml"
    config.write_text("engines: {e: {url: 'http://x'}}\nroutes: {r: {targets: [{name: a, weight: 1}]}}\n"
                      "auth: {enabled: false}\n")  # fmt: skip
    runner = CliRunner()
    args = ["serve", "gateway", "--config", str(config), "-w", str(tmp_path)]
    result = runner.invoke(cli, [*args, "--host", "0.0.0.0"], env={})
    assert result.exit_code == 2 and "loopback" in result.output
    assert started == []
    assert runner.invoke(cli, [*args, "--host", "127.0.0.1"], env={}).exit_code == 0
    assert started[0].host == "127.0.0.1"


# -- the sticky hash is keyed -------------------------------------------------------------------------
def test_sticky_secret_is_shared_per_home_and_env(tmp_path: Path) -> None:
    spec = GatewayFile.model_validate({**OPEN, "auth": {"enabled": False}})
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = settings_from_file(spec, home=tmp_path / "a", env={}).sticky_secret
    two = settings_from_file(spec, home=tmp_path / "a", env={}).sticky_secret  # a second replica, same home
    other = settings_from_file(spec, home=tmp_path / "b", env={}).sticky_secret
    assert one == two and one != other and len(one) == 32
    secret_file = tmp_path / "a" / "secrets" / "sticky-secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    from_env = settings_from_file(spec, home=tmp_path / "c", env={"LLMOPS_STICKY_SECRET": "s3cret"}).sticky_secret
    assert (
        from_env == settings_from_file(spec, home=tmp_path / "d", env={"LLMOPS_STICKY_SECRET": "s3cret"}).sticky_secret
    )
    assert not (tmp_path / "c").exists()  # the variable wins: no file written
    # no home (library use): a secret of this process only, and nothing written
    assert settings_from_file(spec, home=tmp_path / "e", env={}).sticky_secret != one
    assert not (tmp_path / "e").exists()
    assert "s3cret" not in repr(settings_from_file(spec, home=tmp_path, env={"LLMOPS_STICKY_SECRET": "s3cret"}))


def test_users_ground_on_the_public_hash_do_not_land_on_the_canary(make_echo_gateway: Callable[..., Any]) -> None:
    weights = [90, 10]
    upper = bounds(weights)
    # what an attacker computes offline with the unkeyed hash: user values that "land on the canary"
    ground = [u for u in (f"user-{i}" for i in range(5000)) if pick(digest_point(key_digest(u, "r")), upper, weights)]
    ground = ground[:200]
    assert len(ground) == 200
    routes = {"r": {"targets": [{"name": "stable", "weight": 90}, {"name": "canary", "weight": 10}]}}
    gateway, _ = make_echo_gateway(routes={**routes, "plain": {"targets": [{"name": "base", "weight": 1}]}})
    replica, _ = make_echo_gateway(routes={**routes, "plain": {"targets": [{"name": "base", "weight": 1}]}})

    async def targets(gw: Any) -> list[str]:
        transport = httpx.ASGITransport(app=gw)
        async with gw.running(), httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
            out = []
            for u in ground:
                r = await c.post(URL, json=chat(model="r", user=u), headers=USER)
                out.append(r.headers["x-llmops-target"])
            return out

    seen = asyncio.run(targets(gateway))
    assert seen.count("canary") < 60  # ~10% (20 expected); the unkeyed hash sent all 200 there
    assert asyncio.run(targets(replica)) == seen  # replicas sharing the secret agree
