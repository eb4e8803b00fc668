"""Request ids: 32 lowercase hex characters that carry the time they were made.

The first 12 hex digits are the epoch milliseconds (as in UUIDv7), the other 20 are random (80 bits).
Ids sort by time, stay valid ``x-request-id`` values and feedback keys (32 hex), and tell
``llmops trace`` when a request was served even after its log record was pruned. Ids made before this
scheme (fully random) decode to no time (:func:`request_id_time` returns None for them).
"""

from __future__ import annotations

import os
import re
import time

REQUEST_ID = re.compile(r"[0-9a-f]{32}")
#: decoded times outside [2024-01-01, now + 1 day] are not times: the id predates the scheme
_EARLIEST_MS = 1_704_067_200_000
_SLACK_MS = 86_400_000


def new_request_id(now: float | None = None) -> str:
    """A fresh id whose first 12 hex digits are ``now`` (epoch seconds; default the clock) in milliseconds."""
    ms = int((time.time() if now is None else now) * 1000)
    return f"{ms & 0xFFFF_FFFF_FFFF:012x}{os.urandom(10).hex()}"


def request_id_time(request_id: str, *, now: float | None = None) -> float | None:
    """The epoch seconds an id was made at; None when it is not a 32-hex id or predates the time-ordered scheme."""
    if not REQUEST_ID.fullmatch(request_id):
        return None
    ms = int(request_id[:12], 16)
    latest = int((time.time() if now is None else now) * 1000) + _SLACK_MS
    return ms / 1000 if _EARLIEST_MS <= ms <= latest else None
