"""The captured texts of a request-log record, as the signals read them.

A captured record holds ``input`` (``{"variables": {...}}`` or ``{"messages": [...]}``) and ``output``
(the answer text or null); see :mod:`llmops.gateway.requestlog`. Records without capture give None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def input_text(record: Mapping[str, Any]) -> str | None:
    """The captured input as one text: the variables' string values joined with ``"\\n"`` in key order,
    else the user messages' contents; None when the record was not captured (or holds no text)."""
    if not record.get("captured"):
        return None
    captured = record.get("input")
    if not isinstance(captured, Mapping):
        return None
    variables = captured.get("variables")
    if isinstance(variables, Mapping):
        parts = [v for v in variables.values() if isinstance(v, str)]
        return "\n".join(parts) if parts else None
    messages = captured.get("messages")
    if isinstance(messages, list):
        parts = [
            m["content"]
            for m in messages
            if isinstance(m, Mapping) and m.get("role") == "user" and isinstance(m.get("content"), str)
        ]
        return "\n".join(parts) if parts else None
    return None


def output_text(record: Mapping[str, Any]) -> str | None:
    """The captured answer text; None when the record was not captured or has no output (an error)."""
    if not record.get("captured"):
        return None
    output = record.get("output")
    return output if isinstance(output, str) else None
