"""The request log: one JSON record per request, appended to a local JSONL file off the hot path.

Handlers :meth:`RequestLog.submit` a dict to a bounded queue and move on; every ``interval_s``
(0.2 s) a background task serializes what has queued up and appends it in a worker thread, so the
event loop hands work to a thread a few times a second, not once per request. When the queue is full the
record is dropped and counted (``llmops_gateway_request_log_dropped_total``): logging never slows
or fails a request.

Record fields: ``id``, ``time`` (epoch seconds), ``api_key`` (the key's name), ``key_hash`` (hash of
the sticky key, salted by route), ``route``, ``target``, ``prompt_version``, ``adapter_version``,
``stream``, ``status``, ``latency_ms``, ``ttft_ms``, ``tokens_in``, ``tokens_out``, ``error``; shadow
records add ``shadow_of`` (the primary's id) and ``output`` (the shadow's answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import orjson

log = logging.getLogger(__name__)
BATCH = 4096


class RequestLogSink(Protocol):
    """Where serialized records go; ``write`` is called from a worker thread, one batch at a time."""

    def write(self, lines: list[bytes]) -> None: ...

    def close(self) -> None: ...


class JsonlSink:
    """Append-only JSONL file (created with its folder)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO | None = None

    def write(self, lines: list[bytes]) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("ab")
        self._file.write(b"".join(lines))
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class NullSink:
    def write(self, lines: list[bytes]) -> None:
        return None

    def close(self) -> None:
        return None


class RequestLog:
    def __init__(
        self,
        sink: RequestLogSink,
        *,
        queue_size: int = 10_000,
        on_drop: Callable[[int], None] | None = None,
        interval_s: float = 0.2,
    ) -> None:
        self.sink = sink
        self.interval_s = interval_s
        self.dropped = 0
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=queue_size)
        self._on_drop = on_drop
        self._task: asyncio.Task[None] | None = None

    def _drop(self, n: int) -> None:
        self.dropped += n
        if self._on_drop is not None:
            self._on_drop(n)

    def submit(self, record: dict[str, Any]) -> None:
        """Queue ``record`` for writing; drop (and count) it when the queue is full."""
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self._drop(1)

    def _take(self) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        while len(batch) < BATCH and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def _write(self, batch: list[dict[str, Any]]) -> None:
        lines = [orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE, default=str) for r in batch]
        try:
            await asyncio.to_thread(self.sink.write, lines)
        except OSError as exc:
            self._drop(len(batch))
            log.error("request log: cannot write %d record(s): %s", len(batch), exc)
        finally:
            for _ in batch:
                self._queue.task_done()

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            await asyncio.sleep(self.interval_s)  # let a batch gather
            batch.extend(self._take())
            await self._write(batch)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="llmops-request-log")

    async def flush(self) -> None:
        """Return once every record submitted so far is written."""
        if self._task is not None and not self._task.done():
            await self._queue.join()
            return
        while batch := self._take():
            await self._write(batch)

    async def stop(self) -> None:
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.sink.close()
