"""The reference a route's live traffic is compared with: inputs and outputs of what it was built and gated on.

Inputs: the training rows of the adapter each target serves (found through its lineage: the fine-tune run's
``train`` data input, checked against the adapter's dataset fingerprint), the cases of the route's eval
suites (``reference.suites``; default: the required suites targeting the route) and ``reference.data``
files. Outputs, per target: the per-case outputs of the newest passing eval record of the release it
serves (``reference.outputs: none`` → none, and output-side signals report insufficient data). Texts
follow :mod:`llmops.monitor.texts` (variables joined, or the user messages). A seeded sample keeps at
most ``max_rows``. With ``training_data: false``, ``outputs: none`` and no default suites needing the
gateway config, nothing is read from the registry.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from llmops.config.monitor import MonitorFile
from llmops.config.workspace import Workspace
from llmops.errors import ConfigError, LlmopsError
from llmops.evals.files import load_suite
from llmops.evals.spec import EvalSuite
from llmops.finetune.lineage import TRAINING_CONTEXT
from llmops.finetune.rows import read_rows
from llmops.monitor.serving import route_spec, target_resolved
from llmops.monitor.signals import ReferenceSample
from llmops.monitor.texts import input_text
from llmops.registry import Registry
from llmops.registry.resolved import ResolvedRelease


@dataclass
class RouteReference:
    """A route's reference: route-wide inputs, outputs per target, the releases, and what could not be had."""

    inputs: list[str]
    outputs: dict[str, list[str]] = field(default_factory=dict)
    releases: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def sample(self, target: str) -> ReferenceSample:
        return ReferenceSample(inputs=self.inputs, outputs=self.outputs.get(target, []))

    def as_dict(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs,
            "outputs": self.outputs,
            "releases": self.releases,
            "notes": self.notes,
            "sources": self.sources,
        }


def _row_input(obj: Mapping[str, Any]) -> str | None:
    """A data row's or eval case's input text, by the captured-record convention."""
    if isinstance(obj.get("variables"), Mapping):
        return input_text({"captured": True, "input": {"variables": obj["variables"]}})
    if isinstance(obj.get("messages"), list):
        return input_text({"captured": True, "input": {"messages": obj["messages"]}})
    return None


def read_inputs(path: Path, shown: str) -> list[str]:
    """The input texts of a JSONL file of fine-tune rows or eval cases."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise ConfigError.at(shown, f"cannot read reference data: {exc}") from exc
    texts = []
    for line in lines:
        try:
            obj = orjson.loads(line) if line.strip() else None
        except orjson.JSONDecodeError:
            continue
        text = _row_input(obj) if isinstance(obj, dict) else None
        if text:
            texts.append(text)
    return texts


def route_suites(ws: Workspace, route: str) -> list[str]:
    """Workspace paths of the required suites under ``evals/`` that target ``route``."""
    found = []
    for path in sorted(ws.asset_dir("evals").glob("*.y*ml")):
        try:
            suite, _cases, _ = load_suite(path)
        except LlmopsError:
            continue
        if suite.required and suite.target.route == route:
            found.append(path.relative_to(ws.root).as_posix())
    return found


def _suite_inputs(ws: Workspace, shown: str) -> tuple[EvalSuite, list[str]]:
    suite, cases, _ = load_suite(ws.root / shown)
    texts = [t for t in (_row_input(c.model_dump()) for c in cases) if t]
    return suite, texts


def _training_inputs(ws: Workspace, registry: Registry, resolved: ResolvedRelease, notes: list[str]) -> list[str]:
    adapter = resolved.adapter
    if adapter is None:
        return []
    run_id = adapter.tags.get("llmops.run_id") or adapter.run_id or ""
    expected = adapter.tags.get("llmops.dataset_fingerprint", "")
    train = [d for d in registry.datasets.inputs(run_id) if d.context == TRAINING_CONTEXT] if run_id else []
    if not train or not train[0].path:
        notes.append(f"adapter {adapter.ref}: its lineage names no training data file")
        return []
    path = ws.root / train[0].path
    if not path.is_file():
        notes.append(f"adapter {adapter.ref}: training data {train[0].path} is not in this workspace")
        return []
    if expected and read_rows(path, display=train[0].path).fingerprint != expected:
        notes.append(f"adapter {adapter.ref}: {train[0].path} changed since training (fingerprint differs); not used")
        return []
    return read_inputs(path, train[0].path)


def _eval_outputs(registry: Registry, resolved: ResolvedRelease, notes: list[str]) -> list[str]:
    for record in registry.evals.find(release_key=resolved.key, verdict="pass"):
        report = registry.monitoring.artifact_json(record.run_id, "report.json")
        cases = ((report or {}).get("candidate") or {}).get("cases") or []
        outputs = [c["output"] for c in cases if isinstance(c, dict) and isinstance(c.get("output"), str)]
        if outputs:
            return outputs
    notes.append(f"release {resolved.label()}: no passing eval record with per-case outputs")
    return []


def _sample(texts: list[str], size: int, seed: int) -> list[str]:
    if len(texts) <= size:
        return texts
    return random.Random(seed).sample(texts, size)


def build_reference(
    ws: Workspace, spec: MonitorFile, route: str, registry: Callable[[], Registry] | None = None
) -> RouteReference:
    """The reference of ``route``; ``registry`` is called only when the spec needs the registry."""
    rs = spec.routes[route].reference
    ref = RouteReference(inputs=[])
    for shown in rs.data:
        ref.inputs += read_inputs(ws.root / shown, shown)
        ref.sources.append(shown)
    suites = rs.suites if rs.suites is not None else route_suites(ws, route)
    for shown in suites:
        _suite, texts = _suite_inputs(ws, shown)
        ref.inputs += texts
        ref.sources.append(shown)
    if rs.training_data or rs.outputs == "eval_record":
        _registry_part(ws, spec, route, ref, registry)
    ref.inputs = _sample(ref.inputs, rs.max_rows, spec.seed)
    ref.outputs = {t: _sample(o, rs.max_rows, spec.seed) for t, o in ref.outputs.items()}
    if not ref.inputs:
        ref.notes.append("no reference inputs: input-side signals report insufficient data")
    return ref


def _registry_part(
    ws: Workspace, spec: MonitorFile, route: str, ref: RouteReference, registry: Callable[[], Registry] | None
) -> None:
    rs = spec.routes[route].reference
    served = route_spec(ws, route, needed_by="serving/monitor.yaml")
    if registry is None:
        raise LlmopsError("the monitor's reference needs the registry (training data or eval outputs)")
    reg = registry()
    trained: set[str] = set()
    for target in served.targets:
        resolved = target_resolved(reg, route, target)
        ref.releases[target.name] = {
            "release_key": resolved.key,
            "label": resolved.label(),
            "canonical": resolved.release.canonical(),
            "adapter_version": str(resolved.release.adapter or ""),
            "prompt_version": str(resolved.release.prompt or ""),
        }
        adapter = resolved.adapter.ref if resolved.adapter else ""
        if rs.training_data and adapter and adapter not in trained:
            trained.add(adapter)
            ref.inputs += _training_inputs(ws, reg, resolved, ref.notes)
        if rs.outputs == "eval_record":
            ref.outputs[target.name] = _eval_outputs(reg, resolved, ref.notes)


def spec_hash(spec: MonitorFile, route: str) -> str:
    """Digest of what a route's reference depends on in the spec (a cache key part)."""
    data = {"reference": spec.routes[route].reference.model_dump(mode="json"), "seed": spec.seed}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
