"""The two arms of a rollout (canary and stable) read from every replica's request log and the feedback log.

A record belongs to an arm when its ``route`` and ``target`` match, its ``time`` is at or after the window's
start, it is not a shadow copy (``shadow_of``), its ``adapter_version`` equals the arm's (``NAME/VERSION`` as
the gateway writes it; None for the base model) and its ``prompt_version`` equals the arm's or is null (a
request that sent no ``prompt_variables``). A record of another release on the same target (the previous
canary, before the gateway's refresh) is in neither arm.

Per request: failed when ``status`` >= 500, when ``error`` is set on a non-4xx (a stream that broke after
its 200), or on any 4xx but 429
(the client's quota) and 499 (the client went away). The arms get the same clients at random, so client
mistakes (a malformed body, a variable too long) fail both at the same rate and cancel out in the
comparison, while a 4xx the release causes counts against it: a prompt version that demands a variable the
app does not send, params the release's engine refuses. Requests refused before routing (auth, body) are in
no arm. Latency of successful requests only; the captured ``output`` text when
there is one; the request's feedback score (the last feedback record of a request id wins).

Reading is incremental: each file is remembered by (device, inode) with its offset and first line, so a
later look reads only the lines appended since. A rotated file keeps its inode under its new name and is
continued, not re-read; a file that shrank or whose first line changed (replaced) is read from the start.
Records are counted once per request id, so a log that log shipping copies again (a new inode: rsync, a
sidecar that rewrites the file) adds only its new requests.
Only whole lines are consumed; a partial last line waits for its end. Partial or glued lines left by a
crashed writer are handled by :func:`llmops.gateway.logreader.parse_line`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmops.gateway.logreader import log_files, parse_line
from llmops.rollout.checks import ArmData

_FINGERPRINT = 256  # bytes of a file's first line that identify it


@dataclass(frozen=True)
class ArmSelector:
    """Which requests form an arm: the route's target and the exact release it served."""

    target: str
    adapter_version: str | None
    prompt_version: str | None


@dataclass(frozen=True, slots=True)
class _Obs:
    """What a rollout needs of one request record."""

    id: str
    time: float
    target: str | None
    adapter_version: str | None
    prompt_version: str | None
    failed: bool
    latency_ms: float | None  # successful requests only
    output: str | None


#: client-side statuses that say nothing about the release: the key's quota, a client that went away
NOT_THE_RELEASE = (429, 499)


def failed(record: dict[str, Any]) -> bool:
    """The release failed the request (module docstring): 5xx, any 4xx but 429/499, or an error on another
    status (a stream that broke after its 200)."""
    status = record.get("status")
    code = status if isinstance(status, int) and not isinstance(status, bool) else None
    if code is not None and 400 <= code < 500:
        return code not in NOT_THE_RELEASE
    return (code is not None and code >= 500) or bool(record.get("error"))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _observe(record: dict[str, Any]) -> tuple[str, _Obs] | None:
    route, rid, when = record.get("route"), record.get("id"), _number(record.get("time"))
    if not isinstance(route, str) or not isinstance(rid, str) or when is None or record.get("shadow_of"):
        return None
    bad = failed(record)
    status = record.get("status")
    ok = not bad and isinstance(status, int) and status < 400
    obs = _Obs(
        id=rid,
        time=when,
        target=_str(record.get("target")),
        adapter_version=_str(record.get("adapter_version")),
        prompt_version=_str(record.get("prompt_version")),
        failed=bad,
        latency_ms=_number(record.get("latency_ms")) if ok else None,
        output=_str(record.get("output")),
    )
    return route, obs


def _in_arm(obs: _Obs, arm: ArmSelector) -> bool:
    return (
        obs.target == arm.target
        and obs.adapter_version == arm.adapter_version
        and (obs.prompt_version is None or obs.prompt_version == arm.prompt_version)
    )


@dataclass
class _FileMark:
    offset: int
    first_line: bytes


class _Tail:
    """New whole lines of the files some globs name, since the last call."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = list(patterns)
        self._marks: dict[tuple[int, int], _FileMark] = {}
        self.skipped = 0  # partial or malformed lines seen

    def records(self) -> Iterator[dict[str, Any]]:
        seen: set[str] = set()
        for pattern in self.patterns:
            for path in log_files(pattern):
                if str(path) not in seen:
                    seen.add(str(path))
                    yield from self._read(path)

    def _read(self, path: Path) -> Iterator[dict[str, Any]]:
        try:
            handle = path.open("rb")
        except OSError:  # rotated or deleted since the glob: read under its new name next time
            return
        with handle:
            st = os.fstat(handle.fileno())
            key = (st.st_dev, st.st_ino)
            first = handle.readline()[:_FINGERPRINT]
            if not first.endswith(b"\n") and len(first) < _FINGERPRINT:
                return  # not even one whole line yet
            mark = self._marks.get(key)
            if mark is None or mark.first_line != first or st.st_size < mark.offset:
                mark = self._marks[key] = _FileMark(0, first)
            handle.seek(mark.offset)
            data = handle.read(max(st.st_size - mark.offset, 0))
        end = data.rfind(b"\n") + 1  # a partial last line waits for its end
        mark.offset += end
        for line in data[:end].splitlines():
            record, skipped = parse_line(line)
            self.skipped += skipped
            if record is not None:
                yield record


@dataclass
class _Arm:
    ids: list[str] = field(default_factory=list)
    errors: list[bool] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def add(self, obs: _Obs) -> None:
        self.ids.append(obs.id)
        self.errors.append(obs.failed)
        if obs.latency_ms is not None:
            self.latencies_ms.append(obs.latency_ms)
        if obs.output is not None:
            self.outputs.append(obs.output)

    def data(self, scores: dict[str, float]) -> ArmData:
        joined = [scores[rid] for rid in self.ids if rid in scores]
        return ArmData(
            errors=tuple(self.errors),
            latencies_ms=tuple(self.latencies_ms),
            outputs=tuple(self.outputs),
            scores=tuple(joined),
        )


@dataclass
class _Window:
    """One (route, since, selectors) look: the arms so far and how far into the route's records they reach."""

    cursor: int = 0
    canary: _Arm = field(default_factory=_Arm)
    stable: _Arm = field(default_factory=_Arm)


class ArmReader:
    """Canary and stable arms of a route since a time, from request logs and feedback logs (incremental)."""

    def __init__(self, home: Path, request_globs: Sequence[str], feedback_globs: Sequence[str] = ()) -> None:
        self.home = Path(home)
        self._requests = _Tail([self._resolve(g) for g in request_globs])
        self._feedback = _Tail([self._resolve(g) for g in feedback_globs])
        self._by_route: dict[str, list[_Obs]] = {}
        self._ids: set[str] = set()  # request ids read: a file shipped again (a copy, a new inode) counts once
        self._scores: dict[str, float] = {}
        self._windows: dict[tuple[str, float, ArmSelector, ArmSelector], _Window] = {}

    def _resolve(self, pattern: str) -> str:
        path = Path(pattern).expanduser()
        return str(path if path.is_absolute() else self.home / path)

    @property
    def skipped_lines(self) -> int:
        """Partial or malformed lines seen so far (request and feedback logs)."""
        return self._requests.skipped + self._feedback.skipped

    def _poll(self) -> None:
        for record in self._requests.records():
            seen = _observe(record)
            if seen is not None and seen[1].id not in self._ids:
                self._ids.add(seen[1].id)
                self._by_route.setdefault(seen[0], []).append(seen[1])
        for record in self._feedback.records():
            rid, score = record.get("id"), _number(record.get("score"))
            if isinstance(rid, str):
                if score is None:
                    self._scores.pop(rid, None)  # the last record wins, even one without a score
                else:
                    self._scores[rid] = score

    def read(self, route: str, since: float, *, canary: ArmSelector, stable: ArmSelector) -> tuple[ArmData, ArmData]:
        """(canary arm, stable arm) of ``route`` over the requests logged at or after ``since`` (epoch s)."""
        self._poll()
        window = self._windows.setdefault((route, since, canary, stable), _Window())
        records = self._by_route.get(route, [])
        for obs in records[window.cursor :]:
            if obs.time < since:
                continue
            if _in_arm(obs, canary):
                window.canary.add(obs)
            elif _in_arm(obs, stable):
                window.stable.add(obs)
        window.cursor = len(records)
        return window.canary.data(self._scores), window.stable.data(self._scores)
