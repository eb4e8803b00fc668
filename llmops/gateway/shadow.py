"""Shadow traffic: a copy of a share of a route's requests goes to its shadow release, asynchronously.

The copy is sent after the primary request is on its way, never delays it, and its answer never
reaches the client: it is written to the request log with ``shadow_of`` = the primary's request id,
for offline comparison, its ``output`` redacted of PII; the copy of a captured request is captured
too (:mod:`llmops.gateway.capture`). At most ``limits.max_shadow_in_flight`` copies run at once; more are skipped
and counted (``llmops_gateway_shadow_skipped_total``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import orjson

from llmops.config.gateway import LimitsSpec
from llmops.errors import LlmopsError
from llmops.gateway.capture import Capture
from llmops.gateway.chatrequest import ChatRequest, shadow_body
from llmops.gateway.metrics import GatewayMetrics
from llmops.gateway.requestlog import DEFERRED, RequestLog
from llmops.gateway.routes import ServedTarget
from llmops.gateway.upstream import Upstream
from llmops.requestid import new_request_id


def _answer(data: bytes) -> tuple[str | None, dict[str, Any] | None]:
    try:
        obj = orjson.loads(data)
        message = obj["choices"][0]["message"]
        usage = obj.get("usage")
        return message.get("content"), usage if isinstance(usage, dict) else None
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        return None, None


class Shadows:
    def __init__(
        self,
        upstreams: Mapping[str, Upstream],
        log: RequestLog,
        metrics: GatewayMetrics,
        limits: LimitsSpec,
        capture_max_chars: int = 8192,
    ) -> None:
        self._capture_max_chars = capture_max_chars
        self._upstreams = upstreams
        self._log = log
        self._metrics = metrics
        self._limits = limits
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def submit(
        self, release: ServedTarget, req: ChatRequest, primary_id: str, key_hash: str | None, *, captured: bool = False
    ) -> None:
        if len(self._tasks) >= self._limits.max_shadow_in_flight:
            self._metrics.shadow_skipped.labels(release.route).inc()
            return
        task = asyncio.create_task(self._run(release, req, primary_id, key_hash, captured))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(
        self, release: ServedTarget, req: ChatRequest, primary_id: str, key_hash: str | None, captured: bool
    ) -> None:
        started = time.perf_counter()
        capture = Capture(
            self._capture_max_chars, variables=req.variables, messages=req.payload.get("messages"), captured=captured
        )
        record: dict[str, Any] = {
            "id": new_request_id(),
            "shadow_of": primary_id,
            "time": time.time(),
            "key_hash": key_hash,
            "route": release.route,
            "target": release.target,
            "prompt_version": release.prompt_version if req.variables is not None else None,
            "adapter_version": release.adapter_version,
            "stream": False,
            "status": 0,
            "error": None,
            DEFERRED: capture,  # output (and a captured request's input), redacted in the writer thread
        }
        try:
            body = orjson.dumps(shadow_body(req, release, self._limits))
            resp = await self._upstreams[release.engine].chat(body, request_id=record["id"])
            data = await resp.read()
            resp.release()
            record["status"] = resp.status
            if resp.status == 200:
                output, usage = _answer(data)
                capture.output = output
                if usage:
                    record["tokens_in"] = usage.get("prompt_tokens")
                    record["tokens_out"] = usage.get("completion_tokens")
            else:
                record["error"] = data[:500].decode(errors="replace")
        except LlmopsError as exc:
            record["status"] = 502
            record["error"] = str(exc)
        finally:
            record["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
            if captured:
                self._metrics.count_captured(release.route, release.target)
            self._log.submit(record)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
