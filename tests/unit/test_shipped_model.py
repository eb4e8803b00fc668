"""The reference model build shipped in the package: it is the default spec's, and it is used untouched."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from llmops.errors import ModelError
from llmops.models import shipped
from llmops.models.reference import MANIFEST, ensure_reference_model, load_reference_model, model_dir_name
from llmops.models.spec import ReferenceSpec


def tiny_spec(seed: int = 0) -> ReferenceSpec:
    return ReferenceSpec(seed=seed, steps=2, corpus_docs=200, seq_len=64, batch_size=2)


def test_the_package_ships_the_default_specs_build_untouched() -> None:
    # fails when the default spec, the corpus or the build format changes without a new shipped build
    # (python -m llmops.models.shipped): the demo would then pretrain for minutes on every fresh clone
    folders = sorted(p.name for p in shipped.SHIPPED_DIR.iterdir() if not p.name.startswith("."))
    expected = model_dir_name(ReferenceSpec().config_hash())
    assert folders == [expected], f"llmops/models/shipped holds {folders}, the default spec is {expected}"
    model = load_reference_model(shipped.SHIPPED_DIR / expected)  # verifies every file's sha256
    assert model.config_hash == ReferenceSpec().config_hash()


@pytest.fixture()
def shipped_tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package whose shipped folder holds a build of :func:`tiny_spec` (built here, in seconds)."""
    built = ensure_reference_model(tmp_path / "build", spec=tiny_spec(5), isolated=False)
    folder = tmp_path / "shipped"
    folder.mkdir()
    shutil.copytree(built.path, folder / built.path.name)
    monkeypatch.setattr(shipped, "SHIPPED_DIR", folder)
    return folder / built.path.name


def test_ensure_copies_the_shipped_build_instead_of_pretraining(shipped_tiny: Path, tmp_path: Path) -> None:
    steps: list[float] = []
    model = ensure_reference_model(tmp_path / "cache", spec=tiny_spec(5), progress=lambda d, t: steps.append(d))
    assert steps == []  # no pretraining step ran
    assert model.path == tmp_path / "cache" / shipped_tiny.name
    assert model.sha256 == load_reference_model(shipped_tiny).sha256
    assert (model.path / MANIFEST).read_bytes() == (shipped_tiny / MANIFEST).read_bytes()
    # another spec is not shipped: it is built
    other = ensure_reference_model(tmp_path / "cache", spec=tiny_spec(6), progress=lambda d, t: steps.append(d))
    assert steps == [1.0, 2.0] and other.sha256 != model.sha256


def test_use_shipped_false_pretrains_the_same_weights(shipped_tiny: Path, tmp_path: Path) -> None:
    steps: list[float] = []
    model = ensure_reference_model(
        tmp_path / "own", spec=tiny_spec(5), progress=lambda d, t: steps.append(d), use_shipped=False, isolated=False
    )
    assert steps == [1.0, 2.0]
    assert model.sha256 == load_reference_model(shipped_tiny).sha256  # deterministic: the shipped copy is this build


def test_a_modified_shipped_build_is_refused_not_copied(shipped_tiny: Path, tmp_path: Path) -> None:
    weights = shipped_tiny / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ModelError, match="modified"):
        ensure_reference_model(tmp_path / "cache", spec=tiny_spec(5))
    assert not (tmp_path / "cache" / shipped_tiny.name).exists()
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.endswith(".tmp")]
