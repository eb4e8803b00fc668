"""serving/rollout.yaml: the example is valid; a malformed one reports every error with file:line [field];
``llmops validate`` cross-checks it with serving/gateway.yaml; ``--steps`` parsing."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from llmops.config.gateway import load_gateway_file
from llmops.config.rollout import ChecksSpec, RouteRollout, load_rollout_file, parse_steps, rollout_arms
from llmops.errors import ConfigError, ValidationFailed
from llmops.validate import validate_workspace

REPO = Path(__file__).resolve().parents[2]
Cli = Callable[..., subprocess.CompletedProcess[str]]

BROKEN = """\
version: 1
replicas: [gateway-1:8080]
interval_s: 0.05
routes:
  support-triage:
    confidence: 1.5
    steps:
      - {weight: 50}
      - {weight: 10, min_duration: 5 minutes}
      - {weight: 100, min_duration: 10m, max_duration: 1m}
    checks:
      error_rate: {max_increase: 0.01}
      toxicity: {max: 0.1}
"""


def test_the_example_spec_is_valid_and_describes_the_example_route() -> None:
    spec = load_rollout_file(REPO / "serving" / "rollout.yaml")
    route = spec.routes["support-triage"]
    assert [s.weight for s in route.steps] == [10, 50, 100]
    assert route.steps[0].min_duration_s == 30 and route.steps[0].max_duration_s == 1800
    assert route.confidence == 0.98
    assert route.checks.enabled() == ["error_rate", "latency", "json_validity"]
    assert spec.request_log == ["logs/gateway-requests*.jsonl"]
    gateway = load_gateway_file(REPO / "serving" / "gateway.yaml")
    assert rollout_arms(gateway, "support-triage") == ("stable", "canary")


def test_a_malformed_spec_reports_every_error_with_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "rollout.yaml"
    path.write_text(BROKEN)
    with pytest.raises(ValidationFailed) as caught:
        load_rollout_file(path, display="serving/rollout.yaml")
    shown = [str(p) for p in caught.value.problems]
    expected = {
        "replicas": 2,
        "interval_s": 3,
        "routes.support-triage.confidence": 6,
        "routes.support-triage.steps.1.min_duration": 9,
        "routes.support-triage.steps.2": 10,  # max_duration shorter than min_duration
        "routes.support-triage.checks.toxicity": 13,  # unknown check
    }
    for field, line in expected.items():
        assert any(s.startswith(f"serving/rollout.yaml:{line} [{field}") for s in shown), (field, shown)
    assert all(re.match(r"serving/rollout\.yaml:\d+ \[[^\]]+\]: ", s) for s in shown), shown


def test_step_weights_must_increase_and_checks_left_out_are_off(tmp_path: Path) -> None:
    path = tmp_path / "rollout.yaml"
    path.write_text("version: 1\nroutes:\n  r:\n    steps:\n      - {weight: 50}\n      - {weight: 10}\n")
    with pytest.raises(ValidationFailed) as caught:
        load_rollout_file(path, display="serving/rollout.yaml")
    assert str(caught.value).startswith("serving/rollout.yaml:4 [routes.r.steps]: ")
    assert "strictly increasing" in str(caught.value)

    path.write_text("routes:\n  r:\n    steps: [{weight: 100}]\n    checks: {json_validity: {}}\n")
    assert load_rollout_file(path).routes["r"].checks.enabled() == ["json_validity"]
    path.write_text("routes:\n  r:\n    steps: [{weight: 100}]\n")
    assert load_rollout_file(path).routes["r"].checks.enabled() == ["error_rate", "latency"]
    path.write_text("routes:\n  r:\n    steps: [{weight: 100}]\n    checks: {}\n")
    with pytest.raises(ValidationFailed, match=r"rollout.yaml:4 \[routes.r.checks\]: .*at least one check"):
        load_rollout_file(path)


def test_parse_steps_takes_weights_from_the_text_and_the_rest_from_the_first_step() -> None:
    base = RouteRollout.model_validate(
        {"steps": [{"weight": 20, "min_duration": "1m", "min_samples": 40, "max_duration": "10m"}, {"weight": 100}]}
    )
    steps = parse_steps("5, 25,100", base)
    assert [s.weight for s in steps] == [5, 25, 100]
    assert {(s.min_duration_s, s.min_samples, s.max_duration_s) for s in steps} == {(60.0, 40, 600.0)}
    for bad in ("10,x", "50,10", "0,100", "10,101", ""):
        with pytest.raises(ConfigError, match=r"--steps"):
            parse_steps(bad, base)
    assert ChecksSpec().enabled() == ["error_rate", "latency"]


def _workspace(tmp_path: Path, gateway_edit: Callable[[str], str], rollout: str) -> Path:
    (tmp_path / "serving").mkdir(parents=True)
    gateway = (REPO / "serving" / "gateway.yaml").read_text()
    (tmp_path / "serving" / "gateway.yaml").write_text(gateway_edit(gateway))
    (tmp_path / "serving" / "rollout.yaml").write_text(rollout)
    return tmp_path


def test_validate_checks_the_committed_rollout_spec(tmp_path: Path) -> None:
    (tmp_path / "serving").mkdir()
    for name in ("gateway.yaml", "rollout.yaml"):
        shutil.copy(REPO / "serving" / name, tmp_path / "serving" / name)
    checked, problems = validate_workspace(tmp_path)
    assert (checked, problems) == (2, [])
    (tmp_path / "serving" / "rollout.yaml").write_text(BROKEN)
    _checked, problems = validate_workspace(tmp_path)
    assert {p.file for p in problems} == {"serving/rollout.yaml"} and len(problems) >= 6


def test_validate_cross_checks_routes_arms_and_capture(tmp_path: Path) -> None:
    rollout = (REPO / "serving" / "rollout.yaml").read_text()
    rollout += "  unknown-route:\n    steps: [{weight: 100}]\n"
    root = _workspace(
        tmp_path,
        lambda g: g.replace("capture: 0.2", "capture: 0.0").replace("release: canary", "release: production"),
        rollout,
    )
    _checked, problems = validate_workspace(root)
    shown = [str(p) for p in problems]
    lines = rollout.splitlines()
    route_line = next(i for i, line in enumerate(lines, 1) if line.startswith("  support-triage:"))
    unknown_line = lines.index("  unknown-route:") + 1
    assert any(
        s.startswith(f"serving/rollout.yaml:{route_line} [routes.support-triage]: ")
        and "exactly one target with release: production" in s
        for s in shown
    ), shown
    assert any(
        s.startswith(f"serving/rollout.yaml:{unknown_line} [routes.unknown-route]: ") and "no route" in s for s in shown
    ), shown
    assert len(problems) == 2, shown  # the capture check waits until the route has both arms

    root = _workspace(
        tmp_path / "second",
        lambda g: g.replace("capture: 0.2", "capture: 0.0"),
        rollout.replace("  unknown-route:\n    steps: [{weight: 100}]\n", ""),
    )
    _checked, problems = validate_workspace(root)
    json_line = next(i for i, line in enumerate(lines, 1) if line.lstrip().startswith("json_validity:"))
    assert [str(p) for p in problems] == [
        f"serving/rollout.yaml:{json_line} [routes.support-triage.checks.json_validity]: json_validity needs captured"
        " requests: set routes.support-triage.capture > 0 in serving/gateway.yaml"
    ]


def test_llmops_validate_exits_non_zero_naming_the_rollout_field(tmp_path: Path, invoke_llmops: Cli) -> None:
    root = _workspace(tmp_path, lambda g: g, BROKEN)
    result = invoke_llmops("validate", cwd=root, env={"LLMOPS_HOME": str(tmp_path / "h")})
    assert result.returncode != 0
    assert "serving/rollout.yaml:13 [routes.support-triage.checks.toxicity]" in result.stdout + result.stderr
