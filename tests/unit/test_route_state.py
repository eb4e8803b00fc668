"""Route weights as route state in the registry: the store (embedded SQLite registry) and the gateway's
reading of it (in-process, a resolver whose state the test sets).

The store refuses a write while a rollout owns the route (unless forced or named), audits each change
and writes nothing when the weights are already in force. A gateway applies new registry weights within
a state interval, comes up with them, keeps them when a read fails, ignores weights for other targets,
starts a full refresh when a stage pointer moves, and ``PUT /admin/routes`` writes through the registry
(409 ``rollout_active``, 503 with nothing applied when the registry is down).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmops.config.workspace import load_workspace
from llmops.errors import InvalidRequestError, RegistryError, RolloutActive
from llmops.gateway.resolver import StaticResolver
from llmops.process import free_port
from llmops.registry import Registry, connect
from llmops.registry.routestate import RouteState
from llmops.release import Release

ADMIN = {"authorization": "Bearer admin-key"}
USER = {"authorization": "Bearer user-key"}
LEAKY_URI = "postgresql://mlflow:s3cr3t@db.internal:5432/mlflow"


# -- the store ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return connect(load_workspace(tmp_path_factory.mktemp("routestate"), env={}))


def weight_records(registry: Registry, route: str) -> list[Any]:
    return [r for r in registry.audit.records(route) if r.kind == "weights"]


def test_weights_are_written_read_back_and_audited_once_per_change(registry: Registry) -> None:
    assert registry.routes.read("triage") is None  # no pointer model yet: no state (not an error)
    record = registry.routes.set_weights("triage", {"stable": 90, "canary": 10}, actor="alice", reason="canary 10%")
    assert record is not None and record.record_id
    state = registry.routes.read("triage")
    assert state is not None
    assert state.weights == {"stable": 90, "canary": 10} and state.weights_version == 1
    assert state.rollout is None and state.actor == "alice" and state.written_at is not None
    assert state.stages == {}
    [audited] = weight_records(registry, "triage")
    assert (audited.object, audited.alias, audited.actor, audited.reason) == (
        "triage",
        "weights",
        "alice",
        "canary 10%",
    )
    assert (audited.from_version, audited.to_version, audited.forced) == (None, "1", False)
    detail = json.loads(audited.detail)
    assert detail["weights"] == {"stable": 90, "canary": 10} and detail["previous"] is None

    # the same weights again: nothing written, nothing recorded
    assert registry.routes.set_weights("triage", {"canary": 10, "stable": 90}, actor="bob") is None
    assert registry.routes.read("triage").weights_version == 1  # type: ignore[union-attr]
    assert len(weight_records(registry, "triage")) == 1

    registry.routes.set_weights("triage", {"stable": 50, "canary": 50}, actor="bob")
    state = registry.routes.read("triage")
    assert state is not None and state.weights == {"stable": 50, "canary": 50} and state.weights_version == 2
    newest = weight_records(registry, "triage")[0]
    assert (newest.from_version, newest.to_version) == ("1", "2")
    assert json.loads(newest.detail)["previous"] == {"stable": 90, "canary": 10}


@pytest.mark.parametrize("weights", [{"a": -1, "b": 2}, {"a": 0, "b": 0}, {"a": 1.5, "b": 1}, {"a": True}, {}])
def test_bad_weights_are_refused_before_anything_is_written(registry: Registry, weights: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequestError):
        registry.routes.set_weights("bad-weights", weights, actor="alice")
    assert registry.routes.read("bad-weights") is None


def test_a_rollout_owning_the_route_refuses_other_writes_unless_forced(registry: Registry) -> None:
    route = "owned"
    registry.routes.set_weights(route, {"stable": 100, "canary": 0}, actor="alice")
    registry.routes.set_rollout(route, "rollout-42")
    with pytest.raises(RolloutActive, match="rollout-42") as refused:
        registry.routes.set_weights(route, {"stable": 50, "canary": 50}, actor="bob")
    assert refused.value.rollout == "rollout-42" and refused.value.exit_code == 2
    assert registry.routes.read(route).weights == {"stable": 100, "canary": 0}  # type: ignore[union-attr]
    assert len(weight_records(registry, route)) == 1

    # the owning rollout writes, with its evidence
    record = registry.routes.set_weights(
        route, {"stable": 90, "canary": 10}, actor="controller", rollout="rollout-42", evidence="step 1 passed"
    )
    assert record is not None and not record.forced
    assert json.loads(record.detail)["evidence"] == "step 1 passed"
    assert json.loads(record.detail)["rollout"] == "rollout-42"
    # a forced manual write goes through and is audited as forced
    forced = registry.routes.set_weights(route, {"stable": 100, "canary": 0}, actor="bob", force=True, reason="hotfix")
    assert forced is not None and forced.forced and forced.reason == "hotfix"
    assert registry.routes.read(route).rollout == "rollout-42"  # type: ignore[union-attr]
    # released: plain writes work again
    registry.routes.set_rollout(route, None)
    assert registry.routes.read(route).rollout is None  # type: ignore[union-attr]
    assert registry.routes.set_weights(route, {"stable": 80, "canary": 20}, actor="bob") is not None


def test_long_evidence_is_cut_so_an_abort_is_always_recorded(registry: Registry) -> None:
    evidence = json.dumps({"samples": ['"quoted" sample'] * 2000})
    record = registry.routes.set_weights("evidence", {"stable": 100, "canary": 0}, actor="c", evidence=evidence)
    assert record is not None and len(record.detail) <= 8000
    assert json.loads(record.detail)["evidence"].endswith("...(truncated)")


def test_the_state_holds_the_stage_pointers_beside_the_weights(registry: Registry) -> None:
    route = "staged"
    recorded = registry.pointers.record(route, Release.of("base", None, None), [])
    registry.pointers.set_stage(route, "production", recorded.version)
    state = registry.routes.read(route)
    assert state is not None and state.stages == {"production": recorded.version}
    assert state.weights is None and state.weights_version == 0  # never written: the file's weights serve
    registry.routes.set_weights(route, {"only": 1}, actor="alice")
    assert registry.routes.read(route).stages == {"production": recorded.version}  # type: ignore[union-attr]


def test_a_name_held_by_another_model_is_an_error_not_missing_state(registry: Registry) -> None:
    from mlflow import MlflowClient

    MlflowClient(registry.uri, registry.uri).create_registered_model("foreign.release")  # someone else's model
    with pytest.raises(RegistryError, match="foreign.release"):
        registry.routes.read("foreign")
    with pytest.raises(RegistryError, match="foreign.release"):
        registry.routes.set_weights("foreign", {"a": 1}, actor="alice")


def test_an_unreachable_registry_raises_instead_of_answering_no_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    ws = load_workspace(tmp_path, env={"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"})
    with pytest.raises(RegistryError, match="cannot read the state of route triage"):
        connect(ws, check=False).routes.read("triage")


# -- the gateway ---------------------------------------------------------------------------------------
class StateResolver(StaticResolver):
    """No prompts or adapters; route state and weight writes as the test sets them."""

    def __init__(self) -> None:
        super().__init__()
        self.state: RouteState | None = None
        self.fail: BaseException | None = None
        self.write_fail: BaseException | None = None
        self.reads = 0
        self.writes: list[dict[str, Any]] = []

    def route_state(self, route: str) -> RouteState | None:
        self.reads += 1
        if self.fail is not None:
            raise self.fail
        return self.state

    def write_weights(self, route: str, weights: Mapping[str, int], *, actor: str, force: bool, reason: str) -> None:
        if self.write_fail is not None:
            raise self.write_fail
        self.writes.append({"route": route, "weights": dict(weights), "actor": actor, "force": force, "reason": reason})
        self.state = state(dict(weights), (self.state.weights_version if self.state else 0) + 1)


def state(weights: dict[str, int] | None, version: int, stages: dict[str, int] | None = None) -> RouteState:
    return RouteState("split", stages or {}, weights, version, None)


ROUTES = {"split": {"targets": [{"name": "stable", "weight": 100}, {"name": "canary", "weight": 0}]}}


@pytest.fixture
def gateway(make_echo_gateway: Callable[..., Any]) -> Callable[[StateResolver], Any]:
    def build(resolver: StateResolver) -> Any:
        app, _ = make_echo_gateway(routes=ROUTES, refresh={"interval_s": 600, "state_interval_s": 0.2})
        app.routes.resolver = resolver
        return app

    return build


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


async def served_weights(c: httpx.AsyncClient) -> dict[str, int]:
    route = (await c.get("/admin/routes/split", headers=ADMIN)).json()
    return {t["target"]: t["weight"] for t in route["targets"]}


async def until(check: Callable[[], Any], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "not within the deadline"
        await asyncio.sleep(0.05)


def test_registry_weights_serve_at_start_and_within_3_s_and_a_failed_read_keeps_them(
    gateway: Callable[[StateResolver], Any],
) -> None:
    resolver = StateResolver()
    resolver.state = state({"stable": 0, "canary": 1}, 1)
    app = gateway(resolver)

    async def go() -> None:
        async with app.running(), client(app) as c:
            # a (re)started replica comes up with the registry's weights, not the file's 100/0
            assert await served_weights(c) == {"stable": 0, "canary": 1}
            r = await c.post(
                "/v1/chat/completions",
                json={"model": "split", "messages": [{"role": "user", "content": "hi"}]},
                headers=USER,
            )
            assert r.headers["x-llmops-target"] == "canary"
            resolver.state = state({"stable": 70, "canary": 30}, 2)

            async def changed() -> bool:
                return await served_weights(c) == {"stable": 70, "canary": 30}

            await until(changed)
            # the registry fails: serving keeps the last weights, readiness is unchanged, the failure counted
            resolver.fail = RegistryError("cannot read the state of route split: locked", uri=LEAKY_URI)
            reads = resolver.reads

            async def failed_reads() -> bool:
                return resolver.reads >= reads + 3

            await until(failed_reads)
            assert await served_weights(c) == {"stable": 70, "canary": 30}
            assert (await c.get("/readyz")).json() == {"status": "ok"}
            metrics = (await c.get("/metrics")).text
            assert 'llmops_gateway_resolve_failures_total{kind="state",route="split",target="-"}' in metrics
            summary = (await c.get("/admin/routes", headers=ADMIN)).json()
            assert "locked" in summary["state"]["split"]["read_error"] and "s3cr3t" not in str(summary)
            # back, with weights for targets this gateway does not serve: ignored, and said so
            resolver.fail = None
            resolver.state = state({"stable": 1, "blue": 1}, 3)

            async def ignored() -> bool:
                got = (await c.get("/admin/routes/split", headers=ADMIN)).json()["state"]
                return got["ignored"] is not None and got["read_error"] is None

            await until(ignored)
            assert await served_weights(c) == {"stable": 70, "canary": 30}

    asyncio.run(go())


def test_a_moved_stage_pointer_starts_a_full_refresh_at_once(gateway: Callable[[StateResolver], Any]) -> None:
    resolver = StateResolver()
    resolver.state = state(None, 0, {"production": 1})
    app = gateway(resolver)

    async def go() -> None:
        async with app.running(), client(app) as c:
            first = (await c.get("/admin/routes", headers=ADMIN)).json()["generation"]
            await asyncio.sleep(0.6)  # several state reads, nothing moved: no refresh (interval_s is 600)
            assert (await c.get("/admin/routes", headers=ADMIN)).json()["generation"] == first
            resolver.state = state(None, 0, {"production": 2})

            async def refreshed() -> bool:
                summary = (await c.get("/admin/routes", headers=ADMIN)).json()
                return bool(summary["generation"] > first and summary["state"]["split"]["stages"]["production"] == 2)

            await until(refreshed)

    asyncio.run(go())


def test_put_writes_through_the_registry_409_while_a_rollout_owns_it_503_when_down(
    gateway: Callable[[StateResolver], Any],
) -> None:
    resolver = StateResolver()
    app = gateway(resolver)

    async def go() -> None:
        async with app.running(), client(app) as c:
            body = {"weights": {"stable": 90, "canary": 10}, "reason": "canary 10%"}
            r = await c.put("/admin/routes/split", json=body, headers=ADMIN)
            assert r.status_code == 200, r.text
            assert resolver.writes == [
                {"route": "split", "weights": {"stable": 90, "canary": 10}, "actor": "ops", "force": False,
                 "reason": "canary 10%"}
            ]  # fmt: skip
            assert await served_weights(c) == {"stable": 90, "canary": 10}

            resolver.write_fail = RolloutActive("split", "rollout-7")
            r = await c.put("/admin/routes/split", json={"weights": {"stable": 50, "canary": 50}}, headers=ADMIN)
            assert r.status_code == 409
            assert r.json()["error"]["code"] == "rollout_active" and "rollout-7" in r.json()["error"]["message"]
            assert await served_weights(c) == {"stable": 90, "canary": 10}

            resolver.write_fail = RegistryError("cannot write the weights of route split", uri=LEAKY_URI)
            r = await c.put("/admin/routes/split", json={"weights": {"stable": 50, "canary": 50}}, headers=ADMIN)
            assert r.status_code == 503 and r.json()["error"]["code"] == "registry_unavailable"
            assert "s3cr3t" not in r.text and "db.internal" not in r.text
            await asyncio.sleep(0.5)  # state reads meanwhile still say 90/10
            assert await served_weights(c) == {"stable": 90, "canary": 10}

            resolver.write_fail = None
            body = {"weights": {"stable": 50, "canary": 50}, "force": True}
            assert (await c.put("/admin/routes/split", json=body, headers=ADMIN)).status_code == 200
            assert resolver.writes[-1]["force"] is True
            assert await served_weights(c) == {"stable": 50, "canary": 50}
            # a body with a misspelt field is refused before anything is written
            bad = await c.put("/admin/routes/split", json={"weights": {"stable": 1, "canary": 1}, "forse": 1},
                              headers=ADMIN)  # fmt: skip
            assert bad.status_code == 400 and len(resolver.writes) == 2

    asyncio.run(go())
