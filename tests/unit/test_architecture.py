"""Structure the architecture issue asked for, beyond the import contracts (`lint-imports` in `make lint`)."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "llmops"


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_is_over_400_lines() -> None:
    long = {p.relative_to(PACKAGE).as_posix(): n for p in _modules() if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"split these modules (one concept each): {long}"


def test_only_the_registry_names_an_mlflow_client() -> None:
    outside = [
        p.relative_to(PACKAGE).as_posix()
        for p in _modules()
        if "MlflowClient" in p.read_text() and p.relative_to(PACKAGE).parts[0] != "registry"
    ]
    assert not outside, f"services get registry stores, never an MlflowClient: {outside}"
