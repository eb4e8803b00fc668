"""The support-desk corpus and the reference model build: determinism, loading, caching, integrity."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from llmops.errors import ModelError
from llmops.models import ticket_phrases as tp
from llmops.models.build_process import build_in_child
from llmops.models.chat_template import BOS, EOS, render_chat
from llmops.models.corpus import pretraining_texts
from llmops.models.hashing import directory_sha256
from llmops.models.reference import (
    MANIFEST,
    ReferenceModel,
    build_reference_model,
    ensure_reference_model,
    load_reference_model,
)
from llmops.models.spec import ReferenceSpec
from llmops.models.ticket_phrases import INTENTS, PRIORITIES
from llmops.models.tickets import generate_tickets


def tiny_spec(seed: int = 0) -> ReferenceSpec:
    """The real architecture, but a handful of short steps on a small corpus: builds in a few seconds."""
    return ReferenceSpec(seed=seed, steps=2, corpus_docs=200, seq_len=64, batch_size=2)


# --- corpus -------------------------------------------------------------------------------------------


def test_tickets_are_deterministic_per_seed() -> None:
    assert generate_tickets(50, seed=7) == generate_tickets(50, seed=7)
    assert generate_tickets(50, seed=7) != generate_tickets(50, seed=8)
    assert generate_tickets(50, seed=7, pool="test") != generate_tickets(50, seed=7)
    assert pretraining_texts(30, seed=7) == pretraining_texts(30, seed=7)


def test_pretraining_corpus_never_shows_the_triage_answer_format() -> None:
    texts = pretraining_texts(2000, seed=0)
    joined = "".join(texts)
    assert "{" not in joined and "}" not in joined
    assert '"intent"' not in joined and '"priority"' not in joined
    assert all(t.startswith(BOS) and t.rstrip("\n").endswith(EOS) for t in texts)


def test_pretraining_corpus_mixes_conversations_routing_notes_glossary_and_prose() -> None:
    texts = pretraining_texts(4000, seed=0)
    share = Counter(
        "conversation" if "<|assistant|>" in t else "routing" if "Routed to the" in t else
        "glossary" if "Tag: intent=" in t or t.startswith(f"{BOS}Urgency ") or "A ticket is " in t else "prose"
        for t in texts
    )  # fmt: skip
    expected = {"conversation": 0.30, "routing": 0.35, "glossary": 0.25, "prose": 0.10}
    assert set(share) == set(expected)
    for kind, part in expected.items():
        assert abs(share[kind] / len(texts) - part) < 0.025, (kind, share)
    # routing notes tag the label words next to the ticket, every intent and priority
    tags = {line for t in texts for line in t.split("\n") if line.startswith("Tags: ")}
    assert {tag.split()[1] for tag in tags} == {f"intent={i}" for i in INTENTS}
    assert {tag.split()[2].removesuffix(EOS) for tag in tags} == {f"priority={p}" for p in PRIORITIES}


def test_the_pretraining_corpus_never_says_a_test_pool_phrasing() -> None:
    """Only train-pool tickets are in pretraining: no held-out phrasing, name, product or plan."""
    joined = "".join(pretraining_texts(3000, seed=0))
    pooled = [tp.PROBLEM_FRAMES, tp.GREETINGS, tp.INTRODUCTIONS, tp.SIGNOFFS, tp.CONTEXT_SENTENCES,
              tp.SECONDARY_FRAMES, tp.URGENCY_FRAMES, tp.CONSEQUENCE_FRAMES, *tp.PROBLEM_SENTENCES.values()]  # fmt: skip
    checked = 0
    for family in pooled:
        for phrase in family["test"]:
            for fragment in re.split(r"\{[a-z]+\}", phrase):
                if len(fragment.strip()) >= 10:
                    checked += 1
                    assert fragment.strip() not in joined, phrase
    assert checked >= 90
    for word in (*tp.CUSTOMER_NAMES["test"], *tp.PRODUCTS["test"]):
        assert word not in joined, word
    for plan in tp.PLANS["test"]:
        assert f"{plan} plan" not in joined and f"{plan} subscription" not in joined, plan


def test_render_chat_matches_the_documented_layout() -> None:
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert render_chat(msgs, add_generation_prompt=True) == (
        "<|bos|><|system|>\nBe brief.<|eos|>\n<|user|>\nHi<|eos|>\n<|assistant|>\n"
    )


# --- hashing ------------------------------------------------------------------------------------------


def test_directory_sha256_covers_names_and_contents(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("one")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("two")
    first = directory_sha256(tmp_path)
    assert directory_sha256(tmp_path) == first
    (tmp_path / "sub" / "b.txt").rename(tmp_path / "sub" / "c.txt")
    assert directory_sha256(tmp_path) != first
    (tmp_path / "sub" / "c.txt").rename(tmp_path / "sub" / "b.txt")
    (tmp_path / "extra.json").write_text("{}")
    assert directory_sha256(tmp_path, exclude=["extra.json"]) == first


# --- build --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def built(cache_dir: Path) -> ReferenceModel:
    return ensure_reference_model(cache_dir, spec=tiny_spec(0))


def test_build_is_deterministic_per_seed(built: ReferenceModel, tmp_path: Path) -> None:
    # `built` trained in a child process with all cores; these train here, with other thread settings
    again = build_reference_model(tmp_path / "again", spec=tiny_spec(0), isolated=False)
    other = build_reference_model(tmp_path / "other", spec=tiny_spec(1), isolated=False)
    assert again.sha256 == built.sha256
    assert again.config_hash == built.config_hash
    assert other.sha256 != built.sha256
    assert other.config_hash != built.config_hash
    assert 800_000 < built.params < 1_200_000


def test_manifest_records_the_build(built: ReferenceModel) -> None:
    manifest = json.loads((built.path / MANIFEST).read_text())
    assert manifest["sha256"] == built.sha256 == directory_sha256(built.path, exclude=[MANIFEST])
    assert manifest["spec"]["seed"] == 0 and manifest["spec"]["steps"] == 2
    assert built.path.name == f"reference-{built.config_hash[:12]}"
    assert sorted(p.name for p in built.path.iterdir()) == sorted(
        [
            "chat_template.jinja",
            "config.json",
            "generation_config.json",
            MANIFEST,
            "model.safetensors",
            "tokenizer.json",
            "tokenizer_config.json",
        ]
    )
    assert not [p for p in built.path.parent.iterdir() if p.name.endswith(".tmp")]


def test_loads_offline_with_auto_classes(built: ReferenceModel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(built.path)
    model: Any = AutoModelForCausalLM.from_pretrained(built.path)  # transformers' stubs are too loose here
    assert (model.config.hidden_size // model.config.num_attention_heads) == 64
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|bos|>", "<|eos|>", "<|pad|>")
    msgs = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Where is my package?"}]
    text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text == render_chat(msgs, add_generation_prompt=True)
    enc: Any = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    assert enc["input_ids"][0, 0].item() == tok.bos_token_id
    assert enc["input_ids"][0, -2].item() == tok.convert_tokens_to_ids("<|assistant|>")
    out: Any = model.generate(**enc, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == enc["input_ids"].shape[1] + 4 or out[0, -1].item() == tok.eos_token_id


def test_ensure_reuses_the_cached_build(built: ReferenceModel, cache_dir: Path) -> None:
    started = time.monotonic()
    again = ensure_reference_model(cache_dir, spec=tiny_spec(0))
    assert time.monotonic() - started < 2.0
    assert again == built


def test_concurrent_ensure_builds_once(tmp_path: Path) -> None:
    steps_seen: list[float] = []
    results: list[ReferenceModel] = []

    def worker() -> None:
        progress = lambda d, t: steps_seen.append(d)  # noqa: E731
        results.append(ensure_reference_model(tmp_path, spec=tiny_spec(3), progress=progress, isolated=False))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(results) == 2 and results[0] == results[1]
    assert steps_seen == [1.0, 2.0]  # one build of two steps, not two


def test_a_failing_child_build_raises_model_error_with_its_reason(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    with pytest.raises(ModelError, match="(?s)build failed.*not an empty folder"):
        build_in_child(tmp_path / "busy", tiny_spec(0))


def test_a_too_small_corpus_is_a_model_error(tmp_path: Path) -> None:
    bad = ReferenceSpec(seed=0, steps=1, corpus_docs=1, seq_len=512, batch_size=1)
    with pytest.raises(ModelError, match="corpus too small"):
        build_reference_model(tmp_path / "m", spec=bad, isolated=False)
    assert list(tmp_path.iterdir()) == []  # the temporary build folder is gone


def test_tampered_model_is_refused(built: ReferenceModel, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(built.path, copy)
    assert load_reference_model(copy).sha256 == built.sha256
    config = json.loads((copy / "config.json").read_text())
    config["num_hidden_layers"] = 3
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="modified"):
        load_reference_model(copy)


def test_building_into_an_existing_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(ModelError, match="already exists"):
        build_reference_model(tmp_path / "taken", spec=tiny_spec(0), isolated=False)
    with pytest.raises(ModelError, match="no llmops-model.json"):
        load_reference_model(tmp_path / "taken")
