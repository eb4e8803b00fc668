"""The adapter manifest: which files an adapter holds and their sha256, written next to them.

Only ``*.safetensors``, JSON and plain-text files (``adapter_config.json``, tokenizer files, the README that
PEFT writes, the manifest) may be part of an adapter: no pickle, ``.bin`` or ``.pt`` anywhere. The manifest's own sha256 identifies the
adapter version; loading verifies every file against it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from llmops.errors import IntegrityError
from llmops.models.hashing import file_sha256

MANIFEST = "llmops-adapter.json"
ALLOWED_SUFFIXES = (".safetensors", ".json", ".jinja", ".txt", ".md", ".model")
REQUIRED = ("adapter_config.json",)


def _files(folder: Path) -> list[Path]:
    files = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            raise IntegrityError(f"adapter {folder}: symbolic link {path.name} refused")
        if path.is_file() and path.name != MANIFEST:
            files.append(path)
    return files


def write_manifest(folder: Path, extra: dict[str, str] | None = None) -> str:
    """Check ``folder``'s files, write the manifest, and return its sha256 (the adapter's identity)."""
    files = _files(folder)
    bad = [p.name for p in files if not p.name.endswith(ALLOWED_SUFFIXES)]
    if bad:
        raise IntegrityError(f"adapter {folder}: forbidden file type(s) {', '.join(bad)} (safetensors/JSON only)")
    for required in REQUIRED:
        if not (folder / required).is_file():
            raise IntegrityError(f"adapter {folder}: missing {required}")
    if not any(p.suffix == ".safetensors" for p in files):
        raise IntegrityError(f"adapter {folder}: no .safetensors weights")
    body = {
        "files": {p.relative_to(folder).as_posix(): file_sha256(p) for p in files},
        "meta": dict(sorted((extra or {}).items())),
    }
    text = json.dumps(body, indent=2, sort_keys=True) + "\n"
    (folder / MANIFEST).write_text(text, encoding="utf-8")
    return hashlib.sha256(text.encode()).hexdigest()


def verify(folder: Path, expected_sha256: str) -> None:
    """Raise IntegrityError unless the manifest hashes to ``expected_sha256`` and every file matches."""
    path = folder / MANIFEST
    if not path.is_file():
        raise IntegrityError(f"adapter {folder}: no {MANIFEST}")
    raw = path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != expected_sha256:
        raise IntegrityError(f"adapter {folder}: manifest sha256 differs from the registry's")
    listed = json.loads(raw)["files"]
    present = {p.relative_to(folder).as_posix() for p in _files(folder)}
    if present != set(listed):
        raise IntegrityError(f"adapter {folder}: files differ from the manifest ({sorted(present ^ set(listed))})")
    for rel, digest in listed.items():
        if not rel.endswith(ALLOWED_SUFFIXES):
            raise IntegrityError(f"adapter {folder}: forbidden file {rel}")
        if file_sha256(folder / rel) != digest:
            raise IntegrityError(f"adapter {folder}: {rel} does not match its sha256")
