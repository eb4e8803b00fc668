"""Webhook deliveries against a real loopback HTTP server: retries with backoff, a receiver that is down."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llmops.config.monitor import WebhookAction
from llmops.monitor.webhook import resolve_url, start_delivery, wait_for_deliveries
from llmops.process import free_port


class Receiver(ThreadingHTTPServer):
    fail_first = 0
    bodies: list[dict[str, object]]
    times: list[float]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.server.times.append(time.monotonic())
        self.server.bodies.append(body)
        status = 503 if len(self.server.bodies) <= self.server.fail_first else 204
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(("127.0.0.1", 0), _Handler)
    server.bodies, server.times = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def action(url: str, **kw: object) -> WebhookAction:
    return WebhookAction.model_validate({"type": "webhook", "url": url, **kw})


def test_a_failing_receiver_is_retried_with_backoff_until_delivered(receiver: Receiver) -> None:
    receiver.fail_first = 2
    outcomes: list[tuple[str, int, str | None]] = []
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    delivery = start_delivery(
        "ops", action(url, retries=3, backoff_s=0.2), url, {"run_id": "abc", "rule": "drift"},
        lambda *a: outcomes.append(a),
    )  # fmt: skip
    assert wait_for_deliveries(20) == []
    assert delivery.status == "delivered" and delivery.attempts == 3
    assert [b["rule"] for b in receiver.bodies] == ["drift"] * 3
    gaps = [b - a for a, b in zip(receiver.times, receiver.times[1:], strict=False)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4  # exponential backoff: 0.2 s, then 0.4 s between tries
    assert outcomes == [("retrying", 1, "HTTP 503"), ("retrying", 2, "HTTP 503"), ("delivered", 3, None)]


def test_a_receiver_that_is_down_does_not_block_and_ends_failed() -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    outcomes: list[tuple[str, int, str | None]] = []
    started = time.monotonic()
    delivery = start_delivery(
        "ops", action(url, retries=2, backoff_s=0.3), url, {"run_id": "t1"}, lambda *a: outcomes.append(a)
    )
    assert time.monotonic() - started < 1.0  # the call returns at once; delivery goes on in the background
    assert delivery.is_alive()
    left = wait_for_deliveries(0.1)  # a bounded wait: the monitor may exit while it still retries
    assert [d.trigger for d in left] == ["t1"]
    assert wait_for_deliveries(20) == []
    assert delivery.status == "failed" and delivery.attempts == 3
    assert [o[0] for o in outcomes] == ["retrying", "retrying", "failed"]
    assert outcomes[-1][2] is not None and "Connect" in outcomes[-1][2]


def test_url_from_the_environment() -> None:
    act = WebhookAction.model_validate({"type": "webhook", "url_env": "OPS_HOOK"})
    assert resolve_url(act, {"OPS_HOOK": "https://hooks.example/x?token=s"}) == "https://hooks.example/x?token=s"
    with pytest.raises(ValueError, match="OPS_HOOK"):
        resolve_url(act, {})
