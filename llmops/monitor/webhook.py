"""Webhook actions: POST a trigger as JSON from a background thread, retried with exponential backoff.

The monitor never waits on a webhook: :func:`start_delivery` returns at once. Each attempt's outcome
goes to an ``on_attempt(status, attempts, error)`` callback (the trigger record's tags); ``status`` is
``retrying`` between attempts, then ``delivered`` or ``failed``. A process that wants to exit calls
:func:`wait_for_deliveries` with a bound and reports what is still undelivered. Deliveries are found
through :func:`threading.enumerate` (no module state): each is a daemon :class:`Delivery` thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from llmops.config.monitor import WebhookAction
from llmops.redact import redact

#: status, attempts so far, the last error (None once delivered)
AttemptCallback = Callable[[str, int, str | None], None]
DELIVERED, FAILED, RETRYING, PENDING = "delivered", "failed", "retrying", "pending"


def _noop(status: str, attempts: int, error: str | None) -> None:
    return None


class Delivery(threading.Thread):
    """One webhook delivery: up to ``1 + retries`` POSTs, ``backoff_s`` doubling between them."""

    def __init__(
        self,
        action_name: str,
        url: str,
        payload: Mapping[str, Any],
        action: WebhookAction,
        on_attempt: AttemptCallback = _noop,
    ) -> None:
        trigger = str(payload.get("run_id", ""))
        super().__init__(name=f"llmops-webhook:{action_name}:{trigger}", daemon=True)
        self.action_name = action_name
        self.trigger = trigger
        self._url = url
        self._payload = dict(payload)
        self._action = action
        self._on_attempt = on_attempt
        self.status = PENDING
        self.attempts = 0
        self.error: str | None = None

    def _post(self) -> str | None:
        """One POST; None when the receiver accepted it (2xx), else why not."""
        try:
            response = httpx.post(self._url, json=self._payload, timeout=self._action.timeout_s)
        except httpx.HTTPError as exc:
            return redact(f"{type(exc).__name__}: {exc}".replace(self._url, "<url>"))
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"

    def _report(self) -> None:
        try:
            self._on_attempt(self.status, self.attempts, self.error)
        except Exception:  # noqa: BLE001 - a registry hiccup must not stop the retries
            return

    def run(self) -> None:
        tries = 1 + self._action.retries
        for attempt in range(1, tries + 1):
            self.attempts = attempt
            self.error = self._post()
            if self.error is None:
                self.status = DELIVERED
                self._report()
                return
            if attempt == tries:
                break
            self.status = RETRYING
            self._report()
            time.sleep(self._action.backoff_s * 2 ** (attempt - 1))
        self.status = FAILED
        self._report()


def resolve_url(action: WebhookAction, env: Mapping[str, str]) -> str:
    """The action's URL (from ``url`` or the variable ``url_env``); ValueError saying what is missing."""
    if action.url is not None:
        return action.url
    assert action.url_env is not None
    url = env.get(action.url_env, "").strip()
    if not url:
        raise ValueError(f"environment variable {action.url_env} (the webhook URL) is not set")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"environment variable {action.url_env} does not hold an http(s) URL")
    return url


def start_delivery(
    action_name: str,
    action: WebhookAction,
    url: str,
    payload: Mapping[str, Any],
    on_attempt: AttemptCallback = _noop,
) -> Delivery:
    """Start delivering ``payload`` in the background; returns at once."""
    delivery = Delivery(action_name, url, payload, action, on_attempt)
    delivery.start()
    return delivery


def pending_deliveries() -> list[Delivery]:
    """Deliveries of this process still running (retrying or in flight)."""
    return [t for t in threading.enumerate() if isinstance(t, Delivery) and t.is_alive()]


def wait_for_deliveries(timeout_s: float) -> list[Delivery]:
    """Wait up to ``timeout_s`` seconds in all for running deliveries; return those still undelivered."""
    deadline = time.monotonic() + timeout_s
    for delivery in pending_deliveries():
        delivery.join(max(0.0, deadline - time.monotonic()))
    return pending_deliveries()
