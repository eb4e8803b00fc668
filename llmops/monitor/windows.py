"""Stream the gateway's request and feedback logs into per-route windows, in one pass, in bounded memory.

A window of a route holds, per target, what its signals need and nothing more: latencies, times to first
token and statuses in compact arrays, and the captured texts in a seeded reservoir sample (bounded by
``text_cap``); the route-wide input sample is a reservoir too. So a log of a million requests is read in
one pass with memory that does not grow with it.

Windows: ``duration`` → the ``count`` windows of that length ending at ``until``; ``requests: N`` → the
last ``count`` chunks of N requests of the route (counted back from its newest request). Shadow records
(``shadow_of``) and routes the spec does not list are left out. Feedback is read first (the last record
per (request id, key) wins) and joined to its request as the request log streams by; a feedback id no
request read carries is counted as orphaned.
"""

from __future__ import annotations

import random
from array import array
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from llmops.config.monitor import MonitorFile, RouteMonitorSpec
from llmops.gateway.logreader import ReadStats, iter_records
from llmops.monitor.texts import input_text, output_text

T = TypeVar("T")

#: captured texts kept per window (and target) for descriptors and quality; drift embeds a sample of these
DESCRIPTOR_CAP = 5000


class Reservoir(Generic[T]):
    """A seeded uniform sample of at most ``size`` items of a stream (Vitter's algorithm R)."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seen = 0
        self.items: list[T] = []
        self._rng = random.Random(seed)

    def add(self, item: T) -> None:
        self.seen += 1
        if len(self.items) < self.size:
            self.items.append(item)
            return
        slot = self._rng.randrange(self.seen)
        if slot < self.size:
            self.items[slot] = item


@dataclass
class Feedback:
    """The feedback (last record per key) that arrived for one request."""

    score: float | None
    correction: str | None


@dataclass
class TargetWindow:
    """One target's requests in one window: compact arrays and bounded text samples."""

    target: str
    outputs: Reservoir[str]
    requests: int = 0
    captured: int = 0
    latencies_ms: array[float] = field(default_factory=lambda: array("d"))
    ttfts_ms: array[float] = field(default_factory=lambda: array("d"))
    statuses: array[int] = field(default_factory=lambda: array("i"))
    corrections: list[tuple[str, str]] = field(default_factory=list)
    feedback_scores: array[float] = field(default_factory=lambda: array("d"))
    feedback_received: int = 0
    feedback_corrections: int = 0
    earlier_release: int = 0  # requests an earlier release served: counted in latency/errors, not in outputs
    release: dict[str, str] = field(default_factory=dict)  # adapter/prompt version of its newest request


@dataclass
class RouteWindow:
    """One window of a route: its bounds, the route-wide input sample and each target's part."""

    start: float
    end: float
    inputs: Reservoir[str]
    targets: dict[str, TargetWindow] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return sum(t.requests for t in self.targets.values())

    @property
    def captured(self) -> int:
        return sum(t.captured for t in self.targets.values())


@dataclass(frozen=True)
class _Item:
    """What one request contributes to a window (kept only for ``requests: N`` windows, bounded)."""

    time: float
    target: str
    status: int
    latency_ms: float | None
    ttft_ms: float | None
    input: str | None
    output: str | None
    captured: bool
    feedback: tuple[Feedback, ...]
    release: tuple[str, str]


@dataclass
class Collected:
    """Every route's windows (oldest first) and what the read found."""

    windows: dict[str, list[RouteWindow]]
    records_read: int
    lines_skipped: int
    feedback_read: int
    orphaned: int
    files: list[str]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def read_feedback(glob: str, stats: ReadStats) -> dict[str, list[Feedback]]:
    """Request id → its feedback, one per key (the key's last record wins)."""
    last: dict[tuple[str, str], Feedback] = {}
    for rec in iter_records(glob, stats):
        rid = rec.get("id")
        if not isinstance(rid, str):
            continue
        corr = rec.get("correction")
        last[(rid, str(rec.get("api_key", "")))] = Feedback(
            _number(rec.get("score")), corr if isinstance(corr, str) else None
        )
    by_id: dict[str, list[Feedback]] = {}
    for (rid, _key), fb in last.items():
        by_id.setdefault(rid, []).append(fb)
    return by_id


class _Builder:
    """Creates windows and target parts with seeds derived from the run's seed (reproducible samples)."""

    def __init__(self, seed: int, text_cap: int, serving: Mapping[str, tuple[str, str]] | None = None) -> None:
        self.seed = seed
        self.text_cap = text_cap
        self.made = 0
        # target -> (adapter version, prompt version) serving now: outputs of other releases are left out
        self.serving = serving or {}

    def _next_seed(self) -> int:
        self.made += 1
        return self.seed * 1_000_003 + self.made

    def window(self, start: float, end: float) -> RouteWindow:
        return RouteWindow(start, end, Reservoir(self.text_cap, self._next_seed()))

    def add(self, window: RouteWindow, item: _Item) -> None:
        part = window.targets.get(item.target)
        if part is None:
            part = window.targets[item.target] = TargetWindow(item.target, Reservoir(self.text_cap, self._next_seed()))
        part.requests += 1
        part.statuses.append(item.status)
        if item.latency_ms is not None:
            part.latencies_ms.append(item.latency_ms)
        if item.ttft_ms is not None:
            part.ttfts_ms.append(item.ttft_ms)
        if item.captured:
            part.captured += 1
            if item.input is not None:
                window.inputs.add(item.input)
        current = self.serving.get(item.target)
        adapter, prompt = item.release
        # a request with its own messages renders no prompt (empty prompt version): only the adapter must match
        if current is not None and (adapter != current[0] or (prompt and prompt != current[1])):
            part.earlier_release += 1  # its answer is not what the target's release (and reference) gives now
            return
        if item.captured and item.output is not None:
            part.outputs.add(item.output)
        for fb in item.feedback:
            part.feedback_received += 1
            if fb.score is not None:
                part.feedback_scores.append(fb.score)
            if fb.correction is not None:
                part.feedback_corrections += 1
                if item.output is not None:
                    part.corrections.append((item.output, fb.correction))
        part.release = {"adapter_version": adapter, "prompt_version": prompt}


def _item(rec: Mapping[str, Any], feedback: dict[str, list[Feedback]]) -> _Item:
    captured = rec.get("captured") is True
    status = rec.get("status")
    return _Item(
        time=_number(rec.get("time")) or 0.0,
        target=str(rec.get("target") or "?"),
        status=status if isinstance(status, int) and not isinstance(status, bool) else 0,
        latency_ms=_number(rec.get("latency_ms")),
        ttft_ms=_number(rec.get("ttft_ms")),
        input=input_text(rec) if captured else None,
        output=output_text(rec) if captured else None,
        captured=captured,
        feedback=tuple(feedback.get(str(rec.get("id")), ())),
        release=(str(rec.get("adapter_version") or ""), str(rec.get("prompt_version") or "")),
    )


class _DurationWindows:
    """``count`` windows of ``seconds`` each, ending at ``until``; records are added as they stream by."""

    def __init__(self, builder: _Builder, seconds: float, count: int, until: float) -> None:
        self.builder, self.seconds, self.until = builder, seconds, until
        self.start = until - seconds * count
        self.windows = [builder.window(self.start + i * seconds, self.start + (i + 1) * seconds) for i in range(count)]

    def wants(self, time: float) -> bool:
        return self.start <= time < self.until

    def add(self, item: _Item) -> None:
        index = min(int((item.time - self.start) // self.seconds), len(self.windows) - 1)
        self.builder.add(self.windows[index], item)

    def finish(self) -> list[RouteWindow]:
        return self.windows


class _RequestWindows:
    """The last ``count`` chunks of ``size`` requests: a bounded ring of items, cut from the newest back."""

    def __init__(self, builder: _Builder, size: int, count: int, until: float) -> None:
        self.builder, self.size, self.until = builder, size, until
        self.ring: deque[_Item] = deque(maxlen=size * count)

    def wants(self, time: float) -> bool:
        return time <= self.until

    def add(self, item: _Item) -> None:
        self.ring.append(item)

    def finish(self) -> list[RouteWindow]:
        items = list(self.ring)
        chunks: list[list[_Item]] = []
        end = len(items)
        while end > 0:
            chunks.append(items[max(0, end - self.size) : end])
            end -= self.size
        windows = []
        for chunk in reversed(chunks):
            window = self.builder.window(chunk[0].time, chunk[-1].time)
            for item in chunk:
                self.builder.add(window, item)
            windows.append(window)
        return windows


def _windows_for(
    spec: RouteMonitorSpec, builder: _Builder, until: float, override_s: float | None
) -> _DurationWindows | _RequestWindows:
    count = spec.window.count
    if override_s is not None:
        return _DurationWindows(builder, override_s, count, until)
    if spec.window.requests is not None:
        return _RequestWindows(builder, spec.window.requests, count, until)
    return _DurationWindows(builder, spec.window.seconds or 3600.0, count, until)


def collect(
    spec: MonitorFile,
    request_glob: str,
    feedback_glob: str,
    *,
    routes: Iterable[str],
    until: float,
    window_s: float | None = None,
    text_cap: int = DESCRIPTOR_CAP,
    serving: Mapping[str, Mapping[str, tuple[str, str]]] | None = None,
) -> Collected:
    """Read the feedback log, then stream the request log once into each route's windows.

    ``serving``: per route, each target's current (adapter version, prompt version); a request another
    release served counts in its target's latency and errors but not in its outputs, corrections or feedback.
    """
    serving = serving or {}
    fb_stats, stats = ReadStats(), ReadStats()
    feedback = read_feedback(feedback_glob, fb_stats)
    wanted = {
        name: _windows_for(spec.routes[name], _Builder(spec.seed + i, text_cap, serving.get(name)), until, window_s)
        for i, name in enumerate(sorted(routes))
    }
    seen_feedback: set[str] = set()
    for rec in iter_records(request_glob, stats):
        rid = rec.get("id")
        if feedback and isinstance(rid, str) and rid in feedback:
            seen_feedback.add(rid)
        windows = wanted.get(rec.get("route"))  # type: ignore[arg-type]
        if windows is None or rec.get("shadow_of"):
            continue
        time = _number(rec.get("time"))
        if time is None or not windows.wants(time):
            continue
        windows.add(_item(rec, feedback))
    orphaned = sum(len(v) for k, v in feedback.items() if k not in seen_feedback)
    return Collected(
        windows={name: w.finish() for name, w in wanted.items()},
        records_read=stats.records,
        lines_skipped=stats.skipped + fb_stats.skipped,
        feedback_read=fb_stats.records,
        orphaned=orphaned,
        files=[str(p) for p in stats.files + fb_stats.files],
    )
