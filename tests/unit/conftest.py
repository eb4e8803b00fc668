"""Helpers shared by several unit test modules, handed out by session-scoped fixtures; a tighter timeout.

Unit tests need no servers: the slowest takes ~20 s (fixture included), so a hang fails after
:data:`UNIT_TIMEOUT_S`, not after the suite-wide limit in pyproject.toml (sized for vLLM and MLflow starts).
A test's own ``@pytest.mark.timeout`` still wins.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

UNIT_DIR = Path(__file__).resolve().parent
UNIT_TIMEOUT_S = 120


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # called with every collected item (not just this folder's): mark only the unit tests
    for item in items:
        if item.path.is_relative_to(UNIT_DIR) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(UNIT_TIMEOUT_S))


@pytest.fixture(scope="session")
def tiny_tokenizer() -> Any:
    """A real byte-level BPE tokenizer with the reference chat template, trained in well under a second."""
    from llmops.models.corpus import pretraining_texts
    from llmops.models.tokenizer import train_tokenizer

    return train_tokenizer(pretraining_texts(150, 0), vocab_size=300, model_max_length=512)


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.fixture(scope="session", name="write_jsonl")
def write_jsonl_fixture() -> Callable[[Path, list[object]], Path]:
    """``write_jsonl(path, rows)``: one line per row (strings as they are, anything else as JSON); returns ``path``."""
    return write_jsonl


class EchoEngine:
    """A minimal in-process engine behind the gateway's Upstream protocol: records each request body and
    answers a completion (or an SSE stream when the body says ``stream: true``); ``hold`` makes it wait."""

    def __init__(self) -> None:
        self.name = "e"
        self.url = "http://fake"
        self.requests: list[dict[str, Any]] = []
        self.hold: Any = None  # an asyncio.Event the engine waits on before answering

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def chat(self, body: bytes, *, request_id: str) -> Any:
        import orjson

        req = orjson.loads(body)
        self.requests.append(req)
        if self.hold is not None:
            await self.hold.wait()
        return _EchoResponse(req)

    async def request_json(self, method: str, path: str, payload: Any | None = None) -> tuple[int, Any]:
        if path == "/v1/models":
            return 200, {"object": "list", "data": [{"id": "base", "parent": None}]}
        return 200, "ok"

    async def healthy(self) -> bool:
        return True


class _EchoResponse:
    status = 200

    def __init__(self, req: dict[str, Any]) -> None:
        self.req = req

    async def read(self) -> bytes:
        import orjson

        msg = {"role": "assistant", "content": "ok"}
        usage = {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}
        body = {"id": "c", "object": "chat.completion", "created": 1, "model": self.req["model"], "usage": usage}
        return orjson.dumps({**body, "choices": [{"index": 0, "message": msg, "finish_reason": "stop"}]})

    async def chunks(self) -> Any:
        import orjson

        base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": self.req["model"]}
        yield b"data: " + orjson.dumps({**base, "choices": [{"index": 0, "delta": {"content": "ok"}}]}) + b"\n\n"
        if (self.req.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}
            yield b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n"
        yield b"data: [DONE]\n\n"

    def release(self) -> None:
        return None

    def abort(self) -> None:
        return None


def make_echo_gateway(
    limits: dict[str, Any] | None = None, prompts: dict[str, Any] | None = None, **overrides: Any
) -> tuple[Any, EchoEngine]:
    """A gateway (keys ``user-key``, ``other-key`` and admin ``admin-key``) with routes ``plain`` and, for each of
    ``prompts`` (name -> PromptSpec), a route of that name rendering it; its engine is an :class:`EchoEngine`."""
    from llmops.config.gateway import GatewayFile
    from llmops.gateway.app import build_app
    from llmops.gateway.resolver import ResolvedPrompt, StaticResolver
    from llmops.gateway.settings import settings_from_file

    routes: dict[str, Any] = {"plain": {"targets": [{"name": "base", "weight": 1}]}}
    for name in prompts or {}:
        routes[name] = {"targets": [{"name": "base", "weight": 1, "prompt": f"{name}@production"}]}
    keys = [{"name": "app", "env": "K"}, {"name": "other", "env": "O"}, {"name": "ops", "env": "A", "scope": "admin"}]
    cfg = {
        "engines": {"e": {"url": "http://fake"}},
        "routes": routes,
        "auth": {"keys": keys},
        "limits": limits or {},
        "request_log": {"enabled": False},
    }
    spec = GatewayFile.model_validate({**cfg, **overrides})
    env = {"K": "user-key", "O": "other-key", "A": "admin-key", "LLMOPS_STICKY_SECRET": "test-secret"}
    settings = settings_from_file(spec, home=Path("/nonexistent"), env=env)
    resolved = {name: ResolvedPrompt(name, 1, p) for name, p in (prompts or {}).items()}
    engine = EchoEngine()
    return build_app(settings, StaticResolver(resolved), upstreams={"e": engine}), engine


@pytest.fixture(scope="session", name="make_echo_gateway")
def make_echo_gateway_fixture() -> Callable[..., tuple[Any, EchoEngine]]:
    """``make_echo_gateway(limits=None, prompts=None, **config)``: an in-process gateway and its fake engine."""
    return make_echo_gateway


@pytest.fixture(scope="module")
def detection_reference() -> Any:
    """The monitor's reference for the detection tests: the example's training inputs and answers."""
    from llmops.finetune.example_data import build
    from llmops.monitor.signals import ReferenceSample

    train = build()["train"]
    return ReferenceSample([r["variables"]["message"] for r in train], [r["target"] for r in train])


@pytest.fixture(scope="module")
def detection_embedder() -> Iterator[Any]:
    """One MiniLM embedder per module, so each distinct text is embedded once; one torch thread (2 shared cores)."""
    torch = pytest.importorskip("torch")
    from llmops.monitor.embeddings import MiniLMEmbedder

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield MiniLMEmbedder()
    torch.set_num_threads(threads)
