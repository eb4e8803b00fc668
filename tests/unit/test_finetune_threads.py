"""How many torch threads a CPU fine-tune uses (llmops.finetune.threads)."""

from __future__ import annotations

import pytest
import torch

from llmops.finetune import threads
from llmops.finetune.job import TrainingSettings
from llmops.finetune.threads import cpu_threads
from llmops.models.torch_threads import torch_threads


@pytest.mark.parametrize(
    ("configured", "env", "cores", "expected"),
    [
        (3, {"OMP_WAIT_POLICY": "PASSIVE"}, 2, 3),  # the job's setting wins
        (None, {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "2"}, 2, None),  # torch follows OMP_NUM_THREADS
        (None, {"OMP_WAIT_POLICY": "passive"}, 2, 1),  # the CLI's setting on a 2-core machine
        (None, {"OMP_WAIT_POLICY": "PASSIVE"}, 1, 1),
        (None, {"OMP_WAIT_POLICY": "PASSIVE"}, 16, None),  # bigger machines keep torch's default
        (None, {}, 2, None),  # active waiting: two threads were fastest
    ],
)
def test_cpu_threads_rule(
    configured: int | None, env: dict[str, str], cores: int, expected: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(threads, "available_cores", lambda: cores)
    assert cpu_threads(configured, env) == expected


def test_torch_threads_restores_the_callers_setting() -> None:
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before


def test_the_job_field_is_validated() -> None:
    assert TrainingSettings(cpu_threads=2).cpu_threads == 2
    with pytest.raises(ValueError, match="cpu_threads"):
        TrainingSettings(cpu_threads=0)
