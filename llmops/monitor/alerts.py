"""Alert rules over a route's windows: which rules hold, and on what evidence (:class:`Firing`).

A rule holds when, in each of its newest ``for`` windows, some signal matching one of its patterns
(shell-style, :mod:`fnmatch`) is at the rule's ``level`` or worse. ``insufficient_data`` never counts
as worse than ``ok``: a window whose matching signals lack samples breaks the streak. With fewer
windows than ``for``, the rule cannot hold yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from llmops.config.monitor import AlertRule
from llmops.monitor.levels import LEVEL_VALUES, Level, SignalResult, worst
from llmops.monitor.model import WindowResult


@dataclass(frozen=True)
class Firing:
    """A rule that holds on a route: its level, the newest window's evidence, the held windows' bounds."""

    route: str
    rule: AlertRule
    level: Level  # the rule's level or worse, held for rule.for_ windows
    results: list[SignalResult]  # the matching results of the newest window at that level or worse
    windows: list[tuple[float, float]]  # the (start, end) of the held windows, oldest first

    @property
    def start(self) -> float:
        return self.windows[0][0]

    @property
    def end(self) -> float:
        return self.windows[-1][1]


def matches(rule: AlertRule, signal: str) -> bool:
    """True when ``signal`` is one of the rule's names or matches one of its patterns."""
    return any(fnmatchcase(signal, pattern) for pattern in rule.signals)


def _hits(rule: AlertRule, window: WindowResult) -> list[SignalResult]:
    """The window's results matching ``rule`` at its level or worse (never ``insufficient_data``)."""
    bar = LEVEL_VALUES[rule.level]
    return [r for r in window.results if matches(rule, r.signal) and LEVEL_VALUES[r.level] >= bar]


def evaluate_rule(route: str, rule: AlertRule, windows: Sequence[WindowResult]) -> Firing | None:
    """The firing of ``rule`` on ``windows`` (oldest first), or None when it does not hold."""
    if len(windows) < rule.for_:
        return None
    held = list(windows[-rule.for_ :])
    hits = [_hits(rule, w) for w in held]
    if not all(hits):
        return None
    newest = hits[-1]
    return Firing(
        route=route,
        rule=rule,
        level=worst([r.level for r in newest]),
        results=newest,
        windows=[(w.start, w.end) for w in held],
    )


def evaluate_rules(route: str, rules: Sequence[AlertRule], windows: Sequence[WindowResult]) -> list[Firing]:
    """Every rule of ``rules`` that holds on ``route``'s ``windows`` (oldest first), in rule order."""
    firings = [evaluate_rule(route, rule, windows) for rule in rules]
    return [f for f in firings if f is not None]
