"""What a captured request keeps in the request log: its input, its answer, PII redacted, size-bounded.

A route's ``capture`` share of requests (and the shadow copies of those) is captured. On the event
loop a request only attaches references (the parsed ``prompt_variables`` or ``messages``, the answer
text of a unary completion, the relayed event blocks of a stream) to a :class:`Capture`, which rides
in the record as its ``DEFERRED`` entry. The request log's writer thread calls :meth:`Capture.fields`
right before it serializes the record: the stream's deltas are joined, every text is redacted
(:func:`llmops.pii.redact_pii`: ``[EMAIL]``, ``[PHONE]``, ``[CARD]``, ``[IBAN]``) and then cut to
``capture_max_chars`` (ending with ``…[truncated]``), so nothing unredacted is ever written.

Fields added: ``"captured": true``; ``"input"``: ``{"variables": {...}}`` when the client sent
``prompt_variables``, else ``{"messages": [{"role", "content"}, ...]}`` (text content only; the text
parts of a multi-part content joined with newlines); ``"output"``: choice 0's answer text, or ``null``.
A shadow record that is not captured gets only ``output`` (redacted too).
"""

from __future__ import annotations

from typing import Any

import orjson

from llmops.pii import redact_pii

TRUNCATED = "…[truncated]"


def bound(text: str, max_chars: int) -> str:
    """``text`` redacted, then cut to ``max_chars`` characters (marked ``…[truncated]``)."""
    text = redact_pii(text)
    return text if len(text) <= max_chars else text[:max_chars] + TRUNCATED


def _redact_value(value: Any, max_chars: int) -> Any:
    if isinstance(value, str):
        return bound(value, max_chars)
    if isinstance(value, dict):
        return {k: _redact_value(v, max_chars) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(v, max_chars) for v in value]
    return value


def message_text(content: Any) -> str | None:
    """The text of a chat message's ``content``: a string, or the text parts of a list joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "\n".join(texts) if texts else None
    return None


def answer_text(completion: Any) -> str | None:
    """Choice 0's ``message.content`` of a parsed chat completion, if it is text."""
    try:
        content = completion["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None


def stream_text(blocks: list[bytes]) -> str | None:
    """The concatenated ``delta.content`` of choice 0 in relayed SSE blocks (``None``: no text at all)."""
    parts: list[str] = []
    for event in b"".join(blocks).split(b"\n\n"):
        if not event.startswith(b"data:"):
            continue
        data = event[5:].strip()
        if not data.startswith(b"{"):
            continue
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            continue
        choices = obj.get("choices") if isinstance(obj, dict) else None
        for choice in choices if isinstance(choices, list) else ():
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                delta = choice.get("delta")
                content = delta.get("content") if isinstance(delta, dict) else None
                if isinstance(content, str):
                    parts.append(content)
    return "".join(parts) if parts else None


class Capture:
    """References to a request's input and answer; :meth:`fields` turns them into log fields (writer thread)."""

    __slots__ = ("blocks", "captured", "max_chars", "messages", "output", "variables")

    def __init__(
        self,
        max_chars: int,
        *,
        variables: dict[str, Any] | None = None,
        messages: Any = None,
        captured: bool = True,
    ) -> None:
        self.max_chars = max_chars
        self.variables = variables
        self.messages = messages
        self.captured = captured
        self.output: str | None = None
        self.blocks: list[bytes] | None = None  # a stream's relayed event blocks

    def _input(self) -> dict[str, Any]:
        if self.variables is not None:
            return {"variables": _redact_value(self.variables, self.max_chars)}
        messages = []
        for m in self.messages if isinstance(self.messages, list) else ():
            text = message_text(m.get("content")) if isinstance(m, dict) else None
            if text is not None:
                messages.append({"role": str(m.get("role")), "content": bound(text, self.max_chars)})
        return {"messages": messages}

    def fields(self) -> dict[str, Any]:
        """The record's ``captured``/``input``/``output`` fields, redacted and bounded (call off the event loop)."""
        output = stream_text(self.blocks) if self.blocks is not None else self.output
        fields: dict[str, Any] = {"captured": True, "input": self._input()} if self.captured else {}
        fields["output"] = bound(output, self.max_chars) if output is not None else None
        return fields
