"""Run a suite's cases against a release, concurrently, with a progress bar and an output cache.

Outputs are cached by (release key, case key): a rerun of the same suite on the same release reuses
them (``cached`` is counted in the report), so CI reruns are cheap and deterministic.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from llmops.evals.cases import Case
from llmops.evals.responders import Answer, Responder

Renderer = Callable[[Case], list[dict[str, str]]]
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Outcome:
    case_id: str
    messages: list[dict[str, str]]
    answer: Answer
    cached: bool
    error: str | None = None


class OutputCache:
    """One JSON file per (release, case) under ``folder``."""

    def __init__(self, folder: Path | None) -> None:
        self._folder = folder

    def _path(self, release_key: str, case: Case) -> Path | None:
        if self._folder is None:
            return None
        key = hashlib.sha256(f"{release_key}\0{case.key()}".encode()).hexdigest()
        return self._folder / key[:2] / f"{key}.json"

    def get(self, release_key: str, case: Case) -> Answer | None:
        path = self._path(release_key, case)
        if path is None or not path.is_file():
            return None
        try:
            return Answer(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def put(self, release_key: str, case: Case, answer: Answer) -> None:
        path = self._path(release_key, case)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(answer)))
        tmp.replace(path)


async def run_cases(
    cases: list[Case],
    render: Renderer,
    responder: Responder,
    params: Mapping[str, Any],
    *,
    release_key: str,
    concurrency: int,
    cache: OutputCache,
    progress: Progress | None = None,
) -> list[Outcome]:
    """Answer every case (in input order), at most ``concurrency`` requests in flight."""
    semaphore = asyncio.Semaphore(concurrency)
    rendered = [render(case) for case in cases]  # render errors surface before any request is sent

    async def one(case: Case, messages: list[dict[str, str]]) -> Outcome:
        hit = cache.get(release_key, case)
        if hit is not None:
            if progress:
                progress(1)
            return Outcome(str(case.id), messages, hit, cached=True)
        async with semaphore:
            try:
                answer = await responder.respond(messages, params)
            except Exception as exc:  # noqa: BLE001 - one failed request is recorded, scored NaN, and reported
                if progress:
                    progress(1)
                return Outcome(str(case.id), messages, Answer("", float("nan"), float("nan")), False, repr(exc)[:300])
        cache.put(release_key, case, answer)
        if progress:
            progress(1)
        return Outcome(str(case.id), messages, answer, cached=False)

    return list(await asyncio.gather(*(one(c, m) for c, m in zip(cases, rendered, strict=True))))
