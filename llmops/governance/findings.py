"""What an eval record says about a release once read against its suite file: gate results, bias, metric meanings.

The gates are those of the workspace suite file whose hash equals the record's (the exact spec that
produced it); an absolute bound is checked on the record's own metric (NaN or absent never passes, as in
:mod:`llmops.evals.gates`). A bound relative to production needs the production numbers of that run,
which the record's metrics do not hold: its result is read from the record's ``report.json`` artifact (the
gate results of that run), else :data:`NOT_RECORDED`. Per-group bias scores come from ``report.json`` too;
the record's metrics keep the gap and change rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from llmops.evals.gates import evaluate
from llmops.evals.spec import BIAS_OUTPUTS, LATENCY_OUTPUTS, Gate
from llmops.governance.inputs import ReportInputs, SuiteFile
from llmops.governance.lineage import NOT_RECORDED, EvalLineage

#: what each metric llmops writes measures (llmops/evals/metrics.py, scoring.py, bias.py)
METRIC_MEANINGS = {
    "exact_match": "share of cases whose answer equals the reference exactly (ragas ExactMatch)",
    "bleu": "n-gram precision of the answer against the reference (sacrebleu BLEU, ragas)",
    "rouge": "n-gram overlap of the answer with the reference (ROUGE, ragas)",
    "chrf": "character n-gram F-score of the answer against the reference (chrF, ragas)",
    "string_similarity": "normalised edit similarity of answer and reference (ragas)",
    "json_valid": "share of answers that parse as JSON",
    "json_match": "share of answers whose JSON holds the expected value in every compared field",
    "json_schema": "share of answers valid against the suite's JSON Schema",
    "answer_correctness": "LLM-judged correctness of the answer against the reference (ragas, the suite's judge)",
    "faithfulness": "LLM-judged support of the answer by the given context (ragas, the suite's judge)",
    "bias_gap": "largest difference between groups in the mean bias score over counterfactual variants",
    "bias_change_rate": "share of counterfactual variants whose answer differs from the original case's answer",
}
for _q in ("p50", "p95", "p99"):
    METRIC_MEANINGS[f"latency_{_q}_ms"] = f"{_q} of the time to the whole answer, milliseconds, over the cases"
    METRIC_MEANINGS[f"ttft_{_q}_ms"] = f"{_q} of the time to the first token, milliseconds, over the cases"


def meaning(metric: str, suite: SuiteFile | None) -> str:
    """What ``metric`` measures, with the suite's settings for it (compared fields, bias score)."""
    base = METRIC_MEANINGS.get(metric, NOT_RECORDED)
    if suite is None:
        return base
    spec = next((m for m in suite.suite.metric_specs() if m.name == metric), None)
    if spec is not None and spec.fields:
        base += f"; fields compared: {', '.join(spec.fields)}"
    if metric in BIAS_OUTPUTS and suite.suite.bias is not None:
        bias = suite.suite.bias
        base += f"; score {bias.score}, attribute {bias.attribute}, groups {', '.join(bias.groups)}"
    return base


def direction(metric: str) -> str:
    return "lower is better" if metric in (*LATENCY_OUTPUTS, *BIAS_OUTPUTS) else "higher is better"


@dataclass(frozen=True)
class GateFinding:
    suite: str
    record: str
    metric: str
    rule: str
    value: float | None  # the record's metric (None: the record holds no value for it)
    passed: bool | None  # None: not checkable from the record (relative to production)


def _absolute(gate: Gate) -> Gate:
    return gate.model_copy(update={"max_drop_vs_production": None, "max_rise_vs_production": None})


def _run_result(report: dict[str, Any] | None, metric: str, rule: str) -> bool | None:
    """Whether the gate bound ``rule`` on ``metric`` passed in the run, from its ``report.json`` (None: not there)."""
    for gate in (report or {}).get("gates", []):
        if gate.get("metric") == metric and gate.get("rule") == rule and isinstance(gate.get("passed"), bool):
            return bool(gate["passed"])
    return None


def gate_findings(ev: EvalLineage, suite: SuiteFile | None, report: dict[str, Any] | None = None) -> list[GateFinding]:
    """Each bound of each gate of ``suite`` (the record's exact suite file) read against ``ev``'s metrics;
    bounds relative to production are read from the run's ``report`` (its report.json)."""
    if suite is None:
        return []
    out: list[GateFinding] = []
    for gate in suite.suite.gates:
        value = ev.metrics.get(gate.metric)
        for result in evaluate([_absolute(gate)], {gate.metric: math.nan if value is None else value}, None):
            out.append(GateFinding(ev.suite, ev.run_id, gate.metric, result.rule, value, result.passed))
        if gate.max_drop_vs_production is not None:
            rule = f">= production - {gate.max_drop_vs_production:g}"
            out.append(GateFinding(ev.suite, ev.run_id, gate.metric, rule, value,
                                   _run_result(report, gate.metric, rule)))  # fmt: skip
        if gate.max_rise_vs_production is not None:
            rule = f"<= production + {gate.max_rise_vs_production:g}"
            out.append(GateFinding(ev.suite, ev.run_id, gate.metric, rule, value,
                                   _run_result(report, gate.metric, rule)))  # fmt: skip
    return out


def all_findings(inputs: ReportInputs) -> list[GateFinding]:
    out: list[GateFinding] = []
    for ev in inputs.lineage.evals:
        suite, exact = inputs.suite_for(ev.suite, ev.suite_hash)
        out += gate_findings(ev, suite if exact else None, inputs.eval_reports.get(ev.run_id))
    return out


def result_text(finding: GateFinding) -> str:
    if finding.passed is None:
        return f"{NOT_RECORDED} (relative to production; the record has no report.json naming this bound)"
    return "pass" if finding.passed else "fail"


def suite_source(inputs: ReportInputs, ev: EvalLineage) -> str:
    """Which suite file stands behind ``ev``, in words."""
    suite, exact = inputs.suite_for(ev.suite, ev.suite_hash)
    if suite is None:
        return f"suite file: {NOT_RECORDED} (no evals/*.yaml named {ev.suite})"
    if exact:
        return f"{suite.path} (hash {ev.suite_hash[:12]} = the record's)"
    return f"{suite.path} changed since the record (hash {suite.suite_hash[:12]}, record {ev.suite_hash[:12]})"


def bias_rows(inputs: ReportInputs) -> list[tuple[str, str, str, str, object, object, object]]:
    """(suite, record, group, values, gap, change rate, group score) per bias group of every record's exact suite;
    the group's mean score comes from the record's report.json."""
    rows: list[tuple[str, str, str, str, object, object, object]] = []
    for ev in inputs.lineage.evals:
        suite, exact = inputs.suite_for(ev.suite, ev.suite_hash)
        if not any(m in ev.metrics for m in BIAS_OUTPUTS) and (suite is None or suite.suite.bias is None):
            continue
        gap, rate = ev.metrics.get("bias_gap"), ev.metrics.get("bias_change_rate")
        if suite is None or not exact or suite.suite.bias is None:
            rows.append((ev.suite, ev.run_id, NOT_RECORDED, NOT_RECORDED, gap, rate, NOT_RECORDED))
            continue
        report = inputs.eval_reports.get(ev.run_id) or {}
        scores = ((report.get("candidate") or {}).get("bias") or {}).get("group_scores") or {}
        for group, values in suite.suite.bias.groups.items():
            score = scores.get(group)
            rows.append((ev.suite, ev.run_id, group, ", ".join(values), gap, rate,
                         score if isinstance(score, (int, float)) else NOT_RECORDED))  # fmt: skip
    return rows
