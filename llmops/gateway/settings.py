"""The gateway's runtime settings: the ``serving/gateway.yaml`` models plus what the file does not hold.

:func:`settings_from_file` hashes the API keys (read from the environment where configured so) and
resolves the request log path; everything else is the file's own models (engines, routes, limits),
so no default is declared twice.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from llmops.config.gateway import EngineSpec, GatewayFile, LimitsSpec, RouteSpec
from llmops.errors import ConfigError


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
    log_path = None
    if spec.request_log.enabled:
        log_path = Path(spec.request_log.path)
        if not log_path.is_absolute():
            log_path = home / log_path
    return GatewaySettings(file=spec, keys=keys, request_log_path=log_path)
