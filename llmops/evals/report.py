"""Eval reports: ``report.json`` (everything), ``report.html`` (plots for people), ``junit.xml`` (for CI)."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from llmops.evals.draft import DraftRelease
from llmops.evals.gates import GateResult
from llmops.evals.scoring import ReleaseScores


@dataclass(frozen=True)
class EvalOutcome:
    suite: str
    suite_hash: str
    candidate: ReleaseScores
    production: ReleaseScores | None
    production_source: str  # "record <run id>", "computed in this run", "no production release", …
    gates: list[GateResult]

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)


def _num(v: float | None) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def _draft(s: ReleaseScores) -> dict[str, Any]:
    """A draft prompt's file and content hash (its release has no registry version; ``key`` is not a release key)."""
    if not isinstance(s.release, DraftRelease):
        return {}
    return {"draft_prompt": {"path": s.release.path, "content_sha256": s.release.content_sha256}}


def to_json(outcome: EvalOutcome) -> dict[str, Any]:
    def scores(s: ReleaseScores | None) -> dict[str, Any] | None:
        if s is None:
            return None
        return {
            "release": {**s.release.release.canonical(), "key": s.release.key, "label": s.release.label(), **_draft(s)},
            "metrics": {k: _num(v) for k, v in s.metrics.items()},
            "bias": None if s.bias is None else {
                "gap": _num(s.bias.gap), "change_rate": _num(s.bias.change_rate),
                "group_scores": {k: _num(v) for k, v in s.bias.group_scores.items()}, "variants": s.bias.variants,
            },
            "cached": s.cached,
            "errors": s.errors,
            "cases": [{k: (_num(v) if isinstance(v, float) else v) for k, v in row.items()} for row in s.cases],
        }  # fmt: skip

    return {
        "suite": outcome.suite,
        "suite_hash": outcome.suite_hash,
        "verdict": "pass" if outcome.passed else "fail",
        "gates": [
            {
                "metric": g.metric,
                "rule": g.rule,
                "candidate": _num(g.candidate),
                "production": _num(g.production),
                "passed": g.passed,
            }
            for g in outcome.gates
        ],  # fmt: skip
        "production_source": outcome.production_source,
        "candidate": scores(outcome.candidate),
        "production": scores(outcome.production),
    }


def to_junit(outcome: EvalOutcome) -> str:
    suite = ET.Element(
        "testsuite",
        name=f"llmops-eval.{outcome.suite}",
        tests=str(len(outcome.gates)),
        failures=str(sum(not g.passed for g in outcome.gates)),
    )
    for gate in outcome.gates:
        case = ET.SubElement(
            suite, "testcase", classname=f"llmops.eval.{outcome.suite}", name=f"{gate.metric} {gate.rule}"
        )
        if not gate.passed:
            failure = ET.SubElement(case, "failure", message=gate.line())
            failure.text = gate.line()
    root = ET.Element("testsuites")
    root.append(suite)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _bar_png(title: str, labels: list[str], series: dict[str, list[float]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(labels) + 2), 3.2))
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        xs = [x + i * width for x in range(len(labels))]
        ax.bar(xs, [0 if math.isnan(v) else v for v in values], width, label=name)
    ax.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(labels))], labels, rotation=20, ha="right")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def to_html(outcome: EvalOutcome) -> str:
    cand, prod = outcome.candidate, outcome.production
    quality = [k for k in cand.metrics if not k.endswith("_ms")]
    timing = [k for k in cand.metrics if k.endswith("_ms")]
    images = []
    for title, keys in (("quality and bias (candidate vs production)", quality), ("latency, ms", timing)):
        if keys:
            series = {"candidate": [cand.metrics[k] for k in keys]}
            if prod is not None:
                series["production"] = [prod.metrics.get(k, float("nan")) for k in keys]
            images.append((title, _bar_png(title, keys, series)))
    if cand.bias is not None:
        groups = sorted(cand.bias.group_scores)
        series = {"candidate": [cand.bias.group_scores[g] for g in groups]}
        if prod is not None and prod.bias is not None:
            series["production"] = [prod.bias.group_scores.get(g, float("nan")) for g in groups]
        images.append(("bias: score per group", _bar_png("score per group", groups, series)))
    rows = "".join(
        f"<tr class={'pass' if g.passed else 'fail'}><td>{'PASS' if g.passed else 'FAIL'}</td><td>{html.escape(g.metric)}</td>"
        f"<td>{html.escape(g.rule)}</td><td>{g.candidate:.4g}</td><td>{'' if g.production is None else f'{g.production:.4g}'}</td></tr>"
        for g in outcome.gates
    )
    cases = "".join(
        f"<tr><td>{html.escape(str(r['id']))}</td><td><code>{html.escape(str(r['output']))}</code></td>"
        f"<td><code>{html.escape(str(r.get('reference')))}</code></td></tr>"
        for r in cand.cases[:200]
    )
    verdict = "PASS" if outcome.passed else "FAIL"
    figs = "".join(
        f"<h3>{html.escape(t)}</h3><img alt='{html.escape(t)}' src='data:image/png;base64,{b}'>" for t, b in images
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>llmops eval {html.escape(outcome.suite)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 8px;border-bottom:1px solid #ddd}}
.pass td:first-child{{color:green}}.fail td:first-child{{color:#b00}}</style></head><body>
<h1>{html.escape(outcome.suite)}: {verdict}</h1>
<p>candidate: {html.escape(cand.release.label())}<br>production: {html.escape(prod.release.label() if prod else "no production release")}
 ({html.escape(outcome.production_source)})<br>suite hash: <code>{outcome.suite_hash[:16]}</code></p>
<h2>Gates</h2><table><tr><th></th><th>metric</th><th>rule</th><th>candidate</th><th>production</th></tr>{rows}</table>
<h2>Plots</h2>{figs}<h2>Cases (first 200)</h2><table><tr><th>id</th><th>output</th><th>reference</th></tr>{cases}</table>
</body></html>"""


def write_reports(outcome: EvalOutcome, folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "report.json": folder / "report.json",
        "report.html": folder / "report.html",
        "junit.xml": folder / "junit.xml",
    }
    paths["report.json"].write_text(json.dumps(to_json(outcome), indent=2))
    paths["report.html"].write_text(to_html(outcome))
    paths["junit.xml"].write_text(to_junit(outcome))
    return paths
