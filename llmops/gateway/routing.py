"""Sticky weighted routing as pure functions.

A request's sticky key (the OpenAI ``user`` field, else the ``x-llmops-session`` header) hashes to a
point in [0, 1). The targets' weights cut [0, 1) into buckets; the point's bucket is the target.

Buckets are laid out from 0 upward in *reverse* list order: with ``[stable, canary]`` the canary owns
``[0, w_c / W)`` and stable owns the rest. Moving weight from stable to canary grows the canary's
bucket from 0 upward, so keys only ever move stable → canary, never back, and a key stays on its
target as long as the weights are unchanged. Every gateway replica computes the same answer, so
stickiness needs no shared state.

The hash is salted with the route name, so a user in one route's canary is not systematically in
every other route's canary too, and keyed with the deployment's secret (``secret``: the gateway's
``sticky_secret``, see :mod:`llmops.gateway.settings`), so a client cannot grind ``user`` values
offline until one lands on the canary. Replicas agree as long as they share the secret.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from itertools import accumulate

_SCALE = float(1 << 64)


def key_digest(key: str, salt: str = "", secret: bytes = b"") -> bytes:
    """An 8-byte digest of ``salt`` and ``key``, keyed with ``secret`` (blake2b: fast, stable across machines)."""
    data = f"{salt}\x00{key}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=8, key=secret).digest()


def digest_point(digest: bytes) -> float:
    """A digest as a point in [0, 1)."""
    return int.from_bytes(digest[:8], "big") / _SCALE


def hash_point(key: str, salt: str = "", secret: bytes = b"") -> float:
    """The point in [0, 1) a sticky key maps to."""
    return digest_point(key_digest(key, salt, secret))


def random_point() -> float:
    """A point for a request without a sticky key."""
    return random.random()  # noqa: S311 - traffic splitting, not security


def bounds(weights: Sequence[int]) -> tuple[float, ...]:
    """Upper bounds of the buckets, in reverse list order (last target first); the final bound is 1.0.

    ``bounds([90, 10]) == (0.1, 1.0)``: target 1 owns [0, 0.1), target 0 owns [0.1, 1.0).
    """
    if not weights or any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative and not empty")
    total = sum(weights)
    if total <= 0:
        raise ValueError("at least one weight must be positive")
    cumulative = list(accumulate(reversed(weights)))
    out = [c / total for c in cumulative]
    out[-1] = 1.0
    return tuple(out)


def pick(point: float, upper: Sequence[float], weights: Sequence[int]) -> int:
    """Index (in list order) of the target whose bucket holds ``point``, given precomputed ``upper`` bounds."""
    n = len(weights)
    for j, bound in enumerate(upper):
        if point < bound and weights[n - 1 - j] > 0:
            return n - 1 - j
    # only reached through float rounding at the top end: the first target with weight
    for i, w in enumerate(weights):
        if w > 0:
            return i
    raise ValueError("at least one weight must be positive")


def choose_target(key: str | None, weights: Sequence[int], *, salt: str = "", secret: bytes = b"") -> int:
    """Index of the target for sticky ``key`` (``None``: a random pick) under ``weights``."""
    point = random_point() if key is None else hash_point(key, salt, secret)
    return pick(point, bounds(weights), weights)
