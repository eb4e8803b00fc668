"""How many torch threads a fine-tune on CPU uses.

Measured on the 2-core x86_64 machine (the worked example's LoRA on the reference model, 300 steps,
nothing else running, 2026-12-01; ``bench/finetune_threads.py``): with OpenMP's *passive*
waiting (``OMP_WAIT_POLICY=PASSIVE``, which the CLI sets so that torch threads do not starve vLLM and
MLflow sharing the cores; see :func:`llmops.cli.main.main`) two threads took 37.8 s and one 22.6 s; with
active waiting two took 18.5 s and one 23.1 s. Passive threads sleep between the model's many small ops
and are woken for each (a third of the CPU time went to the kernel), so on two cores one thread is ~1.7x
faster, and leaves the other core to the engine or gateway beside it.

The rule (:func:`cpu_threads`): the job's ``training.cpu_threads``; else ``OMP_NUM_THREADS`` when set
(torch already follows it); else one thread when OpenMP waits passively on a machine with at most two
cores; else torch's default (all cores). GPU training is not affected.
"""

from __future__ import annotations

import os

#: machines with at most this many cores train with one thread under passive OpenMP waiting
SMALL_MACHINE_CORES = 2


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cpu_threads(configured: int | None, env: dict[str, str] | None = None) -> int | None:
    """Threads for a CPU fine-tune, or None to keep torch's setting (module docstring)."""
    env = dict(os.environ) if env is None else env
    if configured is not None:
        return configured
    if env.get("OMP_NUM_THREADS"):
        return None
    passive = env.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"
    return 1 if passive and available_cores() <= SMALL_MACHINE_CORES else None
