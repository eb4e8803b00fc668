"""Where answers come from: any OpenAI-compatible endpoint (a vLLM engine, the llmops gateway).

Answers are streamed so time to first token is measured the way a user feels it. The client is a
lean aiohttp SSE reader rather than the ``openai`` SDK: at eval concurrency (64 requests in flight on
a 2-core runner) the SDK's per-chunk object building cost more CPU than the engine's answers took,
and the runner's throughput fell to a fraction of the endpoint's (``bench/eval_throughput.py``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import orjson

from llmops.errors import LlmopsError


@dataclass(frozen=True)
class Answer:
    text: str
    latency_ms: float
    ttft_ms: float
    tokens_out: int | None = None


class Responder(Protocol):
    """Sends one chat request for a release and returns the answer with its timings."""

    async def respond(self, messages: list[dict[str, str]], params: Mapping[str, Any]) -> Answer: ...

    async def aclose(self) -> None: ...


class EndpointError(LlmopsError):
    """The endpoint answered with an error status or an error event."""


class OpenAIResponder:
    """Streams chat completions from an OpenAI-compatible ``base_url`` (``…/v1``) for model ``model``."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"content-type": "application/json", **dict(headers or {})}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self.model = model

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
            )
        return self._session

    async def respond(self, messages: list[dict[str, str]], params: Mapping[str, Any]) -> Answer:
        body = {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            **dict(params),
        }
        started = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        tokens = None
        async with self._client().post(self._url, data=orjson.dumps(body), headers=self._headers) as resp:
            if resp.status >= 400:
                raise EndpointError(f"{self._url} answered {resp.status}: {(await resp.text())[:300]}")
            async for raw in resp.content:
                line = raw.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    break
                event = orjson.loads(data)
                if "error" in event:
                    raise EndpointError(f"{self._url} stream error: {event['error']}")
                for choice in event.get("choices") or ():
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        if first is None:
                            first = time.perf_counter()
                        parts.append(content)
                if event.get("usage"):
                    tokens = event["usage"].get("completion_tokens")
        done = time.perf_counter()
        return Answer("".join(parts), (done - started) * 1000, ((first or done) - started) * 1000, tokens)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
