"""Smoke test of the container images (`make deploy-check` runs it through deploy/scripts/smoke.sh).

The images `make images` built, run by the private dockerd (deploy/scripts/dockerd.sh), all on the host network:
PostgreSQL on the host (the ``postgres_server`` fixture), the registry image (``mlflow server`` on it), a fake engine
(bench/fake_upstream.py in the gateway image, which has its httptools and orjson) and the gateway image with a config
whose route renders a prompt that lives in the registry container. It needs docker and takes about a minute, so
``make test`` skips it: it runs only when LLMOPS_DEPLOY_SMOKE=1 (smoke.sh sets it, and DOCKER_HOST).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmops.process import free_port, http_ok

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("LLMOPS_DEPLOY_SMOKE") != "1",
        reason="container smoke test: runs in `make deploy-check` (needs docker and the images of `make images`)",
    ),
]

REPO = Path(__file__).resolve().parents[2]
TAG = os.environ.get("LLMOPS_IMAGE_TAG", "latest")
PROMPT = REPO / "prompts" / "support-triage.yaml"


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check)


@dataclass
class Containers:
    """Containers started by one test, removed (by id) when it ends."""

    ids: list[str]

    def run(
        self,
        image: str,
        *args: str,
        env: dict[str, str] | None = None,
        volumes: tuple[str, ...] = (),
        entrypoint: str | None = None,
        options: tuple[str, ...] = (),
    ) -> str:
        argv = ["run", "-d", "--network", "host", *options] + (["--entrypoint", entrypoint] if entrypoint else [])
        for name, value in (env or {}).items():
            argv += ["-e", f"{name}={value}"]
        for volume in volumes:
            argv += ["-v", volume]
        cid = docker(*argv, image, *args).stdout.strip()
        self.ids.append(cid)
        return cid

    def logs(self, cid: str) -> str:
        done = docker("logs", cid, check=False)
        return (done.stdout + done.stderr)[-4000:]

    def wait_http(self, cid: str, url: str, timeout: float, headers: dict[str, str] | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if headers is None and http_ok(url):
                return
            if headers is not None:
                try:
                    if httpx.get(url, headers=headers, timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            state = docker("inspect", "-f", "{{.State.Running}}", cid).stdout.strip()
            if state != "true":
                pytest.fail(f"container {cid[:12]} exited before {url} answered:\n{self.logs(cid)}")
            time.sleep(0.5)
        pytest.fail(f"{url} did not answer within {timeout:.0f} s:\n{self.logs(cid)}")


@pytest.fixture
def containers() -> Iterator[Containers]:
    if shutil.which("docker") is None or docker("info", check=False).returncode != 0:
        pytest.fail("no docker daemon: run through deploy/scripts/smoke.sh (it starts one)")
    started = Containers([])
    try:
        yield started
    finally:
        for cid in reversed(started.ids):
            docker("rm", "-f", "-v", cid, check=False)


@pytest.fixture
def registry(containers: Containers, postgres_server: Any) -> str:
    """The registry image on the test PostgreSQL; returns its URL."""
    port = free_port()
    cid = containers.run(
        f"llmops/registry:{TAG}",
        *("mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--serve-artifacts", "--workers", "1"),
        env={"MLFLOW_BACKEND_STORE_URI": postgres_server.uri},
    )
    url = f"http://127.0.0.1:{port}"
    containers.wait_http(cid, f"{url}/health", timeout=180)  # a fresh database migrates first
    return url


def gateway_config(engine_url: str) -> str:
    return f"""version: 1
server: {{host: 127.0.0.1, port: 8080}}
engines:
  fake: {{url: "{engine_url}", api_key_env: LLMOPS_ENGINE_KEY}}
routes:
  support-triage:
    targets:
      - {{name: stable, weight: 1, prompt: support-triage/1}}
auth:
  keys:
    - {{name: app, env: LLMOPS_GATEWAY_KEY}}
    - {{name: ops, env: LLMOPS_GATEWAY_ADMIN_KEY, scope: admin}}
"""


def test_gateway_image_serves_a_registry_prompt_through_to_an_engine(
    containers: Containers,
    registry: str,
    tmp_path: Path,
    run_llmops: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    # the prompt goes into the registry container (PostgreSQL + served artifacts), from the host's CLI
    ws = tmp_path / "ws"
    (ws / "prompts").mkdir(parents=True)
    (ws / "llmops.yaml").write_text("version: 1\n")
    shutil.copy(PROMPT, ws / "prompts" / PROMPT.name)
    pushed = run_llmops("prompts", "push", cwd=ws, env={**os.environ, "MLFLOW_TRACKING_URI": registry})
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert "registered" in pushed.stdout

    engine_port, gateway_port = free_port(), free_port()
    engine = containers.run(
        f"llmops/gateway:{TAG}",
        *("/srv/fake_upstream.py", "--port", str(engine_port)),
        volumes=(f"{REPO / 'bench' / 'fake_upstream.py'}:/srv/fake_upstream.py:ro",),
        entrypoint="python3",
    )
    engine_url = f"http://127.0.0.1:{engine_port}"
    containers.wait_http(engine, f"{engine_url}/health", timeout=30)
    config = tmp_path / "gateway.yaml"
    config.write_text(gateway_config(engine_url))
    config.chmod(0o644)
    keys = {name: secrets.token_urlsafe(24) for name in ("LLMOPS_GATEWAY_KEY", "LLMOPS_GATEWAY_ADMIN_KEY")}
    gateway = containers.run(
        f"llmops/gateway:{TAG}",
        *("llmops", "serve", "gateway", "--config", "/etc/llmops/gateway.yaml", "--port", str(gateway_port)),
        env={**keys, "LLMOPS_ENGINE_KEY": secrets.token_urlsafe(24), "MLFLOW_TRACKING_URI": registry},
        volumes=(f"{config}:/etc/llmops/gateway.yaml:ro",),
    )
    url = f"http://127.0.0.1:{gateway_port}"
    containers.wait_http(gateway, f"{url}/healthz", timeout=60)
    containers.wait_http(gateway, f"{url}/readyz", timeout=60)

    user = {"Authorization": f"Bearer {keys['LLMOPS_GATEWAY_KEY']}"}
    body = {
        "model": "support-triage",
        "messages": [],
        "prompt_variables": {"message": "I was charged twice for my order"},
    }
    answer = httpx.post(f"{url}/v1/chat/completions", json=body, headers=user, timeout=30)
    assert answer.status_code == 200, answer.text + containers.logs(gateway)
    assert answer.json()["choices"][0]["message"]["content"].startswith("The quick brown fox")
    assert httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30).status_code == 401

    # the route's prompt version was resolved from the registry container
    admin = {"Authorization": f"Bearer {keys['LLMOPS_GATEWAY_ADMIN_KEY']}"}
    route = httpx.get(f"{url}/admin/routes/support-triage", headers=admin, timeout=10).json()
    assert route["error"] is None, route
    assert "support-triage" in (route["targets"][0]["prompt_version"] or ""), route


def test_gateway_image_serves_the_cpu_engine_image(containers: Containers, registry: str, tmp_path: Path) -> None:
    """The real engine image (vLLM's CPU build, the reference model built on first start) behind the gateway."""
    if docker("image", "inspect", f"llmops/engine-cpu:{TAG}", check=False).returncode != 0:
        pytest.skip(f"llmops/engine-cpu:{TAG} is not built (make images builds it)")
    engine_key, engine_port, gateway_port = secrets.token_urlsafe(24), free_port(), free_port()
    engine = containers.run(
        f"llmops/engine-cpu:{TAG}",
        *("llmops", "serve", "engine", "--host", "127.0.0.1", "--port", str(engine_port), "--name", "engine"),
        env={"LLMOPS_ENGINE_KEY": engine_key, "MLFLOW_TRACKING_URI": registry},
        options=("--shm-size", "1g"),  # vLLM's processes share memory; Docker's default /dev/shm is 64 MB
    )
    engine_url = f"http://127.0.0.1:{engine_port}"
    containers.wait_http(engine, f"{engine_url}/health", timeout=600)  # model build + vLLM start: ~2 min here
    assert httpx.get(f"{engine_url}/v1/models", timeout=10).status_code == 401  # the engine demands its key

    config = tmp_path / "gateway.yaml"
    config.write_text(gateway_config(engine_url).replace(", prompt: support-triage/1", ""))
    config.chmod(0o644)
    user_key = secrets.token_urlsafe(24)
    gateway = containers.run(
        f"llmops/gateway:{TAG}",
        *("llmops", "serve", "gateway", "--config", "/etc/llmops/gateway.yaml", "--port", str(gateway_port)),
        env={
            "LLMOPS_GATEWAY_KEY": user_key,
            "LLMOPS_GATEWAY_ADMIN_KEY": secrets.token_urlsafe(24),
            "LLMOPS_ENGINE_KEY": engine_key,
            "MLFLOW_TRACKING_URI": registry,
        },
        volumes=(f"{config}:/etc/llmops/gateway.yaml:ro",),
    )
    url = f"http://127.0.0.1:{gateway_port}"
    containers.wait_http(gateway, f"{url}/readyz", timeout=60)
    body = {
        "model": "support-triage",
        "messages": [{"role": "user", "content": "I was charged twice"}],
        "max_tokens": 8,
    }
    answer = httpx.post(
        f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {user_key}"}, timeout=120
    )
    assert answer.status_code == 200, answer.text + containers.logs(gateway)
    assert answer.json()["choices"][0]["message"]["content"]
    assert answer.json()["usage"]["completion_tokens"] >= 1


def test_an_image_started_without_its_keys_exits_with_one_clear_line(containers: Containers, tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(gateway_config("http://127.0.0.1:9"))
    config.chmod(0o644)
    gateway = containers.run(
        f"llmops/gateway:{TAG}",
        env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9", "LLMOPS_GATEWAY_ADMIN_KEY": "k", "LLMOPS_ENGINE_KEY": "k"},
        volumes=(f"{config}:/etc/llmops/gateway.yaml:ro",),
    )
    registry = containers.run(f"llmops/registry:{TAG}")
    for cid, name in ((gateway, "LLMOPS_GATEWAY_KEY"), (registry, "MLFLOW_BACKEND_STORE_URI")):
        assert docker("wait", cid, timeout=60).stdout.strip() == "78"  # EX_CONFIG, without starting the server
        lines = containers.logs(cid).strip().splitlines()
        assert len(lines) == 1, lines
        assert name in lines[0] and "Traceback" not in lines[0]
