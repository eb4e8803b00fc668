"""Check every YAML file of a workspace and report all problems at once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from llmops.config.gateway import GatewayFile, load_gateway_file
from llmops.config.monitor import load_monitor_file
from llmops.config.rollout import CAPTURE_CHECKS, RolloutFile, rollout_arms
from llmops.config.workspace import CONFIG_FILE, MIN_LOG_RETENTION_DAYS, WorkspaceFile
from llmops.config.yamlio import LineIndex, check_model_file, line_of, load_model, parse_yaml
from llmops.errors import ConfigError, Problem
from llmops.evals.files import check_suite_file
from llmops.finetune.job import check_job_file
from llmops.monitor.dashboards import load_rule_file
from llmops.prompts.files import check_file as check_prompt_file

Checker = Callable[[Path, str], list[Problem]]


def _check_prompt(path: Path, shown: str) -> list[Problem]:
    return check_prompt_file(path, display=shown)[1]


def _check_eval(path: Path, shown: str) -> list[Problem]:
    return check_suite_file(path, display=shown)[1]


#: files under serving/ with a schema; any other YAML there (e.g. prometheus/alerts.yml) gets a syntax check
SERVING_SCHEMAS: dict[str, Callable[..., object]] = {
    "serving/gateway.yaml": load_gateway_file,
    "serving/monitor.yaml": load_monitor_file,
    "serving/prometheus/alerts.yml": load_rule_file,  # every expr must parse as PromQL
}


ROLLOUT_FILE = "serving/rollout.yaml"


def _check_rollout(path: Path, shown: str) -> list[Problem]:
    """The rollout spec's schema, then per route: the route exists in serving/gateway.yaml beside it, has one
    ``release: production`` (stable) and one ``release: canary`` target, and captures outputs when a check
    reads them. A gateway file that does not load is reported on its own; the cross-checks then wait."""
    spec, problems, lines = check_model_file(RolloutFile, path, display=shown)
    if spec is None:
        return problems
    try:
        gateway = load_gateway_file(path.parent / "gateway.yaml", display="serving/gateway.yaml")
    except ConfigError:
        return problems
    return problems + _rollout_cross_checks(spec, gateway, shown, lines)


def _rollout_cross_checks(spec: RolloutFile, gateway: GatewayFile, shown: str, lines: LineIndex) -> list[Problem]:
    problems: list[Problem] = []

    def problem(loc: tuple[str, ...], message: str) -> None:
        problems.append(Problem(shown, message, field=".".join(loc), line=line_of(lines, loc)))

    for route, rollout in spec.routes.items():
        loc = ("routes", route)
        try:
            rollout_arms(gateway, route)
        except ConfigError as exc:
            problem(loc, f"serving/gateway.yaml [{exc.problem.field}]: {exc.problem.message}")
            continue
        capture = gateway.routes[route].capture
        for check in CAPTURE_CHECKS:
            if getattr(rollout.checks, check) is not None and capture <= 0:
                problem(
                    (*loc, "checks", check),
                    f"{check} needs captured requests: set routes.{route}.capture > 0 in serving/gateway.yaml",
                )
    return problems


def _check_serving(path: Path, shown: str) -> list[Problem]:
    if shown == ROLLOUT_FILE:
        return _check_rollout(path, shown)
    loader = SERVING_SCHEMAS.get(shown)
    if loader is None:
        return _check_yaml_syntax(path, shown)
    try:
        loader(path, display=shown)
    except ConfigError as exc:
        return list(getattr(exc, "problems", [exc.problem]))
    return []


def _check_finetune(path: Path, shown: str) -> list[Problem]:
    """Fine-tune job schema (all problems, with lines) and that its data files exist.

    ``finetune/data/`` holds the jobs' JSONL data (and perhaps YAML that is not a job): not checked here;
    ``llmops data validate`` checks data.
    """
    parts = Path(shown).parts
    if len(parts) > 2 and parts[1] == "data":
        return []
    root = path.resolve().parents[len(parts) - 1]
    return check_job_file(path, root, display=shown)[1]


def _check_yaml_syntax(path: Path, shown: str) -> list[Problem]:
    try:
        parse_yaml(path.read_text(encoding="utf-8"), shown)
    except ConfigError as exc:
        return [exc.problem]
    except (OSError, UnicodeDecodeError) as exc:
        return [Problem(shown, f"cannot read file: {exc}")]
    return []


# folder -> checker; folders without a schema yet get a YAML syntax check
CHECKERS: tuple[tuple[str, Checker], ...] = (
    ("prompts", _check_prompt),
    ("finetune", _check_finetune),
    ("serving", _check_serving),
    ("evals", _check_eval),
)


def yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml"))


def validate_workspace(root: Path) -> tuple[int, list[Problem]]:
    """Return (number of files checked, every problem found) for the workspace at ``root``."""
    problems: list[Problem] = []
    checked = 0
    cfg = root / CONFIG_FILE
    if cfg.is_file():
        checked += 1
        try:
            load_model(WorkspaceFile, cfg, display=CONFIG_FILE)
        except ConfigError as exc:
            problems.extend(getattr(exc, "problems", [exc.problem]))
    for folder, checker in CHECKERS:
        for path in yaml_files(root / folder):
            checked += 1
            problems.extend(checker(path, path.relative_to(root).as_posix()))
    return checked, problems


def workspace_warnings(root: Path) -> list[Problem]:
    """What is valid but unwise (``llmops validate`` prints it and still succeeds): request logs kept for
    less than six months, which the EU AI Act asks deployers to keep (Art. 26(6), Art. 19)."""
    cfg = root / CONFIG_FILE
    if not cfg.is_file():
        return []
    spec, _problems, lines = check_model_file(WorkspaceFile, cfg, display=CONFIG_FILE)
    if spec is None or spec.retention.request_logs_days >= MIN_LOG_RETENTION_DAYS:
        return []
    loc = ("retention", "request_logs_days")
    message = (f"request logs are kept {spec.retention.request_logs_days} days; the EU AI Act asks deployers to keep "
               f"them at least six months ({MIN_LOG_RETENTION_DAYS} days, Art. 26(6) and 19)")  # fmt: skip
    return [Problem(CONFIG_FILE, message, field=".".join(loc), line=line_of(lines, loc))]
