"""Chat completion requests: checked against an allow-list, turned into the engine's request body.

A client may send the OpenAI chat parameters, vLLM's common sampling extras, and ``prompt_variables``
(OpenAI SDK ``extra_body``). Parameters that would let a client steer the engine itself
(``lora_path``, ``api_base``, ``base_url``, ``chat_template`` …) are refused with 400, as is any
parameter not on the list.

Every parameter is typed strictly, as JSON types, before anything reads it: a boolean is ``true`` or
``false`` (not ``1``, not ``"true"``), an integer is a JSON integer (not ``true``, not ``2.0``), a
number is an integer or a float; ``null`` means "not set". vLLM's parsing is lenient (``"stream": 1``
streams), so without this the gateway and the engine could read one request differently (a stream
relayed as JSON, usage accounting skipped). Anything else is a 400 naming the parameter.

Generation parameters combine as: the release's defaults (its prompt version's params, then the
route target's params), overridden by what the request sets, then checked against the limits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from llmops.config.gateway import LimitsSpec
from llmops.errors import InvalidRequestError
from llmops.gateway.limits import apply_limits
from llmops.gateway.prompting import combine
from llmops.gateway.routes import ServedTarget
from llmops.prompts.sandbox import Budget

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
Check = tuple[Callable[[Any], bool], str]  # (accepts a non-null value, what it must be)


def _is_bool(v: Any) -> bool:
    return v is True or v is False


def _is_int(v: Any) -> bool:
    return type(v) is int  # bool is an int subclass: `true` is refused here


def _is_number(v: Any) -> bool:
    return type(v) is int or type(v) is float


def _is_str(v: Any) -> bool:
    return type(v) is str


def _is_object(v: Any) -> bool:
    return type(v) is dict


def _is_array(v: Any) -> bool:
    return type(v) is list


def _is_stop(v: Any) -> bool:
    return type(v) is str or (type(v) is list and all(type(x) is str for x in v))


def _is_int_list(v: Any) -> bool:
    return type(v) is list and all(type(x) is int for x in v)


def _is_bias(v: Any) -> bool:
    return type(v) is dict and all(type(x) is int or type(x) is float for x in v.values())


def _is_str_or_object(v: Any) -> bool:
    return type(v) is str or type(v) is dict


def _anything(v: Any) -> bool:
    return True


BOOLEAN: Check = (_is_bool, "a boolean (true or false)")
INTEGER: Check = (_is_int, "an integer")
NUMBER: Check = (_is_number, "a number")
STRING: Check = (_is_str, "a string")
OBJECT: Check = (_is_object, "an object")
ARRAY: Check = (_is_array, "an array")
# every parameter a client may send, with its JSON type
ALLOWED: Mapping[str, Check] = {
    # OpenAI chat completions
    "model": STRING, "messages": ARRAY, "frequency_penalty": NUMBER, "logit_bias": (_is_bias, "an object of numbers"),
    "logprobs": BOOLEAN, "top_logprobs": INTEGER, "max_tokens": INTEGER, "max_completion_tokens": INTEGER,
    "n": INTEGER, "presence_penalty": NUMBER, "response_format": OBJECT, "seed": INTEGER,
    "stop": (_is_stop, "a string or an array of strings"), "stream": BOOLEAN, "stream_options": OBJECT,
    "temperature": NUMBER, "top_p": NUMBER, "tools": ARRAY, "tool_choice": (_is_str_or_object, "a string or an object"),
    "parallel_tool_calls": BOOLEAN, "user": STRING, "metadata": OBJECT, "store": BOOLEAN, "reasoning_effort": STRING,
    "function_call": (_is_str_or_object, "a string or an object"), "functions": ARRAY,
    # vLLM sampling extras
    "top_k": INTEGER, "min_p": NUMBER, "repetition_penalty": NUMBER, "min_tokens": INTEGER, "ignore_eos": BOOLEAN,
    "skip_special_tokens": BOOLEAN, "include_stop_str_in_output": BOOLEAN,
    "stop_token_ids": (_is_int_list, "an array of integers"), "length_penalty": NUMBER,
    # llmops
    "prompt_variables": (_anything, "an object"),
}  # fmt: skip
STREAM_OPTIONS: Mapping[str, Check] = {"include_usage": BOOLEAN, "continuous_usage_stats": BOOLEAN}


_JSON_TYPES = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    dict: "an object",
    list: "an array",
}


def _wrong_type(param: str, expected: str, value: Any) -> InvalidRequestError:
    got = _JSON_TYPES.get(type(value), type(value).__name__)
    return InvalidRequestError(f"'{param}' must be {expected}, got {got}", code="invalid_type", param=param)


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
    for key, value in payload.items():
        check = ALLOWED.get(key)
        if check is None:
            if key in FORBIDDEN:
                raise InvalidRequestError(f"parameter '{key}' is not allowed through this gateway", param=key)
            raise InvalidRequestError(f"unsupported parameter '{key}'", code="unsupported_parameter", param=key)
        if value is not None and not check[0](value):
            raise _wrong_type(key, check[1], value)
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
    include_usage = False
    if options:
        for key, value in options.items():
            param = f"stream_options.{key}"
            check = STREAM_OPTIONS.get(key)
            if check is None:
                raise InvalidRequestError(f"unsupported parameter '{param}'", code="unsupported_parameter", param=param)
            if value is not None and not check[0](value):
                raise _wrong_type(param, check[1], value)
        include_usage = options.get("include_usage") is True
    return ChatRequest(payload, model, stream, include_usage, payload.get("user") or None, variables)


def engine_body(
    req: ChatRequest, release: ServedTarget, limits: LimitsSpec, rendered_messages: list[dict[str, str]] | None = None
) -> tuple[dict[str, Any], bool]:
    """The body sent to the release's engine, and whether the release's prompt was rendered.

    ``rendered_messages``: the release's prompt already rendered for ``req`` (the hot path renders off
    the event loop, see :class:`~llmops.gateway.prompting.PromptRenderer`); else it renders here, within
    the same time budget.
    """
    payload = {**release.params, **req.payload} if release.params else dict(req.payload)
    payload["model"] = release.model
    rendered = False
    if req.variables is not None:
        if release.prompt is None:
            raise InvalidRequestError(
                f"target {release.target} of route {release.route} has no prompt; send 'messages' only",
                param="prompt_variables",
            )
        if rendered_messages is None:
            rendered_messages = release.prompt.render(req.variables, budget=Budget.of(limits.render_timeout_s))
        payload["messages"] = combine(rendered_messages, req.payload.get("messages"))
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
