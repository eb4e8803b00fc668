"""Shared integration fixtures: a quickly built reference model and a real vLLM server over it.

``tiny_model_path`` builds the reference architecture with few pretraining steps, once per session
(~15-40 s on 2 cores). Set ``LLMOPS_TEST_MODELS_DIR`` to a folder to keep the build between sessions:
the cache is keyed by config hash, so a changed corpus or spec rebuilds by itself.

``vllm_engine`` starts ``python -m vllm.entrypoints.openai.api_server`` over that model on a free
loopback port (LoRA enabled, an API key demanded: ``.api_key``, ``.headers``, ``.env``), once per session
(~70-90 s here), and stops it by its PID at the end.

Helpers shared by several test modules, handed out by session-scoped fixtures: ``start_gateway`` (the
real ``llmops serve gateway``) with ``gateway_keys``, ``start_fake_engine`` (``bench/fake_upstream.py``,
faults on command), ``load`` (traffic from a background thread, re-sent like a load balancer does),
``make_random_lora``, ``fake_adapter`` and ``new_run``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest

from llmops.engine import EngineSettings, start_engine
from llmops.engine.keys import ENGINE_KEY_ENV, new_engine_key
from llmops.models.reference import ensure_reference_model
from llmops.models.spec import ReferenceSpec
from llmops.process import ManagedProcess, free_port, http_ok

if TYPE_CHECKING:
    from llmops.registry import Registry

#: Enough steps for replies that look like support-desk text; few enough to build in well under a minute.
TEST_MODEL_SPEC = ReferenceSpec(seed=0, steps=80, corpus_docs=1500)
ENGINE_MODEL_NAME = "reference"


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a reference model (real architecture and tokenizer, short pretraining)."""
    cache = os.environ.get("LLMOPS_TEST_MODELS_DIR")
    models_dir = Path(cache) if cache else tmp_path_factory.mktemp("models")
    return ensure_reference_model(models_dir, spec=TEST_MODEL_SPEC).path


@dataclass(frozen=True)
class RunningEngine:
    """A vLLM OpenAI server started for the test session."""

    settings: EngineSettings
    process: ManagedProcess
    log_path: Path

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    @property
    def url(self) -> str:
        return self.settings.url

    @property
    def model_name(self) -> str:
        return self.settings.model_name

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    @property
    def api_key(self) -> str:
        """The key the engine demands on every ``/v1`` call."""
        assert self.settings.api_key is not None
        return self.settings.api_key

    @property
    def headers(self) -> dict[str, str]:
        """Request headers carrying the engine's key."""
        return {"authorization": f"Bearer {self.api_key}"}

    @property
    def env(self) -> dict[str, str]:
        """Environment for a gateway (``api_key_env: LLMOPS_ENGINE_KEY``) or ``llmops eval run --endpoint``."""
        return {ENGINE_KEY_ENV: self.api_key}


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(scope="session")
def vllm_engine(tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    """vLLM's OpenAI server over ``tiny_model_path``, LoRA enabled (rank <= 16, runtime loading on)."""
    settings = EngineSettings(
        model=str(tiny_model_path),
        port=free_port(),
        served_model_name=ENGINE_MODEL_NAME,
        max_loras=2,
        api_key=new_engine_key(),
    )
    log_path = tmp_path_factory.mktemp("vllm") / "vllm.log"
    process = start_engine(settings, log_path)
    engine = RunningEngine(settings, process, log_path)
    try:
        yield engine
    finally:
        process.stop()
    deadline = time.monotonic() + 10
    while not _gone(engine.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not process.alive()
    assert _gone(engine.pid), f"vLLM server pid {engine.pid} still exists after stop()"


# -- the gateway (``llmops serve gateway``) ---------------------------------------------------------------
@dataclass(frozen=True)
class GatewayKeys:
    """The API keys of every test gateway: a user key and an admin-scope key, read from the environment."""

    user_key: str = "integration-user-key"
    admin_key: str = "integration-admin-key"
    #: the ``auth`` section of serving/gateway.yaml that declares them
    yaml: str = """
auth:
  keys:
    - {name: tests, env: LLMOPS_TEST_GATEWAY_KEY}
    - {name: ops, env: LLMOPS_TEST_GATEWAY_ADMIN_KEY, scope: admin}
"""

    @property
    def user(self) -> dict[str, str]:
        """Request headers with the user key."""
        return {"authorization": f"Bearer {self.user_key}"}

    @property
    def admin(self) -> dict[str, str]:
        """Request headers with the admin key."""
        return {"authorization": f"Bearer {self.admin_key}"}

    @property
    def env(self) -> dict[str, str]:
        """The environment the gateway reads the keys from."""
        return {"LLMOPS_TEST_GATEWAY_KEY": self.user_key, "LLMOPS_TEST_GATEWAY_ADMIN_KEY": self.admin_key}


GATEWAY_KEYS = GatewayKeys()


@dataclass
class RunningGateway:
    process: ManagedProcess
    url: str
    log_path: Path  # the request log

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def records(self) -> list[dict[str, object]]:
        if not self.log_path.exists():
            return []
        return [orjson.loads(line) for line in self.log_path.read_text().splitlines()]

    def records_of(self, ids: set[str], timeout: float = 10.0) -> dict[str, dict[str, object]]:
        """The request-log records of the requests ``ids`` (``x-request-id``), by id, once all are written
        (the gateway appends its log a few times a second); the ones missing after ``timeout`` are left out."""
        deadline = time.monotonic() + timeout
        while True:
            found = {str(r["id"]): r for r in self.records() if r["id"] in ids}
            if len(found) == len(ids) or time.monotonic() > deadline:
                return found
            time.sleep(0.1)


def start_gateway(
    llmops_bin: str,
    workspace: Path,
    config: str,
    env: dict[str, str] | None = None,
    *,
    timeout: float = 120,
    port: int | None = None,
    refresh_s: float = 600,
) -> RunningGateway:
    """``llmops serve gateway`` on ``port`` (default: a free one), with ``config`` as serving/gateway.yaml
    and aliases re-resolved every ``refresh_s``; waits for /readyz."""
    (workspace / "serving").mkdir(parents=True, exist_ok=True)
    log_path = workspace / "requests.jsonl"
    text = config + GATEWAY_KEYS.yaml + f"request_log: {{path: '{log_path}'}}\nrefresh: {{interval_s: {refresh_s}}}\n"
    (workspace / "serving" / "gateway.yaml").write_text(text)
    port = port or free_port()
    full_env = {**os.environ, **GATEWAY_KEYS.env, **(env or {})}
    argv = [llmops_bin, "serve", "gateway", "--config", "serving/gateway.yaml", "--port", str(port)]
    argv += ["--log-level", "info"]
    proc = ManagedProcess("gateway", argv, workspace / "gateway.log", env=full_env, cwd=workspace).start()
    url = f"http://127.0.0.1:{port}"
    proc.wait_healthy(lambda: http_ok(f"{url}/readyz"), timeout=timeout, interval=0.2)
    return RunningGateway(proc, url, log_path)


@pytest.fixture(scope="session")
def gateway_keys() -> GatewayKeys:
    """The keys :func:`start_gateway` configures (``.user`` / ``.admin`` are request headers)."""
    return GATEWAY_KEYS


@pytest.fixture(scope="session", name="start_gateway")
def start_gateway_fixture(llmops_bin: str) -> Callable[..., RunningGateway]:
    """``start_gateway(workspace, config, env=None, *, timeout=120, port=None, refresh_s=600)``: a running
    gateway (the caller stops ``.process``); ``config`` is serving/gateway.yaml without ``auth``,
    ``request_log`` and ``refresh``, which this adds."""
    return functools.partial(start_gateway, llmops_bin)


# -- a fake engine and load, for the gateway's fault and fleet tests ---------------------------------------
FAKE_ENGINE = Path(__file__).resolve().parents[2] / "bench" / "fake_upstream.py"


def start_fake_engine(folder: Path, *args: str, port: int | None = None) -> tuple[ManagedProcess, str]:
    """``bench/fake_upstream.py`` on ``port`` (default: a free one); returns the process and its URL."""
    port = port or free_port()
    argv = [sys.executable, str(FAKE_ENGINE), "--port", str(port), *args]
    proc = ManagedProcess("fake-engine", argv, folder / f"fake-{port}.log").start()
    url = f"http://127.0.0.1:{port}"
    proc.wait_healthy(lambda: http_ok(f"{url}/health"), timeout=30, interval=0.05)
    return proc, url


def fake_gateway_config(engine_url: str, limits: str = "{read_timeout_s: 10}") -> str:
    """A gateway.yaml with one route ``echo`` on the fake engine at ``engine_url`` (``limits``: a YAML mapping)."""
    return f"""
engines:
  fake: {{url: "{engine_url}"}}
routes:
  echo:
    targets:
      - {{name: only, weight: 1}}
limits: {limits}
"""


@pytest.fixture(scope="session", name="fake_gateway_config")
def fake_gateway_config_fixture() -> Callable[..., str]:
    """``fake_gateway_config(engine_url, limits=...)``: the one-route config the fake-engine tests share."""
    return fake_gateway_config


def write_required_suite(root: Path, route: str) -> Path:
    """``evals/gate.yaml``: a one-case suite required for ``route`` (exact_match >= 0.5); returns its path."""
    (root / "evals").mkdir(exist_ok=True)
    (root / "evals" / "cases.jsonl").write_text('{"variables": {"message": "refund please"}, "reference": "x"}\n')
    path = root / "evals" / "gate.yaml"
    path.write_text(
        f"name: gate\ncases: cases.jsonl\nrequired: true\ntarget: {{route: {route}}}\nmetrics: [exact_match]\n"
        "gates:\n  - {metric: exact_match, min: 0.5}\n"
    )
    return path


@pytest.fixture(scope="session", name="write_required_suite")
def write_required_suite_fixture() -> Callable[[Path, str], Path]:
    """``write_required_suite(root, route)``: a required eval suite gating ``route`` (promotion tests)."""
    return write_required_suite


@pytest.fixture(scope="session", name="start_fake_engine")
def start_fake_engine_fixture() -> Callable[..., tuple[ManagedProcess, str]]:
    """``start_fake_engine(folder, *args, port=None)``: a running fake engine (the caller stops it)."""
    return start_fake_engine


@dataclass
class Sent:
    """One request of a :class:`Load`, as its client saw it."""

    started: float  # time.monotonic()
    ended: float
    url: str  # the replica that answered (the last one tried)
    status: int | None  # None: no answer
    error: str | None  # why it failed (None: a 200 with a whole body; a stream ended with [DONE])
    resent: int  # times it was re-sent after a connection refused/reset before any response byte
    headers: dict[str, str]


class Load:
    """Keeps ``concurrency`` requests in flight against ``urls`` in a background thread, round-robin,
    as a load balancer does: a request whose connection was refused or reset before the response
    began is re-sent to the next URL (when ``resend``); nothing else is retried."""

    RESENDABLE = (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)

    def __init__(
        self,
        urls: list[str],
        body: Callable[[int], dict[str, Any]],
        headers: dict[str, str],
        *,
        concurrency: int = 8,
        resend: bool = True,
        timeout: float = 30.0,
    ) -> None:
        self.urls, self.body, self.headers = urls, body, headers
        self.concurrency, self.resend, self.timeout = concurrency, resend, timeout
        self.sent: list[Sent] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._next = 0

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> list[Sent]:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 10)
        return self.sent

    def since(self, t: float) -> list[Sent]:
        return [s for s in list(self.sent) if s.started >= t]

    def failures(self) -> list[Sent]:
        return [s for s in list(self.sent) if s.error is not None]

    async def _one(self, client: httpx.AsyncClient, i: int) -> Sent:
        started, resent, body = time.monotonic(), 0, self.body(i)
        while True:
            url = self.urls[self._next % len(self.urls)]
            self._next += 1
            try:
                async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as resp:
                    data = await resp.aread()
            except self.RESENDABLE as exc:
                if self.resend and resent < 50 and not self._stop.is_set():
                    resent += 1
                    await asyncio.sleep(0.02)
                    continue
                return Sent(started, time.monotonic(), url, None, repr(exc), resent, {})
            except httpx.HTTPError as exc:  # after the response began (or a timeout): a failed request
                return Sent(started, time.monotonic(), url, None, repr(exc), resent, {})
            error = None if resp.status_code == 200 else data[:300].decode(errors="replace")
            if error is None and body.get("stream") and not data.rstrip().endswith(b"data: [DONE]"):
                error = f"stream ended without [DONE]: {data[-300:]!r}"
            return Sent(started, time.monotonic(), url, resp.status_code, error, resent, dict(resp.headers))

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency * len(self.urls))
        async with httpx.AsyncClient(headers=self.headers, timeout=self.timeout, limits=limits) as client:
            counter = iter(range(10**9))

            async def worker() -> None:
                while not self._stop.is_set():
                    self.sent.append(await self._one(client, next(counter)))

            await asyncio.gather(*(worker() for _ in range(self.concurrency)))


@pytest.fixture(scope="session", name="load")
def load_fixture() -> type[Load]:
    """``load(urls, body(i) -> dict, headers, *, concurrency=8, resend=True)``: a :class:`Load` (a context manager)."""
    return Load


# -- adapters -------------------------------------------------------------------------------------------
def make_random_lora(base_model: Path, out_dir: Path, *, seed: int, r: int = 8) -> Path:
    """Save a LoRA adapter (safetensors + adapter_config.json) with random, non-zero A and B matrices."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_model)
    config = LoraConfig(r=r, lora_alpha=2 * r, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.mul_(0).add_(torch.randn_like(param) * 0.5)
    peft_model.save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def fake_adapter(folder: Path, seed: int = 0) -> Path:
    """A folder shaped like a PEFT LoRA adapter (one random tensor, a minimal config): enough to register."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    torch.manual_seed(seed)
    save_file(
        {"base_model.model.layers.0.q_proj.lora_A.weight": torch.randn(4, 8)}, folder / "adapter_model.safetensors"
    )
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    return folder


def new_run(registry: Registry) -> str:
    """A fresh tracked run, for registering an adapter that was not trained here."""
    return registry.runs.start("llmops-test-adapters", "adapter-under-test", {}).run_id


@pytest.fixture(scope="session", name="make_random_lora")
def make_random_lora_fixture() -> Callable[..., Path]:
    """``make_random_lora(base_model, out_dir, *, seed, r=8)``: a random LoRA adapter for the reference model."""
    return make_random_lora


@pytest.fixture(scope="session", name="fake_adapter")
def fake_adapter_fixture() -> Callable[..., Path]:
    """``fake_adapter(folder, seed=0)``: an adapter-shaped folder (not loadable by an engine)."""
    return fake_adapter


@pytest.fixture(scope="session", name="new_run")
def new_run_fixture() -> Callable[[Registry], str]:
    """``new_run(registry)``: the id of a new tracked run to register an adapter under."""
    return new_run


@pytest.fixture(scope="module")
def ft(
    request: pytest.FixtureRequest,
    mlflow_server: Any,
    tiny_model_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    make_finetune_workspace: Callable[..., Any],
) -> Any:
    """A fine-tuning workspace (``FinetuneWorkspace`` in tests/conftest.py) shared by one test module's tests."""
    folder = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    return make_finetune_workspace(folder / "ws", mlflow_server, tiny_model_path)
