"""``llmops data …``: check fine-tuning data before any GPU time is spent on it; list, show and pull the
versioned datasets the registry stores (:mod:`llmops.registry.datasets`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from llmops.cli.common import JsonOpt, WorkspaceOpt, console, err_console, iso_utc, print_json, workspace
from llmops.config.workspace import Workspace
from llmops.errors import IntegrityError, LlmopsError, NotFoundError
from llmops.extras import missing_modules
from llmops.finetune.dataset import build_examples, check_tokenizer
from llmops.finetune.job import find_job_file, load_job
from llmops.finetune.rows import read_rows
from llmops.finetune.validation import check_data
from llmops.models.base import available_without_building, resolve_base
from llmops.prompts.spec import PromptSpec, load_spec
from llmops.registry import connect
from llmops.registry.datasets import DatasetInfo

app = typer.Typer(
    help="Fine-tuning data: validate JSONL files (schema, lengths, duplicates, overlap, PII); list, show and pull "
    "the datasets stored in the registry.",
    no_args_is_help=True,
)

#: warnings listed one by one before the rest is summarised
_SHOWN = 50


def _prompt_spec(ws: Workspace, ref: str) -> tuple[PromptSpec, int | None, str]:
    """A prompt from a file (``prompts/x.yaml``: offline) or a registered version (``NAME/3``, ``NAME@alias``)."""
    path = Path(ref)
    if path.suffix in (".yaml", ".yml"):
        resolved = path if path.is_absolute() or path.is_file() else ws.root / path
        return load_spec(resolved, display=ref), None, ref
    info = connect(ws).prompts.get(ref)
    return info.spec, info.version, f"{info.name}/{info.version}"


@app.command()
def validate(
    path: Annotated[
        Path,
        typer.Argument(help="Training data (JSONL), or a fine-tune job file: its train, eval and test files."),
    ],
    eval_path: Annotated[
        Path | None, typer.Option("--eval", help="Eval data (JSONL): also checked for overlap with PATH.")
    ] = None,
    test_path: Annotated[
        Path | None,
        typer.Option("--test", help="Held-out test data (JSONL): also checked for overlap with PATH and --eval."),
    ] = None,
    prompt: Annotated[
        str | None,
        typer.Option(help="Prompt formatting prompt rows: NAME@alias, NAME/3, or a prompt file (offline)."),
    ] = None,
    base_model: Annotated[
        str | None, typer.Option(help="Model whose tokenizer counts tokens (default: the workspace's base model).")
    ] = None,
    max_seq_len: Annotated[
        int | None, typer.Option(min=8, help="Longest example allowed, in tokens (default: the job's, else 512).")
    ] = None,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Check JSONL data: schema, empty and over-long rows, duplicates, overlap between splits, emails/phones/cards.

    Overlap: an eval row whose input is in train, a test row whose input is in train or eval. Given a
    job file, its train/eval/test files, prompt and max_seq_len are used (options override them).
    Prints counts and the file:line of every finding; exits 1 when there are warnings, 2 on schema errors.

    Example: llmops data validate finetune/support-triage.yaml --prompt prompts/support-triage.yaml

    Example: llmops data validate finetune/data/support-triage/train.jsonl --eval finetune/data/support-triage/eval.jsonl --test finetune/data/support-triage/test.jsonl --prompt prompts/support-triage.yaml
    """
    ws = workspace(ws_path)
    out = console()
    shown: dict[Path, str] = {}  # files a job names, shown relative to the workspace
    if path.suffix in (".yaml", ".yml"):  # a job file: its data, prompt and length limit
        job = load_job(find_job_file(path, ws.root), display=str(path))
        files = job.data_paths(ws.root)
        named_test = job.test_path(ws.root)
        if named_test is not None:
            files["test"] = named_test
        shown = {p: str(p.relative_to(ws.root)) if p.is_relative_to(ws.root) else str(p) for p in files.values()}
        path, eval_path, test_path = files["train"], eval_path or files.get("eval"), test_path or files.get("test")
        prompt = prompt or job.prompt
        max_seq_len = max_seq_len or job.training.max_seq_len
    limit = max_seq_len or 512
    train_rows = read_rows(path, display=shown.get(path))
    eval_rows = read_rows(eval_path, display=shown.get(eval_path)) if eval_path else None
    test_rows = read_rows(test_path, display=shown.get(test_path)) if test_path else None
    kinds = train_rows.kinds | (eval_rows.kinds if eval_rows else set())
    notes: list[str] = []
    spec, version, prompt_label = (None, None, "")
    if prompt:
        spec, version, prompt_label = _prompt_spec(ws, prompt)

    train_examples = eval_examples = None
    model_ref = base_model or ws.settings.models.base_model
    if "prompt" in kinds and spec is None:
        notes.append("prompt rows not formatted (pass --prompt): token lengths not checked")
    elif missing_modules("transformers"):
        notes.append("the train extra is not installed (pip install 'llmops[train]'): token lengths not checked")
    elif not available_without_building(ws, model_ref):
        notes.append("the reference model is not built (llmops models bootstrap): token lengths not checked")
    else:
        from transformers import AutoTokenizer

        with out.status(f"tokenizing with {model_ref}"):
            tokenizer = AutoTokenizer.from_pretrained(resolve_base(ws, model_ref).path)
            check_tokenizer(tokenizer, model_ref)
            train_examples = build_examples(train_rows, tokenizer, spec, version)
            eval_examples = build_examples(eval_rows, tokenizer, spec, version) if eval_rows else None

    report = check_data(train_rows, train_examples, eval_rows, eval_examples, max_seq_len=limit, test_rows=test_rows)
    table = Table("split", "file", "rows", "shapes", "tokens")
    for s in report.splits:
        shapes = ", ".join(f"{k} {v}" for k, v in sorted(s.kinds.items()))
        table.add_row(s.split, s.shown, str(s.rows), shapes, s.token_stats().removeprefix("tokens: "))
    out.print(table)
    for s in report.splits:
        out.print(f"fingerprint {s.split}: {s.fingerprint}", soft_wrap=True)
    if prompt_label:
        out.print(f"prompt rows formatted with {prompt_label}; max_seq_len {limit}")
    for note in notes:
        out.print(f"[yellow]note:[/yellow] {note}", soft_wrap=True)
    counts = report.counts()
    out.print("checks: " + ", ".join(f"{kind} {n}" for kind, n in counts.items()))
    warnings = report.warnings
    for finding in warnings[:_SHOWN]:
        out.print(f"  {finding.problem} [{finding.kind}]", markup=False, soft_wrap=True)
    if len(warnings) > _SHOWN:
        out.print(f"  … and {len(warnings) - _SHOWN} more")
    if warnings:
        out.print(
            f"[yellow]{len(warnings)} warning(s)[/yellow]: `llmops finetune run` refuses them without --allow-warnings"
        )
        raise typer.Exit(1)
    out.print("[green]ok[/green] no warnings")


def _as_dict(info: DatasetInfo, used_by: list[str] | None = None) -> dict[str, object]:
    data: dict[str, object] = {
        "fingerprint": info.fingerprint,
        "name": info.name,
        "kind": info.kind,
        "rows": info.rows,
        "source": info.source,
        "files": [{"name": f.name, "sha256": f.sha256, "bytes": f.bytes} for f in info.files],
        "validation": info.validation,
        "run_id": info.run_id,
        "artifact_uri": info.artifact_uri,
        "created": iso_utc(info.created_ms),
    }
    if used_by is not None:
        data["adapter_versions"] = used_by
    return data


def _fail(exc: LlmopsError) -> typer.Exit:
    """Print ``exc`` as the CLI prints errors and exit 1 (a missing or altered dataset is a plain failure)."""
    err_console().print("[red]error:[/red] ", end="")
    err_console().print(str(exc), markup=False, soft_wrap=True)
    return typer.Exit(1)


@app.command("list")
def list_datasets(
    kind: Annotated[
        str | None, typer.Option(help="Only datasets of this kind: training, eval, eval-cases or retrain.")
    ] = None,
    json_out: JsonOpt = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """List the datasets stored in the registry, newest first: fingerprint, kind, name, rows, files, source.

    Example: llmops data list --kind training
    """
    found = connect(workspace(ws_path)).datasets.list(kind)
    if json_out:
        print_json([_as_dict(i) for i in found])
        return
    table = Table("fingerprint", "kind", "name", "rows", "files", "source", "created (UTC)")
    for i in found:
        created = (iso_utc(i.created_ms) or "-").replace("T", " ")[:19]
        table.add_row(i.fingerprint[:12], i.kind, i.name, str(i.rows), str(len(i.files)), i.source, created)
    console().print(table if found else "no datasets stored" + (f" of kind {kind}" if kind else ""))


@app.command()
def show(
    fingerprint: Annotated[str, typer.Argument(help="Dataset fingerprint (or a unique prefix of 8+ hex digits).")],
    json_out: JsonOpt = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Show a stored dataset: every field, its files with sha256 and size, the validation summary and the
    adapter versions trained on it.

    Example: llmops data show 3f2a9c1b7d4e
    """
    registry = connect(workspace(ws_path))
    try:
        info = registry.datasets.get(fingerprint)
    except NotFoundError as exc:
        raise _fail(exc) from exc
    used_by = registry.datasets.used_by(info.fingerprint)
    if json_out:
        print_json(_as_dict(info, used_by))
        return
    out = console()
    for label, value in (("fingerprint", info.fingerprint), ("name", info.name), ("kind", info.kind),
                         ("rows", str(info.rows)), ("source", info.source or "-"),
                         ("created", iso_utc(info.created_ms) or "-"), ("run", info.run_id),
                         ("artifacts", info.artifact_uri)):  # fmt: skip
        out.print(f"{label + ':':<13}{value}", markup=False, soft_wrap=True)
    table = Table("file", "sha256", "bytes")
    for f in info.files:
        table.add_row(f.name, f.sha256, str(f.bytes))
    out.print(table)
    checks = ", ".join(f"{k} {v}" for k, v in info.validation.items()) or "not recorded"
    out.print(f"validation:  {checks}", markup=False, soft_wrap=True)
    out.print(f"adapters:    {', '.join(used_by) or 'none trained on it'}", markup=False, soft_wrap=True)
    out.print(f"pull:        llmops data pull {info.fingerprint[:12]} -o DIR", markup=False, soft_wrap=True)


@app.command()
def pull(
    fingerprint: Annotated[str, typer.Argument(help="Dataset fingerprint (or a unique prefix of 8+ hex digits).")],
    out_dir: Annotated[Path, typer.Option("--output", "-o", help="Folder to write the files into.")],
    force: Annotated[bool, typer.Option(help="Overwrite different files of the same name in the folder.")] = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Restore a stored dataset's files byte for byte under their original names, each sha256-checked first.

    An unknown fingerprint or an altered stored file writes nothing and exits 1.

    Example: llmops data pull 3f2a9c1b7d4e -o restored/
    """
    registry = connect(workspace(ws_path))
    try:
        written = registry.datasets.pull(fingerprint, out_dir, force=force)
    except (NotFoundError, IntegrityError) as exc:
        raise _fail(exc) from exc
    out = console()
    for path in written:
        out.print(f"wrote {path} (sha256 verified)", markup=False, soft_wrap=True)
