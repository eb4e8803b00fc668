"""``POST /v1/chat/completions``: the hot path, as a plain ASGI callable.

Per request: admit it under its API key's rate and concurrency limits (429 beyond), read the body
(bounded), check it, take the current route table once, hash the sticky key (keyed with the
deployment's secret) into the route's weight buckets, render the release's prompt when asked (a
template with logic renders off the event loop, within a time budget), and forward to the release's
engine over its pooled connection (a bounded wait for a free one: 503 ``engine_busy`` beyond). Non-streaming answers are forwarded whole; streams are
relayed event by event. No registry or other network call happens here besides the engine.

A route's ``capture`` share of requests is captured (:mod:`llmops.gateway.capture`): the record
carries references to the request's input and answer, redacted and written by the request log's
writer thread; a request not captured pays one comparison.

A request still running after 50 ms starts a watcher on the client's connection (earlier answers
never pay for it); when the client disconnects, the request is cancelled and its engine connection
closed, so the engine stops generating.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import orjson

from llmops.config.gateway import LimitsSpec
from llmops.errors import (
    InvalidRequestError,
    LlmopsError,
    PermissionDeniedError,
    RouteNotFoundError,
    RouteUnavailableError,
    UpstreamError,
)
from llmops.gateway.asgi import Receive, Scope, Send
from llmops.gateway.auth import PRINCIPAL
from llmops.gateway.capture import Capture, answer_text
from llmops.gateway.chatrequest import ChatRequest, engine_body, parse_request
from llmops.gateway.errors import classify, error_body, send_error, send_json
from llmops.gateway.limits import ClientDisconnected, read_body
from llmops.gateway.metrics import NO_LABEL, GatewayMetrics
from llmops.gateway.openai_schema import normalise_completion
from llmops.gateway.prompting import PromptRenderer
from llmops.gateway.quota import KeyQuota
from llmops.gateway.requestlog import DEFERRED, RequestLog
from llmops.gateway.routes import Route, RouteManager, ServedTarget
from llmops.gateway.routing import digest_point, key_digest, random_point
from llmops.gateway.shadow import Shadows
from llmops.gateway.streaming import StreamResult, relay
from llmops.gateway.upstream import Upstream, UpstreamResponse
from llmops.requestid import new_request_id

log = logging.getLogger(__name__)

SESSION_HEADER = b"x-llmops-session"
PIN_HEADER = b"x-llmops-target"  # admin only: send this request to the named target
CLIENT_CLOSED = 499  # recorded (never sent) when the client disconnects first
WATCH_AFTER_S = 0.05  # a request still running after this starts watching for a client disconnect
_SSE_HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)


class Outcome:
    """What the request log and metrics record about one request."""

    __slots__ = ("capture", "disconnected", "error", "key_hash", "release", "rendered", "started", "status",
                 "stream", "tokens_in", "tokens_out", "ttft")  # fmt: skip

    def __init__(self) -> None:
        self.status = 200
        self.error: str | None = None
        self.release: ServedTarget | None = None
        self.rendered = False
        self.stream = False
        self.key_hash: str | None = None
        self.ttft: float | None = None
        self.tokens_in: int | None = None
        self.tokens_out: int | None = None
        self.disconnected = False
        self.started = False  # the response status and headers went out
        self.capture: Capture | None = None  # set when the route's capture share picks this request

    def usage(self, usage: object) -> None:
        if isinstance(usage, dict):
            self.tokens_in = usage.get("prompt_tokens")
            self.tokens_out = usage.get("completion_tokens")


def _upstream_error(status: int, data: bytes, release: ServedTarget) -> tuple[int, bytes, str]:
    """An engine's non-200 answer as the gateway's: 4xx kept (the request's fault), else 502.

    Returns (status, client body, what the request log keeps). The client never reads the engine's
    name or the adapter's internal (LoRA) name: the latter reads as the route name in a 4xx message,
    and a 502 says only that the engine failed.
    """
    message = data[:1000].decode(errors="replace")
    param = None
    try:
        obj = orjson.loads(data)
        err = obj.get("error") if isinstance(obj, dict) else None
        if isinstance(err, dict):
            message = str(err.get("message") or message)
            param = err.get("param") if isinstance(err.get("param"), str) else None
        elif isinstance(obj, dict) and "detail" in obj:
            message = str(obj["detail"])
    except orjson.JSONDecodeError:
        pass
    logged = f"engine {release.engine} answered {status}: {message}"
    if status in (400, 413, 422, 429):
        public = message.replace(release.model, release.route)
        return (
            (400 if status == 422 else status),
            error_body(public, "invalid_request_error", "upstream_rejected", param),
            logged,
        )
    return 502, error_body(f"the engine failed to answer ({status})", "server_error", "upstream_error"), logged


class ChatCompletions:
    def __init__(
        self,
        routes: RouteManager,
        upstreams: Mapping[str, Upstream],
        limits: LimitsSpec,
        metrics: GatewayMetrics,
        request_log: RequestLog,
        shadows: Shadows,
        sticky_secret: bytes = b"",
        capture_max_chars: int = 8192,
    ) -> None:
        self.routes = routes
        self.capture_max_chars = capture_max_chars
        self.upstreams = upstreams
        self.limits = limits
        self.metrics = metrics
        self.log = request_log
        self.shadows = shadows
        self.sticky_secret = sticky_secret
        self.quota = KeyQuota.from_limits(limits)
        self.renderer = PromptRenderer(limits.render_timeout_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = new_request_id()
        id_header = (b"x-request-id", request_id.encode())
        out = Outcome()
        session: str | None = None
        pin: str | None = None
        length: int | None = None
        for name, value in scope["headers"]:
            if name == SESSION_HEADER:
                session = value.decode("latin-1")
            elif name == PIN_HEADER:
                pin = value.decode("latin-1")
            elif name == b"content-length":
                length = int(value) if value.isdigit() else None
        req: ChatRequest | None = None
        target_metrics = None
        quota_key: str | None = None
        try:
            if self.quota.enabled:
                principal = scope.get(PRINCIPAL)
                key = principal.name if principal is not None else ""
                self.quota.acquire(key)  # RateLimitError: 429 before the body is read
                quota_key = key
            body = await read_body(receive, self.limits.max_body_bytes, length)
            req = parse_request(body)
            out.stream = req.stream
            route, release = self._choose(req, req.user or session, out)
            if pin is not None:
                release = self._pinned(route, pin, scope, out)
            share = self.routes.specs[route.name].capture
            if share > 0 and (share >= 1.0 or random_point() < share):
                out.capture = Capture(
                    self.capture_max_chars, variables=req.variables, messages=req.payload.get("messages")
                )
            rendered = None
            if req.variables is not None and release.prompt is not None:
                rendered = await self.renderer.render(release.prompt, req.variables)
            payload, out.rendered = engine_body(req, release, self.limits, rendered)
            target_metrics = self.metrics.target(release.route, release.target)
            target_metrics.in_flight.inc()
            data = orjson.dumps(payload)
            if route.shadow is not None and (route.shadow_sample >= 1.0 or random_point() < route.shadow_sample):
                self.shadows.submit(route.shadow, req, request_id, out.key_hash, captured=out.capture is not None)
            headers = [id_header, *(release.headers if out.rendered else release.headers_plain)]
            await self._forward(release, data, request_id, req, headers, receive, send, out)
        except ClientDisconnected:
            out.status, out.error, out.disconnected = CLIENT_CLOSED, "client disconnected", True
        except LlmopsError as exc:
            out.error = str(exc)
            if out.started:
                out.status = classify(exc)[0]
            else:
                out.status = await send_error(send, exc, [id_header])
        except Exception as exc:  # a bug: logged with its traceback; the client still gets an OpenAI-style 500
            log.exception("request %s failed", request_id)
            out.status, out.error = 500, f"internal error: {exc!r}"
            if not out.started:
                body = error_body("internal error", "server_error", "internal_error")
                await send_json(send, 500, body, [id_header])
        finally:
            if quota_key is not None:
                self.quota.release(quota_key)
            if target_metrics is not None:
                target_metrics.in_flight.dec()
            self._record(request_id, started, scope, out, target_metrics)

    def _choose(self, req: ChatRequest, key: str | None, out: Outcome) -> tuple[Route, ServedTarget]:
        table = self.routes.table
        route = table.routes.get(req.model)
        if route is None:
            if req.model in self.routes.specs:
                raise RouteUnavailableError(req.model, table.errors.get(req.model, "not resolved yet"))
            raise RouteNotFoundError(req.model)
        if key is not None:
            digest = key_digest(key, route.name, self.sticky_secret)
            out.key_hash = digest.hex()
            point = digest_point(digest)
        else:
            point = random_point()
        out.release = route.choose(point)
        return route, out.release

    def _pinned(self, route: Route, target: str, scope: Scope, out: Outcome) -> ServedTarget:
        """An admin may pin a request to one target (evals of a canary through the gateway)."""
        principal = scope.get(PRINCIPAL)
        if principal is None or principal.scope != "admin":
            raise PermissionDeniedError(f"{PIN_HEADER.decode()} needs an admin key")
        for release in route.targets:
            if release.target == target:
                out.release = release
                return release
        raise InvalidRequestError(f"route {route.name} has no target {target!r}", param=PIN_HEADER.decode())

    async def _forward(
        self,
        release: ServedTarget,
        data: bytes,
        request_id: str,
        req: ChatRequest,
        headers: list[tuple[bytes, bytes]],
        receive: Receive,
        send: Send,
        out: Outcome,
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        finished = False
        watcher: asyncio.Task[None] | None = None

        async def watch() -> None:
            message = await receive()
            if message["type"] == "http.disconnect" and not finished:
                out.disconnected = True
                task.cancel()

        def start_watching() -> None:
            nonlocal watcher
            if not finished:
                watcher = asyncio.get_running_loop().create_task(watch())

        # most answers are back before this: only longer requests pay for a watcher task
        timer = asyncio.get_running_loop().call_later(WATCH_AFTER_S, start_watching)
        resp: UpstreamResponse | None = None
        try:
            resp = await self.upstreams[release.engine].chat(data, request_id=request_id)
            if req.stream and resp.status == 200:
                await self._stream(resp, release, req, headers, send, out)
            else:
                await self._unary(resp, release, headers, send, out)
            resp = None
        except asyncio.CancelledError:
            if not out.disconnected:
                raise
            task.uncancel()
            out.status, out.error = CLIENT_CLOSED, "client disconnected"
        except UpstreamError as exc:
            self.metrics.upstream_errors.labels(release.route, release.target, exc.code).inc()
            raise
        finally:
            finished = True
            timer.cancel()
            if watcher is not None:
                watcher.cancel()
            if resp is not None:
                resp.abort()  # the engine stops generating for a closed connection

    async def _unary(
        self,
        resp: UpstreamResponse,
        release: ServedTarget,
        headers: list[tuple[bytes, bytes]],
        send: Send,
        out: Outcome,
    ) -> None:
        data = await resp.read()
        resp.release()
        out.started = True
        if resp.status == 200:
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError:
                obj = None
            if isinstance(obj, dict):
                out.usage(obj.get("usage"))
                if out.capture is not None:
                    out.capture.output = answer_text(obj)
                if normalise_completion(obj):  # vLLM's nulls where OpenAI's schema has none
                    data = orjson.dumps(obj)
            else:
                out.error = "engine answered a body that is not a JSON object"
            await send_json(send, 200, data, headers)
            return
        self.metrics.upstream_errors.labels(release.route, release.target, f"http_{resp.status}").inc()
        if resp.status == 404:
            self.routes.poke()  # the engine lacks the model (restarted?): re-sync adapters soon
        out.status, body, out.error = _upstream_error(resp.status, data, release)
        await send_json(send, out.status, body, headers)

    async def _stream(
        self,
        resp: UpstreamResponse,
        release: ServedTarget,
        req: ChatRequest,
        headers: list[tuple[bytes, bytes]],
        send: Send,
        out: Outcome,
    ) -> None:
        out.started = True
        await send({"type": "http.response.start", "status": 200, "headers": [*_SSE_HEADERS, *headers]})
        result = StreamResult(captured=[] if out.capture is not None else None)
        failure = await relay(resp.chunks(), send, strip_usage=not req.include_usage, result=result)
        out.ttft = result.first_event_at
        if out.capture is not None:
            out.capture.blocks = result.captured
        out.usage(result.usage)
        if failure is None:
            resp.release()
            return
        # the client got the error as the stream's last event; record it as the engine's failure
        resp.abort()
        self.metrics.upstream_errors.labels(release.route, release.target, failure.code).inc()
        out.status = classify(failure)[0]
        out.error = str(failure)

    def _record(self, request_id: str, started: float, scope: Scope, out: Outcome, target_metrics: Any) -> None:
        elapsed = time.perf_counter() - started
        release = out.release
        route = release.route if release else NO_LABEL
        target = release.target if release else NO_LABEL
        self.metrics.count(route, target, out.status)
        ttft = out.ttft - started if out.ttft is not None else None
        if target_metrics is not None:
            target_metrics.latency.observe(elapsed)
            if ttft is not None:
                target_metrics.ttft.observe(ttft)
            if out.tokens_in:
                target_metrics.tokens_in.inc(out.tokens_in)
            if out.tokens_out:
                target_metrics.tokens_out.inc(out.tokens_out)
        principal = scope.get(PRINCIPAL)
        record = {
            "id": request_id,
            "time": time.time() - elapsed,
            "api_key": principal.name if principal is not None else None,
            "key_hash": out.key_hash,
            "route": release.route if release else None,
            "target": release.target if release else None,
            "prompt_version": release.prompt_version if release and out.rendered else None,
            "adapter_version": release.adapter_version if release else None,
            "stream": out.stream,
            "status": out.status,
            "latency_ms": round(elapsed * 1000, 3),
            "ttft_ms": round(ttft * 1000, 3) if ttft is not None else None,
            "tokens_in": out.tokens_in,
            "tokens_out": out.tokens_out,
            "error": out.error,
        }
        if out.capture is not None:
            record[DEFERRED] = out.capture  # redacted and serialized in the writer thread
            self.metrics.count_captured(route, target)
        self.log.submit(record)
