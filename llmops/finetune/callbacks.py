"""Trainer callbacks of the recipe: stop on a signal, mark checkpoints complete, show and log progress.

Each callback does one thing and knows nothing about MLflow: metrics go to a plain function the caller
passes (``on_metrics(step, {"loss": ..., "tokens_per_s": ...})``).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

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


class ProgressDisplay:
    """A rich progress bar (steps, loss, tokens/s, ETA); plain lines every ``every`` steps off a terminal."""

    def __init__(self, console: Console, *, every: int = 10) -> None:
        self.console = console
        self.every = every
        self._bar: Progress | None = None
        self._task: Any = None
        self._printed = -1
        self._t0 = 0.0
        self._step0 = 0

    def start(self, total: int, done: int) -> None:
        self._t0, self._step0 = time.monotonic(), done
        if not self.console.is_terminal:
            self.console.print(f"training: step {done}/{total}")
            return
        self._bar = Progress(
            TextColumn("training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  {task.fields[tps]} tok/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self._bar.start()
        self._task = self._bar.add_task("train", total=total, completed=done, loss="-", tps="-")

    def update(self, step: int, total: int, loss: float | None, tokens_per_s: float) -> None:
        loss_text = f"{loss:.4f}" if loss is not None else "-"
        if self._bar is not None:
            self._bar.update(self._task, completed=step, loss=loss_text, tps=f"{tokens_per_s:,.0f}")
        elif (step % self.every == 0 or step == total) and step != self._printed:
            self._printed = step  # eval and the final summary log again at the same step: print once
            done = step - self._step0
            eta = (total - step) * (time.monotonic() - self._t0) / done if done > 0 else 0.0
            self.console.print(f"step {step}/{total}  loss {loss_text}  {tokens_per_s:,.0f} tok/s  ETA {eta:.0f} s")

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


class Telemetry(TrainerCallback):
    """Throughput in real (non-padding) tokens per second, per-step metrics to a sink, and the display.

    Tokens come from ``state.num_input_tokens_seen`` (TrainingArguments
    ``include_num_input_tokens_seen="non_padding"``), so padding never counts as work done.
    """

    def __init__(self, on_metrics: MetricsSink | None = None, display: ProgressDisplay | None = None) -> None:
        self.on_metrics = on_metrics
        self.display = display
        self.last_loss: float | None = None
        self.tokens_per_s = 0.0
        self.train_tokens = 0
        self.train_seconds = 0.0
        self._t = 0.0
        self._tokens = 0

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        self._t = time.perf_counter()
        self._tokens = state.num_input_tokens_seen
        if self.display is not None and state.is_world_process_zero:
            self.display.start(state.max_steps, state.global_step)

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
        if self.display is not None and state.is_world_process_zero:
            self.display.update(state.global_step, state.max_steps, self.last_loss, self.tokens_per_s)
        if metrics and self.on_metrics is not None and state.is_world_process_zero:
            self.on_metrics(state.global_step, metrics)

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        if self.display is not None:
            self.display.stop()
