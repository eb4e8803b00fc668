"""Sticky weighted routing: pure functions, checked by property tests."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmops.gateway.routing import bounds, choose_target, hash_point, key_digest, pick

keys = st.text(min_size=1, max_size=40)
weight_lists = st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=6).filter(lambda w: sum(w) > 0)


@given(keys, weight_lists)
def test_same_key_same_weights_same_target(key: str, weights: list[int]) -> None:
    first = choose_target(key, weights, salt="route")
    assert all(choose_target(key, weights, salt="route") == first for _ in range(3))
    assert 0 <= first < len(weights)


@given(keys, weight_lists)
def test_a_target_with_weight_zero_is_never_chosen(key: str, weights: list[int]) -> None:
    assert weights[choose_target(key, weights)] > 0


@given(st.floats(min_value=0.0, max_value=1.0, exclude_max=True), weight_lists)
def test_every_point_lands_on_a_weighted_target(point: float, weights: list[int]) -> None:
    upper = bounds(weights)
    assert upper[-1] == 1.0
    assert list(upper) == sorted(upper)
    assert weights[pick(point, upper, weights)] > 0


@settings(max_examples=200)
@given(
    keys,
    st.integers(min_value=0, max_value=100),
    st.integers(min_value=0, max_value=100),
    st.integers(min_value=1, max_value=200),
)
def test_growing_the_canary_moves_keys_only_from_stable_to_canary(
    key: str, before: int, after: int, total: int
) -> None:
    """[stable, canary]: when the canary's share grows, no key leaves the canary."""
    lo, hi = sorted((before, after))
    lo, hi = min(lo, total), min(hi, total)
    old = choose_target(key, [total - lo, lo], salt="r")
    new = choose_target(key, [total - hi, hi], salt="r")
    if old == 1:
        assert new == 1  # canary keys stay on the canary
    if new == 0:
        assert old == 0  # nothing comes back to stable


def test_growing_canary_with_a_changed_total_keeps_canary_keys() -> None:
    """90/10 → 50/50 and 9/1 → 1/1 alike: canary share grows, so canary keys stay."""
    users = [f"user-{i}" for i in range(2000)]
    for old_w, new_w in (([90, 10], [50, 50]), ([9, 1], [1, 1]), ([90, 10], [180, 30])):
        old = [choose_target(u, old_w, salt="r") for u in users]
        new = [choose_target(u, new_w, salt="r") for u in users]
        assert all(n == 1 for o, n in zip(old, new, strict=True) if o == 1)


def test_split_is_close_to_the_weights() -> None:
    picks = [choose_target(f"session-{i}", [90, 10], salt="support-triage") for i in range(20_000)]
    share = picks.count(1) / len(picks)
    assert abs(share - 0.10) < 0.01


def test_salt_decorrelates_routes_and_points_are_stable() -> None:
    assert hash_point("alice", "a") != hash_point("alice", "b")
    # a fixed value: replicas and restarts must agree forever (changing the hash moves every user)
    assert key_digest("alice", "support-triage").hex() == "94787d4eaeedbece"
    assert hash_point("alice", "support-triage") == pytest.approx(0.5799635235879839, abs=1e-15)
    same = sum(
        choose_target(f"u{i}", [50, 50], salt="a") == choose_target(f"u{i}", [50, 50], salt="b") for i in range(4000)
    )
    assert 0.4 < same / 4000 < 0.6


def test_no_key_picks_at_random_by_weight() -> None:
    picks = [choose_target(None, [3, 1]) for _ in range(8000)]
    assert 0.2 < picks.count(1) / len(picks) < 0.3


@pytest.mark.parametrize("weights", [[], [0, 0], [-1, 2]])
def test_bad_weights_are_refused(weights: list[int]) -> None:
    with pytest.raises(ValueError):
        bounds(weights)
