"""How services report progress without printing: a small reporter protocol the CLI renders.

Services (fine-tuning, evals, the demo's steps) never print. They take a :class:`Reporter` and call
``note`` for a line a person should read, ``task`` for work with a known size (a progress bar with
optional fields such as ``loss``), and ``waiting`` around a wait of unknown length. The CLI passes a
rich renderer (:mod:`llmops.cli.render`); library callers pass nothing and get :data:`SILENT`, or
their own implementation (logging, a notebook widget).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol


class Task(Protocol):
    """One piece of work with a size; ``fields`` are short values shown beside it (``loss="0.41"``)."""

    def update(self, completed: float, *, total: float | None = None, **fields: str) -> None: ...

    def advance(self, amount: float = 1) -> None: ...

    def close(self) -> None: ...


class Reporter(Protocol):
    """Where a service's progress goes."""

    def note(self, message: str) -> None:
        """A line for the user (plain text, no markup)."""
        ...

    def task(self, label: str, total: float | None, *, completed: float = 0, **fields: str) -> Task:
        """Start a task of ``total`` units (None: unknown); close it when done."""
        ...

    def waiting(self, message: str) -> contextlib.AbstractContextManager[None]:
        """Around a wait of unknown length (a server starting, a model building)."""
        ...


class _SilentTask:
    def update(self, completed: float, *, total: float | None = None, **fields: str) -> None:
        return None

    def advance(self, amount: float = 1) -> None:
        return None

    def close(self) -> None:
        return None


class Silent:
    """A reporter that drops everything (the default for library callers)."""

    def note(self, message: str) -> None:
        return None

    def task(self, label: str, total: float | None, *, completed: float = 0, **fields: str) -> Task:
        return _SilentTask()

    @contextlib.contextmanager
    def waiting(self, message: str) -> Iterator[None]:
        yield


SILENT: Reporter = Silent()
