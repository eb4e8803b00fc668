"""Gateway parts on their own: config schema, prompt compilation, SSE relay, request log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from llmops.config.gateway import GatewayFile, load_gateway_file
from llmops.errors import ConfigError, RenderError, ValidationFailed
from llmops.gateway.prompting import CompiledPrompt
from llmops.gateway.requestlog import JsonlSink, RequestLog
from llmops.gateway.resolver import ResolvedAdapter, ResolvedPrompt, StaticResolver
from llmops.gateway.settings import hash_key, settings_from_file
from llmops.gateway.streaming import StreamResult, relay
from llmops.prompts.render import render_messages
from llmops.prompts.spec import load_spec
from llmops.validate import validate_workspace

REPO = Path(__file__).resolve().parents[2]


# -- config ---------------------------------------------------------------------------------------
def test_the_example_gateway_config_is_valid() -> None:
    spec = load_gateway_file(REPO / "serving" / "gateway.yaml")
    route = spec.routes["support-triage"]
    assert [(t.name, t.weight, t.release, t.prompt) for t in route.targets] == [
        ("stable", 90, "production", "support-triage@production"),
        ("canary", 10, "canary", "support-triage@production"),
    ]
    env = {"LLMOPS_GATEWAY_KEY": "k1", "LLMOPS_GATEWAY_ADMIN_KEY": "k2", "LLMOPS_STICKY_SECRET": "s"}
    settings = settings_from_file(spec, home=Path("/h"), env=env)
    assert settings.keys[hash_key("k1")].scope == "user" and settings.keys[hash_key("k2")].is_admin
    assert "k1" not in repr(settings)
    assert settings.request_log_path == Path("/h/logs/gateway-requests.jsonl")


def test_config_errors_name_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "engines:\n  e: {url: 'http://x'}\n  f: {url: 'http://y'}\nroutes:\n  Bad_Name:\n    targets: []\n"
        "  ok:\n    targets:\n      - {name: a, weight: 1, adapter: 'x@1'}\n      - {name: a, weight: 0}\n"
    )
    with pytest.raises(ValidationFailed) as info:
        load_gateway_file(path, display="serving/gateway.yaml")
    text = str(info.value)
    assert "serving/gateway.yaml:5 [routes.Bad_Name.[key]]: String should match pattern" in text
    assert "[routes.ok.targets.0.adapter]" in text and "invalid alias" in text


def test_unknown_engine_and_missing_keys_are_reported(tmp_path: Path) -> None:
    base = {"engines": {"e": {"url": "http://x"}}, "routes": {"r": {"targets": [{"name": "a", "weight": 1}]}}}
    with pytest.raises(ValueError, match="unknown engine"):
        GatewayFile.model_validate(
            {**base, "routes": {"r": {"targets": [{"name": "a", "weight": 1, "engine": "nope"}]}}}
        )
    spec = GatewayFile.model_validate({**base, "auth": {"keys": [{"name": "k", "env": "UNSET_KEY"}]}})
    with pytest.raises(ConfigError, match="UNSET_KEY"):
        settings_from_file(spec, home=tmp_path, env={})
    open_spec = GatewayFile.model_validate({**base, "auth": {"enabled": False}})
    assert settings_from_file(open_spec, home=tmp_path, env={}).auth_enabled is False


def test_validate_checks_serving_files(tmp_path: Path) -> None:
    (tmp_path / "serving").mkdir()
    (tmp_path / "serving" / "gateway.yaml").write_text("engines: {}\nroutes: {}\nlimits: {max_n: 0}\n")
    _, problems = validate_workspace(tmp_path)
    fields = {p.field for p in problems}
    assert {"engines", "routes", "limits.max_n"} <= fields


# -- prompts ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["support-triage", "support-reply"])
def test_compiled_prompts_render_exactly_like_the_library(name: str) -> None:
    spec = load_spec(REPO / "prompts" / f"{name}.yaml")
    values = {"message": "Where is order 12? {{7*7}}", "customer_name": "Ann", "tone": "formal"}
    values = {k: v for k, v in values.items() if k in spec.variables}
    compiled = CompiledPrompt(ResolvedPrompt(name, 4, spec))
    assert compiled.render(values) == render_messages(spec, values, version=4)
    with pytest.raises(RenderError, match=f"prompt {name} v4"):
        compiled.render({**values, "unknown": 1})
    with pytest.raises(RenderError, match="exceeds"):
        compiled.render(values, max_chars=10)


def test_static_resolver_falls_back_to_names(tmp_path: Path) -> None:
    resolver = StaticResolver.from_prompt_dir(REPO / "prompts")
    assert resolver.prompt("support-triage@production").spec.name == "support-triage"
    adapter = ResolvedAdapter("tri", 3, "0" * 64, None)
    assert StaticResolver(adapters={"tri": adapter}).adapter("tri@canary").lora_name == "tri-v3-000000000000"


# -- streaming relay -----------------------------------------------------------------------------------
async def _chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


def _relay(parts: list[bytes], strip_usage: bool = False) -> tuple[list[bytes], StreamResult]:
    sent: list[bytes] = []

    async def send(message: Any) -> None:
        sent.append(message["body"])

    result = StreamResult()
    asyncio.run(relay(_chunks(parts), send, strip_usage=strip_usage, result=result))
    return sent, result


def test_events_are_forwarded_as_soon_as_they_are_complete() -> None:
    a = b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n'
    b = b'data: {"choices":[{"delta":{"content":"b"}}]}\n\n'
    usage = b'data: {"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":2}}\n\n'
    done = b"data: [DONE]\n\n"
    # an event split across reads waits for its end; two events in one read go out together
    sent, result = _relay([a[:10], a[10:] + b[:5], b[5:], usage + done], strip_usage=True)
    assert sent == [a, b, done, b""]
    assert result.done and result.usage == {"prompt_tokens": 2, "completion_tokens": 2}
    sent, _ = _relay([a + b, usage, done])
    assert sent == [a + b, usage, done, b""]


def test_a_stream_without_done_ends_with_an_error_event() -> None:
    sent, result = _relay([b'data: {"choices":[]}\n\n', b'data: {"choi'])
    assert b"[DONE]" not in b"".join(sent)
    last = orjson.loads(sent[-1].removeprefix(b"data: "))
    assert last["error"]["code"] == "upstream_error" and result.error


# -- request log --------------------------------------------------------------------------------------
def test_request_log_appends_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "requests.jsonl"

    async def go() -> None:
        before = len(path.read_text().splitlines()) if path.exists() else 0
        log = RequestLog(JsonlSink(path), queue_size=100)
        log.start()
        for i in range(5):
            log.submit({"id": str(i), "status": 200})
        await log.flush()
        assert len(path.read_text().splitlines()) == before + 5
        log.submit({"id": "5"})
        await log.stop()

    asyncio.run(go())
    asyncio.run(go())  # a second gateway run appends
    ids = [orjson.loads(line)["id"] for line in path.read_text().splitlines()]
    assert ids == [str(i) for i in range(6)] * 2


@pytest.mark.parametrize(
    ("template", "plain"),
    [
        ("Hello {{ name }}!", True),
        ("{{- name -}}  \n  tail\n", True),
        ("static text only\n", True),
        ("{{ name }}{{ count }}", True),
        ("{% if count %}{{ name }}{% endif %}", False),
        ("{{ name|upper }}", False),
        ("{{ name.upper() }}", False),
        ("{# comment #}{{ name }}", True),
    ],
)
def test_fast_path_renders_like_jinja(template: str, plain: bool) -> None:
    from llmops.gateway.prompting import plain_segments
    from llmops.prompts.sandbox import make_environment
    from llmops.prompts.spec import PromptSpec

    spec = PromptSpec.model_validate(
        {
            "name": "t",
            "messages": [{"role": "user", "content": template}],
            "variables": {"name": {"type": "string"}, "count": {"type": "integer", "required": False, "default": 3}},
        }
    )
    assert (plain_segments(make_environment(), template) is not None) == plain
    compiled = CompiledPrompt(ResolvedPrompt("t", 1, spec))
    for values in ({"name": "Ann {{7*7}}"}, {"name": "x", "count": 0}):
        assert compiled.render(values) == render_messages(spec, values, version=1)
