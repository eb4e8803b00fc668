"""The app factory: ``build_app(settings, resolver)`` → a pure-ASGI gateway for uvicorn.

Layers, outermost first: :class:`~llmops.gateway.auth.AuthMiddleware` (pure ASGI), a dispatcher
that hands ``POST /v1/chat/completions`` to the hot path (:mod:`llmops.gateway.chat`), ``POST
/v1/feedback`` to :mod:`llmops.gateway.feedback` (both plain ASGI), and every other path to a small
FastAPI app (:mod:`llmops.gateway.admin`). All state lives on the :class:`Gateway` instance: pooled
engine clients, the route table, metrics registry, request log and feedback log.

The ASGI lifespan (uvicorn) starts and stops it; in-process tests use ``async with app.running():``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping

from llmops.errors import InvalidRequestError, LlmopsError
from llmops.gateway.adapters import AdapterSync
from llmops.gateway.admin import build_api, count_state_failure, update_weight_metrics
from llmops.gateway.asgi import Receive, Scope, Send
from llmops.gateway.auth import AuthMiddleware
from llmops.gateway.chat import ChatCompletions
from llmops.gateway.errors import send_error
from llmops.gateway.feedback import FEEDBACK_PATH, Feedback
from llmops.gateway.metrics import GatewayMetrics
from llmops.gateway.requestlog import JsonlSink, NullSink, RequestLog, RequestLogSink
from llmops.gateway.resolver import RouteResolver
from llmops.gateway.routes import RouteManager
from llmops.gateway.settings import GatewaySettings
from llmops.gateway.shadow import Shadows
from llmops.gateway.upstream import AiohttpUpstream, Upstream

log = logging.getLogger(__name__)
CHAT_PATH = "/v1/chat/completions"


class Gateway:
    """The gateway application (ASGI callable) and everything it owns."""

    def __init__(
        self,
        settings: GatewaySettings,
        resolver: RouteResolver,
        *,
        upstreams: Mapping[str, Upstream] | None = None,
        sink: RequestLogSink | None = None,
        feedback_sink: RequestLogSink | None = None,
    ) -> None:
        self.settings = settings
        lim = settings.limits
        self.upstreams: dict[str, Upstream] = dict(upstreams) if upstreams is not None else {
            name: AiohttpUpstream(
                name,
                e.url,
                connect_timeout_s=lim.connect_timeout_s,
                read_timeout_s=lim.read_timeout_s,
                max_connections=e.max_connections,
                pool_timeout_s=lim.pool_timeout_s,
                api_key=settings.engine_keys.get(name),
            )
            for name, e in settings.engines.items()
        }  # fmt: skip
        self.metrics = GatewayMetrics()
        spec = settings.request_log
        if sink is None:
            path = settings.request_log_path
            sink = JsonlSink(path, max_bytes=spec.max_bytes, files_kept=spec.files_kept) if path else NullSink()
        self.request_log = RequestLog(sink, queue_size=settings.request_log_queue, on_drop=self.metrics.log_dropped.inc)
        if feedback_sink is None:
            path = settings.feedback_log_path
            feedback_sink = (
                JsonlSink(path, max_bytes=spec.max_bytes, files_kept=spec.files_kept) if path else NullSink()
            )
        self.feedback_log = RequestLog(feedback_sink, queue_size=settings.request_log_queue)
        self.feedback = Feedback(self.feedback_log, self.metrics)
        self.adapters = AdapterSync(self.upstreams, {n: e.max_adapters for n, e in settings.engines.items()})
        self.routes = RouteManager(
            settings.routes,
            settings.engines,
            resolver,
            self.adapters,
            interval_s=settings.refresh_interval_s,
            on_swap=lambda table: update_weight_metrics(self.metrics, table),
            state_interval_s=settings.file.refresh.state_interval_s,
            on_state_error=lambda route, exc: count_state_failure(self.metrics, route),
        )
        self.shadows = Shadows(self.upstreams, self.request_log, self.metrics, lim, spec.capture_max_chars)
        self.chat = ChatCompletions(
            self.routes,
            self.upstreams,
            lim,
            self.metrics,
            self.request_log,
            self.shadows,
            settings.sticky_secret,
            capture_max_chars=spec.capture_max_chars,
        )
        self.api = build_api(self.routes, self.upstreams, self.metrics)
        public = {"/healthz", "/readyz"} | ({"/metrics"} if settings.public_metrics else set())
        self._app = AuthMiddleware(
            self._dispatch, settings.keys, enabled=settings.auth_enabled, public_paths=frozenset(public)
        )
        self._started = False

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == CHAT_PATH:
            if scope["method"] != "POST":
                await send_error(send, InvalidRequestError(f"{scope['method']} is not allowed on {CHAT_PATH}"))
                return
            await self.chat(scope, receive, send)
            return
        if scope["type"] == "http" and scope["path"] == FEEDBACK_PATH:
            if scope["method"] != "POST":
                await send_error(send, InvalidRequestError(f"{scope['method']} is not allowed on {FEEDBACK_PATH}"))
                return
            await self.feedback(scope, receive, send)
            return
        await self.api(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self._app(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except (LlmopsError, OSError) as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def start(self) -> None:
        """Open engine clients, start the request log, resolve routes once, start the refresher."""
        if self._started:
            return
        for upstream in self.upstreams.values():
            await upstream.start()
        self.request_log.start()
        self.feedback_log.start()
        try:
            await self.routes.refresh()
        except LlmopsError as exc:  # not ready yet; the refresher keeps trying and /readyz says so
            log.warning("initial route resolution failed: %s", exc)
        self.routes.start_background()
        self._started = True

    async def stop(self) -> None:
        if not self._started:
            return
        await self.routes.stop_background()
        await self.shadows.stop()
        await self.request_log.stop()
        await self.feedback_log.stop()
        for upstream in self.upstreams.values():
            await upstream.close()
        self._started = False

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Gateway]:
        await self.start()
        try:
            yield self
        finally:
            await self.stop()


def build_app(
    settings: GatewaySettings,
    resolver: RouteResolver,
    *,
    upstreams: Mapping[str, Upstream] | None = None,
    sink: RequestLogSink | None = None,
    feedback_sink: RequestLogSink | None = None,
) -> Gateway:
    """The gateway for ``settings``; releases come from ``resolver`` (registry, or static in tests)."""
    return Gateway(settings, resolver, upstreams=upstreams, sink=sink, feedback_sink=feedback_sink)
