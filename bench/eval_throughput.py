"""Eval runner throughput against an endpoint that answers every call in a fixed 50 ms.

Starts ``bench/fake_upstream.py`` (each streamed answer: one token after 50 ms), runs 200 cases through
the real eval path (rendering, OpenAI SDK streaming client, scoring with ragas ExactMatch, no cache) at
concurrency 16 and 64, and prints achieved calls/s against the ideal (concurrency / 0.05 s).
Target: ratio >= 0.85 at both.

Run: .venv/bin/python bench/eval_throughput.py [--cases 200] [--delay-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from pathlib import Path

from llmops.evals.cases import Case
from llmops.evals.responders import OpenAIResponder
from llmops.evals.runner import OutputCache
from llmops.evals.scoring import score_release
from llmops.evals.spec import EvalSuite
from llmops.process import ManagedProcess, free_port, http_ok
from llmops.registry.resolved import ResolvedRelease
from llmops.release import Release

HERE = Path(__file__).resolve().parent


async def one_run(url: str, cases: list[Case], concurrency: int) -> float:
    suite = EvalSuite.model_validate(
        {
            "name": "bench",
            "cases": "x.jsonl",
            "target": {"release": {}},
            "metrics": ["exact_match"],
            "concurrency": concurrency,
        }
    )
    responder = OpenAIResponder(f"{url}/v1", "base", timeout_s=30)
    started = time.perf_counter()
    try:
        result = await score_release(
            suite, cases, ResolvedRelease(Release(base_model="bench"), None, None), responder, OutputCache(None)
        )
    finally:
        await responder.aclose()
    elapsed = time.perf_counter() - started
    assert result.errors == 0, f"{result.errors} failed calls"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    args = parser.parse_args()
    port = free_port()
    fake = ManagedProcess(
        "fake upstream",
        [
            sys.executable,
            str(HERE / "fake_upstream.py"),
            "--port",
            str(port),
            "--chunks",
            "1",
            "--interval-ms",
            str(args.delay_ms),
        ],
        Path("/tmp") / f"llmops-bench-fake-{port}.log",
    ).start()
    url = f"http://127.0.0.1:{port}"
    try:
        fake.wait_healthy(lambda: http_ok(f"{url}/health"), timeout=30)
        cases = [
            Case(id=str(i), messages=[{"role": "user", "content": f"case {i}"}], reference="t0")
            for i in range(args.cases)
        ]
        asyncio.run(one_run(url, cases[:20], 4))  # warm-up: imports, connection pool
        print(f"{args.cases} cases, endpoint answers in {args.delay_ms:.0f} ms")
        print(
            "ideal = concurrency / delay; wave-bound = N / (ceil(N / concurrency) * delay), the best any runner can do"
        )
        print(
            f"{'concurrency':>11} {'seconds':>8} {'calls/s':>8} {'ideal/s':>8} {'ratio':>6} {'wave-bound/s':>12} {'ratio':>6}"
        )
        for c in args.concurrency:
            elapsed = asyncio.run(one_run(url, cases, c))
            achieved = args.cases / elapsed
            ideal = c / (args.delay_ms / 1000)
            bound = args.cases / (math.ceil(args.cases / c) * args.delay_ms / 1000)
            print(
                f"{c:>11} {elapsed:>8.2f} {achieved:>8.1f} {ideal:>8.1f} {achieved / ideal:>6.2f} {bound:>12.1f} {achieved / bound:>6.2f}"
            )
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
