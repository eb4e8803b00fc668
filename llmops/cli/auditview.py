"""What ``llmops audit`` lists: each alias move once, by its outcome.

A move (``llmops promote``, ``llmops rollback``) appends a write-ahead "pending" record before it
touches any alias, then its outcome ("moved", "rolled-back", "restored") once it is done. Both carry
the move's time, usually the same millisecond, so their order in the log cannot be relied on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

PENDING = "pending"


class Move(Protocol):
    """The fields of an audit record that say which move it belongs to (read-only)."""

    @property
    def kind(self) -> str: ...

    @property
    def object(self) -> str: ...

    @property
    def alias(self) -> str: ...

    @property
    def from_version(self) -> str | None: ...

    @property
    def to_version(self) -> str | None: ...

    @property
    def outcome(self) -> str: ...

    @property
    def timestamp_ms(self) -> int: ...


R = TypeVar("R", bound=Move)
_Key = tuple[str, str, str, str | None, str | None]


def _key(record: Move) -> _Key:
    return (record.kind, record.object, record.alias, record.from_version, record.to_version)


def hide_settled_pending(records: Sequence[R]) -> list[R]:
    """``records`` (in their order) without the "pending" records that an outcome settles.

    An outcome settles the latest not yet settled "pending" record of the same move (kind, object,
    alias, from, to) written at or before it, so each outcome hides at most one pending record. A
    pending record that nothing settles stays: the move died midway (the process was killed), even
    when the same move was retried and succeeded later.
    """
    unsettled: dict[_Key, list[tuple[int, int]]] = {}  # move -> (time, index) of its pending records
    for i, r in enumerate(records):
        if r.outcome == PENDING:
            unsettled.setdefault(_key(r), []).append((r.timestamp_ms, i))
    settled: set[int] = set()
    for ts, i in sorted((r.timestamp_ms, i) for i, r in enumerate(records) if r.outcome != PENDING):
        pending = unsettled.get(_key(records[i]), [])
        earlier = [p for p in pending if p[0] <= ts]
        if earlier:
            latest = max(earlier)
            pending.remove(latest)
            settled.add(latest[1])
    return [r for i, r in enumerate(records) if i not in settled]
