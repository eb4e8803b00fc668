"""Run a reference model build in a child Python process.

Why a child process: the build is fastest with every core and OpenMP's *passive* waiting, and
``OMP_WAIT_POLICY`` is read once, when torch loads OpenMP, so it can only be set for a fresh process.
With the default active waiting, two threads on a 2-core machine slow down ten-fold as soon as another
process is busy (measured; see :mod:`llmops.models.pretrain`). The child also keeps torch out of the
caller (the CLI stays light, and no process-wide torch setting is touched) and returns its memory.

The child (``python -m llmops.models.build_process SPEC_JSON FOLDER``, :func:`main`) prints JSON lines,
``{"step": n, "total": m}`` after each step, then ``{"result": {...}}``; its stderr goes to a temporary
file whose tail is put in the error if the build fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import IO

from llmops.errors import LlmopsError, ModelError
from llmops.models.spec import Progress, ReferenceSpec

CHILD_MODULE = "llmops.models.build_process"


def child_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The child's environment: passive OpenMP waiting and offline hubs, unless already set."""
    env = dict(os.environ if base is None else base)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def _tail(f: IO[bytes], lines: int = 15) -> str:
    f.seek(0)
    return "\n".join(f.read().decode("utf-8", errors="replace").splitlines()[-lines:])


def build_in_child(folder: Path, spec: ReferenceSpec, progress: Progress | None = None) -> dict[str, float]:
    """Build ``spec`` into ``folder`` in a child process; return the child's result record."""
    argv = [sys.executable, "-m", CHILD_MODULE, json.dumps(spec.as_dict()), str(folder)]
    result: dict[str, float] | None = None
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, env=child_env())
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode("utf-8", errors="replace").strip()
                if not line.startswith("{"):
                    continue
                try:
                    msg = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if "result" in msg:
                    result = msg["result"]
                elif progress is not None and "step" in msg:
                    progress(float(msg["step"]), float(msg["total"]))
            code = proc.wait()
        finally:
            if proc.poll() is None:  # interrupted: do not leave a trainer running
                proc.kill()
                proc.wait()
        if code != 0 or result is None:
            raise ModelError(f"reference model build failed (exit code {code}):\n{_tail(stderr)}")
    return result


def main(argv: list[str] | None = None) -> int:
    """Child-process entry: build ``SPEC_JSON`` into the empty folder ``FOLDER``.

    Arguments are checked before torch is imported, so a bad call fails in a second, not after the
    ~10 s it takes to import torch and transformers.
    """
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(f"usage: python -m {CHILD_MODULE} SPEC_JSON FOLDER", file=sys.stderr)
        return 2
    try:
        spec = ReferenceSpec(**json.loads(args[0]))
    except (ValueError, TypeError) as exc:
        print(f"error: invalid spec: {exc}", file=sys.stderr)
        return 2
    folder = Path(args[1])
    if not folder.is_dir() or any(folder.iterdir()):
        print(f"error: {folder} is not an empty folder", file=sys.stderr)
        return 2

    from llmops.models.pretrain import build_into

    def report(done: float, total: float) -> None:
        print(json.dumps({"step": done, "total": total}), flush=True)

    try:
        result = build_into(folder, spec, report)
    except LlmopsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"result": asdict(result)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
