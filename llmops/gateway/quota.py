"""Per-key limits: a request rate (token bucket) and a number of requests in flight, per API key.

A key over either limit gets 429 with ``Retry-After`` and the OpenAI error code
``rate_limit_exceeded``, so one key cannot hold every engine connection and starve the others.
Keys are the configured API keys' names (``anonymous`` when auth is off), so the state is bounded
by the config. Limits come from ``limits.per_key_rps``/``per_key_burst``/``per_key_max_concurrent``;
a limit left unset costs nothing per request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from llmops.config.gateway import LimitsSpec
from llmops.errors import RateLimitError


class KeyQuota:
    """Admission per key: :meth:`acquire` before a request runs, :meth:`release` when it ends."""

    __slots__ = ("_buckets", "_burst", "_clock", "_in_flight", "_max_concurrent", "_rps")

    def __init__(
        self,
        *,
        rps: float | None = None,
        burst: int | None = None,
        max_concurrent: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rps = rps
        self._burst = float(burst if burst is not None else max(1, math.ceil(rps or 1)))
        self._max_concurrent = max_concurrent
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._in_flight: dict[str, int] = {}

    @classmethod
    def from_limits(cls, limits: LimitsSpec) -> KeyQuota:
        return cls(rps=limits.per_key_rps, burst=limits.per_key_burst, max_concurrent=limits.per_key_max_concurrent)

    @property
    def enabled(self) -> bool:
        return self._rps is not None or self._max_concurrent is not None

    def acquire(self, key: str) -> None:
        """Count a request of ``key`` in; RateLimitError (nothing counted) when it is over a limit."""
        if self._max_concurrent is not None and self._in_flight.get(key, 0) >= self._max_concurrent:
            raise RateLimitError(
                f"API key '{key}' already has {self._max_concurrent} requests in flight, its limit",
                retry_after=1,
            )
        if self._rps is not None:
            now = self._clock()
            tokens, at = self._buckets.get(key, (self._burst, now))
            tokens = min(self._burst, tokens + (now - at) * self._rps)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                raise RateLimitError(
                    f"API key '{key}' is over its limit of {self._rps:g} requests per second",
                    retry_after=max(1, math.ceil((1.0 - tokens) / self._rps)),
                )
            self._buckets[key] = (tokens - 1.0, now)
        if self._max_concurrent is not None:
            self._in_flight[key] = self._in_flight.get(key, 0) + 1

    def release(self, key: str) -> None:
        """A request of ``key`` that :meth:`acquire` counted in has ended."""
        if self._max_concurrent is not None:
            left = self._in_flight.get(key, 0) - 1
            if left > 0:
                self._in_flight[key] = left
            else:
                self._in_flight.pop(key, None)

    def in_flight(self, key: str) -> int:
        return self._in_flight.get(key, 0)
