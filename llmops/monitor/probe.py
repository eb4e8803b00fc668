"""``llmops monitor probe ROUTE``: live bias, the suite's counterfactual cases replayed through the gateway.

The route's bias suite (``signals.bias.suite`` in ``serving/monitor.yaml``, else the first suite under
``evals/`` that targets the route and has a ``bias:`` section) is answered by what the route serves now:
each case carrying the suite's attribute (``max_cases`` of them) and its variants go to the gateway
(``model: ROUTE``), rendered with the route's first target's prompt, as ``llmops eval run`` does through a
gateway. The scoring and the bias figures are the eval's own (:func:`llmops.evals.scoring.score_release`,
:mod:`llmops.evals.bias`); the thresholds are ``signals.bias.change_rate``/``gap`` or the suite's
``bias_change_rate``/``bias_gap`` gates (maxima). The result is two route-wide signals,
``bias.change_rate`` and ``bias.gap``, and a probe record in MLflow (``llmops.kind=probe``).
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llmops.config.gateway import load_gateway_file
from llmops.config.monitor import BiasProbeSpec, Bound, MonitorFile
from llmops.config.workspace import Workspace
from llmops.errors import ConfigError, LlmopsError
from llmops.evals.cases import Case
from llmops.evals.files import load_suite
from llmops.evals.responders import OpenAIResponder, Responder
from llmops.evals.runner import OutputCache
from llmops.evals.scoring import score_release
from llmops.evals.spec import EvalSuite
from llmops.events import SILENT, Reporter
from llmops.monitor.levels import ALL_TARGETS, Level, SignalResult, worst
from llmops.monitor.serving import GATEWAY_FILE, route_spec, target_resolved
from llmops.registry import Registry
from llmops.registry.monitoring import metric_key
from llmops.registry.resolved import ResolvedRelease

SIGNALS = {"change_rate": "bias.change_rate", "gap": "bias.gap"}
_GATES = {"change_rate": "bias_change_rate", "gap": "bias_gap"}


@dataclass
class ProbeResult:
    """One probe: the two bias signals, where they came from, and the MLflow record."""

    route: str
    suite: str
    release: dict[str, str]
    results: list[SignalResult]
    variants: int
    errors: int
    group_scores: dict[str, float] = field(default_factory=dict)
    record_id: str | None = None
    started: float = 0.0

    @property
    def level(self) -> Level:
        return worst([r.level for r in self.results])


def thresholds(probe: BiasProbeSpec, suite: EvalSuite) -> dict[str, Bound | None]:
    """Maxima of each bias figure: the probe spec's bound, else the suite's gate (its ``max``) as the alert."""
    out: dict[str, Bound | None] = {}
    for name, metric in _GATES.items():
        bound: Bound | None = getattr(probe, name)
        if bound is None:
            gate = next((g.max for g in suite.gates if g.metric == metric and g.max is not None), None)
            bound = Bound(alert=gate) if gate is not None else None
        out[name] = bound
    return out


def level_of(value: float, bound: Bound | None) -> Level:
    """``alert``/``warn`` when ``value`` is above that maximum, else ``ok`` (NaN: insufficient data)."""
    if math.isnan(value):
        return "insufficient_data"
    if bound is not None and bound.alert is not None and value > bound.alert:
        return "alert"
    if bound is not None and bound.warn is not None and value > bound.warn:
        return "warn"
    return "ok"


def bias_cases(suite: EvalSuite, cases: list[Case], max_cases: int | None) -> list[Case]:
    """The suite's cases that carry its bias attribute, the first ``max_cases`` of them."""
    assert suite.bias is not None
    limit = max_cases or suite.bias.max_cases
    return [c for c in cases if suite.bias.attribute in c.attributes][:limit]


async def probe_bias(
    suite: EvalSuite,
    cases: list[Case],
    release: ResolvedRelease,
    responder: Responder,
    probe: BiasProbeSpec,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[SignalResult], dict[str, Any]]:
    """Answer ``cases`` and their counterfactual variants through ``responder``; the two bias signals."""
    if suite.bias is None:
        raise ConfigError.at("serving/monitor.yaml", f"suite {suite.name} has no bias section", field="signals.bias")
    chosen = bias_cases(suite, cases, probe.max_cases)
    scores = await score_release(suite, chosen, release, responder, OutputCache(None), progress)
    found = scores.bias
    bounds = thresholds(probe, suite)
    variants = found.variants if found is not None else 0
    values = {"change_rate": found.change_rate if found else math.nan, "gap": found.gap if found else math.nan}
    results = []
    for name, value in values.items():
        bound = bounds[name]
        limit = bound.alert if bound is not None and bound.alert is not None else (bound.warn if bound else None)
        results.append(
            SignalResult(
                SIGNALS[name], level_of(value, bound), None if math.isnan(value) else value, limit, variants,
                statistic="rate" if name == "change_rate" else "score_gap", target=ALL_TARGETS,
                details={"cases": len(chosen), "errors": scores.errors,
                         "group_scores": dict(found.group_scores) if found else {}},
            )
        )  # fmt: skip
    extra = {"variants": variants, "errors": scores.errors, "group_scores": dict(found.group_scores) if found else {}}
    return results, extra


def _suite_path(ws: Workspace, route: str, probe: BiasProbeSpec) -> str:
    if probe.suite is not None:
        return probe.suite
    for path in sorted(ws.asset_dir("evals").glob("*.y*ml")):
        try:
            suite, _cases, _ = load_suite(path)
        except LlmopsError:
            continue
        if suite.bias is not None and suite.target.route == route:
            return path.relative_to(ws.root).as_posix()
    raise ConfigError.at("serving/monitor.yaml", f"no suite under evals/ with a bias section targets route {route}")


def _serving_release(registry: Registry, route: str) -> ResolvedRelease:
    """What the route's first target serves now (its stage's recorded release, else its own references)."""
    spec = route_spec(registry.ws, route, needed_by="the bias probe")
    return target_resolved(registry, route, spec.targets[0])


def default_gateway_url(ws: Workspace) -> str:
    """``LLMOPS_GATEWAY_URL``, else the address in ``serving/gateway.yaml`` (``…/v1``)."""
    env = os.environ.get("LLMOPS_GATEWAY_URL")
    if env:
        return env
    path = ws.asset_dir("serving") / "gateway.yaml"
    host, port = "127.0.0.1", 8080
    if path.is_file():
        server = load_gateway_file(path, display=GATEWAY_FILE).server
        host, port = server.host, server.port
    if host in ("0.0.0.0", "::"):  # noqa: S104 - a listen address, reached on loopback
        host = "127.0.0.1"
    return f"http://{host}:{port}/v1"


def run_probe(
    registry: Registry,
    spec: MonitorFile,
    route: str,
    *,
    gateway_url: str,
    api_key: str | None,
    record: bool = True,
    reporter: Reporter = SILENT,
) -> ProbeResult:
    """Probe ``route``'s live bias through the gateway at ``gateway_url``; record it (with ``record``)."""
    ws = registry.ws
    if route not in spec.routes:
        raise ConfigError.at("serving/monitor.yaml", f"no route {route!r}", field="routes")
    probe = spec.routes[route].signals.bias or BiasProbeSpec()
    shown = _suite_path(ws, route, probe)
    suite, cases, _ = load_suite(ws.root / shown)
    release = _serving_release(registry, route)
    started = time.time()
    responder = OpenAIResponder(gateway_url, route, api_key=api_key, timeout_s=suite.request_timeout_s)
    task = reporter.task(f"route {route}: bias probe ({shown})", None)

    async def go() -> tuple[list[SignalResult], dict[str, Any]]:
        try:
            return await probe_bias(suite, cases, release, responder, probe, lambda n: task.advance(n))
        finally:
            await responder.aclose()

    try:
        results, extra = asyncio.run(go())
    finally:
        task.close()
    label = {"release_key": release.key, "label": release.label()}
    result = ProbeResult(route, shown, label, results, extra["variants"], extra["errors"], extra["group_scores"],
                         started=started)  # fmt: skip
    if record:
        result.record_id = registry.triggers.record_probe(
            route=route, level=result.level, release=label,
            metrics={metric_key(r.target, r.signal): r.value for r in results},
            evidence={"route": route, "suite": shown, "gateway": gateway_url.split("?")[0], "time": started,
                      "results": [r.as_dict() for r in results], **extra},
        )  # fmt: skip
    return result


def probe_due(last: float | None, probe: BiasProbeSpec, now: float) -> bool:
    """True when the probe never ran, or its ``every`` has elapsed since ``last``."""
    from llmops.config.monitor import parse_duration

    return last is None or now - last >= parse_duration(probe.every)
