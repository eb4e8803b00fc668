"""The gateway's runtime settings: the ``serving/gateway.yaml`` models plus what the file does not hold.

:func:`settings_from_file` hashes the API keys (read from the environment where configured so),
reads the sticky-routing secret and each engine's API key (:func:`llmops.engine.keys.client_key`) and
resolves the request log and feedback log paths; everything else is the file's own
models (engines, routes, limits), so no default is declared twice.

The sticky secret keys the hash that assigns users to targets, so a client cannot compute which
``user`` values land on a canary. It comes from the environment variable ``routing.sticky_secret_env``
names (default ``LLMOPS_STICKY_SECRET``); when that is unset, from ``<home>/secrets/sticky-secret``,
generated (32 random bytes, mode 0600) on first start. Replicas agree on sticky assignment only when
they share the secret: the same variable, or the same llmops home. Where the home does not exist (a
library or test use; ``llmops serve gateway`` creates it), a random secret for this process only is
used, and a warning says so.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from llmops.config.gateway import EngineSpec, GatewayFile, LimitsSpec, RequestLogSpec, RouteSpec
from llmops.engine.keys import client_key
from llmops.errors import ConfigError

log = logging.getLogger(__name__)


def hash_key(key: str) -> str:
    """The sha256 (hex) an API key is stored as."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: the key's name and scope."""

    name: str
    scope: Literal["user", "admin"]

    @property
    def is_admin(self) -> bool:
        return self.scope == "admin"


@dataclass(frozen=True)
class GatewaySettings:
    """Everything :func:`llmops.gateway.app.build_app` needs: the checked file, hashed keys, the log path."""

    file: GatewayFile
    keys: Mapping[str, Principal] = field(default_factory=dict)  # sha256 hex -> principal
    request_log_path: Path | None = None
    feedback_log_path: Path | None = None  # POST /v1/feedback writes here (None: nowhere)
    sticky_secret: bytes = field(default=b"", repr=False)  # keys the sticky hash (blake2b key, <= 64 bytes)
    engine_keys: Mapping[str, str] = field(default_factory=dict, repr=False)  # engine name -> its API key

    @property
    def engines(self) -> Mapping[str, EngineSpec]:
        return self.file.engines

    @property
    def routes(self) -> Mapping[str, RouteSpec]:
        return self.file.routes

    @property
    def limits(self) -> LimitsSpec:
        return self.file.limits

    @property
    def auth_enabled(self) -> bool:
        return self.file.auth.enabled

    @property
    def public_metrics(self) -> bool:
        return self.file.auth.public_metrics

    @property
    def refresh_interval_s(self) -> float:
        return self.file.refresh.interval_s

    @property
    def request_log_queue(self) -> int:
        return self.file.request_log.queue_size

    @property
    def request_log(self) -> RequestLogSpec:
        return self.file.request_log


STICKY_SECRET_FILE = Path("secrets") / "sticky-secret"


def sticky_secret(env_name: str, *, home: Path, env: Mapping[str, str], file: str = "gateway.yaml") -> bytes:
    """The sticky-hash key: the variable ``env_name`` if set, else the home's secret file (created if missing).

    A home that does not exist gets no file: the secret is then random, for this process only.
    """
    value = env.get(env_name)
    if not value and not home.is_dir():
        log.warning(
            "%s is unset and %s does not exist: sticky routing uses a secret of this process only", env_name, home
        )
        value = secrets.token_hex(32)
    if not value:
        path = home / STICKY_SECRET_FILE
        try:
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                # written aside, then linked into place: replicas starting together on one home end up with one
                # secret, and none reads a half-written file
                tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as out:
                    out.write(secrets.token_hex(32) + "\n")
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    pass
                finally:
                    tmp.unlink()
            value = path.read_text().strip()
        except OSError as exc:
            raise ConfigError.at(
                file, f"set {env_name} or make {path} readable and writable: {exc}", field="routing.sticky_secret_env"
            ) from exc
        if not value:
            raise ConfigError.at(file, f"{path} is empty; delete it to generate a new secret", field="routing")
    return hashlib.blake2b(value.encode(), digest_size=32).digest()


def settings_from_file(
    spec: GatewayFile, *, home: Path, env: Mapping[str, str] | None = None, file: str = "gateway.yaml"
) -> GatewaySettings:
    """Hash the API keys (read from ``env`` where configured so), resolve paths against ``home``."""
    env = os.environ if env is None else env
    keys: dict[str, Principal] = {}
    missing = []
    for k in spec.auth.keys:
        if k.env is not None:
            value = env.get(k.env)
            if not value:
                missing.append(k.env)
                continue
            digest = hash_key(value)
        else:
            assert k.sha256 is not None
            digest = k.sha256
        keys[digest] = Principal(k.name, k.scope)
    if spec.auth.enabled and not keys:
        detail = f" (unset: {', '.join(missing)})" if missing else ""
        raise ConfigError.at(file, f"auth is enabled but no API key is available{detail}", field="auth.keys")
    log_path, feedback_path = spec.request_log.paths(home) or (None, None)
    secret = sticky_secret(spec.routing.sticky_secret_env, home=home, env=env, file=file)
    engine_keys = {n: key for n, e in spec.engines.items() if (key := client_key(home, n, e.api_key_env, env))}
    return GatewaySettings(
        file=spec,
        keys=keys,
        request_log_path=log_path,
        feedback_log_path=feedback_path,
        sticky_secret=secret,
        engine_keys=engine_keys,
    )
