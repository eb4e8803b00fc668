"""``llmops report``: a route's model card and EU AI Act Annex IV technical documentation, from the registry.

:func:`write_report` reads the release at a route's stage (:func:`~llmops.governance.inputs.gather`) and
writes into one folder:

``README.md``                         the model card (Hugging Face format: YAML metadata + sections)
``technical-documentation.md``        Annex IV structure, for people
``technical-documentation.json``      the same document, every value exact (for machines and diffs)
``technical-documentation.html``      the same document, one self-contained page

Nothing is written when the route has no release at the stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from llmops.errors import ConfigError
from llmops.governance.annex import technical_documentation
from llmops.governance.card import model_card
from llmops.governance.inputs import ReportInputs, gather
from llmops.governance.render import FORMATS, render, to_markdown

if TYPE_CHECKING:
    from llmops.config.workspace import Workspace
    from llmops.registry import Registry

CARD_FILE = "README.md"
ANNEX_STEM = "technical-documentation"


@dataclass(frozen=True)
class ReportResult:
    route: str
    stage: str
    pointer_version: int
    release_key: str
    files: tuple[Path, ...]
    metrics: int  # metric values stated (over every gating eval record)
    gaps: tuple[str, ...]  # registry records missing from the lineage, workspace files not read


def check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ConfigError.at("--format", f"{','.join(unknown) or 'nothing'}: use one or more of {','.join(FORMATS)}")
    return tuple(dict.fromkeys(formats))


def write_documents(inputs: ReportInputs, out_dir: Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Render the model card and the technical documentation of ``inputs`` into ``out_dir``."""
    formats = check_formats(formats)
    out_dir.mkdir(parents=True, exist_ok=True)
    card = out_dir / CARD_FILE
    card.write_text(to_markdown(model_card(inputs), front_matter=True), encoding="utf-8")
    written = [card]
    annex = technical_documentation(inputs)
    for fmt in formats:
        path = out_dir / f"{ANNEX_STEM}.{fmt}"
        path.write_text(render(annex, fmt), encoding="utf-8")
        written.append(path)
    return written


def write_report(
    registry: Registry, ws: Workspace, route: str, stage: str, out_dir: Path, formats: Sequence[str] = FORMATS
) -> ReportResult:
    """Write the documents of ``route``'s release at ``stage``; NotFoundError (nothing written) when it has none."""
    formats = check_formats(formats)
    inputs = gather(registry, ws, route, stage)
    files = write_documents(inputs, out_dir, formats)
    return ReportResult(
        route=route,
        stage=stage,
        pointer_version=inputs.pointer_version,
        release_key=inputs.lineage.key,
        files=tuple(files),
        metrics=sum(len(ev.metrics) for ev in inputs.lineage.evals),
        gaps=inputs.lineage.gaps + inputs.problems,
    )
