"""``llmops data …``: check fine-tuning data before any GPU time is spent on it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from llmops.cli.common import WorkspaceOpt, console, workspace
from llmops.config.workspace import Workspace
from llmops.finetune.dataset import build_examples, check_tokenizer
from llmops.finetune.rows import read_rows
from llmops.finetune.validation import check_data
from llmops.models.base import available_without_building, resolve_base
from llmops.prompts.spec import PromptSpec, load_spec
from llmops.registry import connect

app = typer.Typer(
    help="Fine-tuning data: validate JSONL files (schema, lengths, duplicates, overlap, PII).", no_args_is_help=True
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
    path: Annotated[Path, typer.Argument(help="Training data (JSONL).")],
    eval_path: Annotated[
        Path | None, typer.Option("--eval", help="Eval data (JSONL): also checked for overlap with PATH.")
    ] = None,
    prompt: Annotated[
        str | None,
        typer.Option(help="Prompt formatting prompt rows: NAME@alias, NAME/3, or a prompt file (offline)."),
    ] = None,
    base_model: Annotated[
        str | None, typer.Option(help="Model whose tokenizer counts tokens (default: the workspace's base model).")
    ] = None,
    max_seq_len: Annotated[int, typer.Option(min=8, help="Longest example allowed, in tokens.")] = 512,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Check JSONL data: schema, empty and over-long rows, duplicates, train/eval overlap, emails/phones/cards.

    Prints counts and the file:line of every finding; exits 1 when there are warnings, 2 on schema errors.

    Example: llmops data validate finetune/data/support-triage/train.jsonl --eval finetune/data/support-triage/eval.jsonl --prompt prompts/support-triage.yaml
    """
    ws = workspace(ws_path)
    out = console()
    train_rows = read_rows(path)
    eval_rows = read_rows(eval_path) if eval_path else None
    kinds = train_rows.kinds | (eval_rows.kinds if eval_rows else set())
    notes: list[str] = []
    spec, version, prompt_label = (None, None, "")
    if prompt:
        spec, version, prompt_label = _prompt_spec(ws, prompt)

    train_examples = eval_examples = None
    model_ref = base_model or ws.settings.models.base_model
    if "prompt" in kinds and spec is None:
        notes.append("prompt rows not formatted (pass --prompt): token lengths not checked")
    elif not available_without_building(ws, model_ref):
        notes.append("the reference model is not built (llmops models bootstrap): token lengths not checked")
    else:
        from transformers import AutoTokenizer

        with out.status(f"tokenizing with {model_ref}"):
            tokenizer = AutoTokenizer.from_pretrained(resolve_base(ws, model_ref).path)
            check_tokenizer(tokenizer, model_ref)
            train_examples = build_examples(train_rows, tokenizer, spec, version)
            eval_examples = build_examples(eval_rows, tokenizer, spec, version) if eval_rows else None

    report = check_data(train_rows, train_examples, eval_rows, eval_examples, max_seq_len=max_seq_len)
    table = Table("split", "file", "rows", "shapes", "tokens")
    for s in report.splits:
        shapes = ", ".join(f"{k} {v}" for k, v in sorted(s.kinds.items()))
        table.add_row(s.split, s.shown, str(s.rows), shapes, s.token_stats().removeprefix("tokens: "))
    out.print(table)
    for s in report.splits:
        out.print(f"fingerprint {s.split}: {s.fingerprint}", soft_wrap=True)
    if prompt_label:
        out.print(f"prompt rows formatted with {prompt_label}; max_seq_len {max_seq_len}")
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
