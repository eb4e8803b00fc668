"""Route → release: which release a target of ``serving/gateway.yaml`` serves.

The rule (:func:`target_release`, used by the gateway's refresher): a target that names a stage
(``release: production``) serves the route's release recorded at that stage by ``llmops promote``;
until one is recorded it falls back to its own ``adapter:`` and ``prompt:``. A target without
``release:`` serves its own references (:func:`configured_release`, also the candidate of an eval
suite that targets the route). The target's ``params`` are the release's params.
"""

from __future__ import annotations

from collections.abc import Callable

from llmops.config.gateway import TargetSpec
from llmops.errors import LlmopsError
from llmops.release import Release

#: reads a route's recorded release at a stage (None: nothing recorded there)
StageReader = Callable[[str, str], Release | None]


def configured_release(target: TargetSpec, base_model: str) -> Release:
    """The release a target names by itself: its adapter and prompt references and its params."""
    return Release.of(base_model, target.adapter, target.prompt, target.params.as_request())


def target_release(route: str, target: TargetSpec, base_model: str, at_stage: StageReader) -> Release:
    """The release ``route``'s ``target`` serves now (see the module docstring)."""
    if target.release:
        recorded = at_stage(route, target.release)
        if recorded is not None:
            return Release(base_model, recorded.adapter, recorded.prompt, target.params.as_request())
        if not (target.adapter or target.prompt):
            raise LlmopsError(f"target {target.name}: no {target.release} release yet and no adapter/prompt fallback")
    return configured_release(target, base_model)
