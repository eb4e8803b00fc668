"""The demo's rollout step: a good release rolled out on live traffic and promoted, a bad one aborted.

While sticky traffic flows through the demo gateway (every request captured), the demo runs the rollout
controller twice, as ``llmops rollout start`` would:

1. the fine-tuned adapter with the route's prompt (its evals passed): canary 10% → 50% → 100%, each step
   judged against stable on the same window (error rate, latency, JSON validity), then promoted to production;
2. a "hot fix" prompt version that adds a required variable (``channel``) the app does not send yet, rolled
   out with ``--force`` (no eval run, audited with its reason): the gateway refuses every request routed to it
   (400, a missing prompt variable), the error-rate check fails at the first step, and the controller sets the
   canary's weight to 0 and restores the canary pointer at once.

The spec is the demo's own (``.llmops/demo/rollout.yaml``): short steps (20 requests per arm, 3 s) so the demo
stays quick; ``serving/rollout.yaml`` holds the example's production values.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import yaml
from openai import OpenAI

from llmops.config.workspace import Workspace
from llmops.demo_traffic import MESSAGES, DemoGateway
from llmops.events import Reporter
from llmops.gitinfo import GitInfo
from llmops.prompts.files import load_checked
from llmops.prompts.spec import Variable
from llmops.registry import Registry
from llmops.rollout import service
from llmops.rollout.controller import RolloutOutcome

ROUTE = "support-triage"
HOTFIX_PROMPT = "support-triage-hotfix"
HOTFIX_REASON = "hot fix: the prompt names the channel a ticket came from (shipped without an eval run)"
REQUEST_LOG = "logs/demo-gateway-requests*.jsonl"
FEEDBACK_LOG = "logs/demo-feedback*.jsonl"
STEPS = "10,50,100"
CONCURRENCY = 8


def demo_rollout_spec(gateway_url: str) -> dict[str, object]:
    step = {"min_duration": "3s", "min_samples": 20, "max_duration": "240s"}
    return {
        "version": 1,
        "request_log": [REQUEST_LOG],
        "feedback_log": [FEEDBACK_LOG],
        "replicas": [gateway_url],
        "interval_s": 1.0,
        "routes": {
            ROUTE: {
                "confidence": 0.98,
                "steps": [{"weight": w, **step} for w in (10, 50, 100)],
                "checks": {
                    "error_rate": {"max_increase": 0.02},
                    "latency": {"tolerance": 0.25, "max_p95_ratio": 1.5},
                    "json_validity": {"max_decrease": 0.05},
                },
            }
        },
    }


@contextmanager
def live_traffic(gateway: DemoGateway) -> Iterator[None]:
    """Requests with fresh session keys, ``CONCURRENCY`` at a time, until the block ends."""
    client = OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key, max_retries=0, timeout=60)
    stop = threading.Event()
    counter = itertools.count()

    def worker() -> None:
        while not stop.is_set():
            i = next(counter)
            try:
                client.chat.completions.create(
                    model=ROUTE, messages=[], extra_body={"prompt_variables": {"message": MESSAGES[i % len(MESSAGES)]}},
                    extra_headers={"x-llmops-session": f"rollout-{i}"},
                )  # fmt: skip
            except Exception:  # noqa: BLE001, S112 - a refused request is what the canary analysis counts
                continue

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        for _ in range(CONCURRENCY):
            pool.submit(worker)
        try:
            yield
        finally:
            stop.set()


def hotfix_prompt(ws: Workspace, registry: Registry) -> str:
    """The bad prompt version (registered once): the route's prompt with a required ``channel`` variable."""
    spec = load_checked(ws.asset_dir("prompts") / f"{ROUTE}.yaml")
    user = spec.messages[-1].model_copy(update={"content": "[{{ channel }}] {{ message }}"})
    variables = {**spec.variables, "channel": Variable(description="where the ticket came from (email, chat)")}
    bad = spec.model_copy(update={"name": HOTFIX_PROMPT, "messages": [*spec.messages[:-1], user],
                                  "variables": variables})  # fmt: skip
    pushed = registry.prompts.push(bad, GitInfo(None, HOTFIX_REASON, True, f"prompts/{ROUTE}.yaml"))
    return f"{HOTFIX_PROMPT}/{pushed.version}"


@dataclass(frozen=True)
class RolloutDemo:
    good: RolloutOutcome | None  # None: production already served the release (a rerun)
    bad: RolloutOutcome | None  # None: the hot fix was already aborted by an earlier run


def _aborted_before(registry: Registry, prompt: str) -> bool:
    return any(r.status == "failed" and r.state.get("prompt") == prompt for r in registry.rollouts.of_route(ROUTE))


def roll_out(
    ws: Workspace, registry: Registry, gateway: DemoGateway, *, adapter: str, prompt: str, reporter: Reporter
) -> RolloutDemo:
    """Both rollouts under live traffic (module docstring); each is skipped when an earlier run did it."""
    path = ws.home / "demo" / "rollout.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(demo_rollout_spec(gateway.url), sort_keys=False))
    options = service.Options(config=path, reporter=reporter)
    production = registry.pointers.at_stage(ROUTE, "production")
    served = production and (str(production.release.adapter), str(production.release.prompt)) == (adapter, prompt)
    bad_prompt = hotfix_prompt(ws, registry)
    left = registry.rollouts.open_of(ROUTE)
    if left is not None:  # an earlier demo run stopped midway: the demo is the route's only operator
        service.abort(ws, ROUTE, reason="an earlier demo run stopped midway", options=options)
        reporter.note(f"aborted rollout {left.rollout_id}, left open by an earlier run")
    good = bad = None
    with live_traffic(gateway):
        if not served:
            good = service.start(ws, ROUTE, adapter=adapter, prompt=prompt, steps=STEPS, options=options)
        if not _aborted_before(registry, bad_prompt):
            bad = service.start(ws, ROUTE, adapter=adapter, prompt=bad_prompt, steps=STEPS, force=True,
                                reason=HOTFIX_REASON, options=options)  # fmt: skip
    return RolloutDemo(good, bad)


def canary_requests(outcome: RolloutOutcome) -> int:
    """Canary requests the rollout's last step saw before its verdict."""
    history = outcome.state.history
    return int(history[-1]["canary_n"]) if history else 0
