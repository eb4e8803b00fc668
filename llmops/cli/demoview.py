"""How ``llmops demo`` looks: step lines as they complete, the audit trail, the summary tables."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # the demo module loads every stack; its result types are only annotations here
    from llmops.demo import DemoResult, StepResult

_COLOURS = {"done": "green", "skipped": "dim"}


def print_step(out: Console, result: StepResult) -> None:
    colour = _COLOURS.get(result.status, "yellow")
    out.print(f"[{colour}]{result.status:>8}[/{colour}]  ", end="")
    out.print(f"{result.name}: {result.detail}  ({result.seconds:.0f} s)", markup=False, highlight=False)


def print_audit(out: Console, result: DemoResult) -> None:
    for r in result.audit:
        forced = " (forced)" if r.forced else ""
        detail = r.reason[:160] if r.kind == "rollout" else r.detail  # a rollout's detail is its evidence (JSON)
        out.print(
            f"  {r.actor:>18} {r.kind:<7} {r.alias:<10} v{r.from_version or '-'} → v{r.to_version or '-'}  {r.outcome}{forced}"
            f"  {detail}",
            markup=False,
            highlight=False,
        )


def _metric(metrics: dict[str, float], key: str, fmt: str = ".2f") -> str:
    value = metrics.get(key)
    return "-" if value is None else format(value, fmt)


def print_summary(out: Console, result: DemoResult) -> None:
    table = Table("step", "status", "detail", "s", title="llmops demo")
    for r in result.steps:
        table.add_row(r.name, r.status, r.detail, f"{r.seconds:.0f}")
    out.print(table)
    scores = Table(
        "release", "verdict", "exact_match", "json_valid", "bias_change_rate", "latency p95 ms", title="eval scores"
    )
    for label, metrics in result.scores.items():
        scores.add_row(
            label,
            result.verdicts[label],
            _metric(metrics, "exact_match"),
            _metric(metrics, "json_valid"),
            _metric(metrics, "bias_change_rate"),
            _metric(metrics, "latency_p95_ms", ".0f"),
        )
    out.print(scores)
    for note in result.notes:
        out.print(f"note: {note}", markup=False)
    out.print(f"registry: {result.tracking_uri}  (UI: llmops registry serve → http://127.0.0.1:5000)", markup=False)
    out.print(
        f"gateway: {result.gateway_url or '-'}/v1   engine: {result.engine_url or '-'}   logs: {result.logs}",
        markup=False,
    )
    out.print(f"demo finished in {result.seconds:.0f} s")


def print_traces(out: Console, result: DemoResult) -> None:
    for t in result.traces:
        out.print(
            f"  trace an answer of the {t.target} target ({t.stage or 'no stage'}: {t.release}): "
            f"llmops trace {t.request_id}   digest {t.digest[:16]}…",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def print_result(out: Console, result: DemoResult) -> None:
    print_audit(out, result)
    print_traces(out, result)
    print_summary(out, result)


def hold_until_stopped(out: Console, stop: threading.Event) -> Callable[[DemoResult], None]:
    """What ``--serve`` does at the end: print the result, keep engine and gateway serving until Ctrl-C."""

    def hold(result: DemoResult) -> None:
        print_result(out, result)
        out.print(f"serving: gateway {result.gateway_url}/v1, engine {result.engine_url}; Ctrl-C stops both")
        stop.wait()

    return hold
