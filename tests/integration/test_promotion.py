"""Gated promotion, forced promotion, crash safety and rollback, against a real MLflow server.

Also: the gate refuses a route no required suite targets and matches records by the whole release key
(base model and the route's params too); ``ROUTE.release`` held by another kind of model is refused;
``llmops prompts promote`` refuses an alias a route serves and audits the others.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from llmops.config.workspace import load_workspace
from llmops.errors import RegistryError
from llmops.evals.files import load_suite
from llmops.registry import connect
from llmops.release import Release

pytestmark = pytest.mark.integration

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def setup(
    mlflow_server,
    git_workspace,
    tmp_path: Path,
    invoke_llmops: Cli,
    fake_adapter: Callable[..., Path],
    new_run: Callable[..., str],
    write_required_suite: Callable[[Path, str], Path],
) -> dict[str, object]:
    """A workspace with one pushed prompt, two adapter versions and a required suite for the route."""
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url, "LLMOPS_ACTOR": "ci-bot"}
    root = git_workspace.root
    assert invoke_llmops("prompts", "push", cwd=root, env=env).returncode == 0
    route = f"triage-{uuid.uuid4().hex[:6]}"
    adapter = route  # adapters are named like the route in the example
    prompt = git_workspace.name("support-triage")
    write_required_suite(root, route)
    ws = load_workspace(root, env=env)
    registry = connect(ws)
    for seed in (1, 2):
        registry.adapters.register(adapter, fake_adapter(tmp_path / f"a{seed}", seed), new_run(registry), {})
    return {"env": env, "root": root, "route": route, "adapter": adapter, "prompt": prompt, "ws": ws}


def record(ws, adapter_ref: str, prompt_ref: str, verdict: str, *, base: str = "reference",  # type: ignore[no-untyped-def]
           params: dict[str, object] | None = None) -> str:  # fmt: skip
    registry = connect(ws)
    suite, _, case_bytes = load_suite(ws.root / "evals" / "gate.yaml")
    release = registry.resolve(Release.of(base, adapter_ref, prompt_ref, params)).release
    return registry.evals.log(
        suite=suite.name,
        suite_hash=suite.suite_hash(case_bytes),
        release=release,
        verdict=verdict,
        metrics={"exact_match": 1.0 if verdict == "pass" else 0.0},
    )


def serving(ws, route: str) -> tuple[str, str] | None:  # type: ignore[no-untyped-def]
    current = connect(ws).pointers.at_stage(route, "production")
    return None if current is None else (str(current.release.adapter), str(current.release.prompt))


def test_promotion_is_gated_forced_crash_safe_and_reversible(
    setup: dict[str, object], invoke_llmops: Cli, run_llmops: Cli
) -> None:
    env, root, route, adapter, prompt, ws = (setup[k] for k in ("env", "root", "route", "adapter", "prompt", "ws"))
    a1, a2, p1 = f"{adapter}/1", f"{adapter}/2", f"{prompt}/1"

    refused = invoke_llmops("promote", route, "--adapter", a1, "--prompt", p1, cwd=root, env=env)
    assert refused.returncode == 1
    assert "no passing eval record" in refused.stderr and "evals/gate.yaml" in refused.stderr
    assert serving(ws, route) is None

    record(ws, a1, p1, "fail")
    assert invoke_llmops("promote", route, "--adapter", a1, "--prompt", p1, cwd=root, env=env).returncode == 1

    passing = record(ws, a1, p1, "pass")
    ok = invoke_llmops("promote", route, "--adapter", a1, "--prompt", p1, cwd=root, env=env)
    assert ok.returncode == 0, ok.stderr
    assert passing in ok.stdout
    assert serving(ws, route) == (a1, p1)
    assert connect(ws).adapters.alias_version(adapter, "production") == 1

    no_reason = invoke_llmops("promote", route, "--adapter", a2, "--prompt", p1, "--force", cwd=root, env=env)
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr

    # killed between two alias moves: what serves is the old release, never a mix
    crashed = run_llmops("promote", route, "--adapter", a2, "--prompt", p1, "--force", "--reason", "hotfix",
                         cwd=root, env={**env, "LLMOPS_FAULT": "promote-after-move-1"})  # fmt: skip
    assert crashed.returncode == 70
    assert serving(ws, route) == (a1, p1)
    audit = invoke_llmops("audit", "--object", route, cwd=root, env=env)
    assert "pending" in audit.stdout

    forced = invoke_llmops("promote", route, "--adapter", a2, "--prompt", p1, "--force", "--reason", "hotfix",
                        cwd=root, env=env)  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    assert "forced" in forced.stdout
    assert serving(ws, route) == (a2, p1)
    audit = invoke_llmops("audit", "--object", route, cwd=root, env=env)
    assert "moved (forced)" in audit.stdout and "hotfix" in audit.stdout

    back = invoke_llmops("rollback", route, "--reason", "canary errors", cwd=root, env=env)
    assert back.returncode == 0, back.stderr
    assert serving(ws, route) == (a1, p1)
    assert connect(ws).adapters.alias_version(adapter, "production") == 1
    audit = invoke_llmops("audit", "--object", route, cwd=root, env=env)
    assert "rolled-back" in audit.stdout and "canary errors" in audit.stdout


GATEWAY = """version: 1
engines:
  local: {{url: "http://127.0.0.1:9"}}
routes:
  {route}:
    targets:
      - {{name: stable, weight: 90, release: production, prompt: "{prompt}@production", params: {{temperature: 0.2}}}}
      - {{name: canary, weight: 10, release: canary, prompt: "{prompt}@production"}}
"""


def test_gate_refuses_an_untargeted_route_and_matches_the_whole_release(
    setup: dict[str, object], invoke_llmops: Cli
) -> None:
    env, root, route, adapter, prompt, ws = (setup[k] for k in ("env", "root", "route", "adapter", "prompt", "ws"))
    a1, p1 = f"{adapter}/1", f"{prompt}/1"
    record(ws, a1, p1, "pass")  # no params: what the route evaluated before it had params

    typo = invoke_llmops("promote", f"{route}x", "--adapter", a1, "--prompt", p1, cwd=root, env=env)
    assert typo.returncode == 1
    assert f"no required eval suite in evals/ targets route '{route}x'" in typo.stderr
    assert f"{route} (evals/gate.yaml)" in typo.stderr
    assert serving(ws, f"{route}x") is None

    # the route now generates with temperature 0.2: a record made without it is another release
    (root / "serving").mkdir()
    (root / "serving" / "gateway.yaml").write_text(GATEWAY.format(route=route, prompt=prompt))
    stale = invoke_llmops("promote", route, "--adapter", a1, "--prompt", p1, cwd=root, env=env)
    assert stale.returncode == 1
    assert "another base model or params" in stale.stderr and "temperature" in stale.stderr
    record(ws, a1, p1, "pass", base="another-base", params={"temperature": 0.2})
    assert invoke_llmops("promote", route, "--adapter", a1, "--prompt", p1, cwd=root, env=env).returncode == 1

    passing = record(ws, a1, p1, "pass", params={"temperature": 0.2})
    ok = invoke_llmops("promote", route, "--adapter", a1, "--prompt", p1, cwd=root, env=env)
    assert ok.returncode == 0, ok.stderr
    assert passing in ok.stdout
    recorded = connect(ws).pointers.at_stage(route, "production")
    assert recorded is not None and dict(recorded.release.params) == {"temperature": 0.2}


def test_a_pointer_name_held_by_another_model_is_refused(
    setup: dict[str, object], invoke_llmops: Cli, fake_adapter: Callable[..., Path], new_run: Callable[..., str],
    tmp_path: Path,
) -> None:  # fmt: skip
    env, root, route, adapter, prompt, ws = (setup[k] for k in ("env", "root", "route", "adapter", "prompt", "ws"))
    registry = connect(ws)
    registry.adapters.register(f"{route}.release", fake_adapter(tmp_path / "clash"), new_run(registry), {})
    forced = invoke_llmops("promote", route, "--adapter", f"{adapter}/1", "--prompt", f"{prompt}/1",
                           "--force", "--reason", "try", cwd=root, env=env)  # fmt: skip
    assert forced.returncode == 2
    assert f"{route}.release holds an llmops adapter, not the release pointers of route {route}" in forced.stderr
    assert [v.version for v in registry.adapters.versions(f"{route}.release")] == [1]
    registry.adapters.set_alias(f"{route}.release", "production", 1)
    with pytest.raises(RegistryError, match="not the release pointers"):
        registry.pointers.at_stage(route, "production")


def test_prompts_promote_refuses_a_served_alias_and_audits_the_others(
    setup: dict[str, object], invoke_llmops: Cli
) -> None:
    env, root, route, prompt, ws = (setup[k] for k in ("env", "root", "route", "prompt", "ws"))
    (root / "serving").mkdir()
    (root / "serving" / "gateway.yaml").write_text(GATEWAY.format(route=route, prompt=prompt))

    served = invoke_llmops("prompts", "promote", prompt, "--version", "1", "--alias", "production",
                           "--reason", "quick fix", cwd=root, env=env)  # fmt: skip
    assert served.returncode == 1
    assert f"served by route(s) {route}" in served.stderr
    assert f"llmops promote {route} --prompt {prompt}/1 --to production" in served.stderr
    assert connect(ws).prompts.alias_version(prompt, "production") is None

    no_reason = invoke_llmops("prompts", "promote", prompt, "--version", "1", "--alias", "staging", cwd=root, env=env)
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    moved = invoke_llmops("prompts", "promote", prompt, "--version", "1", "--alias", "staging",
                          "--reason", "review", cwd=root, env=env)  # fmt: skip
    assert moved.returncode == 0, moved.stderr
    assert connect(ws).prompts.alias_version(prompt, "staging") == 1
    outcomes = [(r.outcome, r.reason) for r in connect(ws).audit.records(prompt) if r.kind == "prompt"]
    assert sorted(outcomes) == [("moved", "review"), ("pending", "review")]
