"""``init_adapter:``: continue training a registered adapter version instead of a fresh LoRA.

Use it to fine-tune an adapter further on new data (a follow-up dataset, a correction) without
starting over. The version is fetched sha256-verified like any adapter an engine loads. Every
mismatch is found before training and named by its job-file field: the adapter must exist, must
have been trained on this job's base model, and must have the shape ``lora:`` asks for (rank,
alpha, target modules), because continuing a LoRA cannot change its shape.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmops.errors import ConfigError, NotFoundError
from llmops.finetune.job import FinetuneJob
from llmops.models.base import BaseModel
from llmops.registry import tags
from llmops.registry.adapters import AdapterStore, AdapterVersionInfo


@dataclass(frozen=True)
class InitAdapter:
    """The resolved version and its verified local copy."""

    info: AdapterVersionInfo
    path: Path

    @property
    def ref(self) -> str:
        return self.info.ref

    @property
    def lineage(self) -> str:
        return lineage_ref(self.info)


def lineage_ref(info: AdapterVersionInfo) -> str:
    """What :data:`~llmops.registry.tags.INIT_ADAPTER` records of the adapter a version continued: ``NAME/VERSION@SHA256``."""
    return f"{info.ref}@{info.sha256}"


def _modules(value: Any) -> set[str] | str:
    if value == "all-linear":
        return "all-linear"
    return set(value or ())


def resolve_init_adapter(adapters: AdapterStore, job: FinetuneJob, shown: str, base: BaseModel) -> InitAdapter | None:
    """The job's ``init_adapter``, resolved, checked against ``base`` and ``lora:``, and fetched."""
    if job.init_adapter is None:
        return None
    try:
        info = adapters.get(job.init_adapter)
    except NotFoundError as exc:
        raise ConfigError.at(shown, f"init_adapter {job.init_adapter}: {exc}", field="init_adapter") from exc
    trained_on = info.tags.get(tags.BASE_MODEL_SHA256, "")
    if trained_on and trained_on != base.sha256:
        raise ConfigError.at(
            shown,
            f"init_adapter {info.ref} was trained on base model {info.tags.get(tags.BASE_MODEL) or '?'} "
            f"(sha256 {trained_on[:12]}), this job trains on {base.ref} (sha256 {base.sha256[:12]})",
            field="init_adapter",
        )
    path = adapters.fetch(info)
    config = json.loads((path / "adapter_config.json").read_text())
    wanted = {
        "r": (job.lora.r, config.get("r")),
        "alpha": (job.lora.alpha, config.get("lora_alpha")),
        "target_modules": (_modules(job.lora.target_modules), _modules(config.get("target_modules"))),
    }
    for field, (ours, theirs) in wanted.items():
        if ours != theirs:
            shown_theirs = sorted(theirs) if isinstance(theirs, set) else theirs
            shown_ours = sorted(ours) if isinstance(ours, set) else ours
            raise ConfigError.at(
                shown,
                f"lora.{field} is {shown_ours} but init_adapter {info.ref} has {shown_theirs}; a continued "
                f"adapter keeps its shape: set lora.{field} to {shown_theirs}",
                field=f"lora.{field}",
            )
    return InitAdapter(info, path)
