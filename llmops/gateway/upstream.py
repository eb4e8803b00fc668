"""Engines as upstreams: one pooled HTTP client per engine, behind a small Protocol.

:class:`AiohttpUpstream` keeps one ``aiohttp.ClientSession`` (keep-alive pool, ``max_connections``)
per engine for the life of the app. Deadlines: ``pool_timeout_s`` to get one of the ``max_connections``
chat slots (then :class:`~llmops.errors.EngineBusyError`, a 503: a request never waits unboundedly
behind others), ``connect_timeout_s`` to open a connection and ``read_timeout_s`` between any two
reads (so a stream may run long, but never stall longer). Transport failures become
:class:`~llmops.errors.UpstreamError` / ``UpstreamTimeoutError``.

A chat slot is held from the request until its response is read to the end, released or aborted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import aiohttp
import orjson

from llmops.errors import EngineBusyError, EngineUnavailableError, UpstreamError, UpstreamTimeoutError

_JSON = {"content-type": "application/json"}


class UpstreamResponse(Protocol):
    status: int

    async def read(self) -> bytes: ...

    def chunks(self) -> AsyncIterator[bytes]: ...

    def release(self) -> None:
        """Return the connection to the pool (the body was read to its end)."""

    def abort(self) -> None:
        """Close the connection, so the engine stops generating."""


class Upstream(Protocol):
    """One engine, reached over HTTP."""

    name: str
    url: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def chat(self, body: bytes, *, request_id: str) -> UpstreamResponse:
        """POST /v1/chat/completions; the response status and body are the caller's to read."""

    async def request_json(self, method: str, path: str, payload: Any | None = None) -> tuple[int, Any]:
        """A small control-plane call (models, adapters); returns status and decoded JSON (or text)."""

    async def healthy(self) -> bool: ...


class _AiohttpResponse:
    __slots__ = ("_free", "_resp", "status")

    def __init__(self, resp: aiohttp.ClientResponse, free: Callable[[], None]) -> None:
        self._resp = resp
        self._free: Callable[[], None] | None = free
        self.status = resp.status

    def _done(self) -> None:
        """Give the chat slot back (once)."""
        if self._free is not None:
            self._free()
            self._free = None

    async def read(self) -> bytes:
        try:
            return await self._resp.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            self.abort()
            raise UpstreamTimeoutError("read deadline exceeded") from exc
        except aiohttp.ClientError as exc:
            self.abort()
            raise UpstreamError(f"connection broke: {exc!r}") from exc
        finally:
            self._done()  # read to the end: aiohttp put the connection back

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            self.abort()
            raise UpstreamTimeoutError("read deadline exceeded mid-stream") from exc
        except aiohttp.ClientError as exc:
            self.abort()
            raise UpstreamError(f"connection broke mid-stream: {exc!r}") from exc

    def release(self) -> None:
        self._resp.release()
        self._done()

    def abort(self) -> None:
        self._resp.close()
        self._done()


class AiohttpUpstream:
    """An engine reached through one pooled ``aiohttp`` session."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 120.0,
        max_connections: int = 256,
        pool_timeout_s: float = 5.0,
        api_key: str | None = None,
    ) -> None:
        self.name = name
        self.url = url.rstrip("/")
        # the engine's key (llmops.engine.keys), sent on every call; never a client's header
        self._auth = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._chat_url = f"{self.url}/v1/chat/completions"
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s, sock_read=read_timeout_s)
        self._control_timeout = aiohttp.ClientTimeout(total=max(30.0, read_timeout_s), sock_connect=connect_timeout_s)
        self._max_connections = max_connections
        self._pool_timeout_s = pool_timeout_s
        self._slots = asyncio.Semaphore(max_connections)  # chat requests holding (or opening) a connection
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            # chat requests are bounded by the slots; the headroom keeps control calls (adapters, health) moving
            connector = aiohttp.TCPConnector(limit=self._max_connections + 4, keepalive_timeout=60)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
                headers=self._auth,
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _require(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise UpstreamError("client is not started", engine=self.name)
        return self._session

    async def chat(self, body: bytes, *, request_id: str) -> UpstreamResponse:
        session = self._require()
        slots = self._slots
        if slots.locked():  # every connection is busy: wait a bounded time for one
            try:
                await asyncio.wait_for(slots.acquire(), self._pool_timeout_s)
            except TimeoutError:
                raise EngineBusyError(  # no engine name: it is internal, and this message goes to the client
                    f"the engine is busy: all {self._max_connections} connections stayed busy for "
                    f"{self._pool_timeout_s:g} s; retry later"
                ) from None
        else:
            await slots.acquire()  # free: returns at once
        headers = {"content-type": "application/json", "x-request-id": request_id}
        try:
            resp = await session.post(self._chat_url, data=body, headers=headers)
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            slots.release()
            raise UpstreamTimeoutError("deadline exceeded", engine=self.name) from exc
        except aiohttp.ClientConnectorError as exc:  # nothing sent: the engine is down or restarting
            slots.release()
            raise EngineUnavailableError(f"cannot connect: {exc!r}", engine=self.name) from exc
        except aiohttp.ClientError as exc:
            slots.release()
            raise UpstreamError(f"request failed: {exc!r}", engine=self.name) from exc
        except BaseException:
            slots.release()
            raise
        return _AiohttpResponse(resp, slots.release)

    async def request_json(self, method: str, path: str, payload: Any | None = None) -> tuple[int, Any]:
        session = self._require()
        data = orjson.dumps(payload) if payload is not None else None
        try:
            async with session.request(
                method, f"{self.url}{path}", data=data, headers=_JSON, timeout=self._control_timeout
            ) as resp:
                raw = await resp.read()
                try:
                    return resp.status, orjson.loads(raw) if raw else None
                except orjson.JSONDecodeError:
                    return resp.status, raw.decode(errors="replace")
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamTimeoutError(f"{method} {path}: deadline exceeded", engine=self.name) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"{method} {path} failed: {exc!r}", engine=self.name) from exc

    async def healthy(self) -> bool:
        session = self._require()
        try:
            async with session.get(f"{self.url}/health", timeout=aiohttp.ClientTimeout(total=3)) as resp:
                return resp.status == 200
        except (TimeoutError, aiohttp.ClientError):
            return False


async def close_all(upstreams: dict[str, Upstream]) -> None:
    await asyncio.gather(*(u.close() for u in upstreams.values()), return_exceptions=True)
