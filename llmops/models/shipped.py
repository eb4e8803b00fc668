"""Reference model builds shipped inside the package, so a fresh clone need not pretrain one.

Why: building the default reference model takes 3-4 minutes of a 2-core machine (see
:mod:`llmops.models.spec`), which a fresh clone's ``make demo`` would spend before anything else. The
build is deterministic per spec on one software stack (``tests/unit/test_reference_model.py``), so the
repository carries the default spec's finished build under ``llmops/models/shipped/reference-<hash>/``
(the same folder a build writes, manifest included: 4.2 MB). :func:`~llmops.models.reference.ensure_reference_model`
copies it into the models cache when the requested spec's config hash names it and its files still hash to
its manifest's ``sha256``; any other spec (seed, steps, corpus, build format) is built as before.
``llmops models bootstrap --build`` builds instead of copying, to check a shipped copy on this machine.

When the default spec or the corpus changes, replace the shipped folder with the new build
(``python -m llmops.models.shipped``; ``tests/unit/test_reference_model.py`` fails until then).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

SHIPPED_DIR = Path(__file__).with_name("shipped")


def shipped_folder(name: str, *, manifest: str = "llmops-model.json") -> Path | None:
    """The shipped build folder called ``name`` (``reference-<hash12>``), or None when none is shipped."""
    folder = SHIPPED_DIR / name
    return folder if (folder / manifest).is_file() else None


def main(argv: list[str] | None = None) -> int:
    """Build the default spec (or reuse its cached build under ``--models``) and make it the shipped one."""
    from llmops.models.reference import ensure_reference_model

    parser = argparse.ArgumentParser(prog="python -m llmops.models.shipped", description=main.__doc__)
    parser.add_argument("--models", type=Path, default=Path(".llmops/models"), help="models cache to build into")
    args = parser.parse_args(argv)
    model = ensure_reference_model(args.models, use_shipped=False)
    for old in SHIPPED_DIR.glob("reference-*"):
        shutil.rmtree(old)
    SHIPPED_DIR.mkdir(exist_ok=True)
    shutil.copytree(model.path, SHIPPED_DIR / model.path.name)
    print(f"shipped {model.path.name} (sha256 {model.sha256[:16]}…, built in {model.build_seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
