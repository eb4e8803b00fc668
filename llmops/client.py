"""Client helpers for the gateway: a LangChain ``ChatOpenAI`` pointed at a route.

The gateway speaks the OpenAI API, so any OpenAI client works unchanged (``base_url`` = the gateway's
``/v1``, ``api_key`` = a gateway key, ``model`` = a route name)::

    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:8080/v1", api_key=key)
    client.chat.completions.create(model="support-triage", messages=[...], user="customer-42")
    client.chat.completions.create(model="support-triage", messages=[],
                                   extra_body={"prompt_variables": {"message": "Where is my parcel?"}})

For LangChain, :func:`chat_model` returns a configured ``ChatOpenAI``::

    from llmops.client import chat_model
    llm = chat_model("support-triage", session="customer-42")
    llm.invoke("Where is my parcel?").content

Feedback on an answer: every gateway answer carries its request id in the ``x-request-id`` header (with
the OpenAI SDK: ``client.chat.completions.with_raw_response.create(...)``, then ``.headers["x-request-id"]``
and ``.parse()`` for the completion); :func:`send_feedback` posts a score (and optionally a label, the
right answer, a comment) for it::

    raw = client.chat.completions.with_raw_response.create(model="support-triage", messages=[...])
    send_feedback(raw.headers["x-request-id"], 0.0, correction='{"intent":"billing","priority":"high"}')
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llmops.names import check_name

if TYPE_CHECKING:
    from langchain_openai import ChatOpenAI

DEFAULT_URL = "http://127.0.0.1:8080/v1"
FEEDBACK_PATH = "/feedback"
SESSION_HEADER = "x-llmops-session"


def chat_model(
    route: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    session: str | None = None,
    prompt_variables: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> ChatOpenAI:
    """A ``ChatOpenAI`` that calls ``route`` on the gateway.

    ``base_url`` defaults to ``LLMOPS_GATEWAY_URL`` (else ``http://127.0.0.1:8080/v1``), ``api_key``
    to ``LLMOPS_GATEWAY_KEY``. ``session`` is the sticky key (same session, same release);
    ``prompt_variables`` makes the gateway render the release's prompt (the messages you pass then
    follow it). Other keyword arguments go to ``ChatOpenAI`` (``temperature``, ``max_tokens``, …).
    """
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    check_name(route, "route")
    headers = dict(kwargs.pop("default_headers", None) or {})
    if session is not None:
        headers[SESSION_HEADER] = session
    extra_body = dict(kwargs.pop("extra_body", None) or {})
    if prompt_variables is not None:
        extra_body["prompt_variables"] = dict(prompt_variables)
    key = api_key or os.environ.get("LLMOPS_GATEWAY_KEY") or ""
    return ChatOpenAI(
        model=route,
        base_url=base_url or os.environ.get("LLMOPS_GATEWAY_URL") or DEFAULT_URL,
        api_key=SecretStr(key),
        default_headers=headers or None,
        extra_body=extra_body or None,
        **kwargs,
    )


def send_feedback(
    request_id: str,
    score: float,
    *,
    label: str | None = None,
    correction: str | None = None,
    comment: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    timeout: float = 10,
) -> dict[str, Any]:
    """``POST /v1/feedback`` for the answer ``request_id`` (its ``x-request-id``); returns the gateway's
    answer, ``{"request_id": ..., "status": "recorded" | "unchanged"}``.

    ``score`` is from 0 to 1; ``correction`` is the right answer. ``base_url`` and ``api_key`` default as
    in :func:`chat_model`. A refused body raises ``httpx.HTTPStatusError`` (its response holds the
    OpenAI-style error naming the field).
    """
    import httpx

    body: dict[str, Any] = {"request_id": request_id, "score": score}
    for name, value in (("label", label), ("correction", correction), ("comment", comment)):
        if value is not None:
            body[name] = value
    url = (base_url or os.environ.get("LLMOPS_GATEWAY_URL") or DEFAULT_URL).rstrip("/") + FEEDBACK_PATH
    key = api_key or os.environ.get("LLMOPS_GATEWAY_KEY") or ""
    response = httpx.post(url, json=body, headers={"authorization": f"Bearer {key}"}, timeout=timeout)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result
