"""The gateway under real uvicorn (``llmops serve gateway``) in front of a fake engine that we can kill.

Fakes stand in for vLLM only where vLLM cannot produce the case: an engine that dies mid-stream.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from llmops.process import ManagedProcess, free_port, http_ok

pytestmark = pytest.mark.integration


@pytest.fixture
def slow_engine(tmp_path: Path, start_fake_engine: Callable[..., Any]) -> Iterator[tuple[ManagedProcess, str]]:
    proc, url = start_fake_engine(tmp_path, "--chunks", "100", "--interval-ms", "50")
    try:
        yield proc, url
    finally:
        proc.stop()


@pytest.fixture
def gateway(
    tmp_path: Path,
    slow_engine: tuple[ManagedProcess, str],
    start_gateway: Callable[..., Any],
    fake_gateway_config: Callable[..., str],
) -> Iterator[Any]:
    gw = start_gateway(tmp_path / "ws", fake_gateway_config(slow_engine[1]))
    try:
        yield gw
    finally:
        gw.process.stop()


def stream_request() -> dict[str, object]:
    return {"model": "echo", "messages": [{"role": "user", "content": "hi"}], "stream": True, "max_tokens": 100}


def test_engine_killed_mid_stream(gateway, slow_engine: tuple[ManagedProcess, str], gateway_keys) -> None:
    engine, _ = slow_engine
    events: list[bytes] = []
    with httpx.Client(base_url=gateway.url, headers=gateway_keys.user, timeout=30) as client:
        with client.stream("POST", "/v1/chat/completions", json=stream_request()) as resp:
            assert resp.status_code == 200
            request_id = resp.headers["x-request-id"]
            started = time.monotonic()
            for line in resp.iter_lines():
                if line.startswith("data: "):
                    events.append(line[6:].encode())
                if len(events) == 4:
                    assert time.monotonic() - started < 2  # events arrive as sent, not at the end
                    assert engine.proc is not None
                    os.killpg(engine.proc.pid, signal.SIGKILL)  # the engine dies mid-stream
        assert b"[DONE]" not in events
        error = orjson.loads(events[-1])["error"]
        assert set(error) == {"message", "type", "code", "param"} and error["code"] == "upstream_error"
        assert client.get("/healthz").status_code == 200
        # the gateway keeps serving: the next request is a clean 503 (engine down, retry), not a hang or a crash
        r = client.post("/v1/chat/completions", json={**stream_request(), "stream": False})
        assert r.status_code == 503 and r.json()["error"]["code"] == "engine_unavailable", r.text
        assert r.headers["retry-after"] == "1"
    for _ in range(50):
        records = {r["id"]: r for r in gateway.records()}
        if request_id in records:
            break
        time.sleep(0.1)
    record = records[request_id]
    assert record["status"] == 502 and record["error"] and record["route"] == "echo" and record["stream"] is True
    assert record["ttft_ms"] is not None


def test_client_disconnect_cancels_the_engine_request(
    gateway, slow_engine: tuple[ManagedProcess, str], gateway_keys
) -> None:
    _, engine_url = slow_engine
    with (
        httpx.Client(base_url=gateway.url, headers=gateway_keys.user, timeout=30) as client,
        client.stream("POST", "/v1/chat/completions", json=stream_request()) as resp,
    ):
        request_id = resp.headers["x-request-id"]
        for n, _ in enumerate(resp.iter_lines()):
            if n >= 6:
                break  # leave: the connection closes with the stream unfinished
    deadline = time.monotonic() + 10
    stats: dict[str, int] = {}
    while time.monotonic() < deadline:
        stats = httpx.get(f"{engine_url}/fake/stats").json()
        if stats["streams_abandoned"] >= 1:
            break
        time.sleep(0.1)
    assert stats["streams_started"] == 1 and stats["streams_abandoned"] == 1
    for _ in range(50):
        records = {r["id"]: r for r in gateway.records()}
        if request_id in records:
            break
        time.sleep(0.1)
    assert records[request_id]["status"] == 499


def test_vllm_control_endpoints_are_not_exposed(gateway, gateway_keys) -> None:
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        for path in ("/v1/load_lora_adapter", "/v1/unload_lora_adapter", "/v1/completions", "/tokenize"):
            r = client.post(path, json={"lora_name": "x", "lora_path": "/tmp"}, headers=gateway_keys.admin)
            assert r.status_code == 404, path
        assert client.get("/v1/models").status_code == 401
        assert [m["id"] for m in client.get("/v1/models", headers=gateway_keys.user).json()["data"]] == ["echo"]
        assert "llmops_gateway_requests_total" in client.get("/metrics").text


def test_a_route_whose_engine_starts_later_serves_within_seconds(
    tmp_path: Path,
    llmops_bin: str,
    gateway_keys,
    start_fake_engine: Callable[..., Any],
    fake_gateway_config: Callable[..., str],
) -> None:
    """Gateway first, engine second (as the README's commands run): no wait for the 600 s refresh."""
    port = free_port()
    workspace = tmp_path / "ws"
    (workspace / "serving").mkdir(parents=True)
    config = fake_gateway_config(f"http://127.0.0.1:{port}") + gateway_keys.yaml + "refresh: {interval_s: 600}\n"
    (workspace / "serving" / "gateway.yaml").write_text(config)
    gw_port = free_port()
    env = {**os.environ, **gateway_keys.env}
    argv = [llmops_bin, "serve", "gateway", "--config", "serving/gateway.yaml", "--port", str(gw_port)]
    gateway = ManagedProcess("gateway", argv, workspace / "gateway.log", env=env, cwd=workspace).start()
    url = f"http://127.0.0.1:{gw_port}"
    engine = None
    try:
        gateway.wait_healthy(lambda: http_ok(f"{url}/healthz"), timeout=120, interval=0.2)
        body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
        headers = gateway_keys.user
        early = httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=10)
        assert early.status_code == 503 and early.json()["error"]["code"] == "route_unavailable", early.text
        engine, _ = start_fake_engine(tmp_path, port=port)
        deadline = time.monotonic() + 10
        while True:
            answer = httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=10)
            if answer.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert answer.status_code == 200, answer.text
    finally:
        gateway.stop()
        if engine is not None:
            engine.stop()
