"""Helpers shared by several unit test modules, handed out by session-scoped fixtures; a tighter timeout.

Unit tests need no servers: the slowest takes ~20 s (fixture included), so a hang fails after
:data:`UNIT_TIMEOUT_S`, not after the suite-wide limit in pyproject.toml (sized for vLLM and MLflow starts).
A test's own ``@pytest.mark.timeout`` still wins.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

UNIT_DIR = Path(__file__).resolve().parent
UNIT_TIMEOUT_S = 120


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # called with every collected item (not just this folder's): mark only the unit tests
    for item in items:
        if item.path.is_relative_to(UNIT_DIR) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(UNIT_TIMEOUT_S))


@pytest.fixture(scope="session")
def tiny_tokenizer() -> Any:
    """A real byte-level BPE tokenizer with the reference chat template, trained in well under a second."""
    from llmops.models.corpus import pretraining_texts
    from llmops.models.tokenizer import train_tokenizer

    return train_tokenizer(pretraining_texts(150, 0), vocab_size=300, model_max_length=512)


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.fixture(scope="session", name="write_jsonl")
def write_jsonl_fixture() -> Callable[[Path, list[object]], Path]:
    """``write_jsonl(path, rows)``: one line per row (strings as they are, anything else as JSON); returns ``path``."""
    return write_jsonl
