"""Progressive rollouts end to end: two gateway replicas over a real vLLM engine, a registry over HTTP.

The route ``triage-…`` has a stable target (``release: production``) and a canary (``release: canary``).
Production is adapter v1 + prompt v1 (max_tokens 8). The good candidate is adapter v2 with the same
prompt; the bad one adds prompt v2, whose max_tokens 480 lets the (random) adapter talk until the 512-token
context ends (vLLM caps max_tokens to what is left): answers ~20x slower, a latency regression. Traffic runs through both replicas all along; the controller is the real ``llmops rollout`` CLI.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmops.config.workspace import load_workspace
from llmops.evals.files import load_suite
from llmops.gitinfo import GitInfo
from llmops.promotion import promote
from llmops.prompts.spec import load_spec
from llmops.registry import connect, tags
from llmops.release import Release

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
MESSAGES = ["I was charged twice for order 1234", "My parcel has not arrived", "I cannot log in to my account"]


@dataclass
class Fleet:
    root: Path
    ws: Any
    env: dict[str, str]
    route: str
    adapter: str
    prompt: str
    urls: list[str]
    bin: str


def _lora(make_random_lora: Callable[..., Path], model: Path, out: Path, seed: int) -> Path:
    folder = make_random_lora(model, out, seed=seed)
    for extra in folder.iterdir():
        if extra.name not in ("adapter_model.safetensors", "adapter_config.json"):
            extra.unlink()
    return folder


@pytest.fixture(scope="module")
def fleet(
    mlflow_server: Any,
    vllm_engine: Any,
    tiny_model_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    start_gateway: Callable[..., Any],
    make_random_lora: Callable[..., Path],
    write_required_suite: Callable[[Path, str], Path],
    llmops_bin: str,
) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("rollout-ws")
    suffix = uuid.uuid4().hex[:6]
    route, adapter, prompt = f"triage-{suffix}", f"triage-lora-{suffix}", f"support-triage-{suffix}"
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url, "LLMOPS_ACTOR": "release-bot",
           "LLMOPS_STICKY_SECRET": "rollout-test-secret", **vllm_engine.env}  # fmt: skip
    ws = load_workspace(root, env=env)
    registry = connect(ws)
    for seed in (1, 2):
        run_id = registry.runs.start("llmops-test-adapters", f"{adapter}-{seed}", {}).run_id
        folder = _lora(make_random_lora, tiny_model_path, root / f"adapter-{seed}", seed)
        registry.adapters.register(adapter, folder, run_id, {tags.BASE_MODEL: str(tiny_model_path)})
    spec = load_spec(REPO / "prompts" / "support-triage.yaml").model_copy(update={"name": prompt})
    for max_tokens in (8, 480):  # v1: production; v2: answers up to the end of the context
        params = spec.params.model_copy(update={"max_tokens": max_tokens})
        registry.prompts.push(spec.model_copy(update={"params": params}), GitInfo(None, "t", False, f"{prompt}.yaml"))
    config = f"""
engines:
  vllm: {{url: "{vllm_engine.url}", max_adapters: 4, api_key_env: LLMOPS_ENGINE_KEY}}
routes:
  {route}:
    capture: 1.0
    targets:
      - {{name: stable, weight: 100, release: production, prompt: "{prompt}@production"}}
      - {{name: canary, weight: 0, release: canary, prompt: "{prompt}@production"}}
limits: {{max_tokens: 512, read_timeout_s: 60}}
"""
    (root / "serving").mkdir()
    (root / "serving" / "gateway.yaml").write_text(config)
    write_required_suite(root, route)
    suite, _, case_bytes = load_suite(root / "evals" / "gate.yaml")
    for a, p in (("1", "1"), ("2", "1"), ("2", "2")):  # every candidate passed the (offline) gate
        release = registry.resolve(Release.of(ws.settings.models.base_model, f"{adapter}/{a}", f"{prompt}/{p}")).release
        registry.evals.log(suite=suite.name, suite_hash=suite.suite_hash(case_bytes), release=release,
                           verdict="pass", metrics={"exact_match": 1.0})  # fmt: skip
    promote(ws, route, adapter=f"{adapter}/1", prompt=f"{prompt}/1", stage="production", force=True, reason="setup")
    replicas = [
        start_gateway(tmp_path_factory.mktemp(f"replica-{i}"), config, env, timeout=180, refresh_s=600)
        for i in range(2)
    ]
    logs = [str(r.log_path) for r in replicas]
    urls = [r.url for r in replicas]
    (root / "serving" / "rollout.yaml").write_text(
        f"""version: 1
request_log: {json.dumps(logs)}
feedback_log: []
replicas: {json.dumps(urls)}
interval_s: 0.5
routes:
  {route}:
    confidence: 0.98
    steps:
      - {{weight: 25, min_duration: 2s, min_samples: 25, max_duration: 150s}}
      - {{weight: 50, min_duration: 2s, min_samples: 25, max_duration: 150s}}
      - {{weight: 100, min_duration: 2s, min_samples: 25, max_duration: 150s}}
    checks:
      error_rate: {{max_increase: 0.02}}
      latency: {{tolerance: 0.25, max_p95_ratio: 1.5}}
"""
    )
    try:
        yield Fleet(root, ws, env, route, adapter, prompt, urls, llmops_bin)
    finally:
        for r in replicas:
            r.process.stop()


@pytest.fixture
def traffic(fleet: Fleet, load: Callable[..., Any], gateway_keys: Any) -> Iterator[Any]:
    def body(i: int) -> dict[str, Any]:
        return {"model": fleet.route, "messages": [], "user": f"user-{i}",
                "prompt_variables": {"message": MESSAGES[i % len(MESSAGES)]}}  # fmt: skip

    with load(fleet.urls, body, gateway_keys.user, concurrency=3) as running:
        yield running


def _cli(fleet: Fleet, *args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run([fleet.bin, *args], cwd=fleet.root, env={**os.environ, **fleet.env}, capture_output=True,
                          text=True, timeout=timeout, check=False)  # fmt: skip


def _weights(fleet: Fleet, url: str, admin: dict[str, str]) -> dict[str, int]:
    found = httpx.get(f"{url}/admin/routes/{fleet.route}", headers=admin, timeout=10).json()
    return {t["target"]: t["weight"] for t in found["targets"]}


def test_weights_set_on_one_replica_serve_on_both_within_3_s(fleet: Fleet, gateway_keys: Any) -> None:
    a, b = fleet.urls
    put = httpx.put(f"{a}/admin/routes/{fleet.route}", json={"weights": {"stable": 70, "canary": 30}},
                    headers=gateway_keys.admin, timeout=30)  # fmt: skip
    assert put.status_code == 200, put.text
    set_at = time.monotonic()
    while _weights(fleet, b, gateway_keys.admin) != {"stable": 70, "canary": 30}:
        assert time.monotonic() - set_at < 3.0, "replica B did not take the weights within 3 s"
        time.sleep(0.05)
    assert _weights(fleet, a, gateway_keys.admin) == {"stable": 70, "canary": 30}
    back = httpx.put(f"{b}/admin/routes/{fleet.route}", json={"weights": {"stable": 100, "canary": 0}},
                     headers=gateway_keys.admin, timeout=30)  # fmt: skip
    assert back.status_code == 200, back.text
    records = [r for r in connect(fleet.ws).audit.records(fleet.route) if r.kind == "weights"]
    assert records and records[0].actor == "ops"  # the admin key's name


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_good_release_killed_mid_step_resumes_and_reaches_production_once_per_step(
    fleet: Fleet, traffic: Any, gateway_keys: Any
) -> None:
    registry = connect(fleet.ws)
    argv = [fleet.bin, "rollout", "start", fleet.route, "--adapter", f"{fleet.adapter}/2", "--prompt",
            f"{fleet.prompt}/1", "--steps", "25,50,100"]  # fmt: skip
    log = (fleet.root / "controller-1.log").open("w")
    controller = subprocess.Popen(argv, cwd=fleet.root, env={**os.environ, **fleet.env}, stdout=log,
                                  stderr=subprocess.STDOUT)  # fmt: skip
    try:

        def in_step_two() -> bool:
            found = registry.rollouts.open_of(fleet.route)
            return found is not None and found.state.get("step") == 1 and found.state.get("phase") == "analysing"

        _wait_for(in_step_two, 240, "step 2 of the rollout")
        refused = httpx.put(f"{fleet.urls[0]}/admin/routes/{fleet.route}", json={"weights": {"stable": 1, "canary": 99}},
                            headers=gateway_keys.admin, timeout=30)  # fmt: skip
        assert refused.status_code == 409, refused.text  # the rollout owns the weights
        controller.send_signal(signal.SIGKILL)
        controller.wait(timeout=30)
    finally:
        if controller.poll() is None:
            controller.kill()
        log.close()
    again = _cli(fleet, "rollout", "start", fleet.route, "--adapter", f"{fleet.adapter}/2", "--prompt",
                 f"{fleet.prompt}/1")  # fmt: skip
    assert again.returncode != 0 and "resume" in (again.stdout + again.stderr)  # an open rollout: refused
    resumed = _cli(fleet, "rollout", "resume", fleet.route, "--json")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    outcome = json.loads(resumed.stdout)
    assert outcome["status"] == "succeeded"
    assert [h["step"] for h in outcome["state"]["history"]] == [1, 2, 3]  # each step judged once, none skipped
    production = registry.pointers.at_stage(fleet.route, "production")
    assert production is not None and str(production.release.adapter) == f"{fleet.adapter}/2"
    state = registry.routes.read(fleet.route)
    assert state is not None and dict(state.weights or {}) == {"stable": 100, "canary": 0} and state.rollout is None
    rollout_id = outcome["rollout"]
    writes = [json.loads(r.detail) for r in registry.audit.records(fleet.route, limit=500) if r.kind == "weights"]
    canary_shares = sorted(w["weights"]["canary"] for w in writes if w.get("rollout") == rollout_id)
    assert canary_shares == [0, 25, 50, 100], writes  # one write per step, then 100/0


def test_bad_release_is_aborted_with_canary_weight_zero_and_stable_serving(
    fleet: Fleet, traffic: Any, gateway_keys: Any
) -> None:
    registry = connect(fleet.ws)
    before = registry.pointers.at_stage(fleet.route, "canary")
    started = time.monotonic()
    bad = _cli(fleet, "rollout", "start", fleet.route, "--adapter", f"{fleet.adapter}/2", "--prompt",
               f"{fleet.prompt}/2", "--json")  # fmt: skip
    assert bad.returncode == 1, bad.stdout + bad.stderr
    outcome = json.loads(bad.stdout)
    assert outcome["status"] == "failed" and "latency" in outcome["state"]["reason"]
    history = outcome["state"]["history"]
    assert history[-1]["verdict"] == "fail" and history[-1]["canary_n"] <= 300
    state = registry.routes.read(fleet.route)
    assert state is not None and dict(state.weights or {}) == {"stable": 100, "canary": 0}
    canary = registry.pointers.at_stage(fleet.route, "canary")
    assert before is not None and canary is not None and canary.version == before.version  # pointer back
    ended = time.monotonic()
    _wait_for(lambda: bool(traffic.since(ended + 3.0)), 30, "traffic after the abort")
    time.sleep(2.0)
    after = [s for s in traffic.since(ended + 3.0) if s.status == 200]
    assert after and {s.headers.get("x-llmops-target") for s in after} == {"stable"}
    assert {s.headers.get("x-llmops-adapter-version") for s in after} == {f"{fleet.adapter}/2"}
    failed = [r for r in registry.audit.records(fleet.route, limit=50) if r.kind == "rollout" and r.outcome == "failed"]
    assert (
        failed
        and "p_value" in failed[0].detail
        and failed[0].timestamp_ms / 1000 >= time.time() - (time.monotonic() - started) - 5
    )
