"""``llmops doctor``: versions and checks of everything llmops stands on.

It also reports alias moves that died midway (a ``pending`` audit record nothing settled, e.g. a killed
``llmops promote``) as a warning; ``llmops doctor --repair`` settles them (:func:`repair_pending`, see
:mod:`llmops.promotion.reconcile`).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import platform
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from llmops.config.workspace import Workspace
from llmops.errors import LlmopsError
from llmops.extras import missing_modules
from llmops.promotion import pending, repair
from llmops.registry import connect
from llmops.registry.audit import AuditRecord

PACKAGES = (
    ("transformers", "transformers"),
    ("peft", "peft"),
    ("datasets", "datasets"),
    ("mlflow", "mlflow"),
    ("ragas", "ragas"),
    ("langchain", "langchain"),
    ("fastapi", "fastapi"),
    ("ray", "ray"),
)
#: the extra that installs a checked module: a role's install lacks the others (a warning, not a failure)
EXTRA_OF = MappingProxyType({"transformers": "train", "peft": "train", "datasets": "train", "torch": "train", "ragas": "evals",
            "langchain": "evals", "fastapi": "gateway", "ray": "ray", "vllm": "engine-cpu or engine-gpu"})  # fmt: skip


@dataclass(frozen=True)
class Check:
    name: str
    status: Literal["ok", "warn", "fail"]
    detail: str


def _dist_version(dist: str) -> str:
    for candidate in (dist, f"{dist}-cpu", f"{dist}-skinny"):
        try:
            return importlib.metadata.version(candidate)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "?"


def _not_installed(module: str) -> Check | None:
    """A warning naming the extra when ``module`` is not installed at all (None when it is)."""
    if not missing_modules(module):
        return None
    extra = EXTRA_OF.get(module)
    return Check(f"import {module}", "warn", f"not installed (the {extra} extra)" if extra else "not installed")


def _import(module: str, dist: str) -> Check:
    if absent := _not_installed(module):
        return absent
    start = time.perf_counter()
    try:
        importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - doctor reports any import failure instead of crashing
        return Check(f"import {module}", "fail", f"{type(exc).__name__}: {exc}"[:200])
    return Check(f"import {module}", "ok", f"{_dist_version(dist)} ({time.perf_counter() - start:.1f} s)")


def run_checks(ws: Workspace) -> Iterator[Check]:
    """Yield checks one by one (imports are slow; the CLI prints them as they come)."""
    yield Check("python", "ok" if sys.version_info >= (3, 11) else "fail", platform.python_version())
    yield Check("workspace", "ok", str(ws.root))
    for module, dist in PACKAGES:
        yield _import(module, dist)
    vllm = _import("vllm", "vllm")
    yield Check("vLLM (engine)", vllm.status, vllm.detail)
    registry = _registry_check(ws)
    yield registry
    if registry.status == "ok":
        yield _pending_check(ws)
    yield _gpu_check()
    reference = sorted(ws.models_dir.glob("reference-*")) if ws.models_dir.is_dir() else []
    yield Check(
        "reference model",
        "ok" if reference else "warn",
        str(reference[-1]) if reference else "not built yet: llmops models bootstrap",
    )


def _registry_check(ws: Workspace) -> Check:
    try:
        connect(ws).ping()
    except LlmopsError as exc:
        return Check("registry", "fail", str(exc))
    except Exception as exc:  # noqa: BLE001 - report any client failure with the URI
        return Check("registry", "fail", f"{ws.tracking_uri}: {type(exc).__name__}: {exc}"[:200])
    return Check("registry", "ok", ws.tracking_uri)


def _pending_check(ws: Workspace) -> Check:
    try:
        found = pending(connect(ws))
    except LlmopsError as exc:
        return Check("interrupted moves", "fail", str(exc))
    if not found:
        return Check("interrupted moves", "ok", "none")
    shown = ", ".join(f"{r.kind} {r.object}@{r.alias} v{r.from_version or '-'} → v{r.to_version}" for r in found[:3])
    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
    return Check("interrupted moves", "warn", f"{shown}{more} pending; run `llmops doctor --repair`")


def repair_pending(ws: Workspace) -> list[AuditRecord]:
    """Settle every interrupted alias move (each under its lease); the audit records appended."""
    return repair(connect(ws))


def _gpu_check() -> Check:
    if absent := _not_installed("torch"):
        return Check("GPU", "warn", f"torch {absent.detail}")
    try:
        import torch
    except ImportError as exc:
        return Check("GPU", "fail", f"torch not importable: {exc}")
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        return Check("GPU", "ok", f"{torch.cuda.device_count()} × {names}")
    return Check("GPU", "warn", f"none (torch {torch.__version__}); training and vLLM run on CPU")
