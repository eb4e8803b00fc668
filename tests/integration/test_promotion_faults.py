"""Crash safety of ``llmops promote``: killed at every step, then ``rollback`` and a second promote succeed.

Each case kills a real ``llmops promote`` subprocess (``LLMOPS_FAULT=promote-STEP``, an abrupt exit)
against a real MLflow server, then checks what a user sees: the route serves the old release or the new
one (never a mix), ``rollback`` works, the aliases mirror the pointer and no move is left pending.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from llmops.config.workspace import load_workspace
from llmops.evals.files import load_suite
from llmops.promotion import pending
from llmops.registry import connect
from llmops.release import Release

pytestmark = pytest.mark.integration

Cli = Callable[..., subprocess.CompletedProcess[str]]
#: every step a promotion can die at, and whether the pointer (the commit point) had moved by then
STEPS = {
    "after-pending": False,
    "after-move-1": False,  # the adapter alias moved
    "after-move-2": False,  # the prompt alias moved too
    "after-pointer": True,
    "before-audit": True,
}


@pytest.fixture
def route_ws(
    mlflow_server, git_workspace, tmp_path: Path, invoke_llmops: Cli, fake_adapter: Callable[..., Path],
    new_run: Callable[..., str],
    write_required_suite: Callable[[Path, str], Path],
) -> dict[str, object]:  # fmt: skip
    """A route with a required suite and two releases that differ in adapter and prompt, both evaluated."""
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url, "LLMOPS_ACTOR": "ci-bot"}
    root = git_workspace.root
    prompt = git_workspace.name("support-triage")
    assert invoke_llmops("prompts", "push", cwd=root, env=env).returncode == 0
    path = git_workspace.prompt_path("support-triage")
    path.write_text(path.read_text().replace("max_tokens: 48", "max_tokens: 64"))
    git_workspace.commit("prompt v2")
    assert invoke_llmops("prompts", "push", cwd=root, env=env).returncode == 0
    route = f"crash-{uuid.uuid4().hex[:6]}"
    write_required_suite(root, route)
    ws = load_workspace(root, env=env)
    registry = connect(ws)
    suite, _, case_bytes = load_suite(root / "evals" / "gate.yaml")
    for seed in (1, 2):
        registry.adapters.register(route, fake_adapter(tmp_path / f"a{seed}", seed), new_run(registry), {})
        release = registry.resolve(Release.of("reference", f"{route}/{seed}", f"{prompt}/{seed}")).release
        registry.evals.log(suite=suite.name, suite_hash=suite.suite_hash(case_bytes), release=release,
                           verdict="pass", metrics={"exact_match": 1.0})  # fmt: skip
    return {"env": env, "root": root, "route": route, "prompt": prompt, "ws": ws}


def _state(ws, route: str, prompt: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(adapter, prompt) versions the route serves at production; asserts the aliases mirror the pointer."""
    registry = connect(ws)
    current = registry.pointers.at_stage(route, "production")
    assert current is not None and current.release.adapter and current.release.prompt
    served = (current.release.adapter.version, current.release.prompt.version)
    aliases = (
        registry.adapters.alias_version(route, "production"),
        registry.prompts.alias_version(prompt, "production"),
    )
    assert aliases == served, f"aliases {aliases} do not mirror the release pointer {served}"
    assert pending(registry, route) == [], "a move was left pending"
    return served  # type: ignore[return-value]


@pytest.mark.parametrize("step", list(STEPS))
def test_promote_killed_at_each_step_then_rollback_and_promote_succeed(
    route_ws: dict[str, object], step: str, invoke_llmops: Cli, run_llmops: Cli
) -> None:
    env, root, route, prompt, ws = (route_ws[k] for k in ("env", "root", "route", "prompt", "ws"))
    release = {1: ("--adapter", f"{route}/1", "--prompt", f"{prompt}/1"),
               2: ("--adapter", f"{route}/2", "--prompt", f"{prompt}/2")}  # fmt: skip
    for n in (1, 2):
        ok = invoke_llmops("promote", route, *release[n], cwd=root, env=env)
        assert ok.returncode == 0, ok.stderr
    assert _state(ws, route, prompt) == (2, 2)

    # killed while moving production back to release 1
    killed = run_llmops("promote", route, *release[1], cwd=root, env={**env, "LLMOPS_FAULT": f"promote-{step}"})
    assert killed.returncode == 70, killed.stderr
    pointer = connect(ws).pointers.at_stage(route, "production")
    assert pointer is not None and pointer.version == (1 if STEPS[step] else 2)  # old or new, never a mix
    assert pending(connect(ws), route), "the killed move left no pending record"

    back = invoke_llmops("rollback", route, "--reason", "after a crash", cwd=root, env=env)
    assert back.returncode == 0, back.stderr
    # the kill after the pointer moved committed 2 → 1, so rollback returns to 2; otherwise 1 is the one before 2
    assert _state(ws, route, prompt) == ((2, 2) if STEPS[step] else (1, 1))
    audit = connect(ws).audit.records(route)
    assert any("reconciled" in r.reason for r in audit)

    # killed again, then a plain second promote settles it and moves
    other = 1 if STEPS[step] else 2
    start = _state(ws, route, prompt)
    killed = run_llmops("promote", route, *release[other], cwd=root, env={**env, "LLMOPS_FAULT": f"promote-{step}"})
    assert killed.returncode == 70, killed.stderr
    again = invoke_llmops("promote", route, *release[other], cwd=root, env=env)
    assert again.returncode == 0, again.stderr
    assert _state(ws, route, prompt) == (other, other) != start
    listed = invoke_llmops("adapters", "list", cwd=root, env=env)
    assert ".lease." not in listed.stdout and f"{route}.release" not in listed.stdout


def test_doctor_reports_an_interrupted_move_and_repairs_it(route_ws: dict[str, object], invoke_llmops: Cli,
                                                           run_llmops: Cli) -> None:  # fmt: skip
    env, root, route, prompt, ws = (route_ws[k] for k in ("env", "root", "route", "prompt", "ws"))
    args = ("promote", route, "--adapter", f"{route}/1", "--prompt", f"{prompt}/1")
    killed = run_llmops(*args, cwd=root, env={**env, "LLMOPS_FAULT": "promote-after-move-2"})
    assert killed.returncode == 70
    registry = connect(ws)
    assert registry.adapters.alias_version(route, "production") == 1  # moved, but nothing serves it yet
    assert registry.pointers.at_stage(route, "production") is None

    report = invoke_llmops("doctor", cwd=root, env=env)
    assert "interrupted moves" in report.stdout and "pending" in report.stdout and route in report.stdout
    repaired = invoke_llmops("doctor", "--repair", cwd=root, env=env)
    assert f"repaired {route}@production" in repaired.stdout and "restored" in repaired.stdout
    assert pending(registry, route) == []
    # no release was ever served at production, so the aliases the killed move set are removed again
    assert registry.adapters.alias_version(route, "production") is None
    assert registry.prompts.alias_version(prompt, "production") is None
