"""Check every YAML file of a workspace and report all problems at once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from llmops.config.gateway import load_gateway_file
from llmops.config.monitor import load_monitor_file
from llmops.config.workspace import CONFIG_FILE, WorkspaceFile
from llmops.config.yamlio import load_model, parse_yaml
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


def _check_serving(path: Path, shown: str) -> list[Problem]:
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
