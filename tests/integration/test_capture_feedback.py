"""Capture and feedback through a real ``llmops serve gateway`` over the fake engine (registry: MLflow on loopback).

A planted email in a prompt variable and in a message never reaches the request log file (its raw
bytes are searched); captured records hold the redacted input and the answer; feedback sent with
``llmops.client.send_feedback`` for a served request id lands in the feedback log beside it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from llmops.client import send_feedback
from llmops.config.workspace import load_workspace
from llmops.gitinfo import GitInfo
from llmops.prompts.spec import load_spec
from llmops.registry import connect

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EMAIL = "planted.person@example.com"


def _wait_for(path: Path, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 10) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        records = [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []
        if predicate(records) or time.monotonic() > deadline:
            return records
        time.sleep(0.1)


def test_capture_redacts_and_feedback_round_trips(
    mlflow_server: Any,
    tmp_path: Path,
    start_fake_engine: Callable[..., Any],
    start_gateway: Callable[..., Any],
    gateway_keys: Any,
) -> None:
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url}
    (tmp_path / "ws").mkdir()
    registry = connect(load_workspace(tmp_path / "ws", env=env))
    prompt = f"capture-prompt-{uuid.uuid4().hex[:6]}"
    spec = load_spec(REPO / "prompts" / "support-triage.yaml").model_copy(update={"name": prompt})
    registry.prompts.push(spec, GitInfo(None, "test prompt", False, f"prompts/{prompt}.yaml"))
    engine, engine_url = start_fake_engine(tmp_path, "--chunks", "4")
    config = f"""
engines:
  fake: {{url: "{engine_url}", model: base}}
routes:
  triage:
    capture: 1.0
    targets:
      - {{name: stable, weight: 1, prompt: "{prompt}/1"}}
"""
    gw = start_gateway(tmp_path / "gw", config, env)
    try:
        with httpx.Client(base_url=gw.base_url, headers=gateway_keys.user, timeout=30) as client:
            by_variable = client.post(
                "/chat/completions",
                json={"model": "triage", "messages": [], "prompt_variables": {"message": f"I am {EMAIL}, refund me"}},
            )
            by_message = client.post(
                "/chat/completions",
                json={"model": "triage", "stream": True, "messages": [{"role": "user", "content": f"mail {EMAIL}"}]},
            )
        assert by_variable.status_code == by_message.status_code == 200, by_variable.text
        ids = {by_variable.headers["x-request-id"], by_message.headers["x-request-id"]}
        records = gw.records_of(ids)
        assert set(records) == ids
        assert EMAIL.encode() not in gw.log_path.read_bytes()
        variable_record = records[by_variable.headers["x-request-id"]]
        assert variable_record["captured"] is True
        assert variable_record["input"] == {"variables": {"message": "I am [EMAIL], refund me"}}
        assert variable_record["output"] == by_variable.json()["choices"][0]["message"]["content"]
        message_record = records[by_message.headers["x-request-id"]]
        assert message_record["input"] == {"messages": [{"role": "user", "content": "mail [EMAIL]"}]}
        assert isinstance(message_record["output"], str) and message_record["output"]

        rid = by_variable.headers["x-request-id"]
        key = gateway_keys.user_key
        correction = '{"intent":"billing","priority":"high"}'
        first = send_feedback(
            rid, 0.0, correction=correction, comment=f"from {EMAIL}", base_url=gw.base_url, api_key=key
        )
        again = send_feedback(
            rid, 0.0, correction=correction, comment=f"from {EMAIL}", base_url=gw.base_url, api_key=key
        )
        assert first == {"request_id": rid, "status": "recorded"} and again["status"] == "unchanged"
        with pytest.raises(httpx.HTTPStatusError) as refused:
            send_feedback(rid, 2.0, base_url=gw.base_url, api_key=key)
        assert refused.value.response.status_code == 400
        feedback_path = gw.log_path.with_name("feedback.jsonl")
        feedback = _wait_for(feedback_path, lambda rs: len(rs) >= 1, timeout=10)
        time.sleep(0.5)  # the repeat and the refused body must not add a record
        feedback = _wait_for(feedback_path, lambda rs: False, timeout=0)
        assert len(feedback) == 1
        assert feedback[0] == {
            "id": rid,
            "time": feedback[0]["time"],
            "api_key": "tests",
            "score": 0.0,
            "label": None,
            "correction": correction,
            "comment": "from [EMAIL]",
        }
        metrics = httpx.get(f"{gw.url}/metrics", timeout=10).text
        assert 'llmops_gateway_captured_total{route="triage",target="stable"} 2.0' in metrics
        assert 'llmops_gateway_feedback_total{result="rejected"} 1.0' in metrics
    finally:
        gw.process.stop()
        engine.stop()
