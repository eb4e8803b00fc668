"""The workspace: a folder with ``llmops.yaml`` and the four asset folders.

``llmops.yaml`` is optional; every field has an embedded default (a SQLite registry and local
artifacts under ``.llmops/``). Environment variables override the file:

==========================  =====================================================
``MLFLOW_TRACKING_URI``     registry / tracking URI (file SQLite or ``http://`` server)
``LLMOPS_ARTIFACT_ROOT``    where artifacts of new experiments go (embedded registry)
``LLMOPS_HOME``             the state folder (default ``<workspace>/.llmops``)
``LLMOPS_CACHE_DIR``        cache folder (default ``<home>/cache``)
==========================  =====================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

from llmops.config.base import StrictModel
from llmops.config.yamlio import load_model

CONFIG_FILE = "llmops.yaml"
ASSET_DIRS = ("prompts", "finetune", "serving", "evals")


class ServerSettings(StrictModel):
    host: str = Field("127.0.0.1", description="address `llmops registry serve` listens on")
    port: int = Field(5000, ge=1, le=65535)


class RegistrySettings(StrictModel):
    tracking_uri: str | None = Field(None, description="MLflow tracking/registry URI; default sqlite under .llmops/")
    artifact_root: str | None = Field(None, description="artifact folder; default .llmops/artifacts")
    server: ServerSettings = ServerSettings()


class ReferenceModelSettings(StrictModel):
    seed: int = 0
    steps: int | None = Field(None, ge=1, le=100_000, description="pretraining steps; default ~90 s here")


class ModelsSettings(StrictModel):
    base_model: str = Field(
        "reference", description="'reference' (built by `llmops models bootstrap`), a hub id or a path"
    )
    reference: ReferenceModelSettings = ReferenceModelSettings()


class RetentionSettings(StrictModel):
    """How long ``llmops logs prune`` keeps request logs, feedback and audit records (``retention:``)."""

    request_logs_days: int = Field(
        183, ge=1, description="request log records older than this are pruned; the EU AI Act asks for >= 6 months"
    )
    feedback_days: int = Field(183, ge=1, description="feedback log records older than this are pruned")
    audit_days: int | None = Field(
        None, ge=1, description="audit records older than this are deleted; null keeps them forever"
    )


#: the EU AI Act (Art. 19, 26(6)) asks deployers to keep automatically generated logs at least six months
MIN_LOG_RETENTION_DAYS = 183


class WorkspaceFile(StrictModel):
    """Schema of ``llmops.yaml``."""

    version: int = Field(1, ge=1, le=1)
    home: str = Field(".llmops", description="state folder, relative to the workspace")
    registry: RegistrySettings = RegistrySettings()
    models: ModelsSettings = ModelsSettings()
    cache_dir: str | None = None
    retention: RetentionSettings = RetentionSettings()


@dataclass(frozen=True)
class Workspace:
    """A resolved workspace: absolute paths and URIs, environment overrides applied."""

    root: Path
    settings: WorkspaceFile
    home: Path
    cache_dir: Path
    tracking_uri: str
    artifact_root: Path

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    def asset_dir(self, kind: str) -> Path:
        return self.root / kind

    def shown(self, path: Path) -> str:
        """``path`` as messages show it: relative to the workspace root when inside it, else as given."""
        resolved = path.resolve()
        return resolved.relative_to(self.root).as_posix() if resolved.is_relative_to(self.root) else str(path)

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def is_embedded_registry(self) -> bool:
        return self.tracking_uri.startswith("sqlite:")

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_embedded_registry:
            return None
        return Path(self.tracking_uri.removeprefix("sqlite:///"))


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` holding ``llmops.yaml``; else ``start`` itself."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    return here


def load_workspace(root: Path | None = None, env: Mapping[str, str] | None = None) -> Workspace:
    """Resolve the workspace at ``root`` (default: search upward from the current folder)."""
    env = os.environ if env is None else env
    root = find_root(root) if root is None else root.resolve()
    cfg_path = root / CONFIG_FILE
    settings = load_model(WorkspaceFile, cfg_path, display=CONFIG_FILE) if cfg_path.is_file() else WorkspaceFile()
    home = Path(env.get("LLMOPS_HOME") or (root / settings.home)).resolve()
    cache = Path(env.get("LLMOPS_CACHE_DIR") or settings.cache_dir or (home / "cache"))
    if not cache.is_absolute():
        cache = root / cache
    artifact_root = Path(env.get("LLMOPS_ARTIFACT_ROOT") or settings.registry.artifact_root or home / "artifacts")
    if not artifact_root.is_absolute():
        artifact_root = root / artifact_root
    tracking = env.get("MLFLOW_TRACKING_URI") or settings.registry.tracking_uri
    if not tracking:
        tracking = f"sqlite:///{home / 'mlflow.db'}"
    elif tracking.startswith("sqlite:///") and not tracking.startswith("sqlite:////"):
        rel = tracking.removeprefix("sqlite:///")
        tracking = f"sqlite:///{(root / rel).resolve()}"
    return Workspace(
        root=root,
        settings=settings,
        home=home,
        cache_dir=cache.resolve(),
        tracking_uri=tracking,
        artifact_root=artifact_root.resolve(),
    )
