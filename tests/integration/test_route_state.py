"""Route weights as registry state, across two real gateway replicas (``llmops serve gateway``) on one MLflow
server over HTTP, in front of a fake engine (``bench/fake_upstream.py``).

Weights PUT on one replica serve on both within 3 s (measured with real requests); a restarted replica comes
up with the registry's weights; a PUT while a rollout owns the route is a 409 unless forced, and audited; with
the registry stopped (a second MLflow server this module starts and stops), both replicas keep serving the last
weights and a PUT answers 503.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmops.config.workspace import load_workspace
from llmops.process import free_port
from llmops.promotion import promote
from llmops.registry import Registry, connect
from llmops.registry.server import start_server

pytestmark = pytest.mark.integration

CHAT = "/v1/chat/completions"
#: full refreshes are rare here: what moves weights is the route state read (default every 1 s)
REFRESH_S = 600


@dataclass
class Fleet:
    registry: Registry
    route: str
    replicas: list[Any]
    ports: list[int]
    folders: list[Path]
    config: str
    env: dict[str, str]


def two_target_config(engine_url: str, route: str, stages: bool) -> str:
    release = ("release: production, ", "release: canary, ") if stages else ("", "")
    return f"""
engines:
  fake: {{url: "{engine_url}", model: base}}
routes:
  {route}:
    targets:
      - {{name: stable, {release[0]}weight: 100}}
      - {{name: canary, {release[1]}weight: 0}}
"""


@pytest.fixture(scope="module")
def fleet(
    mlflow_server: Any,
    tmp_path_factory: pytest.TempPathFactory,
    start_fake_engine: Callable[..., Any],
    start_gateway: Callable[..., Any],
) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("route-state")
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url, "LLMOPS_ACTOR": "route-state-test"}
    ws = load_workspace(root, env=env)
    route = f"weights-{uuid.uuid4().hex[:6]}"
    # both stages point at a release (the base model), so the replicas read real stage pointers too
    for stage in ("production", "canary"):
        promote(ws, route, adapter=None, prompt=None, stage=stage, force=True, reason="route state test")
    engine, engine_url = start_fake_engine(root)
    config = two_target_config(engine_url, route, stages=True)
    gateway_env = {**env, "LLMOPS_STICKY_SECRET": uuid.uuid4().hex}
    ports = [free_port(), free_port()]
    folders = [root / "replica-a", root / "replica-b"]
    replicas = []
    try:
        for port, folder in zip(ports, folders, strict=True):
            replicas.append(start_gateway(folder, config, gateway_env, port=port, refresh_s=REFRESH_S, timeout=180))
        yield Fleet(connect(ws), route, replicas, ports, folders, config, gateway_env)
    finally:
        for gw in replicas:
            gw.process.stop()
        engine.stop()


def targets_served(url: str, route: str, headers: dict[str, str], n: int = 200) -> Counter[str]:
    """``x-llmops-target`` of ``n`` real requests with distinct users."""

    async def go() -> Counter[str]:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
            sem = asyncio.Semaphore(16)

            async def one(i: int) -> str:
                async with sem:
                    body = {"model": route, "messages": [{"role": "user", "content": "hi"}], "user": f"u-{i}"}
                    resp = await client.post(CHAT, json=body)
                    assert resp.status_code == 200, resp.text
                    return resp.headers["x-llmops-target"]

            return Counter(await asyncio.gather(*(one(i) for i in range(n))))

    return asyncio.run(go())


def weights_on(url: str, route: str, admin: dict[str, str]) -> dict[str, int]:
    resp = httpx.get(f"{url}/admin/routes/{route}", headers=admin, timeout=10)
    assert resp.status_code == 200, resp.text
    return {t["target"]: t["weight"] for t in resp.json()["targets"]}


def put_weights(url: str, route: str, admin: dict[str, str], body: dict[str, Any]) -> httpx.Response:
    return httpx.put(f"{url}/admin/routes/{route}", json=body, headers=admin, timeout=60)


def test_weights_put_on_one_replica_serve_on_both_within_3_s(fleet: Fleet, gateway_keys) -> None:
    a, b = (gw.url for gw in fleet.replicas)
    assert targets_served(b, fleet.route, gateway_keys.user) == {"stable": 200}  # the file's 100/0
    resp = put_weights(a, fleet.route, gateway_keys.admin, {"weights": {"stable": 0, "canary": 100}, "reason": "t"})
    put_at = time.monotonic()
    assert resp.status_code == 200, resp.text
    served: dict[str, float] = {}
    while len(served) < 2 and time.monotonic() - put_at < 10:
        for url in (a, b):
            if url not in served and targets_served(url, fleet.route, gateway_keys.user, n=20) == {"canary": 20}:
                served[url] = time.monotonic() - put_at
        time.sleep(0.05)
    assert set(served) == {a, b}, served
    assert max(served.values()) <= 3.0, served
    for url in (a, b):  # and every request with any key, on both
        assert targets_served(url, fleet.route, gateway_keys.user) == {"canary": 200}
    state = fleet.registry.routes.read(fleet.route)
    assert state is not None and state.weights == {"stable": 0, "canary": 100}
    [record] = [r for r in fleet.registry.audit.records(fleet.route) if r.kind == "weights"][:1]
    assert record.actor == "ops" and record.to_version == str(state.weights_version) and not record.forced


def test_a_restarted_replica_comes_up_with_the_registry_weights(
    fleet: Fleet, gateway_keys, start_gateway: Callable[..., Any]
) -> None:
    fleet.replicas[1].process.stop()
    fleet.registry.routes.set_weights(fleet.route, {"stable": 30, "canary": 70}, actor="test", reason="restart")
    fleet.replicas[1] = start_gateway(
        fleet.folders[1], fleet.config, fleet.env, port=fleet.ports[1], refresh_s=REFRESH_S, timeout=180
    )
    # ready means resolved: it serves the registry's weights from its first request, not the file's 100/0
    assert weights_on(fleet.replicas[1].url, fleet.route, gateway_keys.admin) == {"stable": 30, "canary": 70}
    share = targets_served(fleet.replicas[1].url, fleet.route, gateway_keys.user)["canary"] / 200
    assert 0.55 < share < 0.85


def test_a_put_during_a_rollout_is_refused_unless_forced_and_audited(fleet: Fleet, gateway_keys) -> None:
    a, b = (gw.url for gw in fleet.replicas)
    before = fleet.registry.routes.read(fleet.route)
    assert before is not None
    fleet.registry.routes.set_rollout(fleet.route, "rollout-under-test")
    try:
        resp = put_weights(a, fleet.route, gateway_keys.admin, {"weights": {"stable": 100, "canary": 0}})
        assert resp.status_code == 409, resp.text
        error = resp.json()["error"]
        assert error["code"] == "rollout_active" and "rollout-under-test" in error["message"]
        assert weights_on(a, fleet.route, gateway_keys.admin) == dict(before.weights or {})
        body = {"weights": {"stable": 100, "canary": 0}, "force": True, "reason": "incident"}
        resp = put_weights(a, fleet.route, gateway_keys.admin, body)
        assert resp.status_code == 200, resp.text
    finally:
        fleet.registry.routes.set_rollout(fleet.route, None)
    newest = [r for r in fleet.registry.audit.records(fleet.route) if r.kind == "weights"][0]
    assert newest.forced and newest.reason == "incident" and newest.actor == "ops"
    deadline = time.monotonic() + 3
    while weights_on(b, fleet.route, gateway_keys.admin) != {"stable": 100, "canary": 0}:
        assert time.monotonic() < deadline, "the forced weights did not reach the other replica within 3 s"
        time.sleep(0.1)


def test_with_the_registry_stopped_both_replicas_keep_serving_the_last_weights(
    tmp_path: Path, start_fake_engine: Callable[..., Any], start_gateway: Callable[..., Any], gateway_keys
) -> None:
    server_ws = load_workspace(tmp_path / "registry", env={})
    server, url = start_server(server_ws, port=free_port(), timeout=240)  # this test's own registry
    engine, engine_url = start_fake_engine(tmp_path)
    env = {"MLFLOW_TRACKING_URI": url, "LLMOPS_STICKY_SECRET": uuid.uuid4().hex}
    route = "outage"
    replicas = []
    try:
        registry = connect(load_workspace(tmp_path / "writer", env=env))
        registry.routes.set_weights(route, {"stable": 0, "canary": 1}, actor="test")
        config = two_target_config(engine_url, route, stages=False)
        for name in ("a", "b"):
            replicas.append(start_gateway(tmp_path / name, config, env, refresh_s=REFRESH_S, timeout=180))
        for gw in replicas:
            assert targets_served(gw.url, route, gateway_keys.user, n=50) == {"canary": 50}
        server.stop()
        deadline = time.monotonic() + 60  # a failed read takes the client's retries (a few seconds)
        failing = set()
        while len(failing) < 2:
            assert time.monotonic() < deadline, "no failed state read was counted"
            for gw in replicas:
                assert targets_served(gw.url, route, gateway_keys.user, n=20) == {"canary": 20}
                if 'kind="state",route="outage"' in httpx.get(f"{gw.url}/metrics", timeout=10).text:
                    failing.add(gw.url)
            time.sleep(0.2)
        for gw in replicas:  # after failed reads: still the last weights, and still ready
            assert targets_served(gw.url, route, gateway_keys.user, n=50) == {"canary": 50}
            assert httpx.get(f"{gw.url}/readyz", timeout=10).status_code == 200
        resp = put_weights(replicas[0].url, route, gateway_keys.admin, {"weights": {"stable": 1, "canary": 0}})
        assert resp.status_code == 503 and resp.json()["error"]["code"] == "registry_unavailable", resp.text
        assert url.split("//")[1] not in resp.text  # no host:port in a 5xx body
        assert targets_served(replicas[0].url, route, gateway_keys.user, n=50) == {"canary": 50}  # nothing applied
    finally:
        for gw in replicas:
            gw.process.stop()
        engine.stop()
        server.stop()
