"""The demo's last step: trace one answer the canary gave and one production gave, back to data and approvers.

Picks, from the demo gateway's request log, the newest successful answer of the fine-tuned adapter served
by the ``canary`` target (during its rollout) and by the ``stable`` target (after its promotion), and traces
each (:func:`llmops.governance.trace.trace_request`). The chain of the demo's own releases must be whole: a
gap or a "not recorded" field fails the step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmops.config.gateway import load_gateway_file
from llmops.errors import LlmopsError
from llmops.gateway.logreader import iter_records
from llmops.governance.trace import target_stages, trace_request
from llmops.registry import Registry


@dataclass(frozen=True)
class TracedAnswer:
    target: str
    request_id: str
    release: str
    stage: str | None
    approvals: int
    datasets: int
    evals: int
    digest: str


def pick_answers(
    records: Iterable[dict[str, Any]], release: tuple[str, str], targets: tuple[str, ...]
) -> dict[str, str]:
    """The newest successful, non-shadow answer of ``release`` (adapter, prompt versions) per target: target → id."""
    picked: dict[str, tuple[float, str]] = {}
    for r in records:
        target = str(r.get("target"))
        served = (r.get("adapter_version"), r.get("prompt_version"))
        if target in targets and served == release and r.get("status") == 200 and not r.get("shadow_of"):
            when = float(r.get("time") or 0)
            if target not in picked or when >= picked[target][0]:
                picked[target] = (when, str(r["id"]))
    return {t: rid for t, (_, rid) in picked.items()}


def trace_answers(
    registry: Registry, gateway: Path, logs: list[Path], feedback: list[Path], adapter: str, prompt: str
) -> list[TracedAnswer]:
    """Trace the canary's and production's newest answers of adapter + prompt (``gateway``: the config that
    served them, naming each target's stage); LlmopsError when a chain has a gap."""
    stages = target_stages(load_gateway_file(gateway))
    records = (r for path in logs for r in iter_records(path))
    picked = pick_answers(records, (adapter, prompt), ("canary", "stable"))
    if "canary" not in picked or "stable" not in picked:
        raise LlmopsError(
            f"no answer of {adapter} + {prompt} by both the canary and stable targets in {', '.join(map(str, logs))}"
        )
    traced = []
    for target, request_id in sorted(picked.items()):
        t = trace_request(registry, request_id, logs=[str(p) for p in logs], feedback_logs=[str(p) for p in feedback],
                          stages=stages)  # fmt: skip
        problems = [*t.gaps, *(f"not recorded: {p}" for p in t.not_recorded)]
        if problems:
            raise LlmopsError(f"the trace of {request_id} ({target}) has gaps: {'; '.join(problems)}")
        adapter_lineage = t.lineage.adapter
        traced.append(
            TracedAnswer(
                target=target, request_id=request_id, release=t.lineage.release.label(), stage=t.served_by.stage,
                approvals=len(t.approvals), datasets=len(adapter_lineage.datasets) if adapter_lineage else 0,
                evals=len(t.lineage.evals), digest=t.digest,
            )
        )  # fmt: skip
    return traced
