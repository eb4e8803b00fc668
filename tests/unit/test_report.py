"""``llmops report`` documents rendered from hand-built lineage: exact metrics, "not recorded", escaping, HF metadata."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmops.config.gateway import load_gateway_file
from llmops.config.monitor import load_monitor_file
from llmops.config.rollout import load_rollout_file
from llmops.evals.spec import EvalSuite
from llmops.governance.document import NOT_RECORDED
from llmops.governance.inputs import ReportInputs, SuiteFile
from llmops.governance.lineage import AdapterLineage, DatasetLineage, EvalLineage, PromptLineage, ReleaseLineage
from llmops.governance.report import write_documents
from llmops.registry.audit import AuditRecord
from llmops.release import Release

REPO = Path(__file__).resolve().parents[2]
FP_TRAIN = "a1" * 32
FP_CASES = "c3" * 32
SUITE_HASH = "5e" * 32
# floats whose short forms would lie: the files must carry these exact values
METRICS = {
    "exact_match": 0.1 + 0.2,
    "json_valid": 1.0,
    "latency_p95_ms": 123.456789012345,
    "bias_gap": 0.25,
    "bias_change_rate": 1 / 3,
}
SCRIPT = "<script>alert('x')</script>"


def suite_file() -> SuiteFile:
    suite = EvalSuite.model_validate({
        "name": "triage", "description": "Intent + priority as JSON.", "cases": "cases.jsonl",
        "target": {"route": "triage"}, "metrics": ["exact_match", "json_valid", "latency"],
        "bias": {"attribute": "customer_name", "groups": {"group_a": ["Aisha", "Liam"], "group_b": ["Mei", "Diego"]}},
        "gates": [{"metric": "exact_match", "min": 0.8}, {"metric": "bias_gap", "max": 0.1},
                  {"metric": "exact_match", "max_drop_vs_production": 0.02, "when_no_production": "skip"}],
    })  # fmt: skip
    return SuiteFile("evals/triage.yaml", suite, SUITE_HASH)


def full_inputs(*, description: str = "Classify a ticket; answer with JSON only.", reason: str = "first release",
                metrics: dict[str, float] | None = None) -> ReportInputs:  # fmt: skip
    release = Release.of("reference", "triage-lora/2", "triage/1", {"temperature": 0})
    train = DatasetLineage("train", FP_TRAIN, "finetune/data/train.jsonl", 64, True)
    lineage = ReleaseLineage(
        release=release,
        key=release.key,
        adapter=AdapterLineage(
            ref="triage-lora/2",
            sha256="ad" * 32,
            run_id="run-train",
            base_model="reference",
            base_model_sha256="ba" * 32,
            job_spec_sha256="10" * 32,
            git_commit="c0ffee",
            init_adapter="",
            datasets=(train,),
            training={"status": "FINISHED", "metrics": {"train_loss": 0.5}},
            created_ms=1,
        ),  # fmt: skip
        prompt=PromptLineage("triage/1", "9f" * 32, "c0ffee", False, "prompts/triage.yaml", 1, description),
        evals=(
            EvalLineage(
                run_id="run-eval",
                suite="triage",
                suite_hash=SUITE_HASH,
                verdict="pass",
                metrics=dict(METRICS if metrics is None else metrics),
                start_ms=1_796_000_000_000,
                reports=("mlflow-artifacts:/1/run-eval/artifacts/report.json",),
                datasets=(DatasetLineage("eval-cases", FP_CASES, "evals/cases.jsonl", 30, True),),
            ),  # fmt: skip
        ),
    )
    audit = (AuditRecord(kind="release", object="triage", alias="production", from_version=None, to_version="1",
                         actor="ci-bot", reason=reason, eval_records=("run-eval",), timestamp_ms=1_796_000_000_000,
                         record_id="audit-1"),)  # fmt: skip
    serving = REPO / "serving"
    gateway = load_gateway_file(serving / "gateway.yaml")
    gateway.routes["triage"] = gateway.routes.pop("support-triage")
    monitor = load_monitor_file(serving / "monitor.yaml")
    monitor.routes["triage"] = monitor.routes.pop("support-triage")
    rollout = load_rollout_file(serving / "rollout.yaml")
    rollout.routes["triage"] = rollout.routes.pop("support-triage")
    return ReportInputs(
        route="triage", stage="production", pointer_version=1, lineage=lineage, audit=audit, gateway=gateway,
        rollout=rollout, monitor=monitor, suites=(suite_file(),),
        retention={"request_logs_days": 183, "feedback_days": 183, "audit_days": None}, generated_ms=1_796_000_000_000,
    )  # fmt: skip


def bare_inputs() -> ReportInputs:
    """A base-model release with nothing else recorded: no prompt, adapter, evals, workspace files."""
    release = Release.of("reference")
    return ReportInputs(route="triage", stage="production", pointer_version=3,
                        lineage=ReleaseLineage(release, release.key, None, None, ()))  # fmt: skip


def sections(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}

    def walk(items: list[dict[str, Any]]) -> None:
        for s in items:
            out[s["id"]] = s
            walk(s["sections"])

    walk(doc["sections"])
    return out


def front_matter(card: str) -> dict[str, Any]:
    match = re.match(r"---\n(.*?)\n---\n", card, re.S)
    assert match, card[:200]
    data = yaml.safe_load(match.group(1))
    assert isinstance(data, dict)
    return data


def test_every_metric_in_the_files_is_the_eval_record_value(tmp_path: Path) -> None:
    inputs = full_inputs()
    files = {p.name: p for p in write_documents(inputs, tmp_path)}
    assert sorted(files) == ["README.md", "technical-documentation.html", "technical-documentation.json",
                             "technical-documentation.md"]  # fmt: skip
    doc = json.loads(files["technical-documentation.json"].read_text())
    by_id = sections(doc)
    [metrics_table] = [t for t in by_id["2g"]["tables"] if t["columns"][:2] == ["metric", "value"]]
    assert {r["metric"]: r["value"] for r in metrics_table["rows"]} == METRICS  # the same floats, not rounded
    fit = {r["metric"]: r["recorded value"] for r in by_id["4"]["tables"][0]["rows"]}
    assert fit == METRICS
    # each metric line of point 4 says what it measures and how it is gated
    rows = {r["metric"]: r for r in by_id["4"]["tables"][0]["rows"]}
    assert "equals the reference" in rows["exact_match"]["what it measures"]
    assert ">= 0.8" in rows["exact_match"]["gates"]
    # the text forms print every value so that it reads back as the same float
    for name in ("technical-documentation.md", "technical-documentation.html", "README.md"):
        body = files[name].read_text()
        for value in METRICS.values():
            assert repr(value) in body, (name, value)
    # the model card's model-index carries the same values
    meta = front_matter(files["README.md"].read_text())
    [result] = meta["model-index"][0]["results"]
    assert {m["type"]: m["value"] for m in result["metrics"]} == METRICS
    assert result["dataset"]["type"] == f"llmops-dataset:{FP_CASES[:12]}"


def test_card_metadata_has_the_hugging_face_keys(tmp_path: Path) -> None:
    [card, *_] = write_documents(full_inputs(), tmp_path, ["md"])
    text = card.read_text()
    meta = front_matter(text)
    assert meta["base_model"] == "reference"
    assert meta["datasets"] == [f"llmops-dataset:{FP_TRAIN[:12]}"]
    assert meta["license"] == "other" and meta["license_name"] == NOT_RECORDED
    assert "llmops" in meta["tags"]
    for heading in ("Intended use", "Training data", "Evaluation", "Limitations and bias", "Changes"):
        assert f"## {heading}" in text
    assert f"llmops data pull {FP_TRAIN}" in text
    hf = pytest.importorskip("huggingface_hub")
    parsed = hf.ModelCard(text)  # Hugging Face's own parser and model-index reader
    assert parsed.data.base_model == "reference"
    assert {r.metric_type: r.metric_value for r in parsed.data.eval_results} == METRICS
    assert {r.task_type for r in parsed.data.eval_results} == {"text-generation"}


def test_failed_and_uncheckable_gates_and_bias_groups_are_stated(tmp_path: Path) -> None:
    write_documents(full_inputs(), tmp_path, ["json"])
    doc = sections(json.loads((tmp_path / "technical-documentation.json").read_text()))
    gates = {(r["metric"], r["rule"]): r["result"] for r in doc["5"]["tables"][0]["rows"]}
    assert gates[("exact_match", ">= 0.8")] == "fail"  # 0.30000000000000004 < 0.8
    assert gates[("bias_gap", "<= 0.1")] == "fail"
    assert gates[("exact_match", ">= production - 0.02")].startswith(NOT_RECORDED)
    assert [r["rule"] for r in doc["5"]["tables"][1]["rows"]] == ["<= 0.1"]  # the bias gates
    bias = doc["3-limitations"]["tables"][0]["rows"]
    assert {r["group"]: r["values substituted"] for r in bias} == {"group_a": "Aisha, Liam", "group_b": "Mei, Diego"}
    assert {r["bias_gap"] for r in bias} == {0.25}
    assert (
        "error_rate: max_increase=0.01" in doc["3-control"]["facts"]["rollout checks (canary vs stable, same window)"]
    )
    card = (tmp_path / "README.md").read_text()
    assert "| triage | run-eval | bias_gap | <= 0.1 | 0.25 | fail |" in card


def test_what_is_not_recorded_says_so(tmp_path: Path) -> None:
    write_documents(bare_inputs(), tmp_path)
    doc = sections(json.loads((tmp_path / "technical-documentation.json").read_text()))
    assert doc["1"]["facts"]["intended purpose"] == NOT_RECORDED
    assert doc["1"]["facts"]["provider"] == NOT_RECORDED
    assert doc["7"]["facts"]["standards"] == NOT_RECORDED
    assert doc["8"]["facts"]["declaration"] == NOT_RECORDED
    assert doc["2d"]["facts"]["base model sha256"] == NOT_RECORDED
    assert doc["9"]["facts"]["window"] == NOT_RECORDED
    assert doc["3-logging"]["facts"]["request log"] == NOT_RECORDED
    for section in doc.values():  # no empty or null statement: each one says what it knows or "not recorded"
        for label, value in section["facts"].items():
            assert value not in (None, "", "None"), (section["id"], label)
    card = (tmp_path / "README.md").read_text()
    meta = front_matter(card)
    assert meta["datasets"] == [NOT_RECORDED] and "model-index" not in meta
    assert f"- **task (prompt description)**: {NOT_RECORDED}" in card
    for name in ("technical-documentation.md", "README.md", "technical-documentation.html"):
        assert "None" not in (tmp_path / name).read_text()


def test_html_escapes_a_prompt_description_and_markdown_keeps_tables_whole(tmp_path: Path) -> None:
    inputs = full_inputs(description=f"Triage {SCRIPT}", reason="hot fix | second line\nthird")
    write_documents(inputs, tmp_path)
    html = (tmp_path / "technical-documentation.html").read_text()
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    md = (tmp_path / "technical-documentation.md").read_text()
    [row] = [line for line in md.splitlines() if line.endswith("| audit-1 |")]
    assert "hot fix \\| second line<br>third" in row
    header = next(line for line in md.splitlines() if line.startswith("| time | actor |"))
    unescaped = re.compile(r"(?<!\\)\|")
    assert len(unescaped.findall(row)) == len(unescaped.findall(header))  # the pipe did not add a column
    # the description is one Markdown line, not markup
    assert f"- **intended purpose**: Triage {SCRIPT}" in md
    assert json.loads((tmp_path / "technical-documentation.json").read_text())  # still valid JSON


def test_unknown_format_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    from llmops.errors import ConfigError

    with pytest.raises(ConfigError, match="pdf"):
        write_documents(full_inputs(), tmp_path / "out", ["md", "pdf"])
    assert not (tmp_path / "out").exists()
