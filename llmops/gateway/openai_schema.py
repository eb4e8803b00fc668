"""Chat completion answers normalised to OpenAI's published schema (github.com/openai/openai-openapi).

vLLM serialises every field of its response models, so it answers ``null`` where OpenAI's schema
types a field as an object, array or string that is optional but *not* nullable: an OpenAI client
then reads ``"annotations": null`` where it expects a list (or nothing). The gateway drops those
keys, and adds the keys OpenAI's schema requires (``message.content``/``refusal``,
``choices[].logprobs``) as ``null`` where they are nullable and missing. Fields OpenAI does not
define (vLLM's ``stop_reason``, ``reasoning_content`` …) are left alone.

Not nullable in OpenAI's schema, dropped when ``null``:

- completion and chunk: ``system_fingerprint``; a completion's ``usage`` (a chunk's may be ``null``);
  a chunk's ``obfuscation``;
- ``usage``: ``completion_tokens_details``, ``prompt_tokens_details``;
- ``choices[].message``: ``tool_calls``, ``annotations``, ``function_call``;
- ``choices[].delta``: ``tool_calls``, ``function_call``, ``role``.

Cheap on the hot path: a stream event is parsed only when :func:`needs_normalising` finds one of
those keys followed by ``null`` in its bytes (one regular-expression scan); the rest pass through as
they came.
"""

from __future__ import annotations

import re
from typing import Any

_COMPLETION_DROP = ("system_fingerprint", "usage")
_CHUNK_DROP = ("system_fingerprint", "obfuscation")
_USAGE_DROP = ("completion_tokens_details", "prompt_tokens_details")
_MESSAGE_DROP = ("tool_calls", "annotations", "function_call")
_DELTA_DROP = ("tool_calls", "function_call", "role")

#: one of the keys above (a chunk's ``usage`` excepted: it may be ``null``) with the value ``null``
_NULL_FIELD = re.compile(
    rb'"(?:system_fingerprint|obfuscation|completion_tokens_details|prompt_tokens_details'
    rb'|tool_calls|annotations|function_call|role)"\s*:\s*null'
)


def needs_normalising(data: bytes) -> bool:
    """Whether a stream event's JSON may hold a ``null`` OpenAI's schema does not allow."""
    return _NULL_FIELD.search(data) is not None


def _drop_nulls(obj: dict[str, Any], keys: tuple[str, ...]) -> bool:
    changed = False
    for key in keys:
        if key in obj and obj[key] is None:
            del obj[key]
            changed = True
    return changed


def _usage(obj: dict[str, Any]) -> bool:
    usage = obj.get("usage")
    return _drop_nulls(usage, _USAGE_DROP) if isinstance(usage, dict) else False


def normalise_completion(obj: dict[str, Any]) -> bool:
    """Normalise a ``chat.completion`` body in place; whether anything changed."""
    changed = _drop_nulls(obj, _COMPLETION_DROP)
    changed = _usage(obj) or changed
    choices = obj.get("choices")
    for choice in choices if isinstance(choices, list) else ():
        if not isinstance(choice, dict):
            continue
        if "logprobs" not in choice:
            choice["logprobs"] = None
            changed = True
        message = choice.get("message")
        if isinstance(message, dict):
            changed = _drop_nulls(message, _MESSAGE_DROP) or changed
            for key in ("content", "refusal"):
                if key not in message:
                    message[key] = None
                    changed = True
    return changed


def normalise_chunk(obj: dict[str, Any]) -> bool:
    """Normalise a ``chat.completion.chunk`` in place; whether anything changed."""
    changed = _drop_nulls(obj, _CHUNK_DROP)
    changed = _usage(obj) or changed
    choices = obj.get("choices")
    for choice in choices if isinstance(choices, list) else ():
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        if isinstance(delta, dict):
            changed = _drop_nulls(delta, _DELTA_DROP) or changed
        if "finish_reason" not in choice:
            choice["finish_reason"] = None
            changed = True
    return changed
