"""A fast fake OpenAI-compatible engine (raw asyncio + httptools), for the gateway benchmark and tests.

It answers like vLLM's OpenAI server, only instantly: ``POST /v1/chat/completions`` (JSON, or SSE with
``min(max_tokens, --chunks)`` content events ``--interval-ms`` apart, a usage event when
``stream_options.include_usage`` is set, then ``[DONE]``), ``GET /health``, ``GET /v1/models`` and
vLLM's ``/v1/load_lora_adapter`` / ``/v1/unload_lora_adapter`` (which it merely records).
``GET /fake/stats`` counts requests and streams the client abandoned.

Faults, for the gateway's fault tests: ``POST /fake/fault`` with ``{"mode": M, ...}`` (or ``--fault M``
at start) makes the next chat requests (all, or ``"times": N``) misbehave; ``{"mode": "none"}`` ends it.
Modes: ``reset`` (send ``after`` body parts, then a TCP reset), ``hang`` (send the headers and ``after``
body parts, then nothing, forever), ``stall`` (send nothing at all), ``trickle`` (the whole answer,
``piece`` bytes every ``gap_ms``), ``slow`` (one SSE event every ``gap_ms``). A faulty stream has
``chunks`` content events (default 4) ``t0 t1 …``; a unary answer is sent in two parts.

Like vLLM, it answers ``null`` where OpenAI's schema has an optional, non-nullable field: a unary
answer is shaped like vLLM's ``ChatCompletionResponse.model_dump()`` (``annotations``,
``function_call``, ``prompt_tokens_details``, ``system_fingerprint`` … all ``null``); in a stream,
the first event and the usage event carry such nulls too (content events stay lean, as vLLM's do).
The gateway normalises them away (llmops/gateway/openai_schema.py).

Run: ``python bench/fake_upstream.py --port 9000 [--chunks 64 --interval-ms 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import struct
import time
from typing import Any

import httptools
import orjson

CONTENT = "The quick brown fox jumps over the lazy dog. " * 2


class State:
    def __init__(self, model: str, chunks: int, interval_s: float) -> None:
        self.model = model
        self.chunks = chunks
        self.interval_s = interval_s
        self.adapters: dict[str, str] = {}
        self.requests = 0
        self.streams_started = 0
        self.streams_abandoned = 0
        self.last_abandoned_at = 0.0  # time.time() of the last abandoned stream/faulty answer
        self.fault: dict[str, Any] = {}


def _response(status: int, body: bytes, content_type: bytes = b"application/json") -> bytes:
    reason = {200: b"OK", 400: b"Bad Request", 404: b"Not Found"}.get(status, b"Error")
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n" % (status, reason, content_type, len(body))
        + body
    )


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class FakeEngine(asyncio.Protocol):
    def __init__(self, state: State) -> None:
        self.state = state
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.streaming: asyncio.Task[None] | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transport is not an asyncio.Transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.streaming is not None and not self.streaming.done():
            self.state.streams_abandoned += 1
            self.state.last_abandoned_at = time.time()
            self.streaming.cancel()

    # -- httptools callbacks ------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        method = self.parser.get_method()
        path = self.url.split(b"?", 1)[0]
        if path == b"/v1/chat/completions" and method == b"POST":
            self.chat(orjson.loads(b"".join(self.body)))
        elif path == b"/health":
            self.transport.write(_response(200, b""))
        elif path == b"/v1/models":
            data = [{"id": self.state.model, "object": "model", "parent": None}]
            data += [
                {"id": n, "object": "model", "parent": self.state.model, "root": p}
                for n, p in self.state.adapters.items()
            ]
            self.transport.write(_response(200, orjson.dumps({"object": "list", "data": data})))
        elif path == b"/v1/load_lora_adapter" and method == b"POST":
            req = orjson.loads(b"".join(self.body))
            self.state.adapters[req["lora_name"]] = req["lora_path"]
            self.transport.write(_response(200, b'"Success"'))
        elif path == b"/v1/unload_lora_adapter" and method == b"POST":
            req = orjson.loads(b"".join(self.body))
            found = self.state.adapters.pop(req["lora_name"], None)
            self.transport.write(_response(200 if found else 404, b'"ok"'))
        elif path == b"/fake/fault" and method == b"POST":
            self.state.fault = orjson.loads(b"".join(self.body))
            self.transport.write(_response(200, b'"ok"'))
        elif path == b"/fake/stats":
            s = self.state
            stats = {
                "requests": s.requests,
                "streams_started": s.streams_started,
                "streams_abandoned": s.streams_abandoned,
                "last_abandoned_at": s.last_abandoned_at,
            }
            self.transport.write(_response(200, orjson.dumps(stats)))
        else:
            self.transport.write(_response(404, b'{"error": {"message": "not found"}}'))

    # -- chat ---------------------------------------------------------------------------------
    def chat(self, req: dict[str, Any]) -> None:
        assert self.transport is not None
        self.state.requests += 1
        model = req.get("model", self.state.model)
        if model != self.state.model and model not in self.state.adapters:
            err = {"error": {"message": f"The model `{model}` does not exist.", "type": "NotFoundError", "code": 404}}
            self.transport.write(_response(404, orjson.dumps(err)))
            return
        if self.take_fault():
            self.streaming = asyncio.get_running_loop().create_task(self.faulty(req, model, self.state.fault))
            return
        if req.get("stream"):
            self.state.streams_started += 1
            self.streaming = asyncio.get_running_loop().create_task(self.stream(req, model))
            return
        message = {
            "role": "assistant",
            "content": CONTENT,
            "refusal": None,
            "annotations": None,
            "audio": None,
            "function_call": None,
            "tool_calls": [],
            "reasoning_content": None,
        }
        body = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop", "stop_reason": None}
            ],
            "service_tier": None,
            "system_fingerprint": None,
            "usage": {"prompt_tokens": 12, "total_tokens": 32, "completion_tokens": 20, "prompt_tokens_details": None},
            "prompt_logprobs": None,
            "kv_transfer_params": None,
        }
        self.transport.write(_response(200, orjson.dumps(body)))

    async def stream(self, req: dict[str, Any], model: str) -> None:
        assert self.transport is not None
        t = self.transport
        n = min(int(req.get("max_tokens") or self.state.chunks), self.state.chunks)
        t.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
        delta = {"role": "assistant", "content": "", "tool_calls": None, "function_call": None}
        first = {
            **base,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}],
        }
        t.write(_chunked(b"data: " + orjson.dumps(first) + b"\n\n"))
        for i in range(n):
            if self.state.interval_s:
                await asyncio.sleep(self.state.interval_s)
            finish = "length" if i == n - 1 else None
            choice = {"index": 0, "delta": {"content": f"t{i} "}, "logprobs": None, "finish_reason": finish}
            chunk = {**base, "choices": [choice]}
            t.write(_chunked(b"data: " + orjson.dumps(chunk) + b"\n\n"))
        if (req.get("stream_options") or {}).get("include_usage"):
            usage = {
                **base,
                "choices": [],
                "usage": {
                    "prompt_tokens": 12,
                    "completion_tokens": n,
                    "total_tokens": 12 + n,
                    "prompt_tokens_details": None,
                },
            }
            t.write(_chunked(b"data: " + orjson.dumps(usage) + b"\n\n"))
        t.write(_chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        self.streaming = None

    # -- faults (POST /fake/fault) -----------------------------------------------------------------
    def take_fault(self) -> bool:
        fault = self.state.fault
        if fault.get("mode", "none") == "none":
            return False
        if "times" in fault:
            if fault["times"] <= 0:
                return False
            fault["times"] -= 1
        return True

    async def faulty(self, req: dict[str, Any], model: str, fault: dict[str, Any]) -> None:
        assert self.transport is not None
        t, mode, gap = self.transport, fault["mode"], fault.get("gap_ms", 100) / 1000
        if mode == "stall":
            await asyncio.Event().wait()  # ends only when the client goes away
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
        if req.get("stream"):
            n = min(int(req.get("max_tokens") or 4), fault.get("chunks", 4))
            events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
            events += [{**base, "choices": [{"index": 0, "delta": {"content": f"t{i} "}}]} for i in range(n)]
            parts = [_chunked(b"data: " + orjson.dumps(e) + b"\n\n") for e in events]
            parts += [_chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n"]
            head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        else:
            message = {"role": "assistant", "content": CONTENT}
            answer = {**base, "object": "chat.completion", "choices": [{"index": 0, "message": message}]}
            body = orjson.dumps({**answer, "usage": {"prompt_tokens": 12, "completion_tokens": 20}})
            parts = [body[: len(body) // 2], body[len(body) // 2 :]]
            head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)
        if mode == "trickle":
            data, piece = head + b"".join(parts), int(fault.get("piece", 16))
            for i in range(0, len(data), piece):
                if i:
                    await asyncio.sleep(gap)
                t.write(data[i : i + piece])
        else:
            t.write(head)
            for i, part in enumerate(parts):
                if mode in ("hang", "reset") and i >= fault.get("after", 2):
                    break
                if mode == "slow" and i:
                    await asyncio.sleep(gap)
                t.write(part)
            if mode == "hang":
                await asyncio.Event().wait()
            if mode == "reset":
                await asyncio.sleep(0.05)  # let the parts go out first
                sock = t.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.streaming = None  # a reset is no abandoned stream
                t.abort()  # closing with linger 0 sends a TCP reset
        if self.streaming is asyncio.current_task():  # the next request on this connection may have begun
            self.streaming = None


async def serve(host: str, port: int, state: State) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FakeEngine(state), host, port, backlog=1024)
    print(f"fake engine on http://{host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--model", default="base")
    parser.add_argument("--chunks", type=int, default=16, help="content events per stream (at most max_tokens)")
    parser.add_argument("--interval-ms", type=float, default=0.0, help="pause before each content event")
    parser.add_argument("--fault", default="none", help="fault mode from the start (see POST /fake/fault)")
    args = parser.parse_args()
    state = State(args.model, args.chunks, args.interval_ms / 1000)
    state.fault = {"mode": args.fault}
    try:
        import uvloop

        uvloop.run(serve(args.host, args.port, state))
    except ImportError:
        asyncio.run(serve(args.host, args.port, state))


if __name__ == "__main__":
    main()
