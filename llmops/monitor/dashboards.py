"""Check the Grafana dashboard and the Prometheus alert rules against the metrics llmops exports.

``serving/grafana/llmops.json`` and ``serving/prometheus/alerts.yml`` query the gateway's and the monitor's
``/metrics``. A renamed metric would leave a panel empty or an alert silent without any error, so the
integration test scrapes both, and :func:`missing_metrics` names every queried metric that no exporter exposes.

Metric names come from the PromQL syntax tree (``promql_parser``, the Rust parser's bindings): every vector
selector's name, or its ``__name__="..."`` matcher. Grafana's variables are replaced first (``$__rate_interval``
becomes a duration; ``$route`` only ever appears inside label-matcher strings), and a template variable's
``label_values(SELECTOR, label)`` contributes its selector. An expression that does not parse is a problem too.

:func:`load_rule_file` is the schema check of a rules file (used where ``promtool check rules`` is not installed):
Prometheus's rule-group format as a pydantic model, plus a parse of every ``expr``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser
from prometheus_client.parser import text_string_to_metric_families
from pydantic import Field, model_validator

from llmops.config.base import StrictModel
from llmops.config.yamlio import load_model
from llmops.errors import ConfigError, Problem

#: Grafana's built-in interval variables, as they may appear inside ``[...]`` of a range selector
_GRAFANA_INTERVAL = re.compile(r"\$\{?__(?:rate_interval|interval|range|auto)(?:_ms|_s)?\}?")
_LABEL_VALUES = re.compile(r"^\s*label_values\s*\(\s*(?P<selector>.+?)\s*,\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$", re.S)
_QUERY_RESULT = re.compile(r"^\s*query_result\s*\((?P<expr>.+)\)\s*$", re.S)
#: sample-name suffixes of a family: a counter's ``_total``, a histogram's ``_bucket``/``_sum``/``_count`` ...
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("_sum", "_count", "_created"),
    "info": ("_info",),
}


@dataclass(frozen=True)
class Query:
    """One PromQL expression and where it is written (``llmops.json: panel "Latency" [B]``)."""

    source: str
    expr: str


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (Grafana variables allowed) selects. Raises ValueError when it
    does not parse."""
    text = _GRAFANA_INTERVAL.sub("5m", expr)
    tree = promql_parser.parse(text)
    names: set[str] = set()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            for matcher in node.matchers.matchers:
                if matcher.name == "__name__" and matcher.op == promql_parser.MatchOp.Equal:
                    names.add(matcher.value)

    promql_parser.walk(tree, pre_visit=visit)
    return names


def _variable_expr(query: Any) -> str | None:
    """The PromQL inside a Grafana Prometheus variable's query (``label_values(sel, l)``, ``query_result(e)``)."""
    text = query.get("query") if isinstance(query, Mapping) else query
    if not isinstance(text, str) or not text.strip():
        return None
    if m := _LABEL_VALUES.match(text):
        return m["selector"]
    if m := _QUERY_RESULT.match(text):
        return m["expr"]
    return None  # label_names(), metrics(regex): no selector to check


def _panels(panels: Iterable[Any]) -> Iterator[Mapping[str, Any]]:
    for panel in panels:
        if isinstance(panel, Mapping):
            yield panel
            yield from _panels(panel.get("panels") or [])  # collapsed rows hold their panels


def dashboard_queries(dashboard: Mapping[str, Any], name: str = "dashboard") -> list[Query]:
    """Every PromQL expression of a Grafana dashboard model: panel targets and query variables."""
    found: list[Query] = []
    for panel in _panels(dashboard.get("panels") or []):
        for target in panel.get("targets") or []:
            expr = target.get("expr") if isinstance(target, Mapping) else None
            if isinstance(expr, str) and expr.strip():
                where = f'{name}: panel "{panel.get("title", panel.get("id"))}" [{target.get("refId", "?")}]'
                found.append(Query(where, expr))
    for variable in (dashboard.get("templating") or {}).get("list") or []:
        if isinstance(variable, Mapping) and variable.get("type") == "query":
            expr = _variable_expr(variable.get("query")) or _variable_expr(variable.get("definition"))
            if expr:
                found.append(Query(f"{name}: variable ${variable.get('name')}", expr))
    return found


def load_dashboard(path: Path) -> dict[str, Any]:
    """A dashboard JSON file (Grafana's export format, or the API's ``{"dashboard": {...}}`` wrapper)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError.at(path, f"not a readable JSON dashboard: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("dashboard"), dict):
        data = data["dashboard"]
    if not isinstance(data, dict) or not isinstance(data.get("panels"), list):
        raise ConfigError.at(path, "not a Grafana dashboard (no panels list)", field="panels")
    return data


# -- Prometheus rule files ---------------------------------------------------------------------------------
class Rule(StrictModel):
    """One alerting (``alert``) or recording (``record``) rule."""

    alert: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    record: str | None = Field(default=None, pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
    expr: str = Field(min_length=1)
    for_: str | None = Field(default=None, alias="for", pattern=r"^(\d+(ms|s|m|h|d|w|y))+$")
    keep_firing_for: str | None = Field(default=None, pattern=r"^(\d+(ms|s|m|h|d|w|y))+$")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_kind(self) -> Rule:
        if (self.alert is None) == (self.record is None):
            raise ValueError("a rule has exactly one of alert or record")
        if self.record is not None and (self.for_ or self.keep_firing_for or self.annotations):
            raise ValueError("a recording rule takes no for, keep_firing_for or annotations")
        try:
            metric_names(self.expr)
        except ValueError as exc:
            raise ValueError(f"expr is not valid PromQL: {exc}") from exc
        return self


class RuleGroup(StrictModel):
    name: str = Field(min_length=1)
    interval: str | None = Field(default=None, pattern=r"^(\d+(ms|s|m|h|d|w|y))+$")
    query_offset: str | None = Field(default=None, pattern=r"^(\d+(ms|s|m|h|d|w|y))+$")
    limit: int | None = Field(default=None, ge=0)
    rules: list[Rule] = Field(min_length=1)


class RuleFile(StrictModel):
    """Prometheus's rule file (``rule_files:`` in prometheus.yml)."""

    groups: list[RuleGroup] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_groups(self) -> RuleFile:
        names = [g.name for g in self.groups]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rule group names must be unique: {', '.join(dupes)}")
        return self


def load_rule_file(path: Path, *, display: str | None = None) -> RuleFile:
    """Read and schema-check a Prometheus rule file (errors name file, line and field)."""
    return load_model(RuleFile, path, display=display)


def rule_queries(rules: RuleFile, name: str = "rules") -> list[Query]:
    return [
        Query(f"{name}: {group.name}/{rule.alert or rule.record}", rule.expr)
        for group in rules.groups
        for rule in group.rules
    ]


# -- what the exporters expose, and what is missing ----------------------------------------------------------
def exposed_metrics(exposition: str) -> set[str]:
    """Every series name a ``/metrics`` page (Prometheus text format) can answer: sample names, and for a
    family declared without samples yet (a labelled counter before its first increment), its suffixed names."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.add(family.name)
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


def missing_metrics(queries: Iterable[Query], exposed: set[str]) -> tuple[dict[str, list[str]], list[Problem]]:
    """Metric names the queries select that ``exposed`` lacks (name -> where it is queried), and the
    queries that do not parse."""
    missing: dict[str, list[str]] = {}
    invalid: list[Problem] = []
    for query in queries:
        try:
            names = metric_names(query.expr)
        except ValueError as exc:
            invalid.append(Problem(query.source, f"not valid PromQL: {exc}: {query.expr}"))
            continue
        for metric in sorted(names - exposed):
            missing.setdefault(metric, []).append(query.source)
    return missing, invalid
