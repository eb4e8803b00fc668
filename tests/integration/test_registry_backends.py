"""The registry under concurrency, on both backend stores a deployment uses: an MLflow server on SQLite
and an MLflow server on PostgreSQL (``--serve-artifacts``).

Each concurrent worker has its own workspace folder, as separate machines sharing one registry would, so
no same-machine file lock serialises them. Promotion losers may wait or raise an ``LlmopsError``; what must
hold afterwards is one consistent state and an audit log that replays to it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from llmops.config.workspace import Workspace, load_workspace
from llmops.errors import LlmopsError
from llmops.gitinfo import GitInfo
from llmops.process import free_port, http_ok
from llmops.promotion import promote, rollback
from llmops.prompts.spec import load_spec
from llmops.registry import Registry, connect
from llmops.registry.audit import AuditRecord, settled
from llmops.registry.prompts import PushResult

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
STAGE = "production"
MOVED = ("moved", "rolled-back")  # outcomes of a completed move


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_backend(request: pytest.FixtureRequest) -> Any:
    """The session's MLflow server on SQLite, or the one on PostgreSQL (``MlflowServer``: ``.url``)."""
    return request.getfixturevalue("mlflow_server" if request.param == "sqlite" else "mlflow_postgres_server")


def machine(url: str, root: Path) -> Workspace:
    """A workspace of its own (own ``.llmops/``, own locks) talking to the MLflow server at ``url``."""
    root.mkdir(parents=True, exist_ok=True)
    return load_workspace(root, env={"MLFLOW_TRACKING_URI": url, "LLMOPS_ACTOR": "tester"})


def push(ws: Workspace, name: str, note: str = "") -> PushResult:
    """Push the example triage prompt as ``name`` (``note`` changes its content)."""
    text = (REPO / "prompts" / "support-triage.yaml").read_text().replace("name: support-triage\n", f"name: {name}\n")
    path = ws.root / "prompts" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.replace("Answer with JSON only", f"Answer with JSON only{note}"))
    return connect(ws).prompts.push(load_spec(path), GitInfo(None, None, False, f"prompts/{name}.yaml"))


def run_all(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run ``jobs`` at once on as many threads; each result is its value or the exception it raised."""

    def catch(job: Callable[[], Any]) -> Any:
        try:
            return job()
        except Exception as exc:  # noqa: BLE001 - the test inspects every outcome
            return exc

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(catch, jobs))


def check_route(reg: Registry, route: str, results: list[Any]) -> None:
    """One consistent state, every settled move audited, the audit log replays to the final state."""
    unexpected = [r for r in results if isinstance(r, Exception) and not isinstance(r, LlmopsError)]
    assert not unexpected, unexpected
    won = [r for r in results if isinstance(r, AuditRecord)]
    assert won, results
    current = reg.pointers.at_stage(route, STAGE)
    assert current is not None
    release = current.release
    if release.adapter is not None:
        assert reg.adapters.alias_version(release.adapter.name, STAGE) == release.adapter.version, release
    assert release.prompt is not None
    assert reg.prompts.alias_version(release.prompt.name, STAGE) == release.prompt.version, release

    records = [r for r in reg.audit.records(route) if r.alias == STAGE]
    orphans = [r for r in settled(records) if r.outcome == "pending"]
    assert not orphans, orphans
    ids = {r.record_id for r in records}
    assert all(r.record_id in ids for r in won if r.outcome != "unchanged")
    # the completed moves, oldest first, chain from "nothing" to the final pointer, each from the one before
    moves = sorted((r.timestamp_ms, r.from_version, r.to_version) for r in records if r.outcome in MOVED)
    chain = [to for _, _, to in moves]
    assert [src for _, src, _ in moves] == [None, *chain[:-1]], f"moves that overlapped: {moves}"
    assert chain[-1] == str(current.version), moves


def test_prompt_push_is_idempotent(registry_backend: Any, tmp_path: Path) -> None:
    ws = machine(registry_backend.url, tmp_path / "ws")
    name = f"idem-{uuid.uuid4().hex[:8]}"
    first = push(ws, name)
    assert (first.action, first.version) == ("registered", 1)
    again = push(ws, name)
    assert (again.action, again.version) == ("unchanged", 1)
    other = push(machine(registry_backend.url, tmp_path / "other"), name)  # another machine, same content
    assert (other.action, other.version) == ("unchanged", 1)
    changed = push(ws, name, note=" (v2)")
    assert (changed.action, changed.version) == ("registered", 2)
    assert [v.version for v in connect(ws).prompts.versions(name)] == [1, 2]


def test_32_concurrent_pushes_lose_and_duplicate_nothing(registry_backend: Any, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    shared, distinct = f"shared-{tag}", [f"own-{tag}-{i}" for i in range(16)]
    workers = [machine(registry_backend.url, tmp_path / f"m{i}") for i in range(32)]
    jobs = [lambda ws=ws, n=n: push(ws, n) for ws, n in zip(workers[:16], distinct, strict=True)]
    jobs += [lambda ws=ws: push(ws, shared) for ws in workers[16:]]
    results = run_all(jobs)

    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    reg = connect(workers[0])
    for name, result in zip(distinct, results[:16], strict=True):
        assert (result.action, result.version) == ("registered", 1)
        assert [v.version for v in reg.prompts.versions(name)] == [1]
    kept = [v.version for v in reg.prompts.versions(shared)]
    assert len(kept) == 1, f"duplicated versions of {shared}: {kept}"
    assert {r.version for r in results[16:]} == set(kept), "a push reported a version that is gone"
    assert [r.action for r in results[16:]].count("registered") >= 1


@pytest.fixture
def promotable(registry_backend: Any, tmp_path: Path, fake_adapter: Callable[..., Path], new_run: Callable[..., str]):  # type: ignore[no-untyped-def]
    """A route whose adapter has 4 versions and whose prompt has 4 versions: 16 distinct releases."""
    ws = machine(registry_backend.url, tmp_path / "setup")
    route = f"conc-{uuid.uuid4().hex[:8]}"
    prompt = f"{route}-prompt"
    for v in range(4):
        assert push(ws, prompt, note=f" #{v}").version == v + 1
    reg = connect(ws)
    for v in range(4):
        reg.adapters.register(route, fake_adapter(tmp_path / f"a{v}", v), new_run(reg), {})
    return ws, route, prompt


def test_16_concurrent_promotes_on_one_route_end_consistent(
    registry_backend: Any, promotable: Any, tmp_path: Path
) -> None:
    ws, route, prompt = promotable
    targets = [(f"{route}/{a}", f"{prompt}/{p}") for a in range(1, 5) for p in range(1, 5)]
    workers = [machine(registry_backend.url, tmp_path / f"m{i}") for i in range(16)]
    jobs = [
        lambda w=w, a=a, p=p: promote(w, route, adapter=a, prompt=p, stage=STAGE, force=True, reason="race")
        for w, (a, p) in zip(workers, targets, strict=True)
    ]
    check_route(connect(ws), route, run_all(jobs))


def test_16_concurrent_promotes_on_different_routes_end_consistent(registry_backend: Any, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    routes = [f"many-{tag}-{i}" for i in range(16)]
    workers = [machine(registry_backend.url, tmp_path / f"m{i}") for i in range(16)]
    for w, route in zip(workers, routes, strict=True):
        push(w, f"{route}-prompt")
    jobs = [
        lambda w=w, r=r: promote(w, r, adapter=None, prompt=f"{r}-prompt/1", stage=STAGE, force=True, reason="race")
        for w, r in zip(workers, routes, strict=True)
    ]
    results = run_all(jobs)
    assert not [r for r in results if isinstance(r, Exception)], results
    reg = connect(workers[0])
    for route, result in zip(routes, results, strict=True):
        check_route(reg, route, [result])
        assert reg.prompts.alias_version(f"{route}-prompt", STAGE) == 1


def test_every_promote_and_rollback_leaves_a_settled_audit_record(registry_backend: Any, promotable: Any) -> None:
    ws, route, prompt = promotable
    done = [
        promote(ws, route, adapter=f"{route}/1", prompt=f"{prompt}/1", force=True, reason="first"),
        promote(ws, route, adapter=f"{route}/2", prompt=f"{prompt}/2", force=True, reason="second"),
        rollback(ws, route, reason="bad second"),
        promote(ws, route, adapter=f"{route}/3", prompt=f"{prompt}/1", stage="canary", force=True, reason="canary"),
    ]
    records = connect(ws).audit.records(route)
    by_id = {r.record_id: r for r in records}
    for record in done:
        assert record.record_id in by_id, record
        assert by_id[record.record_id].outcome == record.outcome
    assert [r.outcome for r in done] == ["moved", "moved", "rolled-back", "moved"]
    assert [r.reason for r in reversed(settled(records))] == ["first", "second", "bad second", "canary"]
    check_route(connect(ws), route, done[:3])


def test_registry_serve_on_postgresql_never_prints_the_password(
    postgres_server: Any, tmp_path: Path, llmops_bin: str
) -> None:
    port = free_port()
    argv = [llmops_bin, "registry", "serve", "--port", str(port), "--workspace", str(tmp_path)]
    argv += ["--backend-store-uri", postgres_server.uri, "--artifacts-destination", str(tmp_path / "artifacts")]
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not any("MLflow UI" in line for line in lines):
            lines.append(proc.stdout.readline())
            if proc.poll() is not None:
                break
        assert f"http://127.0.0.1:{port}" in "".join(lines), "".join(lines)
        assert http_ok(f"http://127.0.0.1:{port}/health")
        ws = machine(f"http://127.0.0.1:{port}", tmp_path / "client")
        assert push(ws, f"served-{uuid.uuid4().hex[:8]}").version == 1
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    printed = "".join(lines) + out
    assert "127.0.0.1" in printed and "postgresql://***@" in printed
    assert postgres_server.password not in printed
