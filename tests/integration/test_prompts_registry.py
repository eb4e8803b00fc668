"""Prompts as code against a real MLflow server on loopback, through the real CLI."""

from __future__ import annotations

import concurrent.futures
import re
import subprocess
from collections.abc import Callable

import pytest
import yaml

pytestmark = pytest.mark.integration

Cli = Callable[..., subprocess.CompletedProcess[str]]


def env_for(server) -> dict[str, str]:
    return {"MLFLOW_TRACKING_URI": server.url}


def registered_count(stdout: str) -> int:
    match = re.search(r"(\d+) version\(s\) registered", stdout)
    assert match, stdout
    return int(match.group(1))


def test_push_is_idempotent_and_registers_only_changed_content(mlflow_server, git_workspace, run_llmops: Cli) -> None:
    env = env_for(mlflow_server)
    first = run_llmops("prompts", "push", cwd=git_workspace.root, env=env)
    assert first.returncode == 0, first.stderr
    assert registered_count(first.stdout) == 2

    second = run_llmops("prompts", "push", cwd=git_workspace.root, env=env)
    assert second.returncode == 0, second.stderr
    assert registered_count(second.stdout) == 0

    path = git_workspace.prompt_path("support-triage")
    path.write_text(path.read_text().replace("Answer with JSON only", "Answer with compact JSON only"))
    commit = git_workspace.commit("triage: ask for compact JSON")
    third = run_llmops("prompts", "push", cwd=git_workspace.root, env=env)
    assert third.returncode == 0, third.stderr
    assert registered_count(third.stdout) == 1

    name = git_workspace.name("support-triage")
    shown = run_llmops("prompts", "show", f"{name}/2", cwd=git_workspace.root, env=env)
    assert shown.returncode == 0, shown.stderr
    assert commit in shown.stdout
    assert "triage: ask for compact JSON" in shown.stdout
    assert f"prompts/{name}.yaml" in shown.stdout


def test_dry_run_writes_nothing(mlflow_server, git_workspace, run_llmops: Cli) -> None:
    env = env_for(mlflow_server)
    dry = run_llmops("prompts", "push", "--dry-run", cwd=git_workspace.root, env=env)
    assert dry.returncode == 0, dry.stderr
    assert "would-register" in dry.stdout
    listed = run_llmops("prompts", "list", cwd=git_workspace.root, env=env)
    assert git_workspace.suffix not in listed.stdout


def test_sixteen_concurrent_pushes_register_exactly_one_version(mlflow_server, git_workspace, run_llmops: Cli) -> None:
    env = env_for(mlflow_server)
    assert run_llmops("prompts", "push", cwd=git_workspace.root, env=env).returncode == 0
    path = git_workspace.prompt_path("support-reply")
    path.write_text(path.read_text().replace("at most three sentences", "at most two sentences"))
    git_workspace.commit("reply: shorter")

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(
            pool.map(lambda _: run_llmops("prompts", "push", cwd=git_workspace.root, env=env, timeout=600), range(16))
        )
    assert [r.returncode for r in results] == [0] * 16, [r.stderr for r in results if r.returncode]
    assert sum(registered_count(r.stdout) for r in results) == 1

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
    versions = client.search_prompt_versions(git_workspace.name("support-reply"))
    assert sorted(int(v.version) for v in versions) == [1, 2]


def test_promote_show_audit_pull_diff_render(mlflow_server, git_workspace, run_llmops: Cli) -> None:
    env = {**env_for(mlflow_server), "LLMOPS_ACTOR": "alice@example.com"}
    root = git_workspace.root
    name = git_workspace.name("support-triage")
    assert run_llmops("prompts", "push", cwd=root, env=env).returncode == 0
    path = git_workspace.prompt_path("support-triage")
    path.write_text(path.read_text().replace("max_tokens: 48", "max_tokens: 64"))
    git_workspace.commit("triage: more tokens")
    assert run_llmops("prompts", "push", cwd=root, env=env).returncode == 0

    for version in (1, 2):
        moved = run_llmops(
            "prompts",
            "promote",
            name,
            "--version",
            str(version),
            "--alias",
            "production",
            "--reason",
            f"ship v{version}",
            cwd=root,
            env=env,
        )
        assert moved.returncode == 0, moved.stderr

    shown = run_llmops("prompts", "show", f"{name}@production", cwd=root, env=env)
    assert shown.returncode == 0, shown.stderr
    assert f"{name} v2" in shown.stdout and "max_tokens: 64" in shown.stdout
    latest = run_llmops("prompts", "show", name, cwd=root, env=env)
    assert f"{name} v2  aliases: production" in latest.stdout, latest.stdout
    listed = run_llmops("prompts", "list", cwd=root, env=env)
    assert "production→v2" in listed.stdout, listed.stdout

    audit = run_llmops("audit", "--object", name, cwd=root, env=env)
    assert audit.returncode == 0, audit.stderr
    rows = [line for line in audit.stdout.splitlines() if name in line]
    assert len(rows) == 2
    assert "alice@example.com" in rows[0] and "ship v2" in rows[0]
    assert re.search(r"production\s*│\s*1\s*│\s*2", rows[0]), rows[0]  # newest first: 1 -> 2
    assert re.search(r"production\s*│\s*-\s*│\s*1", rows[1]), rows[1]

    diff = run_llmops("prompts", "diff", name, "1", "production", cwd=root, env=env)
    assert "-  max_tokens: 48" in diff.stdout and "+  max_tokens: 64" in diff.stdout

    out = root / "pulled.yaml"
    pulled = run_llmops("prompts", "pull", f"{name}@production", "-o", str(out), cwd=root, env=env)
    assert pulled.returncode == 0, pulled.stderr
    from llmops.prompts.files import load_checked
    from llmops.prompts.spec import load_spec

    assert load_spec(out).content_hash() == load_checked(path).content_hash()
    assert yaml.safe_load(out.read_text())["params"]["max_tokens"] == 64

    rendered = run_llmops(
        "prompts",
        "render",
        f"{name}@production",
        "--var",
        "message={{7*7}} refund please",
        "--json",
        cwd=root,
        env=env,
    )
    assert rendered.returncode == 0, rendered.stderr
    assert "{{7*7}} refund please" in rendered.stdout


def test_library_render_and_langchain(
    mlflow_server, git_workspace, monkeypatch: pytest.MonkeyPatch, run_llmops: Cli
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    assert run_llmops("prompts", "push", cwd=git_workspace.root, env=env_for(mlflow_server)).returncode == 0
    from llmops.config.workspace import load_workspace
    from llmops.prompts.api import load_prompt, render, to_langchain

    ws = load_workspace(git_workspace.root)
    name = git_workspace.name("support-reply")
    info = load_prompt(f"{name}/1", ws)
    assert info.git_commit is not None and info.path == f"prompts/{name}.yaml"
    messages = render(f"{name}/1", {"customer_name": "Ana", "message": "Where is my parcel?"}, ws)
    lc = to_langchain(f"{name}/1", ws).invoke({"customer_name": "Ana", "message": "Where is my parcel?"})
    lc_messages = lc.to_messages()
    assert [m.content for m in lc_messages] == [m["content"] for m in messages]
    assert [m.type for m in lc_messages] == ["system", "human"]


def test_unreachable_registry_is_one_clear_error(git_workspace, run_llmops: Cli) -> None:
    uri = "http://127.0.0.1:9"
    result = run_llmops("prompts", "push", cwd=git_workspace.root, env={"MLFLOW_TRACKING_URI": uri})
    assert result.returncode != 0
    assert "unreachable" in result.stderr and uri in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_prompt_is_refused_before_anything_is_written(mlflow_server, git_workspace, run_llmops: Cli) -> None:
    env = env_for(mlflow_server)
    path = git_workspace.prompt_path("support-triage")
    path.write_text(path.read_text().replace('"{{ message }}"', '"{{ message.__class__ }}"'))
    result = run_llmops("prompts", "push", cwd=git_workspace.root, env=env)
    assert result.returncode != 0
    assert f"prompts/{path.name}:" in result.stderr and "__class__" in result.stderr
    listed = run_llmops("prompts", "list", cwd=git_workspace.root, env=env)
    assert git_workspace.suffix not in listed.stdout
