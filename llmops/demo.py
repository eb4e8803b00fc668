"""``llmops demo``: the whole lifecycle on the embedded defaults, step by step, idempotent.

Steps that later parts of llmops provide say "not yet" until they land.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from llmops.config.workspace import Workspace


@dataclass
class StepResult:
    name: str
    status: str  # "done", "skipped", "not yet"
    detail: str
    seconds: float = 0.0


def _bootstrap(ws: Workspace, out: Console) -> StepResult:
    from llmops.models.catalog import record_base_model
    from llmops.models.reference import ensure_reference_model
    from llmops.models.spec import DEFAULT_STEPS
    from llmops.registry.tracking import connect

    ref = ws.settings.models.reference
    with out.status("building the reference model (cached after the first run)…"):
        model = ensure_reference_model(ws.models_dir, seed=ref.seed, steps=ref.steps or DEFAULT_STEPS)
        record = record_base_model(connect(ws), ws, model)
    status = "done" if record.created else "skipped"
    return StepResult("reference model", status, f"{record.name} v{record.version} ({model.params:,} params)")


def _push_prompts(ws: Workspace, out: Console) -> StepResult:
    from llmops.gitinfo import file_info
    from llmops.prompts.api import registry
    from llmops.prompts.files import discover, load_checked

    reg = registry(ws)
    results = [reg.push(load_checked(p), file_info(p)) for p in discover(ws.asset_dir("prompts"))]
    new = [r for r in results if r.action == "registered"]
    versions = ", ".join(f"{r.name} v{r.version}" for r in results)
    return StepResult("push prompts", "done" if new else "skipped", f"{len(new)} new; {versions}")


def _promote_prompts(ws: Workspace, out: Console) -> StepResult:
    from llmops.prompts.api import promote, registry

    reg = registry(ws)
    moved = []
    for name in ("support-triage", "support-reply"):
        latest = reg.latest(name)
        if latest is None or reg.alias_version(name, "production") == latest.version:
            continue
        promote(name, latest.version, "production", reason="llmops demo", ws=ws)
        moved.append(f"{name}@production→v{latest.version}")
    return StepResult("promote prompts", "done" if moved else "skipped", ", ".join(moved) or "already current")


def _not_yet(name: str) -> Callable[[Workspace, Console], StepResult]:
    return lambda ws, out: StepResult(name, "not yet", "arrives with a later part of llmops")


STEPS: tuple[Callable[[Workspace, Console], StepResult], ...] = (
    _bootstrap,
    _push_prompts,
    _promote_prompts,
    _not_yet("fine-tune adapters"),
    _not_yet("evaluate releases"),
    _not_yet("canary at 10%"),
    _not_yet("serve and send traffic"),
    _not_yet("promote to production"),
)


def run_demo(ws: Workspace, out: Console) -> list[StepResult]:
    results = []
    for step in STEPS:
        started = time.monotonic()
        result = step(ws, out)
        result.seconds = time.monotonic() - started
        colour = {"done": "green", "skipped": "dim", "not yet": "yellow"}[result.status]
        out.print(f"[{colour}]{result.status:>8}[/{colour}]  {result.name}: {result.detail}")
        results.append(result)
    table = Table("step", "status", "detail", "seconds", title="llmops demo")
    for r in results:
        table.add_row(r.name, r.status, r.detail, f"{r.seconds:.1f}")
    out.print(table)
    out.print(f"registry: {ws.tracking_uri}   (browse: llmops registry serve)")
    return results
