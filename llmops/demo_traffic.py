"""The demo's gateway and traffic: start ``llmops serve gateway`` on a demo config, send sticky traffic.

Traffic uses the ``openai`` SDK, as any client would: ``extra_body={"prompt_variables": …}`` renders the
route's prompt, the ``x-llmops-session`` header is the sticky key, and the ``x-llmops-target`` response
header says which release answered.
"""

from __future__ import annotations

import os
import secrets
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import yaml
from openai import OpenAI

from llmops.config.workspace import Workspace
from llmops.process import ManagedProcess, free_port, http_ok

#: the variable the demo gateway's config reads its (admin) key from; set in the gateway's environment only
DEMO_KEY_ENV = "LLMOPS_DEMO_GATEWAY_KEY"
DEMO_ENGINE_KEY_ENV = "LLMOPS_DEMO_ENGINE_KEY"  # the demo engine's API key, handed to the gateway
MESSAGES = (
    "Hi, I am Mei. I was charged twice for order 4411, please refund the extra payment.",
    "Hello, this is Omar. My parcel has not arrived after 12 days, where is it?",
    "Ingrid here: I cannot log in to my account since the password reset.",
    "Hey, Diego. The app crashes every time I open the settings page.",
)


def demo_gateway_config(engine_url: str, canary_weight: int) -> dict[str, object]:
    """The example route, pointed at the demo's engine, stable/canary taken from the release pointers."""
    return {
        "version": 1,
        "engines": {"local": {"url": engine_url, "max_adapters": 4, "api_key_env": DEMO_ENGINE_KEY_ENV}},
        "routes": {
            "support-triage": {
                "capture": 1.0,  # every request's input and answer (PII redacted): the monitoring step reads them
                "targets": [
                    # the prompt is each target's fallback while its stage has no release (the base model serves)
                    {
                        "name": "stable",
                        "weight": 100 - canary_weight,
                        "release": "production",
                        "prompt": "support-triage@production",
                    },
                    {
                        "name": "canary",
                        "weight": canary_weight,
                        "release": "canary",
                        "prompt": "support-triage@production",
                    },
                ],
            }
        },
        "auth": {"keys": [{"name": "demo", "env": DEMO_KEY_ENV, "scope": "admin"}]},
        "refresh": {"interval_s": 5},
        "request_log": {"path": "logs/demo-gateway-requests.jsonl", "feedback_path": "logs/demo-feedback.jsonl"},
    }


@dataclass(frozen=True)
class DemoGateway:
    """The demo's running gateway: its root URL and the (admin) key clients send."""

    url: str
    key: str


@contextmanager
def start_gateway(
    ws: Workspace, engine_url: str, *, canary_weight: int, engine_key: str | None = None
) -> Iterator[DemoGateway]:
    """Run the gateway on a free port, with a fresh key, until the context exits; ``engine_key``: the engine's."""
    folder = ws.home / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "gateway.yaml"
    config.write_text(yaml.safe_dump(demo_gateway_config(engine_url, canary_weight), sort_keys=False))
    key = secrets.token_urlsafe(24)
    port = free_port()
    argv = [sys.executable, "-m", "llmops", "serve", "gateway", "--config", str(config), "--port", str(port),
            "--workspace", str(ws.root)]  # fmt: skip
    proc = ManagedProcess(
        "gateway",
        argv,
        ws.logs_dir / "demo-gateway.log",
        env={**os.environ, DEMO_KEY_ENV: key, DEMO_ENGINE_KEY_ENV: engine_key or ""},
    ).start()
    url = f"http://127.0.0.1:{port}"
    try:
        proc.wait_healthy(lambda: http_ok(f"{url}/readyz"), timeout=120)
        yield DemoGateway(url, key)
    finally:
        proc.stop()


@dataclass
class TrafficReport:
    requests: int
    split: dict[str, int]
    sticky_repeats: int
    sticky_moves: int
    errors: int
    p50_ms: float
    metrics_lines: list[str] = field(default_factory=list)


def send_traffic(gateway: DemoGateway, route: str, *, n: int, concurrency: int = 16) -> TrafficReport:
    """``n`` requests with distinct session keys, then the first 50 keys again; count where they landed."""
    url = gateway.url
    client = OpenAI(base_url=f"{url}/v1", api_key=gateway.key, max_retries=0)

    def one(i: int) -> tuple[str, str, float]:
        started = time.perf_counter()
        raw = client.chat.completions.with_raw_response.create(
            model=route,
            messages=[],
            max_tokens=16,
            extra_body={"prompt_variables": {"message": MESSAGES[i % len(MESSAGES)]}},
            extra_headers={"x-llmops-session": f"session-{i}"},
        )
        raw.parse()
        return f"session-{i}", raw.headers.get("x-llmops-target", "?"), (time.perf_counter() - started) * 1000

    errors = 0
    first: dict[str, str] = {}
    latencies: list[float] = []

    def safe(i: int) -> tuple[str, str, float] | None:
        try:
            return one(i)
        except Exception:  # noqa: BLE001 - the demo counts failed requests instead of stopping on the first
            return None

    with ThreadPoolExecutor(concurrency) as pool:
        for result in pool.map(safe, range(n)):
            if result is None:
                errors += 1
                continue
            first[result[0]] = result[1]
            latencies.append(result[2])
        repeats = [r for r in pool.map(safe, range(min(50, n))) if r is not None]
    moves = sum(first.get(key) != target for key, target, _ in repeats)
    split = dict(sorted(Counter(first.values()).items()))
    metrics = httpx.get(f"{url}/metrics", headers={"authorization": f"Bearer {gateway.key}"}, timeout=10).text
    lines = [line for line in metrics.splitlines() if line.startswith("llmops_gateway_requests_total{")]
    p50 = statistics.median(latencies) if latencies else float("nan")
    return TrafficReport(len(first), split, len(repeats), moves, errors, p50, lines)
