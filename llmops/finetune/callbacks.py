"""Trainer callbacks of the recipe: stop on a signal, mark checkpoints complete, report and log progress.

Each callback does one thing and knows nothing about MLflow or the terminal: metrics go to a plain
function the caller passes (``on_metrics(step, {"loss": ..., "tokens_per_s": ...})``), progress to a
:class:`~llmops.events.Reporter` task (``training``: step/total, loss, tokens per second).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from llmops.events import SILENT, Reporter, Task
from llmops.finetune.checkpoints import mark_complete, prune

MetricsSink = Callable[[int, dict[str, float]], None]
_LOGGED = ("loss", "learning_rate", "grad_norm", "eval_loss")


class StopOnSignal(TrainerCallback):
    """SIGTERM (or a first Ctrl-C) asks training to save a checkpoint at the end of the current step and stop.

    Why at a step boundary: a checkpoint taken mid-step would hold half-updated optimizer state. The
    handler only sets a flag; ``on_step_end`` turns it into ``should_save`` + ``should_training_stop``,
    and the Trainer saves and leaves its loop normally. A second Ctrl-C interrupts at once.
    """

    def __init__(self) -> None:
        self.stopped_by: str | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        sig = signal.Signals(signum)
        if self.stopped_by is not None and sig == signal.SIGINT:
            raise KeyboardInterrupt
        self.stopped_by = sig.name

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be installed from the main thread
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        if self.stopped_by is not None:
            control.should_save = True
            control.should_training_stop = True

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


class MarkCheckpoints(TrainerCallback):
    """After the Trainer has written a checkpoint, mark it complete, then prune the older ones."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.last: Path | None = None

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        if not state.is_world_process_zero:
            return
        path = Path(args.output_dir or ".") / f"checkpoint-{state.global_step}"
        if not path.is_dir():
            return
        mark_complete(path, {**self.info, "step": state.global_step, "max_steps": state.max_steps})
        prune(path.parent, keep=path)
        self.last = path


class Telemetry(TrainerCallback):
    """Throughput in real (non-padding) tokens per second, per-step metrics to a sink, and progress.

    Tokens come from ``state.num_input_tokens_seen`` (TrainingArguments
    ``include_num_input_tokens_seen="non_padding"``), so padding never counts as work done. Progress is
    one ``training`` task of the reporter (rank 0 only): steps done of ``max_steps``, ``loss``, ``tps``.
    """

    def __init__(self, on_metrics: MetricsSink | None = None, reporter: Reporter = SILENT) -> None:
        self.on_metrics = on_metrics
        self.reporter = reporter
        self._task: Task | None = None
        self.last_loss: float | None = None
        self.tokens_per_s = 0.0
        self.train_tokens = 0
        self.train_seconds = 0.0
        self._t = 0.0
        self._tokens = 0

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        self._t = time.perf_counter()
        self._tokens = state.num_input_tokens_seen
        if state.is_world_process_zero:
            self._task = self.reporter.task("training", state.max_steps, completed=state.global_step, loss="-", tps="-")

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        now = time.perf_counter()
        tokens = state.num_input_tokens_seen - self._tokens
        seconds = max(now - self._t, 1e-9)
        self.tokens_per_s = tokens / seconds
        self.train_tokens += tokens
        self.train_seconds += seconds
        self._t, self._tokens = now, state.num_input_tokens_seen

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kw: Any,
    ) -> None:
        logs = logs or {}
        if "loss" in logs:
            self.last_loss = float(logs["loss"])
        metrics = {k: float(logs[k]) for k in _LOGGED if isinstance(logs.get(k), int | float)}
        if "loss" in metrics:
            metrics["tokens_per_s"] = self.tokens_per_s
        if self._task is not None:
            loss = f"{self.last_loss:.4f}" if self.last_loss is not None else "-"
            self._task.update(state.global_step, loss=loss, tps=f"{self.tokens_per_s:,.0f}")
        if metrics and self.on_metrics is not None and state.is_world_process_zero:
            self.on_metrics(state.global_step, metrics)

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        self.close()

    def close(self) -> None:
        """End the progress task (also when training raised before ``on_train_end``)."""
        if self._task is not None:
            self._task.close()
            self._task = None
