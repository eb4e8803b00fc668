"""``POST /v1/feedback``: a user's verdict on an answer, appended to the feedback log.

Body (at most 16 KiB, else 413; anything malformed is a 400 naming the field, and nothing is written)::

    {"request_id": "<32 hex: the x-request-id header of the chat answer>", "score": 0.0-1.0,
     "label": "≤ 64 chars" | null, "correction": "≤ 8192 chars" | null, "comment": "≤ 2048 chars" | null}

Any valid API key may send it (the middleware checks it, as for chat). The gateway cannot know whether
another replica served the id, so any well-formed id is accepted (the monitor counts orphans).

Idempotent per (request id, key name): an LRU of the last 100,000 pairs keeps a hash of the body; an
identical repeat answers ``{"request_id", "status": "unchanged"}`` and writes nothing; a changed body is
written again (``"recorded"``; readers keep the last record of a pair).

Record (feedback log, a second :class:`~llmops.gateway.requestlog.RequestLog`, rotated like the request
log): ``{"id": REQUEST_ID, "time", "api_key", "score", "label", "correction", "comment"}``; ``correction``
and ``comment`` are redacted of PII in the writer thread, before anything is written.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections import OrderedDict
from typing import Any

import orjson

from llmops.errors import InvalidRequestError, LlmopsError
from llmops.gateway.asgi import Receive, Scope, Send
from llmops.gateway.auth import PRINCIPAL
from llmops.gateway.capture import bound
from llmops.gateway.errors import send_error, send_json
from llmops.gateway.limits import ClientDisconnected, read_body
from llmops.gateway.metrics import GatewayMetrics
from llmops.gateway.requestlog import DEFERRED, RequestLog

FEEDBACK_PATH = "/v1/feedback"
MAX_BODY_BYTES = 16 * 1024
MAX_REMEMBERED = 100_000
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")
#: optional text fields and their longest length
TEXT_FIELDS = {"label": 64, "correction": 8192, "comment": 2048}
FIELDS = frozenset({"request_id", "score", *TEXT_FIELDS})


def parse_feedback(body: bytes) -> dict[str, Any]:
    """The checked body: ``request_id``, ``score`` and each text field (``None`` when absent)."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise InvalidRequestError("request body must be a JSON object")
    for key in obj:
        if key not in FIELDS:
            raise InvalidRequestError(f"unsupported parameter '{key}'", code="unsupported_parameter", param=key)
    request_id = obj.get("request_id")
    if not isinstance(request_id, str) or not REQUEST_ID.match(request_id):
        raise InvalidRequestError(
            "'request_id' must be 32 lowercase hex characters (a chat answer's x-request-id header)",
            param="request_id",
        )
    score: Any = obj.get("score")
    if type(score) not in (int, float) or not math.isfinite(score) or not 0 <= score <= 1:
        raise InvalidRequestError("'score' must be a number from 0 to 1", param="score")
    checked: dict[str, Any] = {"request_id": request_id, "score": float(score)}
    for name, longest in TEXT_FIELDS.items():
        value = obj.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > longest):
            raise InvalidRequestError(f"'{name}' must be a string of at most {longest} characters", param=name)
        checked[name] = value
    return checked


class _Redacted:
    """The feedback record's free texts, redacted in the log's writer thread."""

    __slots__ = ("comment", "correction")

    def __init__(self, correction: str | None, comment: str | None) -> None:
        self.correction = correction
        self.comment = comment

    def fields(self) -> dict[str, Any]:
        return {
            "correction": bound(self.correction, TEXT_FIELDS["correction"]) if self.correction is not None else None,
            "comment": bound(self.comment, TEXT_FIELDS["comment"]) if self.comment is not None else None,
        }


class Feedback:
    """The ``POST /v1/feedback`` endpoint (plain ASGI) and its idempotency memory."""

    def __init__(self, log: RequestLog, metrics: GatewayMetrics, *, remember: int = MAX_REMEMBERED) -> None:
        self.log = log
        self.metrics = metrics
        self.remember = remember
        self._seen: OrderedDict[tuple[str, str], bytes] = OrderedDict()

    def _is_repeat(self, key: tuple[str, str], digest: bytes) -> bool:
        if self._seen.get(key) == digest:
            self._seen.move_to_end(key)
            return True
        self._seen[key] = digest
        self._seen.move_to_end(key)
        while len(self._seen) > self.remember:
            self._seen.popitem(last=False)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = next((int(v) for n, v in scope["headers"] if n == b"content-length" and v.isdigit()), None)
        try:
            body = await read_body(receive, MAX_BODY_BYTES, length)
            fb = parse_feedback(body)
        except ClientDisconnected:
            return
        except LlmopsError as exc:
            self.metrics.feedback.labels("rejected").inc()
            await send_error(send, exc)
            return
        principal = scope.get(PRINCIPAL)
        key_name = principal.name if principal is not None else ""
        digest = hashlib.blake2b(orjson.dumps(fb, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()
        if self._is_repeat((fb["request_id"], key_name), digest):
            status = "unchanged"
        else:
            status = "recorded"
            record = {
                "id": fb["request_id"],
                "time": time.time(),
                "api_key": key_name,
                "score": fb["score"],
                "label": fb["label"],
                "correction": None,
                "comment": None,
                DEFERRED: _Redacted(fb["correction"], fb["comment"]),
            }
            dropped = self.log.dropped
            self.log.submit(record)
            if self.log.dropped != dropped:  # the log's queue is full: a retry must be written, not "unchanged"
                self._seen.pop((fb["request_id"], key_name), None)
        self.metrics.feedback.labels(status).inc()
        await send_json(send, 200, orjson.dumps({"request_id": fb["request_id"], "status": status}))
