"""Parts both documents state: the release, its datasets, its eval metrics, bias, gates, the audit log.

Each builder reads only :class:`~llmops.governance.inputs.ReportInputs` and returns document parts whose
values are the recorded ones (metrics as their exact floats).
"""

from __future__ import annotations

from datetime import UTC, datetime

from llmops.governance.document import Section, Table, facts, table
from llmops.governance.findings import (
    all_findings,
    bias_rows,
    direction,
    meaning,
    result_text,
    suite_source,
)
from llmops.governance.inputs import ReportInputs
from llmops.governance.lineage import NOT_RECORDED, DatasetLineage

POINTER = "registry: release pointer {route}.release v{version} (alias {stage})"


def iso(ms: int | None) -> str:
    if not ms:
        return NOT_RECORDED
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def pointer_source(inputs: ReportInputs) -> str:
    return POINTER.format(route=inputs.route, version=inputs.pointer_version, stage=inputs.stage)


def adapter_source(inputs: ReportInputs) -> str:
    a = inputs.lineage.adapter
    if a is None:
        return f"registry: adapter {inputs.lineage.release.adapter or 'none'}"
    return f"registry: adapter version {a.ref} (tags), training run {a.run_id}"


def prompt_source(inputs: ReportInputs) -> str:
    p = inputs.lineage.prompt
    return f"registry: prompt version {p.ref}" if p else f"registry: prompt {inputs.lineage.release.prompt or 'none'}"


def eval_sources(inputs: ReportInputs) -> tuple[str, ...]:
    return tuple(f"registry: eval record {ev.run_id} ({ev.suite})" for ev in inputs.lineage.evals)


def release_facts(inputs: ReportInputs) -> tuple[tuple[str, object], ...]:
    lin = inputs.lineage
    rel = lin.release
    return (
        ("route", inputs.route),
        ("stage", inputs.stage),
        ("release pointer version", inputs.pointer_version),
        ("release key (sha256)", lin.key),
        ("base model", rel.base_model),
        ("base model sha256", lin.adapter.base_model_sha256 if lin.adapter else NOT_RECORDED),
        ("adapter version", str(rel.adapter) if rel.adapter else "none (base model alone)"),
        ("adapter sha256", lin.adapter.sha256 if lin.adapter else NOT_RECORDED),
        ("prompt version", str(rel.prompt) if rel.prompt else "none (messages sent as given)"),
        ("prompt content sha256", lin.prompt.content_sha256 if lin.prompt else NOT_RECORDED),
        (
            "generation params",
            ", ".join(f"{k}={v}" for k, v in sorted(rel.params.items())) or "the prompt version's own",
        ),
    )


def release_section(inputs: ReportInputs, id_: str, title: str) -> Section:
    return Section(
        id_, title, sources=(pointer_source(inputs), adapter_source(inputs), prompt_source(inputs)),
        facts=facts(release_facts(inputs)),
    )  # fmt: skip


def datasets_of(inputs: ReportInputs) -> list[DatasetLineage]:
    adapter = inputs.lineage.adapter
    out = list(adapter.datasets) if adapter else []
    for ev in inputs.lineage.evals:
        out += [d for d in ev.datasets if d not in out]
    return out


def datasets_table(inputs: ReportInputs) -> Table:
    rows = [
        (d.role, d.fingerprint, d.path, d.rows, "yes" if d.stored else "no",
         d.pull_command if d.stored else NOT_RECORDED)
        for d in datasets_of(inputs)
    ]  # fmt: skip
    return table(("role", "fingerprint", "path", "rows", "stored", "restore with"), rows, "Datasets")


def metrics_tables(inputs: ReportInputs) -> tuple[Table, ...]:
    """One table per eval record: metric, value (exact), direction, what it measures."""
    out = []
    for ev in inputs.lineage.evals:
        suite, _ = inputs.suite_for(ev.suite, ev.suite_hash)
        rows = [(name, value, direction(name), meaning(name, suite)) for name, value in sorted(ev.metrics.items())]
        caption = f"Eval record {ev.run_id}: suite {ev.suite}, verdict {ev.verdict or NOT_RECORDED}, {iso(ev.start_ms)}"
        out.append(table(("metric", "value", "direction", "what it measures"), rows, caption))
    return tuple(out)


def eval_records_table(inputs: ReportInputs) -> Table:
    rows = [
        (ev.run_id, ev.suite, ev.suite_hash, ev.verdict, iso(ev.start_ms), suite_source(inputs, ev),
         "; ".join(ev.reports))
        for ev in inputs.lineage.evals
    ]  # fmt: skip
    return table(("record", "suite", "suite sha256", "verdict", "time", "suite file", "reports"), rows,
                 "Eval records that gated this release")  # fmt: skip


def bias_table(inputs: ReportInputs) -> Table:
    return table(
        ("suite", "record", "group", "values substituted", "bias_gap", "bias_change_rate", "group score"),
        bias_rows(inputs),
        "Bias per group (group scores from the record's report.json; gap and change rate from its metrics)",
    )


def gates_table(inputs: ReportInputs, *, only_problems: bool = False) -> Table:
    rows = [
        (f.suite, f.record, f.metric, f.rule, f.value, result_text(f))
        for f in all_findings(inputs)
        if not only_problems or f.passed is not True
    ]
    caption = "Gates not passed or not checkable from the record" if only_problems else "Gates"
    return table(("suite", "record", "metric", "rule", "value", "result"), rows, caption)


def audit_table(inputs: ReportInputs) -> Table:
    rows = [
        (iso(r.timestamp_ms), r.actor, r.kind, r.object, r.alias, r.from_version or "none", r.to_version or "none", r.outcome,
         "yes" if r.forced else "no", r.reason, ", ".join(r.eval_records) or "none", r.record_id)
        for r in inputs.audit
    ]  # fmt: skip
    columns = ("time", "actor", "kind", "object", "alias", "from", "to", "outcome", "forced", "reason",
               "eval records", "audit record")  # fmt: skip
    return table(columns, rows, "Audit records (newest first)")


def audit_sources(inputs: ReportInputs) -> tuple[str, ...]:
    rel = inputs.lineage.release
    names = [inputs.route, *(ref.name for ref in (rel.adapter, rel.prompt) if ref is not None)]
    return tuple(f"registry: audit log (llmops-audit) records of {n}" for n in dict.fromkeys(names))


def gaps_section(inputs: ReportInputs, id_: str) -> Section:
    """What the registry or the workspace should hold and does not (deleted versions, unreadable files)."""
    return Section(
        id_, "Missing records",
        sources=("registry: lineage walk", "workspace files"),
        text=tuple(inputs.lineage.gaps) + tuple(inputs.problems) or ("none",),
    )  # fmt: skip
