"""The release vocabulary: one Release value, its key, its registry encoding, and the route → release rule."""

from __future__ import annotations

import pytest

from llmops.config.gateway import TargetSpec
from llmops.errors import LlmopsError
from llmops.refs import AdapterRef, PromptRef
from llmops.registry.pointers import release_from_tags, release_tags
from llmops.release import Release
from llmops.releases import configured_release, target_release


def test_release_parses_refs_and_has_a_key_only_when_exact() -> None:
    exact = Release.of("reference", "triage-lora/2", "support-triage/1", {"temperature": 0})
    assert exact.adapter == AdapterRef("triage-lora", version=2)
    assert exact.prompt == PromptRef("support-triage", version=1)
    assert len(exact.key) == 64 and exact.key == Release.of("reference", "triage-lora/2", "support-triage/1",
                                                              {"temperature": 0}).key  # fmt: skip
    # every part of the release changes the key
    others = [
        Release.of("other-base", "triage-lora/2", "support-triage/1", {"temperature": 0}),
        Release.of("reference", "triage-lora/3", "support-triage/1", {"temperature": 0}),
        Release.of("reference", "triage-lora/2", "support-triage/2", {"temperature": 0}),
        Release.of("reference", "triage-lora/2", "support-triage/1", {"temperature": 1}),
        Release.of("reference", None, "support-triage/1", {"temperature": 0}),
    ]
    assert len({exact.key, *(o.key for o in others)}) == 6
    aliased = Release.of("reference", "triage-lora@production", "support-triage/1")
    assert not aliased.is_exact
    with pytest.raises(LlmopsError, match="alias"):
        _ = aliased.key


def test_base_model_release_has_no_adapter_and_reads_as_such() -> None:
    base = Release.of("reference", None, "support-triage/1")
    assert base.adapter is None and base.is_exact
    assert "base model" in base.label()


def test_release_params_are_read_only() -> None:
    release = Release.of("m", params={"max_tokens": 8})
    with pytest.raises(TypeError):
        release.params["max_tokens"] = 9  # type: ignore[index]


def test_registry_tags_round_trip_the_release_without_sentinels() -> None:
    for release in (
        Release.of("reference", "triage-lora/2", "support-triage/1", {"temperature": 0.0, "stop": ["\n"]}),
        Release.of("reference", None, None),
    ):
        found = release_tags(release)
        assert "none" not in found.values()
        assert release_from_tags(found, "test") == release
        assert found["llmops.release.key"] == release.key


def test_a_release_missing_from_tags_is_an_error_naming_where() -> None:
    with pytest.raises(LlmopsError, match="release v3 of route triage"):
        release_from_tags({}, "release v3 of route triage")


def _target(**kw: object) -> TargetSpec:
    return TargetSpec.model_validate({"name": "stable", "weight": 1, **kw})


def test_a_stage_target_serves_the_recorded_release_with_its_own_params() -> None:
    recorded = Release.of("reference", "triage-lora/2", "support-triage/1")
    target = _target(release="production", prompt="support-triage@production", params={"temperature": 0})
    served = target_release("triage", target, "reference", lambda route, stage: recorded)
    assert (served.adapter, served.prompt) == (recorded.adapter, recorded.prompt)
    assert dict(served.params) == {"temperature": 0.0}


def test_a_stage_target_falls_back_to_its_refs_until_a_release_is_recorded() -> None:
    target = _target(release="canary", prompt="support-triage@production")
    served = target_release("triage", target, "reference", lambda route, stage: None)
    assert served == configured_release(target, "reference")
    assert served.adapter is None and served.prompt == PromptRef("support-triage", alias="production")
    with pytest.raises(LlmopsError, match="no canary release yet"):
        target_release("triage", _target(release="canary"), "reference", lambda route, stage: None)


def test_a_plain_target_ignores_the_pointers() -> None:
    target = _target(adapter="triage-lora@production")
    seen: list[tuple[str, str]] = []
    served = target_release("triage", target, "reference", lambda route, stage: seen.append((route, stage)))  # type: ignore[func-returns-value]
    assert served.adapter == AdapterRef("triage-lora", alias="production") and not seen
