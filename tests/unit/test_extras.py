"""Installs per role: a command whose extra is missing names the extra to install; the gateway role's
commands (``--help``, ``validate``, the ``serve gateway`` start path) run without any heavy stack.

A module is made "not installed" in a child process the way Python itself spells it: ``sys.modules[name] =
None`` (``import name`` then raises ImportError, ``importlib.util.find_spec(name)`` returns None).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llmops.errors import LlmopsError, MissingExtra
from llmops.extras import missing_modules, require

#: what the gateway role (`pip install 'llmops[gateway]'`) does not install
HEAVY = (
    "torch", "vllm", "ray", "ragas", "transformers", "peft", "datasets", "sentence_transformers", "sklearn",
    "scipy", "pandas", "numpy",
)  # fmt: skip


def run_cli(args: list[str], blocked: tuple[str, ...], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``llmops ARGS`` in a child process in which the ``blocked`` modules are not installed."""
    code = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        f"sys.argv = ['llmops', *{args!r}]\n"
        "from llmops.cli.main import main\n"
        "main()\n"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=100)


def test_require_names_the_extra_and_the_missing_modules() -> None:
    with pytest.raises(MissingExtra) as caught:
        require("finetune run", "train", "json", "llmops_no_such_module", "llmops_nor_this.sub")
    assert str(caught.value) == (
        "llmops finetune run needs the train extra: pip install 'llmops[train]' "
        "(missing: llmops_no_such_module, llmops_nor_this.sub)"
    )
    assert isinstance(caught.value, LlmopsError) and caught.value.exit_code == 2


def test_require_passes_when_the_modules_are_installed() -> None:
    require("serve gateway", "gateway")  # this venv has every extra (make install)
    assert missing_modules("json", "llmops") == []


def test_the_engine_extra_offers_the_cpu_and_the_gpu_build() -> None:
    with pytest.raises(MissingExtra, match=r"'llmops\[engine-cpu\]' or 'llmops\[engine-gpu\]' \(missing: nope_x\)"):
        require("serve engine", "engine", "nope_x")


@pytest.mark.parametrize(
    ("args", "blocked", "line"),
    [
        (["finetune", "run", "job.yaml"], ("torch",), "llmops finetune run needs the train extra: "
         "pip install 'llmops[train]' (missing: torch)"),
        (["serve", "engine"], ("vllm",), "llmops serve engine needs the engine-cpu or engine-gpu extra"),
        (["rollout", "status", "support"], ("numpy", "scipy"), "pip install 'llmops[monitor]' (missing: numpy, scipy)"),
        (["registry", "serve"], ("flask",), "pip install 'llmops[registry]' (missing: flask)"),
        (["eval", "run", "suite.yaml"], ("ragas",), "pip install 'llmops[evals]' (missing: ragas)"),
    ],
)  # fmt: skip
def test_a_command_without_its_extra_exits_2_naming_the_extra(
    tmp_path: Path, args: list[str], blocked: tuple[str, ...], line: str
) -> None:
    (tmp_path / "suite.yaml").write_text("name: s\n")  # `eval run` checks that its suite file exists first
    done = run_cli(args, blocked, tmp_path)
    assert done.returncode == 2, done.stderr
    assert line in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr


def test_help_and_validate_run_without_any_heavy_stack(tmp_path: Path) -> None:
    assert run_cli(["init", str(tmp_path / "ws")], HEAVY, tmp_path).returncode == 0
    helped = run_cli(["--help"], HEAVY, tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "serve" in helped.stdout
    validated = run_cli(["validate"], HEAVY, tmp_path / "ws")
    assert validated.returncode == 0, validated.stderr
    assert "valid" in validated.stdout


def test_the_gateway_start_path_imports_no_heavy_stack() -> None:
    code = (
        "import sys\n"
        "import llmops.cli.main\n"
        "from llmops.gateway.app import build_app\n"
        "from llmops.gateway.resolver import RegistryResolver\n"
        "from llmops.gateway.settings import settings_from_file\n"
        "from llmops.registry import connect\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=100, check=True)
    assert done.stdout.strip() == "[]"


def test_doctor_warns_naming_the_extra_of_a_stack_that_is_not_installed(tmp_path: Path) -> None:
    assert run_cli(["init", str(tmp_path / "ws")], HEAVY, tmp_path).returncode == 0
    done = run_cli(["doctor", "--json"], (*HEAVY, "langchain"), tmp_path / "ws")
    checks = {c["name"]: c for c in json.loads(done.stdout)}
    assert checks["import ragas"]["status"] == "warn"
    assert checks["import ragas"]["detail"] == "not installed (the evals extra)"
    assert checks["GPU"] == {"name": "GPU", "status": "warn", "detail": "torch not installed (the train extra)"}
    assert done.returncode == 0, done.stderr  # nothing failed: a role's install lacks the other roles' stacks
