"""``llmops models …``: the reference base model."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from llmops.cli.common import WorkspaceOpt, console, workspace
from llmops.extras import require
from llmops.models.reference import ensure_reference_model
from llmops.models.shipped import shipped_folder
from llmops.models.spec import DEFAULT_STEPS
from llmops.registry import connect

app = typer.Typer(help="Base models: build and record the tiny reference model.", no_args_is_help=True)


@app.command()
def bootstrap(
    seed: Annotated[int | None, typer.Option(help="Seed (default from llmops.yaml, 0).")] = None,
    steps: Annotated[
        int | None, typer.Option(help="Pretraining steps (default 1,000: 3.5-5.5 min on 2 cores unless shipped).")
    ] = None,
    register: Annotated[bool, typer.Option(help="Record the model in the registry.")] = True,
    build: Annotated[
        bool, typer.Option("--build", help="Pretrain here even when the package ships this build (3.5-5.5 min).")
    ] = False,
    ws_path: WorkspaceOpt = None,
) -> None:
    """Build the tiny reference chat model (cached) and record it in the registry with its sha256.

    Deterministic: the same seed and steps give the same weights. The package ships the default
    build, which is copied (checked against its sha256) instead of pretrained; --build pretrains it
    here instead (a cached folder is still reused: delete .llmops/models/reference-* first to compare
    the two sha256). A second call is instant.

    Examples: llmops models bootstrap
              llmops models bootstrap --build --steps 300     # another spec: always built
    """
    require("models bootstrap", "train")
    ws = workspace(ws_path)
    ref = ws.settings.models.reference
    seed = ref.seed if seed is None else seed
    steps = steps or ref.steps or DEFAULT_STEPS
    out = console()
    with Progress(
        TextColumn("pretraining"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=out
    ) as bar:
        task = bar.add_task("pretrain", total=steps)
        model = ensure_reference_model(
            ws.models_dir,
            seed=seed,
            steps=steps,
            progress=lambda done, total: bar.update(task, completed=done),
            use_shipped=not build,
        )
        bar.update(task, completed=steps)
    out.print(f"[green]reference model[/green] {model.path}")
    if not build and shipped_folder(model.path.name) is not None:
        out.print("  the package ships this spec's build: a new workspace copies it (sha256-checked) unless --build")
    out.print(
        f"  params {model.params:,}  sha256 {model.sha256[:16]}…  loss {model.start_loss:.2f} → {model.end_loss:.2f}"
        f"  built in {model.build_seconds:.0f} s"
    )
    if register:
        record = connect(ws).models.record(model)
        verb = "registered" if record.created else "already registered"
        out.print(f"  {verb} as {record.name} v{record.version}")
