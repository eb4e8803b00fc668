"""Two gateway replicas (``llmops serve gateway``) on one MLflow registry over HTTP, in front of a fake engine.

Replicas share no state but the registry: a promotion reaches both within the refresh interval,
sticky keys land on the same target on both (assignment is a pure function of key and weights),
and one replica restarted under load loses no request (SIGTERM: it stops accepting and drains what
is in flight, up to ``server.drain_s``; the client re-sends only what was refused before any answer).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmops.config.workspace import load_workspace
from llmops.gitinfo import GitInfo
from llmops.process import free_port, port_in_use
from llmops.promotion import promote
from llmops.prompts.spec import load_spec
from llmops.registry import connect

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
REFRESH_S = 2.0
CHAT = "/v1/chat/completions"


@dataclass
class Fleet:
    ws: Any  # the workspace promotions run in (registry over HTTP)
    route: str
    adapter: str
    prompt: str
    replicas: list[Any]
    ports: list[int]
    folders: list[Path]
    config: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def fleet(
    mlflow_server,
    tmp_path_factory: pytest.TempPathFactory,
    start_fake_engine: Callable[..., Any],
    start_gateway: Callable[..., Any],
    fake_adapter: Callable[..., Path],
    new_run: Callable[..., str],
) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("fleet")
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url, "LLMOPS_ACTOR": "fleet-test"}
    ws = load_workspace(root, env=env)
    # replicas share the secret that keys the sticky hash (serving/README.md: running several replicas)
    gateway_env = {**env, "LLMOPS_STICKY_SECRET": uuid.uuid4().hex}
    registry = connect(ws)
    suffix = uuid.uuid4().hex[:6]
    route, adapter, prompt = f"fleet-{suffix}", f"fleet-lora-{suffix}", f"fleet-prompt-{suffix}"
    for seed in (1, 2):
        registry.adapters.register(adapter, fake_adapter(root / f"adapter-{seed}", seed), new_run(registry), {})
    spec = load_spec(REPO / "prompts" / "support-triage.yaml").model_copy(update={"name": prompt})
    pushed = registry.prompts.push(spec, GitInfo(None, "test prompt", False, f"prompts/{prompt}.yaml"))
    assert pushed.version == 1
    promote(ws, route, adapter=f"{adapter}/1", prompt=f"{prompt}/1", stage="production", force=True, reason="t")
    promote(ws, route, adapter=f"{adapter}/1", prompt=f"{prompt}/1", stage="canary", force=True, reason="t")
    engine, engine_url = start_fake_engine(root, "--chunks", "20", "--interval-ms", "50")
    config = f"""
server: {{drain_s: 10}}
engines:
  fake: {{url: "{engine_url}", model: base}}
routes:
  {route}:
    targets:
      - {{name: stable, weight: 70, release: production, prompt: "{prompt}/1"}}
      - {{name: canary, weight: 30, release: canary, prompt: "{prompt}/1"}}
"""
    ports = [free_port(), free_port()]
    folders = [root / "replica-a", root / "replica-b"]
    replicas = []
    try:
        for port, folder in zip(ports, folders, strict=True):
            replicas.append(start_gateway(folder, config, gateway_env, port=port, refresh_s=REFRESH_S, timeout=180))
        yield Fleet(ws, route, adapter, prompt, replicas, ports, folders, config, gateway_env)
    finally:
        for gw in replicas:
            gw.process.stop()
        engine.stop()


def served_adapter(url: str, fleet: Fleet, admin: dict[str, str]) -> str:
    """The adapter version the stable target serves now (an admin may pin a request to a target)."""
    payload = {"model": fleet.route, "messages": [], "prompt_variables": {"message": "refund"}}
    resp = httpx.post(f"{url}{CHAT}", json=payload, headers={**admin, "x-llmops-target": "stable"}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.headers["x-llmops-adapter-version"]


def test_a_promotion_serves_on_both_replicas_within_the_refresh_interval(fleet: Fleet, gateway_keys) -> None:
    urls = [gw.url for gw in fleet.replicas]
    assert {served_adapter(u, fleet, gateway_keys.admin) for u in urls} == {f"{fleet.adapter}/1"}
    record = promote(fleet.ws, fleet.route, adapter=f"{fleet.adapter}/2", prompt=f"{fleet.prompt}/1",
                     stage="production", force=True, reason="fleet test")  # fmt: skip
    promoted_at = time.monotonic()
    assert record.outcome != "unchanged"
    seen: dict[str, float] = {}
    while len(seen) < 2 and time.monotonic() - promoted_at < 3 * REFRESH_S + 10:
        for url in urls:
            if url not in seen and served_adapter(url, fleet, gateway_keys.admin) == f"{fleet.adapter}/2":
                seen[url] = time.monotonic() - promoted_at
        time.sleep(0.1)
    assert set(seen) == set(urls), seen
    # one refresh interval, plus the time one refresh takes (a few registry round trips)
    assert max(seen.values()) <= REFRESH_S + 2.0, seen


def test_1000_keys_land_on_the_same_target_on_both_replicas(fleet: Fleet, gateway_keys) -> None:
    async def targets(url: str) -> dict[str, str]:
        sem = asyncio.Semaphore(16)
        out: dict[str, str] = {}
        async with httpx.AsyncClient(base_url=url, headers=gateway_keys.user, timeout=30) as client:

            async def one(i: int) -> None:
                async with sem:
                    payload = {"model": fleet.route, "messages": [], "user": f"customer-{i}",
                               "prompt_variables": {"message": "hello"}}  # fmt: skip
                    resp = await client.post(CHAT, json=payload)
                    assert resp.status_code == 200, resp.text
                    out[f"customer-{i}"] = resp.headers["x-llmops-target"]

            await asyncio.gather(*(one(i) for i in range(1000)))
        return out

    a, b = (asyncio.run(targets(gw.url)) for gw in fleet.replicas)
    assert len(a) == 1000 and a == b
    share = sum(t == "canary" for t in a.values()) / 1000
    assert 0.25 < share < 0.35  # both targets in play, at about their weights (70/30)


def test_a_replica_restarted_under_load_loses_no_request(
    fleet: Fleet, gateway_keys, load, start_gateway: Callable[..., Any]
) -> None:
    def request(i: int) -> dict[str, Any]:
        payload = {"model": fleet.route, "messages": [], "user": f"u{i}", "prompt_variables": {"message": "hi"}}
        if i % 3 == 0:  # a stream of 20 events 50 ms apart: ~1 s in flight, so some are mid-way at SIGTERM
            payload.update(stream=True, max_tokens=20)
        return payload

    urls = [gw.url for gw in fleet.replicas]
    first = fleet.replicas[0]
    with load(urls, request, gateway_keys.user, concurrency=8) as traffic:
        time.sleep(2.0)
        stop_at = time.monotonic()
        first.process.stop()  # SIGTERM: stop accepting, drain, exit
        stopped_at = time.monotonic()
        fleet.replicas[0] = start_gateway(
            fleet.folders[0], fleet.config, fleet.env, port=fleet.ports[0], refresh_s=REFRESH_S, timeout=180
        )
        back_at = time.monotonic()
        time.sleep(2.0)
    sent = traffic.sent
    assert not traffic.failures(), traffic.failures()[:3]
    streams_drained = [
        s for s in sent
        if s.url == first.url and s.started < stop_at < s.ended and s.headers.get("content-type", "").startswith("text/event-stream")
    ]  # fmt: skip
    assert streams_drained, "no stream was in flight on the stopped replica"
    assert stopped_at - stop_at < 10.0  # drained within server.drain_s, not killed after the 15 s grace
    assert any(s.resent for s in sent)  # the client did see the replica gone, and re-sent elsewhere
    assert any(s.url == first.url and s.started > back_at for s in sent)  # the restarted replica serves again


def test_sigterm_stops_accepting_and_drains_streams_up_to_drain_s(
    tmp_path: Path, start_fake_engine: Callable[..., Any], start_gateway: Callable[..., Any], gateway_keys
) -> None:
    engine, url = start_fake_engine(tmp_path, "--chunks", "100", "--interval-ms", "100")
    drain_s = 2.0
    config = f"""
server: {{drain_s: {drain_s}}}
engines:
  fake: {{url: "{url}"}}
routes:
  echo:
    targets: [{{name: only, weight: 1}}]
"""
    gw = start_gateway(tmp_path / "ws", config)
    streams: dict[int, dict[str, Any]] = {10: {}, 100: {}}  # max_tokens -> what its client saw (~1 s, ~10 s)
    started = threading.Barrier(3)

    def stream(max_tokens: int) -> None:
        seen = streams[max_tokens]
        payload = {
            "model": "echo",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "max_tokens": max_tokens,
        }
        try:
            with (
                httpx.Client(base_url=gw.url, headers=gateway_keys.user, timeout=30) as client,
                client.stream("POST", CHAT, json=payload) as resp,
            ):
                lines = resp.iter_lines()
                seen["events"] = [next(lines)]
                started.wait()
                seen["events"] += [line for line in lines if line.startswith("data: ")]
        except httpx.HTTPError as exc:
            seen["error"] = repr(exc)
        seen["ended"] = time.monotonic()

    threads = [threading.Thread(target=stream, args=(n,)) for n in streams]
    try:
        for t in threads:
            t.start()
        started.wait(timeout=30)
        assert gw.process.proc is not None
        os.kill(gw.process.proc.pid, signal.SIGTERM)
        term_at = time.monotonic()
        host, port = gw.url.removeprefix("http://").split(":")
        while time.monotonic() - term_at < 1.0 and port_in_use(host, int(port)):
            time.sleep(0.05)
        assert not port_in_use(host, int(port))  # new connections are refused at once
        for t in threads:
            t.join(timeout=30)
        deadline = time.monotonic() + drain_s + 5
        while gw.process.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        exited_after = time.monotonic() - term_at
        short, long = streams[10], streams[100]
        assert short["events"][-1] == "data: [DONE]" and "error" not in short  # finished within the deadline
        assert "data: [DONE]" not in long["events"]  # cut at the deadline, never a fake [DONE]
        assert drain_s - 0.5 < long["ended"] - term_at < drain_s + 2.0
        assert not gw.process.alive() and exited_after < drain_s + 3.0
    finally:
        gw.process.stop()
        engine.stop()
