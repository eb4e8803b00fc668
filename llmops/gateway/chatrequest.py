"""Chat completion requests: checked against an allow-list, turned into the engine's request body.

A client may send the OpenAI chat parameters, vLLM's common sampling extras, and ``prompt_variables``
(OpenAI SDK ``extra_body``). Parameters that would let a client steer the engine itself
(``lora_path``, ``api_base``, ``base_url``, ``chat_template`` …) are refused with 400, as is any
parameter not on the list.

Generation parameters combine as: the release's defaults (its prompt version's params, then the
route target's params), overridden by what the request sets, then checked against the limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from llmops.config.gateway import LimitsSpec
from llmops.errors import InvalidRequestError
from llmops.gateway.limits import apply_limits
from llmops.gateway.prompting import combine
from llmops.gateway.routes import ServedTarget

FORBIDDEN = frozenset(
    {
        "lora_path",
        "lora_name",
        "lora_request",
        "api_base",
        "base_url",
        "api_key",
        "chat_template",
        "chat_template_kwargs",
        "mm_processor_kwargs",
        "cache_salt",
    }
)
ALLOWED = frozenset(
    {
        # OpenAI chat completions
        "model", "messages", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "max_tokens",
        "max_completion_tokens", "n", "presence_penalty", "response_format", "seed", "stop", "stream",
        "stream_options", "temperature", "top_p", "tools", "tool_choice", "parallel_tool_calls", "user",
        "metadata", "store", "reasoning_effort", "function_call", "functions",
        # vLLM sampling extras
        "top_k", "min_p", "repetition_penalty", "min_tokens", "ignore_eos", "skip_special_tokens",
        "include_stop_str_in_output", "stop_token_ids", "length_penalty",
        # llmops
        "prompt_variables",
    }
)  # fmt: skip


@dataclass(slots=True)
class ChatRequest:
    payload: dict[str, Any]
    model: str
    stream: bool
    include_usage: bool  # the client asked for the final usage chunk
    user: str | None
    variables: dict[str, Any] | None


def parse_request(body: bytes) -> ChatRequest:
    """Decode and check a request body; InvalidRequestError names the offending parameter."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise InvalidRequestError("request body must be a JSON object")
    for key in payload:
        if key not in ALLOWED:
            if key in FORBIDDEN:
                raise InvalidRequestError(f"parameter '{key}' is not allowed through this gateway", param=key)
            raise InvalidRequestError(f"unsupported parameter '{key}'", code="unsupported_parameter", param=key)
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("'model' (a route name) is required", param="model")
    variables = payload.pop("prompt_variables", None)
    if variables is not None and not isinstance(variables, dict):
        raise InvalidRequestError("'prompt_variables' must be an object", param="prompt_variables")
    messages = payload.get("messages")
    if messages is None and variables is None:
        raise InvalidRequestError("'messages' is required (or 'prompt_variables')", param="messages")
    if messages is not None and (not isinstance(messages, list) or (not messages and variables is None)):
        raise InvalidRequestError("'messages' must be a non-empty array", param="messages")
    stream = payload.get("stream") is True
    options = payload.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequestError("'stream_options' must be an object", param="stream_options")
    include_usage = bool(options and options.get("include_usage"))
    user = payload.get("user")
    if user is not None and not isinstance(user, str):
        raise InvalidRequestError("'user' must be a string", param="user")
    return ChatRequest(payload, model, stream, include_usage, user or None, variables)


def engine_body(req: ChatRequest, release: ServedTarget, limits: LimitsSpec) -> tuple[dict[str, Any], bool]:
    """The body sent to the release's engine, and whether the release's prompt was rendered."""
    payload = {**release.params, **req.payload} if release.params else dict(req.payload)
    payload["model"] = release.model
    rendered = False
    if req.variables is not None:
        if release.prompt is None:
            raise InvalidRequestError(
                f"target {release.target} of route {release.route} has no prompt; send 'messages' only",
                param="prompt_variables",
            )
        payload["messages"] = combine(release.prompt.render(req.variables), req.payload.get("messages"))
        rendered = True
    apply_limits(payload, limits)
    if req.stream and not req.include_usage:
        # ask the engine for usage (for the request log and metrics); the relay drops it for the client
        payload["stream_options"] = {**(payload.get("stream_options") or {}), "include_usage": True}
    return payload, rendered


def shadow_body(req: ChatRequest, release: ServedTarget, limits: LimitsSpec) -> dict[str, Any]:
    """The non-streaming body a shadow release receives for the same request."""
    payload, _ = engine_body(req, release, limits)
    payload.pop("stream", None)
    payload.pop("stream_options", None)
    return payload
