"""API keys and scopes, checked by a pure-ASGI middleware in front of every endpoint.

Keys are kept only as sha256 hashes (``auth.keys[].sha256`` in the config, or hashed at start from
an environment variable). A request sends ``Authorization: Bearer KEY`` (what the OpenAI SDK and
LangChain send). ``/healthz`` and ``/readyz`` are public, ``/metrics`` too unless configured
otherwise; ``/admin/*`` needs a key with the ``admin`` scope (403 otherwise); everything else needs
any valid key (401 otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping

from llmops.errors import AuthenticationError, PermissionDeniedError
from llmops.gateway.asgi import ASGIApp, Receive, Scope, Send
from llmops.gateway.errors import send_error
from llmops.gateway.settings import Principal, hash_key

PRINCIPAL = "llmops.principal"  # scope key the middleware sets
ANONYMOUS_ADMIN = Principal("anonymous", "admin")


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


class AuthMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        keys: Mapping[str, Principal],
        *,
        enabled: bool = True,
        public_paths: frozenset[str] = frozenset({"/healthz", "/readyz"}),
    ) -> None:
        self.app = app
        self.keys = dict(keys)
        self.enabled = enabled
        self.public_paths = public_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.enabled:
            scope[PRINCIPAL] = ANONYMOUS_ADMIN
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in self.public_paths:
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope["headers"])
        if token is None:
            await send_error(
                send, AuthenticationError("You didn't provide an API key: send 'Authorization: Bearer KEY'")
            )
            return
        principal = self.keys.get(hash_key(token))
        if principal is None:
            await send_error(send, AuthenticationError("Incorrect API key provided"))
            return
        if path.startswith("/admin") and not principal.is_admin:
            await send_error(send, PermissionDeniedError(f"key '{principal.name}' lacks the admin scope"))
            return
        scope[PRINCIPAL] = principal
        await self.app(scope, receive, send)
