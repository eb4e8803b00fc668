"""The CLI's renderer of service progress (:class:`llmops.events.Reporter`) with rich.

On a terminal: live progress bars with their fields and an ETA, and spinners around waits. Off a
terminal (CI logs, pipes): plain lines, a task's progress every tenth of the way, nothing that
redraws.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from llmops.events import Task


class _LiveTask:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task

    def update(self, completed: float, *, total: float | None = None, **fields: str) -> None:
        self._progress.update(self._task, completed=completed, total=total, fields=_fields(fields))

    def advance(self, amount: float = 1) -> None:
        self._progress.advance(self._task, amount)

    def close(self) -> None:
        self._progress.stop()


class _PlainTask:
    """Off a terminal: one line at the start, then one every ~10% of the way, and one at the end."""

    def __init__(self, console: Console, label: str, total: float | None, completed: float) -> None:
        self._console = console
        self._label = label
        self._total = total
        self._done = completed
        self._start = completed
        self._t0 = time.monotonic()
        self._printed = completed
        self._fields: dict[str, str] = {}
        total_text = f"/{total:.0f}" if total else ""
        console.print(f"{label}: {completed:.0f}{total_text}", markup=False, highlight=False)

    def update(self, completed: float, *, total: float | None = None, **fields: str) -> None:
        self._total = total if total is not None else self._total
        self._fields.update(fields)
        self._done = completed
        self._maybe_print()

    def advance(self, amount: float = 1) -> None:
        self.update(self._done + amount)

    def _maybe_print(self) -> None:
        total = self._total or 0
        step = max(1.0, total / 10) if total else 10.0
        if self._done - self._printed < step and self._done != total:
            return
        if self._done == self._printed:
            return
        self._printed = self._done
        done = self._done - self._start
        elapsed = time.monotonic() - self._t0
        eta = f"  ETA {(total - self._done) * elapsed / done:.0f} s" if total and done > 0 else ""
        fields = "".join(f"  {k} {v}" for k, v in self._fields.items())
        of = f"/{total:.0f}" if total else ""
        self._console.print(f"{self._label}: {self._done:.0f}{of}{fields}{eta}", markup=False, highlight=False)

    def close(self) -> None:
        return None


def _fields(fields: dict[str, str]) -> str:
    return "  ".join(f"{k} {v}" for k, v in fields.items())


class RichReporter:
    """Renders a service's notes, tasks and waits on a rich console."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def note(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False, soft_wrap=True)

    def task(self, label: str, total: float | None, *, completed: float = 0, **fields: str) -> Task:
        if not self.console.is_terminal:
            return _PlainTask(self.console, label, total, completed)
        progress = Progress(
            TextColumn("  {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[fields]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        progress.start()
        task = progress.add_task(label, total=total, completed=int(completed), fields=_fields(fields))
        return _LiveTask(progress, task)

    @contextlib.contextmanager
    def waiting(self, message: str) -> Iterator[None]:
        if not self.console.is_terminal:
            self.note(message)
            yield
            return
        with self.console.status(message):
            yield
