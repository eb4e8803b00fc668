"""The gateway (``llmops serve gateway``) under faults a fake engine produces on command.

``bench/fake_upstream.py`` takes ``POST /fake/fault``: reset mid-stream, hang after the headers, stall,
trickle. Engine restarts, a 60 s registry outage and a ``kill -9`` of the gateway itself are driven
from here. Deadlines asserted are the ones the gateway promises: the read deadline, 1 s to cancel
the engine request of a departed client, 2 s to serve again once a restarted engine is healthy.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from llmops.config.workspace import load_workspace
from llmops.gateway.logreader import ReadStats, iter_records
from llmops.process import free_port

pytestmark = pytest.mark.integration

READ_TIMEOUT_S = 2.0
CHAT = "/v1/chat/completions"


@pytest.fixture(scope="session")
def fake_config(fake_gateway_config: Callable[..., str]) -> Callable[[str], str]:
    """The shared one-route config with a short read deadline."""
    limits = f"{{read_timeout_s: {READ_TIMEOUT_S}, connect_timeout_s: 2}}"
    return lambda engine_url: fake_gateway_config(engine_url, limits)


def fault(engine_url: str, **spec: Any) -> None:
    httpx.post(f"{engine_url}/fake/fault", json=spec, timeout=5).raise_for_status()


def stats(engine_url: str) -> dict[str, Any]:
    return httpx.get(f"{engine_url}/fake/stats", timeout=5).json()  # type: ignore[no-any-return]


def body(*, stream: bool, max_tokens: int = 4) -> dict[str, Any]:
    return {
        "model": "echo",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
        "max_tokens": max_tokens,
    }


def read_stream(url: str, headers: dict[str, str], payload: dict[str, Any]) -> tuple[int, list[tuple[float, bytes]]]:
    """(status, [(arrival time, data of each event)])."""
    events: list[tuple[float, bytes]] = []
    with (
        httpx.Client(base_url=url, headers=headers, timeout=30) as client,
        client.stream("POST", CHAT, json=payload) as resp,
    ):
        for line in resp.iter_lines():
            if line.startswith("data: "):
                events.append((time.monotonic(), line[6:].encode()))
        return resp.status_code, events


def content(events: list[tuple[float, bytes]]) -> str:
    out = ""
    for _, data in events:
        if data != b"[DONE]":
            for choice in orjson.loads(data).get("choices", []):
                out += choice.get("delta", {}).get("content") or ""
    return out


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, start_fake_engine: Callable[..., Any]) -> Iterator[str]:
    proc, url = start_fake_engine(tmp_path_factory.mktemp("fake-engine"))
    try:
        yield url
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def gateway(
    engine: str,
    tmp_path_factory: pytest.TempPathFactory,
    start_gateway: Callable[..., Any],
    fake_config: Callable[[str], str],
) -> Iterator[Any]:
    gw = start_gateway(tmp_path_factory.mktemp("gateway") / "ws", fake_config(engine))
    try:
        yield gw
    finally:
        gw.process.stop()


@pytest.fixture
def healthy_engine(engine: str) -> Iterator[str]:
    fault(engine, mode="none")
    try:
        yield engine
    finally:
        fault(engine, mode="none")


def test_reset_mid_stream_ends_with_an_error_event_and_is_not_retried(gateway, healthy_engine, gateway_keys) -> None:
    before = stats(healthy_engine)["requests"]
    fault(healthy_engine, mode="reset", after=3, times=1)  # role event, t0, t1, then a TCP reset
    status, events = read_stream(gateway.url, gateway_keys.user, body(stream=True))
    assert status == 200
    assert content(events[:-1]) == "t0 t1 "  # what came before the reset reached the client
    assert all(data != b"[DONE]" for _, data in events)
    assert orjson.loads(events[-1][1])["error"]["code"] == "upstream_error"
    assert stats(healthy_engine)["requests"] == before + 1  # no retry after the first byte
    status, events = read_stream(gateway.url, gateway_keys.user, body(stream=True))
    assert status == 200 and events[-1][1] == b"[DONE]"  # the next request is served as usual


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "unary"])
def test_hang_after_headers_honours_the_read_deadline_without_retry(
    gateway, healthy_engine, gateway_keys, stream: bool
) -> None:
    before = stats(healthy_engine)["requests"]
    fault(healthy_engine, mode="hang", after=2 if stream else 0, times=1)
    started = time.monotonic()
    if stream:
        status, events = read_stream(gateway.url, gateway_keys.user, body(stream=True))
        assert status == 200 and content(events[:-1]) == "t0 "
        waited = events[-1][0] - events[-2][0]  # from the last bytes the engine sent to the error event
        error = orjson.loads(events[-1][1])["error"]
        assert all(data != b"[DONE]" for _, data in events)
    else:
        resp = httpx.post(f"{gateway.url}{CHAT}", json=body(stream=False), headers=gateway_keys.user, timeout=30)
        waited = time.monotonic() - started
        assert resp.status_code == 504
        error = resp.json()["error"]
    assert error["code"] == "upstream_timeout"
    assert READ_TIMEOUT_S - 0.2 <= waited < READ_TIMEOUT_S + 2.0
    assert stats(healthy_engine)["requests"] == before + 1  # not retried


def test_an_engine_that_never_answers_gets_a_504_at_the_read_deadline(gateway, healthy_engine, gateway_keys) -> None:
    fault(healthy_engine, mode="stall", times=1)
    started = time.monotonic()
    resp = httpx.post(f"{gateway.url}{CHAT}", json=body(stream=False), headers=gateway_keys.user, timeout=30)
    assert resp.status_code == 504 and resp.json()["error"]["code"] == "upstream_timeout"
    assert time.monotonic() - started < READ_TIMEOUT_S + 2.0


@pytest.mark.parametrize(("stream", "piece"), [(True, 48), (False, 16)], ids=["stream", "unary"])
def test_a_trickling_engine_is_relayed_whole_past_the_read_deadline(
    gateway, healthy_engine, gateway_keys, stream: bool, piece: int
) -> None:
    """The read deadline bounds each wait for bytes, not the whole answer."""
    fault(healthy_engine, mode="trickle", piece=piece, gap_ms=150, times=1)
    started = time.monotonic()
    if stream:
        status, events = read_stream(gateway.url, gateway_keys.user, body(stream=True))
        assert status == 200 and events[-1][1] == b"[DONE]"
        assert content(events) == "t0 t1 t2 t3 "
    else:
        resp = httpx.post(f"{gateway.url}{CHAT}", json=body(stream=False), headers=gateway_keys.user, timeout=30)
        assert resp.status_code == 200, resp.text
        assert resp.json()["choices"][0]["message"]["content"].startswith("The quick brown fox")
    assert time.monotonic() - started > READ_TIMEOUT_S  # longer, in total, than one read deadline


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "unary"])
def test_client_disconnect_cancels_the_engine_request_within_1s(
    gateway, healthy_engine, gateway_keys, stream: bool
) -> None:
    if stream:
        fault(healthy_engine, mode="slow", chunks=100, gap_ms=200, times=1)
    else:
        fault(healthy_engine, mode="stall", times=1)
    before = stats(healthy_engine)["streams_abandoned"]
    data = orjson.dumps(body(stream=stream, max_tokens=100))
    host, port = gateway.url.removeprefix("http://").split(":")
    head = f"POST {CHAT} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
    head += f"authorization: {gateway_keys.user['authorization']}\r\ncontent-length: {len(data)}\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode() + data)
        if stream:
            received = b""
            while received.count(b"data: ") < 3:  # the stream is under way
                received += sock.recv(65536)
        else:
            time.sleep(0.5)  # the engine holds the request
        left_at = time.time()
    deadline = time.monotonic() + 5
    while (now := stats(healthy_engine))["streams_abandoned"] == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert now["streams_abandoned"] == before + 1
    assert now["last_abandoned_at"] - left_at < 1.0


def test_engine_restart_under_load_fails_fast_and_serves_within_2s_of_health(
    tmp_path: Path,
    start_fake_engine: Callable[..., Any],
    start_gateway: Callable[..., Any],
    gateway_keys,
    load,
    fake_config: Callable[[str], str],
) -> None:
    port = free_port()
    engine, url = start_fake_engine(tmp_path, port=port)
    gw = start_gateway(tmp_path / "ws", fake_config(url))
    try:
        with load([gw.url], lambda i: body(stream=i % 2 == 0), gateway_keys.user, concurrency=4) as traffic:
            time.sleep(1.0)
            engine.stop()
            down_at = time.monotonic()
            time.sleep(3.0)
            restart_at = time.monotonic()
            engine, _ = start_fake_engine(tmp_path, port=port)
            healthy_at = time.monotonic()
            time.sleep(4.0)
        sent = traffic.sent
        gap = [s for s in sent if s.started > down_at + 0.3 and s.ended < restart_at]
        assert len(gap) > 10
        assert all(s.status in (502, 503) for s in gap), {s.status for s in gap}
        assert max(s.ended - s.started for s in gap) < 1.0  # fast errors, no hanging on a dead engine
        ok_again = [s for s in sent if s.started >= healthy_at and s.error is None]
        assert ok_again and ok_again[0].ended - healthy_at <= 2.0
        late = [s for s in sent if s.started >= healthy_at + 2.0]
        assert late and all(s.error is None for s in late), [s.error for s in late if s.error][:3]
    finally:
        gw.process.stop()
        engine.stop()


def test_a_request_to_an_engine_that_is_down_is_a_fast_503(
    tmp_path: Path,
    start_fake_engine: Callable[..., Any],
    start_gateway: Callable[..., Any],
    gateway_keys,
    fake_config: Callable[[str], str],
) -> None:
    engine, url = start_fake_engine(tmp_path)
    gw = start_gateway(tmp_path / "ws", fake_config(url))
    try:
        engine.stop()
        started = time.monotonic()
        resp = httpx.post(f"{gw.url}{CHAT}", json=body(stream=False), headers=gateway_keys.user, timeout=30)
        assert time.monotonic() - started < 1.0
        assert resp.status_code == 503, resp.text
    finally:
        gw.process.stop()


def test_registry_down_60s_under_load(
    tmp_path: Path,
    mlflow_server,
    engine: str,
    start_gateway: Callable[..., Any],
    gateway_keys,
    load,
    fake_adapter: Callable[..., Path],
    new_run: Callable[..., str],
) -> None:
    """0 failed requests, the last-known-good release served throughout, readiness degraded then recovered."""
    from llmops.gitinfo import GitInfo
    from llmops.prompts.spec import load_spec
    from llmops.registry import connect
    from llmops.registry.server import start_server

    registry_root = tmp_path / "registry"
    registry_root.mkdir()
    ws = load_workspace(registry_root, env={})
    # its store starts as a copy of the session server's (SQLite's online backup): no minute of migrations
    ws.home.mkdir(parents=True)
    source = sqlite3.connect(load_workspace(mlflow_server.root, env={}).home / "mlflow.db")
    target = sqlite3.connect(ws.home / "mlflow.db")
    source.backup(target)
    source.close()
    target.close()
    port = free_port()
    mlflow, mlflow_url = start_server(ws, port=port, timeout=240)  # a dedicated server: this test stops it
    gw = None
    try:
        env = {"MLFLOW_TRACKING_URI": mlflow_url}
        registry = connect(load_workspace(registry_root, env=env))
        suffix = uuid.uuid4().hex[:6]
        adapter, prompt = f"triage-{suffix}", f"support-triage-{suffix}"
        registry.adapters.register(adapter, fake_adapter(tmp_path / "adapter"), new_run(registry), {})
        registry.adapters.set_alias(adapter, "production", 1)
        repo = Path(__file__).resolve().parents[2]
        spec = load_spec(repo / "prompts" / "support-triage.yaml").model_copy(update={"name": prompt})
        pushed = registry.prompts.push(spec, GitInfo(None, "test prompt", False, f"prompts/{prompt}.yaml"))
        assert pushed.version is not None
        registry.prompts.set_alias(prompt, "production", pushed.version)
        config = f"""
engines:
  fake: {{url: "{engine}", model: base}}
routes:
  triage:
    targets:
      - {{name: stable, weight: 1, adapter: "{adapter}@production", prompt: "{prompt}@production"}}
"""
        gw = start_gateway(tmp_path / "ws", config, env, refresh_s=1, timeout=180)
        request = {"model": "triage", "messages": [], "prompt_variables": {"message": "refund please"}}
        readiness: list[str] = []

        def status() -> str:
            return str(httpx.get(f"{gw.url}/readyz", timeout=10).json()["status"])

        with load([gw.url], lambda i: request, gateway_keys.user, concurrency=2) as traffic:
            time.sleep(2.0)
            assert status() == "ok"
            mlflow.stop()
            stopped_at = time.monotonic()
            while time.monotonic() - stopped_at < 60:
                readiness.append(status())
                time.sleep(1.0)
            mlflow, _ = start_server(ws, port=port, timeout=240)
            back_at = time.monotonic()
            while status() != "ok" and time.monotonic() - back_at < 60:
                time.sleep(0.5)
            time.sleep(1.0)
        assert not traffic.failures(), traffic.failures()[:3]
        during = [s for s in traffic.sent if stopped_at < s.started < back_at]
        assert len(during) > 100
        versions = {(s.headers["x-llmops-adapter-version"], s.headers["x-llmops-prompt-version"]) for s in traffic.sent}
        assert versions == {(f"{adapter}/1", f"{prompt}/{pushed.version}")}  # last-known-good, unchanged
        assert "degraded" in readiness and set(readiness) <= {"ok", "degraded"}, readiness  # ready, degraded
        assert status() == "ok"  # recovered
    finally:
        if gw is not None:
            gw.process.stop()
        mlflow.stop()


def test_kill_9_mid_write_leaves_at_most_a_partial_last_line_that_readers_skip(
    tmp_path: Path,
    engine: str,
    start_gateway: Callable[..., Any],
    gateway_keys,
    load,
    fake_config: Callable[[str], str],
) -> None:
    workspace = tmp_path / "ws"
    port = free_port()
    gw = start_gateway(workspace, fake_config(engine), port=port)
    try:
        with load([gw.url], lambda i: body(stream=False), gateway_keys.user, concurrency=16, resend=False):
            time.sleep(2.0)
            os.kill(gw.process.pid, signal.SIGKILL)  # mid-write, most likely: it appends 5 times a second
            gw.process.stop()
        raw = gw.log_path.read_bytes()
        first = ReadStats()
        records = list(iter_records(gw.log_path, first))
        assert records and all(r["route"] == "echo" for r in records)
        assert first.skipped == (0 if raw.endswith(b"\n") else 1)  # at most the last line, and it is skipped
        # restarted, the gateway appends after whatever the kill left; readers still get every new record
        gw = start_gateway(workspace, fake_config(engine), port=port)
        ids = set()
        for _ in range(5):
            resp = httpx.post(f"{gw.url}{CHAT}", json=body(stream=False), headers=gateway_keys.user, timeout=10)
            ids.add(resp.headers["x-request-id"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            second = ReadStats()
            found = {r["id"] for r in iter_records(gw.log_path, second)} & ids
            if found == ids:
                break
            time.sleep(0.2)
        assert found == ids
        assert second.skipped == first.skipped and second.records == first.records + 5
    finally:
        gw.process.stop()
