"""The example CI: pull requests evaluate prompt files as drafts and write nothing; merges to main push.

Both workflow files are parsed, and their evaluation steps are run as GitHub would run them (bash, in a git
checkout) with a stub ``.venv/bin/llmops`` that records its arguments.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
PR_WORKFLOW = WORKFLOWS / "llm-eval.yml"
RELEASE_WORKFLOW = WORKFLOWS / "llm-release.yml"

#: the llmops commands a pull request may run: they read the registry at most
PR_ALLOWED = {("validate", None), ("prompts", "validate"), ("eval", "run")}
#: commands that write to the registry (versions, aliases, pointers, weights, records)
REGISTRY_WRITES = re.compile(
    r"llmops\s+(prompts\s+(push|promote)|promote|rollback|rollout|route\s+weights|retrain|finetune|logs\s+prune|demo)"
)
STUB = """#!/usr/bin/env bash
printf '%s\\n' "$*" >> "$STUB_LOG"
case "$*" in *"$STUB_FAIL_ON"*) [ -n "$STUB_FAIL_ON" ] && exit 1 ;; esac
exit 0
"""


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


def _steps(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in data["jobs"].values() for step in job["steps"]]


def _commands(data: dict[str, Any]) -> list[str]:
    """Every ``llmops`` command line of the workflow (continuation lines joined)."""
    lines = []
    for step in _steps(data):
        script = str(step.get("run", "")).replace("\\\n", " ")
        lines += [re.sub(r"\s+", " ", line.strip()) for line in script.splitlines() if "llmops " in line]
    return lines


def _step_running(data: dict[str, Any], needle: str) -> dict[str, Any]:
    found = [s for s in _steps(data) if needle in str(s.get("run", ""))]
    assert len(found) == 1, f"expected one step running {needle!r}, found {len(found)}"
    return found[0]


def test_pull_requests_evaluate_drafts_and_never_write_the_registry() -> None:
    data = _load(PR_WORKFLOW)
    assert set(data["on"]) == {"pull_request"}
    commands = _commands(data)
    assert commands, "the PR workflow runs llmops"
    for line in commands:
        assert not REGISTRY_WRITES.search(line), line
        match = re.search(r"llmops ([a-z-]+)(?: ([a-z-]+))?", line)
        assert match is not None
        group, sub = match.group(1), match.group(2)
        assert (group, None if group == "validate" else sub) in PR_ALLOWED, line
        if group == "eval":
            assert "--prompt-file" in line and "--prompt " not in line, line
    upload = next(s for s in _steps(data) if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    assert upload.get("if") == "always()"


def test_release_workflow_runs_only_on_push_to_main_and_pushes_before_evaluating() -> None:
    data = _load(RELEASE_WORKFLOW)
    assert set(data["on"]) == {"push"}
    assert data["on"]["push"]["branches"] == ["main"]
    assert data["on"]["push"]["paths"] == ["prompts/**"]
    commands = _commands(data)
    pushes = [i for i, line in enumerate(commands) if "llmops prompts push" in line]
    evals = [i for i, line in enumerate(commands) if "llmops eval run" in line]
    assert pushes and evals and max(pushes) < min(evals), commands
    assert all("--dry-run" not in commands[i] for i in pushes)
    assert all("--prompt-file" not in commands[i] for i in evals)  # the registered version, recorded


# -- the evaluation steps, run -------------------------------------------------------------------------
def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.com"}  # fmt: skip
    out = subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def _write(root: Path, files: dict[str, str | None]) -> None:
    for name, text in files.items():
        path = root / name
        if text is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def checkout(tmp_path: Path) -> Callable[[dict[str, str | None]], tuple[Path, str]]:
    """A repository with prompts a, b, c and suites for a (two) and b; a commit on top changes ``files``.

    Returns the checkout and the commit before the change (also ``origin/main``).
    """
    root = tmp_path / "repo"
    _write(root, {
        "prompts/a.yaml": "name: a\n", "prompts/b.yaml": "name: b\n", "prompts/c.yaml": "name: c\n",
        "evals/a.yaml": "name: a\n", "evals/a.bias.yaml": "name: a-bias\n", "evals/b.yaml": "name: b\n",
        "evals/ab.yaml": "name: ab\n", ".venv/bin/llmops": STUB, ".gitignore": ".venv/\n",
    })  # fmt: skip
    (root / ".venv/bin/llmops").chmod(0o755)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "base")
    base = _git(root, "rev-parse", "HEAD")
    _git(root, "update-ref", "refs/remotes/origin/main", base)

    def change(files: dict[str, str | None]) -> tuple[Path, str]:
        _write(root, files)
        _git(root, "add", "-A")
        _git(root, "commit", "-q", "-m", "change")
        return root, base

    return change


def _run_step(root: Path, script: str, env: dict[str, str], fail_on: str = "") -> tuple[int, str, list[str]]:
    log = root.parent / "calls.log"
    log.unlink(missing_ok=True)
    full = {**os.environ, **env, "STUB_LOG": str(log), "STUB_FAIL_ON": fail_on}
    proc = subprocess.run(["bash", "-c", script], cwd=root, env=full, capture_output=True, text=True, timeout=60)
    calls = log.read_text().splitlines() if log.exists() else []
    return proc.returncode, proc.stdout + proc.stderr, calls


def test_pr_step_evaluates_each_changed_prompt_file_on_its_suites(checkout: Callable[..., tuple[Path, str]]) -> None:
    root, _ = checkout({"prompts/a.yaml": "name: a\ndescription: edited\n", "prompts/c.yaml": "name: c\n# x\n",
                        "prompts/b.yaml": None, "prompts/README.md": "notes\n"})  # fmt: skip
    step = _step_running(_load(PR_WORKFLOW), "eval run")
    env = {"BASE_REF": "main", "CANDIDATE_ADAPTER": "lora@production", "ENGINE_URL": "http://127.0.0.1:8000"}
    rc, output, calls = _run_step(root, step["run"], env)
    assert rc == 0, output
    assert calls == [
        "eval run evals/a.yaml --prompt-file prompts/a.yaml --candidate lora@production "
        "--endpoint http://127.0.0.1:8000 --output eval-reports/a/a",
        "eval run evals/a.bias.yaml --prompt-file prompts/a.yaml --candidate lora@production "
        "--endpoint http://127.0.0.1:8000 --output eval-reports/a/a.bias",
    ]  # b was deleted, c has no suite, evals/ab.yaml is not a's
    assert "::warning file=prompts/c.yaml::no eval suite" in output

    # every suite runs; a failed gate fails the step; unset variables add no option
    rc, output, calls = _run_step(root, step["run"], {**env, "ENGINE_URL": "", "CANDIDATE_ADAPTER": ""}, "a.yaml")
    assert rc == 1
    assert calls == [
        "eval run evals/a.yaml --prompt-file prompts/a.yaml --output eval-reports/a/a",
        "eval run evals/a.bias.yaml --prompt-file prompts/a.yaml --output eval-reports/a/a.bias",
    ]


def test_release_step_evaluates_the_pushed_versions(checkout: Callable[..., tuple[Path, str]]) -> None:
    root, before = checkout({"prompts/b.yaml": "name: b\ndescription: merged\n"})
    data = _load(RELEASE_WORKFLOW)
    step = _step_running(data, "eval run")
    env = {"BEFORE": before, "CANDIDATE_ADAPTER": "", "ENGINE_URL": ""}
    rc, output, calls = _run_step(root, step["run"], env)
    assert rc == 0, output
    assert calls == ["eval run evals/b.yaml --prompt b --output eval-reports/b/b"]

    # no commit before the push (a new branch): every prompt file is evaluated
    rc, output, calls = _run_step(root, step["run"], {**env, "BEFORE": "0" * 40})
    assert rc == 0, output
    assert [c.split(" --prompt ")[0] for c in calls] == [
        "eval run evals/a.yaml", "eval run evals/a.bias.yaml", "eval run evals/b.yaml"
    ]  # fmt: skip
