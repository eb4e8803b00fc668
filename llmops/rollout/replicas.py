"""Are the gateway replicas up? A rollout pauses (never aborts) while one does not answer ``GET /readyz``."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx


def _ready(client: httpx.Client, url: str) -> bool:
    try:
        return client.get(f"{url.rstrip('/')}/readyz").status_code == 200
    except httpx.HTTPError:
        return False


def unreachable(urls: Sequence[str], timeout_s: float = 2.0) -> list[str]:
    """The replica base URLs whose ``GET /readyz`` does not answer 200 within ``timeout_s`` (connection errors
    and timeouts count as unreachable), in the order given; probed in parallel."""
    if not urls:
        return []
    with (
        httpx.Client(timeout=timeout_s) as client,
        ThreadPoolExecutor(max_workers=min(len(urls), 16)) as pool,
    ):
        ready = list(pool.map(lambda url: _ready(client, url), urls))
    return [url for url, ok in zip(urls, ready, strict=True) if not ok]
