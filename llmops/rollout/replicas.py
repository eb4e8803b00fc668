"""Are the gateway replicas up? A rollout pauses (never aborts) while one stays unreachable.

A replica is *reachable* when ``GET /healthz`` answers below 500 within the timeout: the process runs and its
event loop answers. Readiness (``/readyz``) is not asked: a replica under load whose engine is slow to answer
its health probe, or that serves its last-known-good resolution while the registry is away, still serves the
route state it last read, which is all a rollout needs of it. The controller pauses only after a replica has
been unreachable for a grace period (:data:`llmops.rollout.controller.REPLICA_GRACE_S`), not on one lost probe.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx


def _answers(client: httpx.Client, url: str) -> bool:
    try:
        return client.get(f"{url.rstrip('/')}/healthz").status_code < 500
    except httpx.HTTPError:
        return False


def unreachable(urls: Sequence[str], timeout_s: float = 5.0) -> list[str]:
    """The replica base URLs whose ``GET /healthz`` does not answer (below 500) within ``timeout_s``
    (connection errors and timeouts count as unreachable), in the order given; probed in parallel."""
    if not urls:
        return []
    with (
        httpx.Client(timeout=timeout_s) as client,
        ThreadPoolExecutor(max_workers=min(len(urls), 16)) as pool,
    ):
        up = list(pool.map(lambda url: _answers(client, url), urls))
    return [url for url, ok in zip(urls, up, strict=True) if not ok]
