"""The component schemas of the gateway's OpenAPI document (:mod:`llmops.gateway.openapi`).

Response schemas follow OpenAI's published schema (github.com/openai/openai-openapi) for the fields
the gateway passes on: optional fields OpenAI does not make nullable are typed without ``null``, and
the gateway normalises engine answers to them (:mod:`llmops.gateway.openai_schema`). The chat request
schema types its fields as strictly as the gateway checks them (a boolean is a JSON boolean, an
integer a JSON integer) and lists every parameter the gateway accepts (``additionalProperties: false``).
"""

from __future__ import annotations

from typing import Any

NAME_PATTERN = "^[a-z0-9][a-z0-9._-]{0,63}$"

NULLABLE_STRING = {"type": ["string", "null"]}
INT = {"type": "integer"}
STRING = {"type": "string"}
OBJECT = {"type": "object"}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def component_schemas() -> dict[str, Any]:
    usage = {
        "type": "object",
        "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
        "properties": {
            "prompt_tokens": INT,
            "completion_tokens": INT,
            "total_tokens": INT,
            "completion_tokens_details": {"type": "object", "additionalProperties": INT},
            "prompt_tokens_details": {"type": "object", "additionalProperties": INT},
        },
    }
    function_call = {"type": "object", "properties": {"name": STRING, "arguments": STRING}}
    finish = {"enum": ["stop", "length", "tool_calls", "content_filter", "function_call"]}
    message = {
        "type": "object",
        "required": ["role", "content", "refusal"],
        "properties": {
            "role": {"const": "assistant"},
            "content": NULLABLE_STRING,
            "refusal": NULLABLE_STRING,
            "tool_calls": {"type": "array", "items": OBJECT},
            "annotations": {"type": "array", "items": OBJECT},
            "function_call": function_call,
            "audio": {"type": ["object", "null"]},
        },
    }
    delta = {
        "type": "object",
        "properties": {
            "role": {"enum": ["developer", "system", "user", "assistant", "tool"]},
            "content": NULLABLE_STRING,
            "refusal": NULLABLE_STRING,
            "tool_calls": {"type": "array", "items": OBJECT},
            "function_call": function_call,
        },
    }
    logprobs = {"type": ["object", "null"]}
    common = {
        "id": STRING,
        "created": INT,
        "model": STRING,
        "system_fingerprint": STRING,
        "service_tier": NULLABLE_STRING,
    }
    completion = {
        "type": "object",
        "required": ["id", "object", "created", "model", "choices"],
        "properties": {
            **common,
            "object": {"const": "chat.completion"},
            "usage": usage,
            "choices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "message", "finish_reason", "logprobs"],
                    "properties": {"index": INT, "message": message, "finish_reason": finish, "logprobs": logprobs},
                },
            },
        },
    }
    chunk = {
        "type": "object",
        "required": ["id", "object", "created", "model", "choices"],
        "properties": {
            **common,
            "object": {"const": "chat.completion.chunk"},
            "usage": {"anyOf": [usage, {"type": "null"}]},
            "choices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "delta", "finish_reason"],
                    "properties": {
                        "index": INT,
                        "delta": delta,
                        "finish_reason": {"anyOf": [finish, {"type": "null"}]},
                        "logprobs": logprobs,
                    },
                },
            },
        },
    }
    error = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "code", "param"],
                "properties": {
                    "message": STRING,
                    "type": STRING,
                    "code": NULLABLE_STRING,
                    "param": NULLABLE_STRING,
                },
            }
        },
    }
    target = {
        "type": "object",
        "required": ["target", "engine", "model", "prompt_version", "adapter_version", "params"],
        "properties": {
            "target": STRING,
            "engine": STRING,
            "model": STRING,
            "prompt_version": NULLABLE_STRING,
            "adapter_version": NULLABLE_STRING,
            "params": OBJECT,
            "weight": INT,
            "sample": {"type": "number"},
        },
    }
    state = {  # route state as this replica last read it from the registry (llmops.gateway.statesync)
        "type": "object",
        "properties": {
            "weights_version": INT,
            "weights_by": NULLABLE_STRING,
            "rollout": NULLABLE_STRING,
            "stages": {"type": "object", "additionalProperties": INT},
            "ignored": NULLABLE_STRING,
            "read_error": NULLABLE_STRING,
        },
    }
    route = {
        "type": "object",
        "required": ["route", "targets", "shadow"],
        "properties": {
            "route": STRING,
            "targets": {"type": "array", "items": target},
            "shadow": {"anyOf": [target, {"type": "null"}]},
            "error": NULLABLE_STRING,
            "state": state,
        },
    }
    routes = {
        "type": "object",
        "required": ["generation", "resolved_at", "routes", "errors"],
        "properties": {
            "generation": INT,
            "resolved_at": {"type": "number"},
            "routes": {"type": "object", "additionalProperties": route},
            "errors": {"type": "object", "additionalProperties": STRING},
            "stale_targets": {"type": "object", "additionalProperties": {"type": "array", "items": STRING}},
            "state": {"type": "object", "additionalProperties": state},
        },
    }
    models = {
        "type": "object",
        "required": ["object", "data"],
        "properties": {
            "object": {"const": "list"},
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "object", "created", "owned_by"],
                    "properties": {"id": STRING, "object": {"const": "model"}, "created": INT, "owned_by": STRING},
                },
            },
        },
    }
    weights = {
        "type": "object",
        "required": ["weights"],
        "additionalProperties": False,
        "properties": {
            "weights": {
                "type": "object",
                "propertyNames": {"pattern": NAME_PATTERN},
                "additionalProperties": {"type": "integer", "minimum": 0},
            },
            "force": {"type": "boolean", "description": "write even while a rollout owns the route (audited)"},
            "reason": {"type": "string", "description": "recorded in the audit record"},
        },
    }
    return {
        "ChatCompletionRequest": chat_request(),
        "ChatCompletion": completion,
        "ChatCompletionChunk": chunk,
        "ErrorResponse": error,
        "ModelList": models,
        "Route": route,
        "RouteTable": routes,
        "WeightsBody": weights,
        **feedback_schemas(),
    }


def feedback_schemas() -> dict[str, Any]:
    """``POST /v1/feedback``: its body and its answer (:mod:`llmops.gateway.feedback`)."""
    text = {"type": ["string", "null"]}
    body = {
        "type": "object",
        "required": ["request_id", "score"],
        "additionalProperties": False,
        "properties": {
            "request_id": {
                "type": "string",
                "pattern": "^[0-9a-f]{32}$",
                "description": "a chat answer's x-request-id",
            },
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            "label": {**text, "maxLength": 64},
            "correction": {**text, "maxLength": 8192, "description": "the right answer"},
            "comment": {**text, "maxLength": 2048},
        },
    }
    result = {
        "type": "object",
        "required": ["request_id", "status"],
        "additionalProperties": False,
        "properties": {"request_id": STRING, "status": {"enum": ["recorded", "unchanged"]}},
    }
    return {"FeedbackRequest": body, "FeedbackResult": result}


def chat_request() -> dict[str, Any]:
    part = {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": ["text", "image_url", "input_audio", "file"]}, "text": STRING},
    }
    content = {"anyOf": [STRING, {"type": "array", "items": part}, {"type": "null"}]}
    function = {"type": "object", "required": ["name"], "properties": {"name": STRING, "arguments": STRING}}
    call = {"type": "object", "required": ["id", "type", "function"],
            "properties": {"id": STRING, "type": {"const": "function"}, "function": function}}  # fmt: skip
    message = {
        "type": "object",
        "required": ["role"],
        "properties": {
            "role": {"enum": ["developer", "system", "user", "assistant", "tool"]},
            "content": content,
            "name": STRING,
            "tool_calls": {"type": "array", "items": call},
            "tool_call_id": STRING,
        },
    }
    definition = {
        "type": "object",
        "required": ["name"],
        "properties": {"name": STRING, "description": STRING, "parameters": OBJECT, "strict": {"type": "boolean"}},
    }
    tool = {"type": "object", "required": ["type", "function"],
            "properties": {"type": {"const": "function"}, "function": definition}}  # fmt: skip
    named = {"type": "object", "required": ["type", "function"],
             "properties": {"type": {"const": "function"}, "function": {"type": "object", "required": ["name"],
                                                                         "properties": {"name": STRING}}}}  # fmt: skip
    response_format = {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": ["text", "json_object", "json_schema"]}, "json_schema": OBJECT},
    }
    number = {"type": "number"}
    positive = {"type": "integer", "minimum": 1}
    boolean = {"type": "boolean"}
    stop = {"anyOf": [STRING, {"type": "array", "items": STRING, "maxItems": 4}, {"type": "null"}]}
    return {
        "type": "object",
        "required": ["model", "messages"],
        "additionalProperties": False,
        "description": "OpenAI's chat parameters, vLLM's sampling extras and llmops' `prompt_variables` "
        "(a route target with a prompt renders it; `messages` may then be left out).",
        "properties": {
            "model": {"type": "string", "minLength": 1, "description": "a route name (GET /v1/models)"},
            "messages": {"type": "array", "minItems": 1, "items": message},
            "prompt_variables": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
            "stream": boolean,
            "stream_options": {"type": "object", "properties": {"include_usage": boolean}},
            "max_tokens": positive,
            "max_completion_tokens": positive,
            "n": positive,
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "top_p": {"type": "number", "minimum": 0, "maximum": 1},
            "frequency_penalty": {"type": "number", "minimum": -2, "maximum": 2},
            "presence_penalty": {"type": "number", "minimum": -2, "maximum": 2},
            "seed": INT,
            "stop": stop,
            "user": STRING,
            "logprobs": boolean,
            "top_logprobs": {"type": "integer", "minimum": 0, "maximum": 20},
            "logit_bias": {"type": "object", "additionalProperties": number},
            "response_format": response_format,
            "tools": {"type": "array", "items": tool},
            "tool_choice": {"anyOf": [{"enum": ["none", "auto", "required"]}, named]},
            "parallel_tool_calls": boolean,
            "metadata": {"type": "object", "additionalProperties": STRING},
            "store": boolean,
            "reasoning_effort": STRING,
            "top_k": INT,
            "min_p": {"type": "number", "minimum": 0, "maximum": 1},
            "repetition_penalty": {"type": "number", "exclusiveMinimum": 0},
            "min_tokens": {"type": "integer", "minimum": 0},
            "ignore_eos": boolean,
            "skip_special_tokens": boolean,
            "include_stop_str_in_output": boolean,
            "stop_token_ids": {"type": "array", "items": INT},
            "length_penalty": number,
        },
    }
