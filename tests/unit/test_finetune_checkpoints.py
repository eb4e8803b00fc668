"""Complete-or-ignored checkpoints, and the callback that stops on SIGTERM."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from transformers import TrainerControl, TrainerState, TrainingArguments

from llmops.finetune.callbacks import StopOnSignal
from llmops.finetune.checkpoints import MARKER, all_checkpoints, latest_complete, mark_complete, prune


def make(folder: Path, step: int, complete: bool) -> Path:
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "adapter_model.safetensors").write_bytes(b"x")
    if complete:
        mark_complete(path, {"step": step})
    return path


def test_latest_complete_ignores_partial_checkpoints(tmp_path: Path) -> None:
    assert latest_complete(tmp_path / "none") is None
    make(tmp_path, 5, True)
    ten = make(tmp_path, 10, True)
    make(tmp_path, 15, False)  # killed while writing
    (tmp_path / "adapter").mkdir()  # not a checkpoint
    assert [p.name for p in all_checkpoints(tmp_path)] == ["checkpoint-5", "checkpoint-10", "checkpoint-15"]
    assert latest_complete(tmp_path) == ten
    assert not list(ten.glob(".marker-*")) and (ten / MARKER).is_file()  # no temp file left behind


def test_prune_only_after_a_newer_checkpoint_is_complete(tmp_path: Path) -> None:
    five = make(tmp_path, 5, True)
    partial = make(tmp_path, 10, False)
    assert prune(tmp_path, keep=partial) == []  # never prune in favour of an unfinished checkpoint
    assert five.exists()
    mark_complete(partial, {"step": 10})
    assert prune(tmp_path, keep=partial) == [five]
    assert [p.name for p in all_checkpoints(tmp_path)] == ["checkpoint-10"]


def test_sigterm_asks_for_a_checkpoint_and_a_stop(tmp_path: Path) -> None:
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    state, control = TrainerState(), TrainerControl()
    callback = StopOnSignal()
    before = signal.getsignal(signal.SIGTERM)
    callback.on_train_begin(args, state, control)
    try:
        callback.on_step_end(args, state, control)
        assert not control.should_save and not control.should_training_stop
        os.kill(os.getpid(), signal.SIGTERM)  # handled: the flag is set, the process lives on
        callback.on_step_end(args, state, control)
        assert control.should_save and control.should_training_stop
        assert callback.stopped_by == "SIGTERM"
    finally:
        callback.on_train_end(args, state, control)
    assert signal.getsignal(signal.SIGTERM) == before


def test_every_checkpoint_file_is_on_disk_before_the_marker(tmp_path: Path, monkeypatch) -> None:
    """A power loss after the marker must not find a marked checkpoint whose files were never flushed."""
    path = make(tmp_path, 20, False)
    (path / "optimizer.pt").write_bytes(b"o" * 1000)
    (path / "rng").mkdir()
    (path / "rng" / "state.pth").write_bytes(b"r")
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        events.append(("replace", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    mark_complete(path, {"step": 20})

    marker_at = events.index(("replace", str(path / MARKER)))
    synced_before = {p for kind, p in events[:marker_at] if kind == "fsync"}
    files = {str(p) for p in path.rglob("*") if p.is_file() and p.name != MARKER}
    assert files <= synced_before, f"not fsync'd before the marker: {sorted(files - synced_before)}"
    assert {str(path), str(path / "rng")} <= synced_before  # their entries (names) too
    assert ("fsync", str(path)) in events[marker_at + 1 :]  # and the marker's own entry, after the rename
