"""Technical documentation following the structure of Annex IV of the EU AI Act (Regulation (EU) 2024/1689).

Points 1 (general description), 2 (elements and development: methods, design choices, data provenance,
validation and testing, cybersecurity), 4 (appropriateness of the performance metrics), 6 (lifecycle
changes), 7 (standards) and 8 (EU declaration of conformity) are built here; 3, 5 and 9 in
:mod:`llmops.governance.annex_ops`. Every section lists its sources; llmops records no provider,
standards or declaration, so those say :data:`NOT_RECORDED`.
"""

from __future__ import annotations

from typing import Any

from llmops.governance.annex_ops import monitoring_control, post_market, risk_management
from llmops.governance.document import Document, Section, Value, facts, table
from llmops.governance.findings import all_findings, direction, meaning
from llmops.governance.inputs import GATEWAY_FILE, ReportInputs
from llmops.governance.lineage import NOT_RECORDED
from llmops.governance.sections import (
    adapter_source,
    audit_sources,
    audit_table,
    datasets_table,
    eval_records_table,
    eval_sources,
    gaps_section,
    gates_table,
    iso,
    metrics_tables,
    pointer_source,
    prompt_source,
    release_section,
)


def _history(inputs: ReportInputs) -> Any:
    rows = [(iso(r.timestamp_ms), r.alias, r.from_version or "none", r.to_version or "none", r.outcome, r.actor, r.detail)
            for r in inputs.audit if r.kind == "release" and r.object == inputs.route]  # fmt: skip
    return table(("time", "stage", "from version", "to version", "outcome", "actor", "release"), rows,
                 f"Versions of route {inputs.route} (release pointer moves)")  # fmt: skip


def general(inputs: ReportInputs) -> Section:
    p, gw = inputs.lineage.prompt, inputs.gateway
    engines = ", ".join(gw.engines) if gw else None
    keys = gw is not None and gw.auth.enabled
    return Section(
        "1", "1. General description of the AI system",
        sources=(pointer_source(inputs), prompt_source(inputs), GATEWAY_FILE, *audit_sources(inputs)[:1]),
        facts=facts((
            ("intended purpose", p.description if p else None),
            ("provider", NOT_RECORDED),
            ("version", f"{inputs.route} release v{inputs.pointer_version} ({inputs.lineage.release.label()})"),
            ("interaction with other software", f"OpenAI-compatible HTTP API of the llmops gateway, model "
             f"{inputs.route}; API keys required: {'yes' if keys else 'no'}" if gw else None),
            ("inference engines (vLLM OpenAI servers)", engines),
            ("forms placed on the market", f"API (route {inputs.route} of the gateway)" if gw else None),
            ("hardware it is intended to run on", NOT_RECORDED),
            ("instructions for use", NOT_RECORDED),
        )),
        tables=(_history(inputs),),
        sections=(release_section(inputs, "1-release", "The release described"),),
    )  # fmt: skip


def _training_rows(training: dict[str, Any]) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in sorted(training.items()):
        if isinstance(value, dict):
            rows += [(f"{key}.{k}", v) for k, v in sorted(value.items())]
        else:
            rows.append((key, value))
    return rows


def development(inputs: ReportInputs) -> Section:
    lin = inputs.lineage
    a, p = lin.adapter, lin.prompt
    methods = Section(
        "2a", "(a) Methods and steps of development", sources=(adapter_source(inputs),),
        facts=facts((
            ("pre-trained system used", lin.release.base_model),
            ("how it was modified", f"LoRA adapter {a.ref} trained with PEFT in run {a.run_id}" if a
             else "not modified: the base model serves alone"),
            ("continued from adapter", (a.init_adapter or "none") if a else None),
        )),
        tables=(table(("training record", "value"), _training_rows(a.training) if a else [], "Training run"),),
    )  # fmt: skip
    design = Section(
        "2b", "(b) Design specifications and key choices", sources=(prompt_source(inputs), pointer_source(inputs)),
        facts=facts((
            ("prompt version", p.ref if p else None),
            ("prompt file and commit", f"{p.path} @ {p.git_commit}" + (" (uncommitted changes)" if p.git_dirty else "")
             if p else None),
            ("prompt content sha256", p.content_sha256 if p else None),
            ("generation params", ", ".join(f"{k}={v}" for k, v in sorted(lin.release.params.items()))),
            ("rationale and assumptions", NOT_RECORDED),
        )),
    )  # fmt: skip
    data = Section(
        "2d", "(d) Data requirements and provenance",
        sources=(adapter_source(inputs), "registry: datasets (llmops-datasets)", *eval_sources(inputs)),
        facts=facts((
            ("base model", lin.release.base_model),
            ("base model sha256", a.base_model_sha256 if a else None),
            ("adapter sha256", a.sha256 if a else None),
            ("adapter training commit", a.git_commit if a else None),
            ("fine-tune job spec sha256", a.job_spec_sha256 if a else None),
            ("prompt commit", p.git_commit if p else None),
            ("labelling and cleaning procedures", NOT_RECORDED),
        )),
        tables=(datasets_table(inputs),),
    )  # fmt: skip
    validation = Section(
        "2g", "(g) Validation and testing", sources=(*eval_sources(inputs), "evals/*.yaml"),
        tables=(eval_records_table(inputs), *metrics_tables(inputs), gates_table(inputs)),
    )  # fmt: skip
    return Section(
        "2",
        "2. Elements of the AI system and the process of its development",
        sections=(methods, design, data, validation, security(inputs)),
    )


def security(inputs: ReportInputs) -> Section:
    gw, a = inputs.gateway, inputs.lineage.adapter
    keys = [(k.name, k.scope, f"${k.env}" if k.env else "sha256 in the file") for k in (gw.auth.keys if gw else [])]
    return Section(
        "2h", "(h) Cybersecurity measures recorded", sources=(GATEWAY_FILE, adapter_source(inputs)),
        facts=facts((
            ("gateway authentication", ("API keys (stored hashed)" if gw.auth.enabled else "off") if gw else None),
            ("adapter integrity", f"loaded only when its files match sha256 {a.sha256}" if a else None),
            ("request limits", f"body {gw.limits.max_body_bytes} bytes, max_tokens {gw.limits.max_tokens}, "
             f"n {gw.limits.max_n}" if gw else None),
        )),
        tables=(table(("API key", "scope", "held in"), keys, "API keys (by name only)"),),
    )  # fmt: skip


def metrics_fit(inputs: ReportInputs) -> Section:
    """Annex IV 4: one line per metric: what it measures, which way is better, the gates that use it."""
    rules: dict[tuple[str, str], list[str]] = {}
    for f in all_findings(inputs):
        rules.setdefault((f.suite, f.metric), []).append(f.rule)
    rows = []
    for ev in inputs.lineage.evals:
        suite, _ = inputs.suite_for(ev.suite, ev.suite_hash)
        for name, value in sorted(ev.metrics.items()):
            rows.append((ev.suite, name, meaning(name, suite), direction(name),
                         "; ".join(rules.get((ev.suite, name), [])) or "not gated", value))  # fmt: skip
    return Section(
        "4", "4. Appropriateness of the performance metrics",
        sources=(*eval_sources(inputs), "evals/*.yaml (metrics, gates)", "llmops metric definitions"),
        tables=(table(("suite", "metric", "what it measures", "direction", "gates", "recorded value"), rows),),
    )  # fmt: skip


def technical_documentation(inputs: ReportInputs) -> Document:
    subject: dict[str, Value] = {
        "route": inputs.route, "stage": inputs.stage, "release key": inputs.lineage.key,
        "release pointer version": inputs.pointer_version, "generated at": iso(inputs.generated_ms),
    }  # fmt: skip
    return Document(
        title=f"Technical documentation (EU AI Act, Annex IV): {inputs.route} @ {inputs.stage}",
        subject=subject,
        sections=(
            general(inputs),
            development(inputs),
            monitoring_control(inputs),
            metrics_fit(inputs),
            risk_management(inputs),
            Section(
                "6", "6. Changes through the lifecycle", sources=audit_sources(inputs), tables=(audit_table(inputs),)
            ),
            Section("7", "7. Harmonised standards applied", facts=(("standards", NOT_RECORDED),)),
            Section("8", "8. EU declaration of conformity (Article 47)", facts=(("declaration", NOT_RECORDED),)),
            post_market(inputs),
            gaps_section(inputs, "gaps"),
        ),  # fmt: skip
        kind="llmops-annex-iv",
    )
