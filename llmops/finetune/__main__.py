"""``python -m llmops.finetune run JOB.yaml …``: the entrypoint of cluster jobs.

Why not the ``llmops`` console script: a Ray job's shell may not have the virtual environment's
``bin/`` on its PATH, while ``python -m`` only needs the package importable. Errors are reported
exactly as ``llmops finetune …`` reports them.
"""

from __future__ import annotations

import sys

from llmops.cli.main import app

if __name__ == "__main__":
    app(["finetune", *sys.argv[1:]], prog_name="llmops")
