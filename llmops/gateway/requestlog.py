"""The request log: one JSON record per request, appended to a local JSONL file off the hot path.

Handlers :meth:`RequestLog.submit` a dict to a bounded queue and move on; every ``interval_s``
(0.2 s) a background task serializes what has queued up and appends it in a worker thread, so the
event loop hands work to a thread a few times a second, not once per request. When the queue is full the
record is dropped and counted (``llmops_gateway_request_log_dropped_total``): logging never slows
or fails a request.

Record fields: ``id``, ``time`` (epoch seconds), ``api_key`` (the key's name), ``key_hash`` (hash of
the sticky key, salted by route), ``route``, ``target``, ``prompt_version``, ``adapter_version``,
``stream``, ``status``, ``latency_ms``, ``ttft_ms``, ``tokens_in``, ``tokens_out``, ``error``; shadow
records add ``shadow_of`` (the primary's id) and ``output`` (the shadow's answer, PII redacted).
Captured requests (a route's ``capture`` share) add ``captured``, ``input`` and ``output``
(:mod:`llmops.gateway.capture`): those fields are computed, redacted and size-bounded in the writer
thread right before serialization (the record's ``DEFERRED`` entry), never on the event loop.

The file rotates by size and keeps a number of rotated files (:mod:`llmops.gateway.rotation`). The
feedback log (``POST /v1/feedback``, :mod:`llmops.gateway.feedback`) is a second ``RequestLog``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import orjson

from llmops.gateway.rotation import ends_mid_line, rotate

log = logging.getLogger(__name__)
BATCH = 4096
#: a record's key for fields computed in the writer thread, right before serialization: its value has
#: ``fields() -> dict`` (e.g. captured texts, redacted there, off the event loop)
DEFERRED = "_deferred"


class RequestLogSink(Protocol):
    """Where serialized records go; ``write`` is called from a worker thread, one batch at a time."""

    def write(self, lines: list[bytes]) -> None: ...

    def close(self) -> None: ...


class JsonlSink:
    """Append-only JSONL file (created with its folder), rotated by size (:mod:`llmops.gateway.rotation`).

    A batch that would take a non-empty file past ``max_bytes`` goes to a fresh file (a batch larger
    than ``max_bytes`` is still written whole); a file that a crash left ending mid-line gets a newline
    first, so the next record starts on its own line.
    """

    def __init__(self, path: Path, *, max_bytes: int | None = None, files_kept: int = 10) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.files_kept = files_kept
        self._file: BinaryIO | None = None
        self._size = 0

    def _open(self) -> BinaryIO:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        cut = ends_mid_line(self.path)
        self._file = self.path.open("ab")
        if cut:
            self._file.write(b"\n")
        self._size = self._file.tell()
        return self._file

    def write(self, lines: list[bytes]) -> None:
        data = b"".join(lines)
        file = self._file or self._open()
        if self.max_bytes is not None and self._size > 0 and self._size + len(data) > self.max_bytes:
            self.close()
            rotate(self.path, self.files_kept)
            file = self._open()
        file.write(data)
        file.flush()
        self._size += len(data)

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

    def _serialize_and_write(self, batch: list[dict[str, Any]]) -> None:
        lines = []
        for record in batch:
            deferred = record.pop(DEFERRED, None)
            if deferred is not None:
                record.update(deferred.fields())
            lines.append(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE, default=str))
        self.sink.write(lines)

    async def _write(self, batch: list[dict[str, Any]]) -> None:
        try:
            await asyncio.to_thread(self._serialize_and_write, batch)
        except OSError as exc:
            self._drop(len(batch))
            log.error("request log: cannot write %d record(s): %s", len(batch), exc)
        except Exception:  # a bug in a record's deferred fields: the writer task keeps running
            self._drop(len(batch))
            log.exception("request log: cannot serialize %d record(s)", len(batch))
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
