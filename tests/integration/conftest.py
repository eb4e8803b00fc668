"""Shared integration fixtures: a quickly built reference model and a real vLLM server over it.

``tiny_model_path`` builds the reference architecture with few pretraining steps, once per session
(~15-40 s on 2 cores). Set ``LLMOPS_TEST_MODELS_DIR`` to a folder to keep the build between sessions:
the cache is keyed by config hash, so a changed corpus or spec rebuilds by itself.

``vllm_engine`` starts ``python -m vllm.entrypoints.openai.api_server`` over that model on a free
loopback port (LoRA enabled), once per session (~70-90 s here), and stops it by its PID at the end.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from llmops.engine import EngineSettings, start_engine
from llmops.models.reference import ensure_reference_model
from llmops.models.spec import ReferenceSpec
from llmops.process import ManagedProcess, free_port

#: Enough steps for replies that look like support-desk text; few enough to build in well under a minute.
TEST_MODEL_SPEC = ReferenceSpec(seed=0, steps=80, corpus_docs=1500)
ENGINE_MODEL_NAME = "reference"


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a reference model (real architecture and tokenizer, short pretraining)."""
    cache = os.environ.get("LLMOPS_TEST_MODELS_DIR")
    models_dir = Path(cache) if cache else tmp_path_factory.mktemp("models")
    return ensure_reference_model(models_dir, spec=TEST_MODEL_SPEC).path


@dataclass(frozen=True)
class RunningEngine:
    """A vLLM OpenAI server started for the test session."""

    settings: EngineSettings
    process: ManagedProcess
    log_path: Path

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    @property
    def url(self) -> str:
        return self.settings.url

    @property
    def model_name(self) -> str:
        return self.settings.model_name

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(scope="session")
def vllm_engine(tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    """vLLM's OpenAI server over ``tiny_model_path``, LoRA enabled (rank <= 16, runtime loading on)."""
    settings = EngineSettings(
        model=str(tiny_model_path),
        port=free_port(),
        served_model_name=ENGINE_MODEL_NAME,
        max_loras=2,
    )
    log_path = tmp_path_factory.mktemp("vllm") / "vllm.log"
    process = start_engine(settings, log_path)
    engine = RunningEngine(settings, process, log_path)
    try:
        yield engine
    finally:
        process.stop()
    deadline = time.monotonic() + 10
    while not _gone(engine.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not process.alive()
    assert _gone(engine.pid), f"vLLM server pid {engine.pid} still exists after stop()"
