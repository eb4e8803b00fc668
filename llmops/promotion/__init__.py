"""Gated, concurrency-safe and crash-safe promotion and rollback of a route's release.

``promote`` checks that a passing eval record exists for exactly the release (base model + adapter
version + prompt version + params, matched by :attr:`~llmops.release.Release.key`) on every suite in
``evals/`` that targets the route with ``required: true`` — and refuses a route no required suite
targets (:mod:`.gate`). Then, holding the route's lease (:mod:`llmops.registry.lease`: one writer per
route; others wait up to ``wait_s`` and then get LeaseHeld naming the holder), it settles any move of
the route that died midway (:mod:`.reconcile`), and moves in order the adapter alias, the prompt alias
and finally the route's release pointer (the commit point, see :mod:`llmops.registry.pointers`), after a
``pending`` audit record that holds the plan and before the final audit record (:mod:`.moves`).

A failure midway restores what moved (only aliases still holding our value); a process killed at any
step leaves the pointer — and so what the gateway serves — on the old release or the new one, never a
mix, and its pending record is settled by the next promote or rollback of the route or by
``llmops doctor --repair``. ``rollback`` restores the release the last completed move replaced.
Prompt aliases moved by hand (``llmops prompts promote``) go through :mod:`.aliases`.
"""

from __future__ import annotations

from llmops.promotion.aliases import promote_prompt_alias, serving_routes
from llmops.promotion.gate import RequiredSuite, gated_release, passing_records, required_suites, route_params
from llmops.promotion.reconcile import pending, reconcile, repair
from llmops.promotion.service import STAGES, check_promotable, promote, restore_stage, rollback

__all__ = [
    "STAGES",
    "RequiredSuite",
    "check_promotable",
    "gated_release",
    "passing_records",
    "pending",
    "promote",
    "promote_prompt_alias",
    "reconcile",
    "repair",
    "required_suites",
    "restore_stage",
    "rollback",
    "route_params",
    "serving_routes",
]
