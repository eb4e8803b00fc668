"""Concurrent prompt pushes converge: interleavings replayed step by step against an in-memory registry.

The fake numbers versions as MLflow's database store does (the highest version ever registered, deleted
ones included, plus one; deleted versions hidden from searches). Each push runs in a thread of its own with
a workspace of its own (another machine: no shared lock file) and stops before each registry call it makes
(list, register, delete) until the test lets it make that call, so an interleaving that a real server
produces only now and then (tests/integration/test_registry_backends.py) is replayed exactly.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from llmops.config.workspace import load_workspace
from llmops.gitinfo import GitInfo
from llmops.prompts.spec import PromptSpec
from llmops.registry import tags
from llmops.registry.backend import Backend
from llmops.registry.prompts import PromptStore, PushResult

NAME = "triage"
GIT = GitInfo(None, None, False, f"prompts/{NAME}.yaml")
WAIT_S = 10.0


def spec(content: str) -> PromptSpec:
    return PromptSpec.model_validate({"name": NAME, "messages": [{"role": "user", "content": f"Answer {content}"}]})


class Listing(list[Any]):
    token = None  # one page


class FakeRegistry:
    """The MLflow client calls PromptStore makes, for one prompt, numbered as MLflow's database store numbers."""

    def __init__(self) -> None:
        self.registered: dict[int, SimpleNamespace] = {}
        self.deleted: set[int] = set()
        self.gate: Callable[[str], None] = lambda what: None

    def get_prompt(self, name: str) -> object | None:
        self.gate("list")  # a listing starts here (then the search, in the same step)
        return SimpleNamespace(name=name) if self.registered else None

    def search_prompt_versions(
        self, name: str, max_results: int | None = None, page_token: str | None = None
    ) -> Listing:
        return Listing(pv for v, pv in sorted(self.registered.items(), reverse=True) if v not in self.deleted)

    def register_prompt(self, *, name: str, template: Any, commit_message: str, tags: dict[str, str], **_: Any) -> Any:
        self.gate("register")
        version = max(self.registered, default=0) + 1
        self.registered[version] = SimpleNamespace(
            name=name,
            version=str(version),
            template=template,
            tags=dict(tags),
            variables=[],
            commit_message=commit_message,
            aliases=[],
            creation_timestamp=0,
        )
        return self.registered[version]

    def delete_prompt_version(self, name: str, version: str) -> None:
        self.gate("delete")
        self.deleted.add(int(version))

    def kept(self) -> list[tuple[int, str]]:
        """(version, content hash) of every version not deleted, oldest first."""
        return [
            (v, pv.tags[tags.PROMPT_CONTENT_SHA256])
            for v, pv in sorted(self.registered.items())
            if v not in self.deleted
        ]


@dataclass
class _Push:
    go: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    stopped: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    next: str = "start"
    result: PushResult | Exception | None = None


class Interleaving:
    """Pushes in threads, each stopped before every registry call until :meth:`step` lets it make that call."""

    def __init__(self, fake: FakeRegistry, root: Path) -> None:
        self.fake, self.root = fake, root
        self.pushes: dict[str, _Push] = {}
        fake.gate = self._wait

    def start(self, who: str, content: str) -> None:
        """Start ``who`` pushing ``content`` from its own workspace; returns once it is stopped before its first call."""
        store = PromptStore(Backend(load_workspace(self.root / who, env={})))
        store._backend.__dict__["client"] = self.fake  # the cached MLflow client
        self.pushes[who] = state = _Push()

        def run() -> None:
            try:
                state.result = store.push(spec(content), GIT)
            except Exception as exc:  # noqa: BLE001 - the test inspects it
                state.result = exc
            state.next = "done"
            state.stopped.release()

        threading.Thread(target=run, name=who, daemon=True).start()
        assert state.stopped.acquire(timeout=WAIT_S), f"{who} did not start"

    def _wait(self, what: str) -> None:
        state = self.pushes.get(threading.current_thread().name)
        if state is None:
            return  # the test's own reads
        state.next = what
        state.stopped.release()
        assert state.go.acquire(timeout=WAIT_S), f"nobody let {threading.current_thread().name} {what}"

    def step(self, who: str, what: str) -> None:
        """Let ``who`` make its next call, which must be ``what``; returns once it is stopped again (or done)."""
        state = self.pushes[who]
        assert state.next == what, f"{who} is about to {state.next}, not {what}"
        state.go.release()
        assert state.stopped.acquire(timeout=WAIT_S), f"{who} hangs after {what}"

    def next(self, who: str) -> str:
        return self.pushes[who].next

    def finish(self, who: str) -> PushResult:
        """Let ``who`` run to the end; its result."""
        while (what := self.pushes[who].next) != "done":
            self.step(who, what)
        result = self.pushes[who].result
        assert isinstance(result, PushResult), result
        return result

    def push(self, who: str, content: str) -> PushResult:
        self.start(who, content)
        return self.finish(who)


@pytest.fixture
def fake() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def run(fake: FakeRegistry, tmp_path: Path) -> Interleaving:
    return Interleaving(fake, tmp_path)


def digest(content: str) -> str:
    return spec(content).content_hash()


def test_a_push_that_finds_a_racing_duplicate_reports_the_version_that_stays(
    run: Interleaving, fake: FakeRegistry
) -> None:
    """The flake of the 32-push integration test: C found B's duplicate v2 as the latest version and
    reported it "unchanged", then B deleted it."""
    for who in "ABC":
        run.start(who, "D")
    run.step("A", "list")
    run.step("B", "list")
    run.step("A", "register")  # v1
    run.step("B", "register")  # v2, a duplicate of v1
    c = run.finish("C")  # lists v1, v2: unchanged
    a, b = run.finish("A"), run.finish("B")  # B deletes v2
    assert fake.kept() == [(1, digest("D"))]
    assert [(r.action, r.version) for r in (a, b, c)] == [("registered", 1), ("registered", 1), ("unchanged", 1)]


def test_the_first_of_a_run_is_kept_whoever_converges_first(run: Interleaving, fake: FakeRegistry) -> None:
    for who in "ABC":
        run.start(who, "D")
    for who in "ABC":
        run.step(who, "list")
    for who in "ABC":
        run.step(who, "register")  # v1, v2, v3
    results = {who: run.finish(who) for who in "CBA"}  # C sees v2 and deletes v3 while v2 is still there
    assert fake.kept() == [(1, digest("D"))]
    assert {who: r.version for who, r in results.items()} == {"A": 1, "B": 1, "C": 1}


def test_pushes_that_saw_different_latest_versions_agree(run: Interleaving, fake: FakeRegistry) -> None:
    """Q saw v1 as the latest, P saw v3: "keep the lowest version above my base" made Q delete v4, the
    version P reported (P's base hides v2 from it)."""
    run.push("X", "x")  # v1
    run.start("Q", "D")
    run.step("Q", "list")  # latest: v1 (x)
    assert run.push("R", "D").version == 2
    assert run.push("S", "E").version == 3
    run.start("P", "D")
    run.step("P", "list")  # latest: v3 (E)
    run.step("Q", "register")  # v4
    run.step("P", "register")  # v5, a duplicate of v4
    p, q = run.finish("P"), run.finish("Q")
    assert fake.kept() == [(1, digest("x")), (2, digest("D")), (3, digest("E")), (4, digest("D"))]
    assert (p.action, p.version, q.action, q.version) == ("registered", 4, "registered", 4)


@pytest.mark.parametrize("seed", range(60))
def test_any_interleaving_keeps_every_reported_version_and_no_neighbouring_duplicate(
    seed: int, run: Interleaving, fake: FakeRegistry
) -> None:
    rng = random.Random(seed)
    for i in range(rng.randrange(3)):
        run.push(f"before{i}", rng.choice("DE"))
    contents = {f"p{i}": rng.choice("DDE") for i in range(6)}
    for who, content in contents.items():
        run.start(who, content)
    while busy := [who for who in contents if run.next(who) != "done"]:
        who = rng.choice(busy)
        run.step(who, run.next(who))

    kept = fake.kept()
    assert all(a[1] != b[1] for a, b in itertools.pairwise(kept)), f"neighbouring duplicates: {kept}"
    by_version = dict(kept)
    for who, content in contents.items():
        result = run.finish(who)
        assert by_version.get(result.version or 0) == digest(content), (who, content, result, kept)
