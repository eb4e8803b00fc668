"""Where answers come from: any OpenAI-compatible endpoint (a vLLM engine, the llmops gateway).

Answers are streamed so time to first token is measured the way a user feels it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


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


class OpenAIResponder:
    """Streams chat completions from an OpenAI-compatible ``base_url`` for model ``model``."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        from openai import AsyncOpenAI

        self._client = AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "none",
            timeout=timeout_s,
            max_retries=2,
            default_headers=dict(headers or {}),
        )
        self.model = model

    async def respond(self, messages: list[dict[str, str]], params: Mapping[str, Any]) -> Answer:
        started = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        tokens = None
        stream = await self._client.chat.completions.create(  # type: ignore[call-overload]
            model=self.model,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
            **dict(params),
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                if first is None:
                    first = time.perf_counter()
                parts.append(chunk.choices[0].delta.content)
            if chunk.usage is not None:
                tokens = chunk.usage.completion_tokens
        done = time.perf_counter()
        return Answer(
            text="".join(parts),
            latency_ms=(done - started) * 1000,
            ttft_ms=((first or done) - started) * 1000,
            tokens_out=tokens,
        )

    async def aclose(self) -> None:
        await self._client.close()
