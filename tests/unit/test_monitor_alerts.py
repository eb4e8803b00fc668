"""Alert rules over windows: `for: N` streaks, insufficient data breaking them, signal patterns."""

from __future__ import annotations

from llmops.config.monitor import AlertRule
from llmops.monitor.alerts import evaluate_rules
from llmops.monitor.levels import Level, SignalResult, insufficient
from llmops.monitor.model import WindowResult


def rule(name: str, signals: list[str], *, level: str = "alert", for_: int = 1) -> AlertRule:
    return AlertRule.model_validate({"name": name, "signals": signals, "level": level, "for": for_})


def window(i: int, *results: SignalResult) -> WindowResult:
    return WindowResult(start=i * 60.0, end=(i + 1) * 60.0, requests=100, captured=50, results=list(results))


def sig(signal: str, level: Level, value: float = 1.0, target: str = "stable") -> SignalResult:
    return SignalResult(signal, level, value, 0.5, 100, target=target)


def test_a_rule_fires_only_when_held_for_its_windows() -> None:
    drift = rule("drift", ["input_drift"], for_=2)
    windows = [window(0, sig("input_drift", "ok")), window(1, sig("input_drift", "alert"))]
    assert evaluate_rules("r", [drift], windows) == []  # one alert window of two
    windows.append(window(2, sig("input_drift", "alert", 0.9)))
    [firing] = evaluate_rules("r", [drift], windows)
    assert firing.route == "r" and firing.rule.name == "drift" and firing.level == "alert"
    assert firing.windows == [(60.0, 120.0), (120.0, 180.0)]
    assert [r.value for r in firing.results] == [0.9]  # the newest window's evidence


def test_fewer_windows_than_for_never_fire() -> None:
    windows = [window(0, sig("input_drift", "alert")), window(1, sig("input_drift", "alert"))]
    assert evaluate_rules("r", [rule("d", ["input_drift"], for_=3)], windows) == []
    assert evaluate_rules("r", [rule("d", ["input_drift"], for_=3)], []) == []


def test_insufficient_data_breaks_the_streak() -> None:
    windows = [
        window(0, sig("input_drift", "alert")),
        window(1, insufficient("input_drift", 3, 100)),
        window(2, sig("input_drift", "alert")),
    ]
    assert evaluate_rules("r", [rule("d", ["input_drift"], for_=2)], windows) == []
    assert evaluate_rules("r", [rule("d", ["input_drift"], level="warn", for_=2)], windows) == []
    assert len(evaluate_rules("r", [rule("d", ["input_drift"], for_=1)], windows)) == 1


def test_patterns_and_levels() -> None:
    windows = [
        window(0, sig("field.intent", "warn"), sig("latency.p95_ms", "alert")),
        window(
            1, sig("field.priority", "alert", 0.3, "canary"), sig("field.intent", "warn"), sig("output.length", "ok")
        ),
    ]
    fields_warn = rule("fields", ["field.*"], level="warn", for_=2)
    fields_alert = rule("fields-alert", ["field.*"], for_=2)
    latency = rule("latency", ["latency.*"], for_=1)
    fired = evaluate_rules("r", [fields_warn, fields_alert, latency], windows)
    assert [f.rule.name for f in fired] == ["fields"]
    [firing] = fired
    assert firing.level == "alert"  # warn or worse: the worst matching level of the newest window
    assert sorted((r.signal, r.target) for r in firing.results) == [
        ("field.intent", "stable"),
        ("field.priority", "canary"),
    ]
    assert evaluate_rules("r", [rule("any", ["output.length", "latency.p95_ms"])], windows) == []
