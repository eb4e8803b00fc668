"""The model card: ``README.md`` in Hugging Face's format (YAML metadata, then Markdown sections).

The metadata holds ``base_model``, ``datasets`` (the training data's fingerprints as
``llmops-dataset:FP12``), ``license`` (llmops records none: ``other`` with ``license_name: not recorded``),
``tags`` and a ``model-index`` with one result per gating eval record (task, the suite and its case
file's fingerprint as the dataset) listing every metric of that record with its exact value. The
sections: model details, intended use, training data, evaluation (per metric and per bias group),
limitations and bias, changes.
"""

from __future__ import annotations

from typing import Any

from llmops.governance.document import Document, Section, facts, table
from llmops.governance.findings import all_findings
from llmops.governance.inputs import GATEWAY_FILE, ReportInputs
from llmops.governance.lineage import NOT_RECORDED, DatasetLineage, EvalLineage
from llmops.governance.sections import (
    adapter_source,
    audit_sources,
    audit_table,
    bias_table,
    datasets_table,
    eval_records_table,
    eval_sources,
    gaps_section,
    gates_table,
    metrics_tables,
    pointer_source,
    prompt_source,
    release_section,
)

TASK = "text-generation"


def dataset_id(fingerprint: str) -> str:
    return f"llmops-dataset:{fingerprint[:12]}"


def _cases(ev: EvalLineage) -> DatasetLineage | None:
    return next((d for d in ev.datasets if d.role == "eval-cases"), None)


def model_index(inputs: ReportInputs) -> list[dict[str, Any]]:
    """Hugging Face ``model-index``: one result per eval record, one metric entry per recorded metric."""
    results: list[dict[str, Any]] = []
    for ev in inputs.lineage.evals:
        cases = _cases(ev)
        dataset: dict[str, Any] = {
            "type": dataset_id(cases.fingerprint) if cases else NOT_RECORDED,
            "name": f"{ev.suite} (suite sha256 {ev.suite_hash[:12] or NOT_RECORDED})",
        }
        if cases:
            dataset["revision"] = cases.fingerprint
        results.append({
            "task": {"type": TASK, "name": ev.suite},
            "dataset": dataset,
            "metrics": [{"type": name, "value": value, "name": name} for name, value in sorted(ev.metrics.items())],
        })  # fmt: skip
    return [{"name": f"{inputs.route}@{inputs.stage}", "results": results}] if results else []


def metadata(inputs: ReportInputs) -> dict[str, Any]:
    lin = inputs.lineage
    train = [d for d in (lin.adapter.datasets if lin.adapter else ()) if d.role == "train"]
    meta: dict[str, Any] = {
        "base_model": lin.release.base_model,
        "library_name": "peft" if lin.release.adapter else "transformers",
        "license": "other",
        "license_name": NOT_RECORDED,
        "datasets": [dataset_id(d.fingerprint) for d in train] or [NOT_RECORDED],
        "tags": ["llmops", f"route-{inputs.route}", f"stage-{inputs.stage}", *(["lora"] if lin.adapter else [])],
        "pipeline_tag": TASK,
    }
    index = model_index(inputs)
    if index:
        meta["model_name"] = index[0]["name"]
        meta["model-index"] = index
    return meta


def _targets(inputs: ReportInputs) -> list[tuple[Any, ...]]:
    spec = inputs.gateway.routes.get(inputs.route) if inputs.gateway else None
    if spec is None:
        return []
    pointed = "the stage's release pointer"
    return [
        (t.name, t.weight, t.release or "none", pointed if t.release else (t.adapter or "none (base model)"),
         pointed if t.release else (t.prompt or "none"))
        for t in spec.targets
    ]  # fmt: skip


def intended_use(inputs: ReportInputs) -> Section:
    p = inputs.lineage.prompt
    route = inputs.gateway.routes.get(inputs.route) if inputs.gateway else None
    suites = [ev.suite for ev in inputs.lineage.evals]
    descriptions = [s.suite.description for s in inputs.suites if s.suite.name in suites and s.suite.description]
    return Section(
        "intended-use", "Intended use",
        sources=(prompt_source(inputs), GATEWAY_FILE, "evals/*.yaml (the gating suites' descriptions)"),
        facts=facts((
            ("task (prompt description)", p.description if p else None),
            ("prompt file", p.path if p else None),
            ("served as route", f"{inputs.route} (OpenAI-compatible /v1/chat/completions, model={inputs.route})"
             if route else None),
            ("what the gating suites check", " / ".join(descriptions)),
            ("out-of-scope uses", NOT_RECORDED),
        )),
        tables=(table(("target", "weight", "release stage", "adapter", "prompt"), _targets(inputs),
                      f"Targets of route {inputs.route} in {GATEWAY_FILE}"),) if route else (),
    )  # fmt: skip


def training_data(inputs: ReportInputs) -> Section:
    a = inputs.lineage.adapter
    text = () if a else ("No adapter: the base model serves alone; its training data is not recorded.",)
    return Section(
        "training-data", "Training data", sources=(adapter_source(inputs), "registry: datasets (llmops-datasets)"),
        facts=facts((("training run", a.run_id if a else None), ("job spec sha256", a.job_spec_sha256 if a else None),
                     ("continued from adapter", (a.init_adapter or "none") if a else None))),
        text=text, tables=(datasets_table(inputs),),
    )  # fmt: skip


def evaluation(inputs: ReportInputs) -> Section:
    return Section(
        "evaluation", "Evaluation", sources=eval_sources(inputs) + ("evals/*.yaml",),
        text=() if inputs.lineage.evals else (f"Eval records: {NOT_RECORDED}.",),
        tables=(eval_records_table(inputs), *metrics_tables(inputs), bias_table(inputs)),
    )  # fmt: skip


def limitations(inputs: ReportInputs) -> Section:
    findings = all_findings(inputs)
    failed = [f for f in findings if f.passed is False]
    verdicts = [f"record {ev.run_id} ({ev.suite}): verdict {ev.verdict}" for ev in inputs.lineage.evals
                if ev.verdict != "pass"]  # fmt: skip
    lines = [*verdicts]
    if not findings:
        lines.append(f"Gate results: {NOT_RECORDED} (no suite file matches the records' suite hashes).")
    elif not failed:
        lines.append("Every gate checkable from the recorded metrics passed.")
    return Section(
        "limitations", "Limitations and bias", sources=eval_sources(inputs) + ("evals/*.yaml (gates, bias groups)",),
        text=tuple(lines), tables=(gates_table(inputs, only_problems=True), bias_table(inputs)),
        sections=(gaps_section(inputs, "missing-records"),),
    )  # fmt: skip


def changes(inputs: ReportInputs) -> Section:
    return Section("changes", "Changes", sources=audit_sources(inputs), tables=(audit_table(inputs),))


def model_card(inputs: ReportInputs) -> Document:
    """The model card of ``inputs``' release; render with ``to_markdown(doc, front_matter=True)``."""
    subject = {"route": inputs.route, "stage": inputs.stage, "release key": inputs.lineage.key,
               "generated from": pointer_source(inputs)}  # fmt: skip
    return Document(
        title=f"Model card: {inputs.route} @ {inputs.stage}",
        subject=subject,
        sections=(release_section(inputs, "model-details", "Model details"), intended_use(inputs),
                  training_data(inputs), evaluation(inputs), limitations(inputs), changes(inputs)),
        kind="llmops-model-card",
        metadata=metadata(inputs),
    )  # fmt: skip
