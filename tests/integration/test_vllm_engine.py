"""The real vLLM OpenAI server over the reference model: health, model list, chat completions, API key."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from llmops.process import http_ok

pytestmark = pytest.mark.integration


def test_server_is_healthy_and_lists_the_model(vllm_engine) -> None:
    assert http_ok(f"{vllm_engine.url}/health")
    client = openai.OpenAI(base_url=vllm_engine.base_url, api_key=vllm_engine.api_key)
    assert vllm_engine.model_name in [m.id for m in client.models.list().data]


def test_chat_completion_answers_with_usage(vllm_engine) -> None:
    client = openai.OpenAI(base_url=vllm_engine.base_url, api_key=vllm_engine.api_key, timeout=60)
    resp = client.chat.completions.create(
        model=vllm_engine.model_name,
        messages=[
            {"role": "system", "content": "You are a helpful customer support agent."},
            {"role": "user", "content": "My package for order #12345 has not arrived. Please help."},
        ],
        max_tokens=24,
        temperature=0,
        # the model may emit <|eos|> at once; ask for at least a few tokens so the check is about serving
        extra_body={"min_tokens": 4},
    )
    choice = resp.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content and choice.message.content.strip()
    assert resp.usage is not None
    assert resp.usage.prompt_tokens > 10
    assert 4 <= resp.usage.completion_tokens <= 24
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_streaming_chat_completion(vllm_engine) -> None:
    client = openai.OpenAI(base_url=vllm_engine.base_url, api_key=vllm_engine.api_key, timeout=60)
    stream = client.chat.completions.create(
        model=vllm_engine.model_name,
        messages=[{"role": "user", "content": "I cannot log in to my account."}],
        max_tokens=12,
        temperature=0,
        stream=True,
        extra_body={"min_tokens": 2},
    )
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(pieces).strip()


def test_the_engine_refuses_calls_without_its_key(vllm_engine, tmp_path) -> None:
    """Runtime LoRA loading is on: without the key nobody may load an adapter (or call any /v1 endpoint)."""
    load = {"lora_name": "intruder-v1", "lora_path": str(tmp_path)}
    for headers in ({}, {"authorization": "Bearer wrong-key"}):
        r = httpx.post(f"{vllm_engine.url}/v1/load_lora_adapter", json=load, headers=headers, timeout=30)
        assert r.status_code == 401, r.text
        assert httpx.get(f"{vllm_engine.url}/v1/models", headers=headers, timeout=30).status_code == 401
    served = httpx.get(f"{vllm_engine.url}/v1/models", headers=vllm_engine.headers, timeout=30).json()["data"]
    assert "intruder-v1" not in [m["id"] for m in served]
    assert http_ok(f"{vllm_engine.url}/health")  # health checks need no key


def test_the_key_travels_in_the_environment_not_on_the_command_line(vllm_engine) -> None:
    """``ps`` shows every local user a command line; the key must not be on it."""
    argv = Path(f"/proc/{vllm_engine.pid}/cmdline").read_bytes().split(b"\0")
    assert vllm_engine.api_key.encode() not in b" ".join(argv)
