"""``llmops init``: copy the packaged example workspace into a folder, never overwriting unasked."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def scaffold(directory: Path, *, force: bool = False) -> tuple[list[Path], list[Path]]:
    """Copy the scaffold into ``directory``; return (written, kept) paths."""
    root = resources.files("llmops.scaffold") / "files"
    written: list[Path] = []
    kept: list[Path] = []

    def copy(node: resources.abc.Traversable, target: Path) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            dest = target / child.name
            if child.is_dir():
                copy(child, dest)
            elif dest.exists() and not force:
                kept.append(dest)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(child.read_bytes())
                written.append(dest)

    directory.mkdir(parents=True, exist_ok=True)
    copy(root, directory)
    ignore = directory / ".gitignore"
    if not ignore.exists():
        ignore.write_text(".llmops/\n")
        written.append(ignore)
    return written, kept
