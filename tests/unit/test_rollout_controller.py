"""The rollout controller's state machine on an embedded registry, with request logs written by the test.

Between two looks (the controller's ``sleep``) the test plays a gateway: it reads the weights the controller
wrote to the registry and appends requests to the log, split between the arms by those weights, each
record labelled with the release its arm serves (prompt versions here: the releases have no adapter). No
server runs; the statistics, the registry writes, the promotions and the audit trail are the real ones.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import generate_latest

from llmops.config.workspace import Workspace, load_workspace
from llmops.errors import PromotionRefused, RegistryError, RolloutActive
from llmops.evals.files import load_suite
from llmops.gitinfo import GitInfo
from llmops.promotion import promote
from llmops.prompts.files import load_checked
from llmops.registry import Registry, connect
from llmops.registry.rollouts import RolloutStore
from llmops.release import Release
from llmops.rollout import service
from llmops.rollout.controller import RolloutOutcome
from llmops.rollout.metrics import RolloutExporter

REPO = Path(__file__).resolve().parents[2]
ROUTE = "triage"
PROMPT = "triage-prompt"


class Killed(Exception):
    """Stands for a controller killed mid-step."""


def write_workspace(root: Path, log: Path) -> None:
    (root / "serving").mkdir(parents=True)
    (root / "serving" / "gateway.yaml").write_text(
        f"""version: 1
engines: {{local: {{url: "http://127.0.0.1:9", model: reference}}}}
routes:
  {ROUTE}:
    capture: 1.0
    targets:
      - {{name: stable, weight: 100, release: production, prompt: "{PROMPT}@production"}}
      - {{name: canary, weight: 0, release: canary, prompt: "{PROMPT}@production"}}
"""
    )
    (root / "serving" / "rollout.yaml").write_text(
        f"""version: 1
request_log: ["{log}"]
feedback_log: []
interval_s: 0.2
routes:
  {ROUTE}:
    steps:
      - {{weight: 10, min_duration: 0.05s, min_samples: 60, max_duration: 60s}}
      - {{weight: 50, min_duration: 0.05s, min_samples: 60, max_duration: 60s}}
      - {{weight: 100, min_duration: 0.05s, min_samples: 60, max_duration: 60s}}
    checks:
      error_rate: {{max_increase: 0.02}}
      latency: {{tolerance: 0.25, max_p95_ratio: 1.2}}
      json_validity: {{max_decrease: 0.05}}
"""
    )
    (root / "evals").mkdir()
    (root / "evals" / "cases.jsonl").write_text('{"variables": {"message": "refund please"}, "reference": "x"}\n')
    (root / "evals" / "gate.yaml").write_text(
        f"name: gate\ncases: cases.jsonl\nrequired: true\ntarget: {{route: {ROUTE}}}\nmetrics: [exact_match]\n"
        "gates:\n  - {metric: exact_match, min: 0.5}\n"
    )


class Gateway:
    """Appends requests to the log as the gateway would, split by the weights in the registry."""

    def __init__(self, registry: Registry, log: Path, *, canary_errors: float = 0.0, per_look: int = 120) -> None:
        self.registry, self.log, self.canary_errors, self.per_look = registry, log, canary_errors, per_look
        self.rng = random.Random(7)
        self.ids = itertools.count()
        self.looks = 0

    def labels(self, stage: str) -> str | None:
        found = self.registry.pointers.at_stage(ROUTE, stage)
        return str(found.release.prompt) if found else None

    def sleep(self, _: float) -> None:
        self.looks += 1
        state = self.registry.routes.read(ROUTE)
        weights = dict(state.weights) if state and state.weights else {"stable": 100, "canary": 0}
        prompts = {"stable": self.labels("production"), "canary": self.labels("canary")}
        lines = []
        for _ in range(self.per_look):
            arm = "canary" if self.rng.uniform(0, 100) < weights["canary"] else "stable"
            broken = arm == "canary" and self.rng.random() < self.canary_errors
            record = {
                "id": f"r{next(self.ids)}", "time": time.time(), "route": ROUTE, "target": arm,
                "prompt_version": prompts[arm], "adapter_version": None, "status": 502 if broken else 200,
                "latency_ms": self.rng.lognormvariate(5.9, 0.3), "error": "engine local failed" if broken else None,
                "captured": True, "output": '{"intent": "refund", "priority": "low"}',
            }  # fmt: skip
            lines.append(orjson.dumps(record) + b"\n")
        with self.log.open("ab") as f:
            f.write(b"".join(lines))


def push_prompt(registry: Registry, max_tokens: int) -> str:
    spec = load_checked(REPO / "prompts" / "support-triage.yaml").model_copy(update={"name": PROMPT})
    spec = spec.model_copy(update={"params": spec.params.model_copy(update={"max_tokens": max_tokens})})
    pushed = registry.prompts.push(spec, GitInfo(None, "test", False, "prompts/triage-prompt.yaml"))
    return f"{PROMPT}/{pushed.version}"


def passing_record(ws: Workspace, registry: Registry, prompt: str) -> None:
    suite, _, case_bytes = load_suite(ws.root / "evals" / "gate.yaml")
    release = registry.resolve(Release.of(ws.settings.models.base_model, None, prompt)).release
    registry.evals.log(suite=suite.name, suite_hash=suite.suite_hash(case_bytes), release=release, verdict="pass",
                       metrics={"exact_match": 1.0})  # fmt: skip


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("LLMOPS_ACTOR", "release-bot")
    log = tmp_path / "requests.jsonl"
    write_workspace(tmp_path / "ws", log)
    ws = load_workspace(tmp_path / "ws", env={})
    registry = connect(ws)
    stable, good, bad, unchecked = (push_prompt(registry, n) for n in (48, 40, 32, 24))
    for prompt in (stable, good, bad):
        passing_record(ws, registry, prompt)
    promote(ws, ROUTE, adapter=None, prompt=stable, stage="production", force=True, reason="setup")
    return {"ws": ws, "registry": registry, "log": log, "stable": stable, "good": good, "bad": bad,
            "unchecked": unchecked}  # fmt: skip


def weight_writes(registry: Registry, rollout_id: str) -> list[dict[str, int]]:
    found = [json.loads(r.detail) for r in registry.audit.records(ROUTE, limit=500) if r.kind == "weights"]
    return [w["weights"] for w in reversed(found) if w.get("rollout") == rollout_id]


def start(s: dict[str, Any], prompt: str, gateway: Gateway, observer: Any = None, **kw: Any) -> RolloutOutcome:
    options = service.Options(sleep=gateway.sleep, observer=observer)
    return service.start(s["ws"], ROUTE, adapter=None, prompt=prompt, options=options, **kw)


def test_a_good_release_killed_mid_step_resumes_once_per_step_and_reaches_production(setup: dict[str, Any]) -> None:
    registry: Registry = setup["registry"]
    gateway = Gateway(registry, setup["log"])
    original = gateway.sleep

    def killed_in_step_two(seconds: float) -> None:
        record = registry.rollouts.open_of(ROUTE)
        if record is not None and record.state["step"] == 1 and record.state["looks"] >= 1:
            raise Killed
        original(seconds)

    gateway.sleep = killed_in_step_two  # type: ignore[method-assign]
    with pytest.raises(Killed):
        start(setup, setup["good"], gateway)
    open_one = registry.rollouts.open_of(ROUTE)
    assert open_one is not None and open_one.status == "running" and open_one.state["step"] == 1
    with pytest.raises(RolloutActive):  # an open rollout: a second start is refused, nothing moves
        start(setup, setup["good"], Gateway(registry, setup["log"]))

    gateway.sleep = original  # type: ignore[method-assign]
    outcome = service.resume(setup["ws"], ROUTE, options=service.Options(sleep=gateway.sleep))
    assert outcome.status == "succeeded" and outcome.exit_code == 0, outcome.state.reason
    assert [h["step"] for h in outcome.state.history] == [1, 2, 3]
    assert [h["verdict"] for h in outcome.state.history] == ["pass", "pass", "pass"]
    production = registry.pointers.at_stage(ROUTE, "production")
    assert production is not None and str(production.release.prompt) == setup["good"]
    writes = weight_writes(registry, outcome.rollout_id)
    assert [w["canary"] for w in writes] == [10, 50, 100, 0]  # each step's weights once, then back to 100/0
    state = registry.routes.read(ROUTE)
    assert state is not None and state.rollout is None and dict(state.weights or {}) == {"stable": 100, "canary": 0}
    moves = [r for r in registry.audit.records(ROUTE) if r.kind == "release" and r.alias == "production"]
    assert moves[0].actor == "release-bot" and outcome.rollout_id in moves[0].reason
    outcomes = [r.outcome for r in registry.audit.records(ROUTE) if r.kind == "rollout"]
    assert outcomes[:2] == ["succeeded", "started"]


def test_a_failing_canary_is_aborted_at_once_with_its_evidence(setup: dict[str, Any]) -> None:
    registry: Registry = setup["registry"]
    before = registry.pointers.at_stage(ROUTE, "canary")
    exporter = RolloutExporter()
    outcome = start(setup, setup["bad"], Gateway(registry, setup["log"], canary_errors=0.3), observer=exporter)
    assert outcome.status == "failed" and outcome.exit_code == 1
    assert "error_rate" in outcome.state.reason and outcome.state.history[-1]["step"] == 1
    assert outcome.state.history[-1]["canary_n"] <= 300
    state = registry.routes.read(ROUTE)
    assert state is not None and dict(state.weights or {}) == {"stable": 100, "canary": 0} and state.rollout is None
    canary = registry.pointers.at_stage(ROUTE, "canary")
    production = registry.pointers.at_stage(ROUTE, "production")
    assert production is not None and str(production.release.prompt) == setup["stable"]
    # the canary pointer is back where it was (nothing before: the production release)
    assert canary is not None and canary.version == (before.version if before else production.version)
    [failed] = [r for r in registry.audit.records(ROUTE) if r.kind == "rollout" and r.outcome == "failed"]
    evidence = json.loads(failed.detail)
    check = next(c for c in evidence["checks"] if c["check"] == "error_rate")
    assert check["verdict"] == "fail" and check["p_value"] <= 0.02 and check["n_canary"] >= 60
    page = generate_latest(exporter.registry).decode()  # what --metrics-port serves
    assert 'llmops_rollout_status{route="triage"} 2.0' in page
    assert 'llmops_rollout_weight{route="triage",target="canary"} 0.0' in page
    assert 'llmops_rollout_check{check="error_rate",route="triage",verdict="fail"} 1.0' in page


def test_too_little_traffic_pauses_and_abort_restores_stable(setup: dict[str, Any], tmp_path: Path) -> None:
    registry: Registry = setup["registry"]
    spec = setup["ws"].root / "serving" / "rollout.yaml"
    spec.write_text(spec.read_text().replace("max_duration: 60s", "max_duration: 0.5s"))
    outcome = start(setup, setup["good"], Gateway(registry, setup["log"], per_look=2))
    assert outcome.status == "paused" and outcome.exit_code == 3 and "minimum sample" in outcome.state.reason
    record = registry.rollouts.open_of(ROUTE)
    assert record is not None and record.status == "paused"
    aborted = service.abort(setup["ws"], ROUTE, reason="not today")
    assert aborted.status == "aborted"
    state = registry.routes.read(ROUTE)
    assert state is not None and dict(state.weights or {}) == {"stable": 100, "canary": 0} and state.rollout is None
    assert registry.rollouts.open_of(ROUTE) is None


def test_a_release_without_a_passing_eval_record_is_refused_before_any_traffic(setup: dict[str, Any]) -> None:
    registry: Registry = setup["registry"]
    gateway = Gateway(registry, setup["log"])
    with pytest.raises(PromotionRefused):
        start(setup, setup["unchecked"], gateway)
    assert gateway.looks == 0 and registry.rollouts.of_route(ROUTE) == []
    assert registry.routes.read(ROUTE) is not None and registry.routes.read(ROUTE).weights is None  # type: ignore[union-attr]
    forced = start(setup, setup["unchecked"], gateway, force=True, reason="hot fix")
    assert forced.status == "succeeded"
    moves = [r for r in registry.audit.records(ROUTE) if r.kind == "release" and r.alias == "production"]
    assert moves[0].forced and "hot fix" in moves[0].reason


def test_a_registry_that_stops_answering_is_retried_with_backoff(
    setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    registry: Registry = setup["registry"]
    gateway = Gateway(registry, setup["log"])
    real_get = RolloutStore.get
    outage = {"calls": 0}

    def flaky(self: RolloutStore, rollout_id: str) -> Any:  # the registry drops out during step 2
        record = real_get(self, rollout_id)
        if record.state.get("step") == 1 and outage["calls"] < 3:
            outage["calls"] += 1
            raise RegistryError("registry is unreachable (GET /health failed)", uri="http://mlflow.internal")
        return record

    monkeypatch.setattr(RolloutStore, "get", flaky)
    waits: list[float] = []
    notes: list[str] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        gateway.sleep(seconds)

    reporter = type("Notes", (), {"note": lambda self, m: notes.append(m), "task": None, "waiting": None})()
    options = service.Options(sleep=sleep, reporter=reporter)
    outcome = service.start(setup["ws"], ROUTE, adapter=None, prompt=setup["good"], options=options)
    assert outcome.status == "succeeded" and outage["calls"] == 3
    assert sum("registry unavailable" in n for n in notes) == 3
    assert [w for w in waits if w >= 1.0][:3] == [1.0, 2.0, 4.0]  # backoff doubles while the fault lasts
    assert [h["step"] for h in outcome.state.history] == [1, 2, 3]
