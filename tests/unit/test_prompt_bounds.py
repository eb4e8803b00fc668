"""Prompt rendering is bounded: declared bounds for every variable type, sizes checked before they are
allocated, and a time budget that a runaway template cannot use to hold up other requests."""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmops.errors import RenderError
from llmops.gateway.prompting import CompiledPrompt, PromptRenderer
from llmops.gateway.resolver import ResolvedPrompt
from llmops.prompts.render import render_messages
from llmops.prompts.sandbox import Budget, render_template
from llmops.prompts.spec import PromptSpec, Variable, load_spec

REPO = Path(__file__).resolve().parents[2]
USER = {"authorization": "Bearer user-key"}
URL = "/v1/chat/completions"


def spec(template: str, **variables: dict[str, Any]) -> PromptSpec:
    return PromptSpec.model_validate(
        {"name": "p", "messages": [{"role": "user", "content": template}], "variables": variables}
    )


# -- declared bounds ---------------------------------------------------------------------------------
def test_integer_variables_are_bounded_by_default_and_by_declaration() -> None:
    width = spec('{{ "-" * width }}', width={"type": "integer"})
    assert render_messages(width, {"width": 3})[0]["content"] == "---"
    with pytest.raises(RenderError, match="variable 'width' must be between"):
        render_messages(width, {"width": 10**18})  # before: "-" * 10**18 raised MemoryError (a 500)
    declared = spec("{{ n }}", n={"type": "integer", "minimum": 1, "maximum": 10})
    with pytest.raises(RenderError, match="variable 'n' must be between 1 and 10"):
        render_messages(declared, {"n": 11})
    ratio = spec("{{ x }}", x={"type": "number", "maximum": 1.5})
    assert render_messages(ratio, {"x": 1.5})[0]["content"] == "1.5"
    with pytest.raises(RenderError, match="variable 'x'"):
        render_messages(ratio, {"x": 2})


def test_declarations_are_checked() -> None:
    with pytest.raises(ValueError, match="apply to integer and number"):
        Variable.model_validate({"type": "string", "maximum": 3})
    with pytest.raises(ValueError, match="above maximum"):
        Variable.model_validate({"type": "integer", "minimum": 5, "maximum": 1})
    with pytest.raises(ValueError, match="default 50"):
        Variable.model_validate({"type": "integer", "maximum": 10, "default": 50})
    with pytest.raises(ValueError, match="finite"):
        Variable.model_validate({"type": "number", "maximum": float("inf")})


def test_committed_prompts_still_validate_with_unchanged_hashes() -> None:
    # bounds left at their defaults stay out of the canonical JSON: registered versions keep their hash
    for path in sorted((REPO / "prompts").glob("*.yaml")):
        loaded = load_spec(path)
        assert "minimum" not in loaded.canonical_json() and "maximum" not in loaded.canonical_json()
    assert load_spec(REPO / "prompts" / "support-triage.yaml").content_hash().startswith("20514f65c074")


# -- sizes are checked before they are allocated -------------------------------------------------------
@pytest.mark.parametrize(
    "template",
    [
        '{{ "-" * n }}',
        "{{ [0] * n }}",
        '{{ "x" | center(n) }}',
        '{{ "%*s" % (n, "a") }}',
        '{{ "%*s" | format(n, "a") }}',
        '{{ ("ab" * 1000) | replace("a", "b" * 5000) }}',
        '{{ range(90000) | join("-" * 1000) }}',
    ],
)
def test_oversized_results_are_refused_before_they_allocate(template: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(RenderError, match="output limit"):
            render_template(template, {"n": 50_000_000})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20  # before: the 50 MB (join: 90 MB) string was built, then measured


@pytest.mark.parametrize("template", ["{{ 10 ** (n * n) }}", "{% set x = 2 ** 200 %}{{ x * x }}"])
def test_integers_cannot_grow_without_bound(template: str) -> None:
    with pytest.raises(RenderError, match="bits"):
        render_template(template, {"n": 1000})


def test_ordinary_templates_render_as_before() -> None:
    out = render_template(
        '{{ "ok %d" | format(7) }} {{ n * 2 }} {{ 2 ** 10 }} {{ "a" ~ "b" }} {{ [1, 2] | join(",") }} '
        '{{ "x" | center(5) }}|{{ "a\nb" | indent(2) }}|{{ "aXa" | replace("X", "-") }}|{{ "-" * 3 }}',
        {"n": 4},
    )
    assert out == "ok 7 8 1024 ab 1,2   x  |a\n  b|a-a|---"


# -- the time budget ------------------------------------------------------------------------------------
NESTED_RANGE = "{% for i in range(n) %}{% for j in range(n) %}{% endfor %}{% endfor %}done"


def test_a_budget_stops_a_runaway_render() -> None:
    started = time.monotonic()
    with pytest.raises(RenderError, match="time budget of 0.2 s"):
        render_template(NESTED_RANGE, {"n": 100_000}, budget=Budget.of(0.2))
    assert time.monotonic() - started < 5  # the bound: stopped, not run to its end (10**10 steps)


def test_a_render_without_hooks_is_interrupted_in_its_thread() -> None:
    # three nested loops over a string: no operator, call or output for the sandbox to check at
    looping = spec("{% for a in s %}{% for b in s %}{% for c in s %}{% endfor %}{% endfor %}{% endfor %}x",
                   s={"type": "string"})  # fmt: skip
    quick = spec("{% if s %}{{ s }}{% endif %}", s={"type": "string"})
    renderer = PromptRenderer(0.3, workers=1)

    async def go() -> str:
        with pytest.raises(RenderError, match="time budget"):
            await renderer.render(CompiledPrompt(ResolvedPrompt("p", 1, looping)), {"s": "y" * 2000})
        # the single worker is free again: the runaway render was stopped, not left running
        out = await renderer.render(CompiledPrompt(ResolvedPrompt("q", 1, quick)), {"s": "fine"})
        return out[0]["content"]

    try:
        assert asyncio.run(go()) == "fine"
    finally:
        renderer.close()


def test_a_slow_render_does_not_hold_up_other_requests(make_echo_gateway: Callable[..., Any]) -> None:
    slow = spec(NESTED_RANGE, n={"type": "integer"})
    gateway, engine = make_echo_gateway(limits={"render_timeout_s": 0.5}, prompts={"slow": slow})

    async def go() -> tuple[httpx.Response, httpx.Response, bool]:
        transport = httpx.ASGITransport(app=gateway)
        async with gateway.running(), httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
            body = {"model": "slow", "prompt_variables": {"n": 20_000}}
            slow_task = asyncio.create_task(c.post(URL, json=body, headers=USER))
            await asyncio.sleep(0.05)  # the slow render is under way
            plain = await c.post(URL, json={"model": "plain", "messages": [{"role": "user", "content": "hi"}]},
                                 headers=USER)  # fmt: skip
            slow_still_running = not slow_task.done()
            return await slow_task, plain, slow_still_running

    slow_response, plain, slow_still_running = asyncio.run(go())
    assert plain.status_code == 200
    assert slow_still_running  # before: rendering ran on the event loop; nothing else was served meanwhile
    assert slow_response.status_code == 400
    error = slow_response.json()["error"]
    assert "time budget of 0.5 s" in error["message"] and error["param"] == "prompt_variables"
    assert len(engine.requests) == 1


def test_out_of_bounds_variables_are_a_400_naming_them(make_echo_gateway: Callable[..., Any]) -> None:
    ruler = spec('{{ "-" * width }}', width={"type": "integer"})
    gateway, engine = make_echo_gateway(prompts={"ruler": ruler})

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=gateway)
        async with gateway.running(), httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
            return [
                await c.post(URL, json={"model": "ruler", "prompt_variables": {"width": w}}, headers=USER)
                for w in (10**18, 3)
            ]

    big, small = asyncio.run(go())
    assert big.status_code == 400 and "variable 'width' must be between" in big.json()["error"]["message"]
    assert small.status_code == 200 and engine.requests[0]["messages"][0]["content"] == "---"
