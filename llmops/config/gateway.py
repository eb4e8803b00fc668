"""The schema of ``serving/gateway.yaml`` (one pydantic model per section).

::

    version: 1
    server: {host: 127.0.0.1, port: 8080, drain_s: 10}   # drain_s: graceful-shutdown deadline
    engines:                         # vLLM OpenAI servers (``llmops serve engine``)
      local: {url: http://127.0.0.1:8000, max_adapters: 4}   # key: .llmops/engines/local.key (or api_key_env)
    routes:                          # the names clients send as ``model``
      support-triage:
        targets:                     # releases, with integer weights (stable first, then canary)
          - {name: stable, weight: 90, release: production, prompt: support-triage@production}
          - {name: canary, weight: 10, release: canary, prompt: support-triage@production}
        shadow: {name: next, adapter: support-triage-lora/7, sample: 0.1}   # optional
        capture: 0.2                 # share of requests logged with inputs and outputs (PII redacted)
    auth:
      keys:
        - {name: app, env: LLMOPS_GATEWAY_KEY}                     # the key itself in an env variable
        - {name: ops, sha256: 5e88…, scope: admin}                 # or only its sha256
    limits: {max_body_bytes: 1048576, max_tokens: 2048, max_n: 4, connect_timeout_s: 5, read_timeout_s: 120,
             pool_timeout_s: 5, per_key_max_concurrent: 128, per_key_rps: 50, per_key_burst: 100}
    routing: {sticky_secret_env: LLMOPS_STICKY_SECRET}   # else .llmops/secrets/sticky-secret (generated)
    refresh: {interval_s: 30, state_interval_s: 1}   # state: registry weights and pointer moves
    request_log: {path: logs/gateway-requests.jsonl, queue_size: 10000, max_bytes: 104857600, files_kept: 10,
                  capture_max_chars: 8192}      # feedback_path: default logs/feedback.jsonl beside it

The gateway runs on these models directly (:mod:`llmops.gateway.settings` adds only what the file
does not hold: hashed keys, resolved paths), so every default is declared here, once.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from llmops.config.base import StrictModel
from llmops.config.yamlio import load_model
from llmops.errors import LlmopsError
from llmops.names import NAME_PATTERN
from llmops.prompts.spec import GenerationParams
from llmops.refs import AdapterRef, PromptRef

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
Name = Annotated[str, StringConstraints(pattern=f"^{NAME_PATTERN}$")]


def _check_ref(value: str | None, kind: type[AdapterRef] | type[PromptRef]) -> str | None:
    if value is None:
        return None
    try:
        kind.parse(value)
    except LlmopsError as exc:
        raise ValueError(str(exc)) from exc
    return value


class ServerSpec(StrictModel):
    host: str = Field(default="127.0.0.1", description="address the gateway listens on")
    port: int = Field(default=8080, ge=1, le=65535)
    drain_s: float = Field(
        default=10.0,
        ge=0,
        description=(
            "on SIGTERM: stop accepting connections, then let requests and streams in flight finish for up to "
            "this many seconds before they are cut"
        ),
    )


class EngineSpec(StrictModel):
    url: str = Field(pattern=r"^https?://", description="root URL of a vLLM OpenAI server")
    model: str | None = Field(
        default=None, description="its served base model name; default: asked from GET /v1/models"
    )
    max_adapters: int = Field(
        default=8, ge=1, description="adapters kept loaded; the least recently routed are unloaded"
    )
    sync_adapters: bool = Field(
        default=True, description="load route adapters into this engine (/v1/load_lora_adapter)"
    )
    max_connections: int = Field(default=256, ge=1, description="pooled connections to this engine")
    api_key_env: str | None = Field(
        default=None,
        description=(
            "environment variable holding the engine's API key; unset (or the variable empty): the key file "
            "<llmops home>/engines/NAME.key that `llmops serve engine --name NAME` writes, if any"
        ),
    )

    @field_validator("url")
    @classmethod
    def _no_trailing_slash(cls, v: str) -> str:
        return v.rstrip("/")


class TargetSpec(StrictModel):
    """A release: an adapter version (or the base model), a prompt version (or none), generation params."""

    name: str = Field(pattern=f"^{NAME_PATTERN}$")
    weight: int = Field(ge=0)
    engine: str | None = Field(default=None, description="engine name; default: the only engine")
    adapter: str | None = Field(default=None, description="NAME@alias or NAME/VERSION; none: the base model")
    prompt: str | None = Field(
        default=None, description="NAME@alias or NAME/VERSION; rendered when a request sends prompt_variables"
    )
    params: GenerationParams = Field(default_factory=lambda: GenerationParams.model_validate({}))
    release: Literal["production", "canary"] | None = Field(
        default=None,
        description=(
            "serve the route's release at this stage (set by `llmops promote`): its exact adapter and prompt "
            "versions are read in one registry call, so a promotion switches both at once; adapter/prompt "
            "above are the fallback while the stage has no release"
        ),
    )

    @field_validator("adapter")
    @classmethod
    def _adapter_ref(cls, v: str | None) -> str | None:
        return _check_ref(v, AdapterRef)

    @field_validator("prompt")
    @classmethod
    def _prompt_ref(cls, v: str | None) -> str | None:
        return _check_ref(v, PromptRef)


class ShadowSpec(TargetSpec):
    """A release that receives a copy of a share of the route's requests; its answers are only logged."""

    weight: int = Field(default=0, ge=0, le=0, description="unused: a shadow takes no traffic of its own")
    sample: float = Field(default=1.0, gt=0, le=1, description="share of requests copied to the shadow")


class RouteSpec(StrictModel):
    targets: list[TargetSpec] = Field(min_length=1, max_length=16)
    shadow: ShadowSpec | None = None
    capture: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description=(
            "share of requests whose inputs and outputs go into the request log, PII redacted (with the "
            "shadow copies of those requests)"
        ),
    )

    @model_validator(mode="after")
    def _targets(self) -> RouteSpec:
        names = [t.name for t in self.targets]
        if len(set(names)) != len(names):
            raise ValueError(f"target names must be unique, got {names}")
        if sum(t.weight for t in self.targets) <= 0:
            raise ValueError("at least one target needs a positive weight")
        return self


class AuthKeySpec(StrictModel):
    name: str = Field(pattern=f"^{NAME_PATTERN}$", description="shown in the request log, never the key")
    scope: Literal["user", "admin"] = "user"
    sha256: str | None = Field(default=None, description="sha256 (hex) of the key")
    env: str | None = Field(default=None, description="environment variable holding the key")

    @model_validator(mode="after")
    def _one_source(self) -> AuthKeySpec:
        if (self.sha256 is None) == (self.env is None):
            raise ValueError("give exactly one of sha256 or env")
        if self.sha256 is not None and not _SHA256_RE.match(self.sha256):
            raise ValueError("sha256 must be 64 lowercase hex digits")
        return self


class AuthSpec(StrictModel):
    enabled: bool = Field(default=True, description="false: no keys needed, every caller is admin (local use only)")
    keys: list[AuthKeySpec] = Field(default_factory=list)
    public_metrics: bool = Field(default=True, description="serve /metrics without a key (for Prometheus scrapes)")


class LimitsSpec(StrictModel):
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    max_tokens: int = Field(
        default=2048, ge=1, description="ceiling on max_tokens; also the default when a request sets none"
    )
    max_n: int = Field(default=4, ge=1)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=120.0, gt=0, description="longest wait for the next bytes from an engine")
    max_shadow_in_flight: int = Field(default=16, ge=1, description="shadow copies beyond this are skipped (counted)")
    pool_timeout_s: float = Field(
        default=5.0, gt=0, description="longest wait for a free pooled engine connection; then 503 engine_busy"
    )
    per_key_max_concurrent: int | None = Field(
        default=128, ge=1, description="requests one API key may have in flight (429 beyond); null: no limit"
    )
    per_key_rps: float | None = Field(
        default=None, gt=0, description="requests per second one API key may start (token bucket; 429 beyond)"
    )
    per_key_burst: int | None = Field(
        default=None, ge=1, description="bucket size for per_key_rps (default: max(1, per_key_rps))"
    )
    render_timeout_s: float = Field(
        default=1.0, gt=0, description="time budget of one prompt render (templates with logic render off-loop)"
    )


class RoutingSpec(StrictModel):
    sticky_secret_env: str = Field(
        default="LLMOPS_STICKY_SECRET",
        description=(
            "environment variable holding the secret the sticky hash is keyed with (replicas must share it); "
            "unset: the secret in <llmops home>/secrets/sticky-secret, generated on first start"
        ),
    )


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class RefreshSpec(StrictModel):
    interval_s: float = Field(default=30.0, ge=0.5, description="how often aliases are re-resolved from the registry")
    state_interval_s: float = Field(
        default=1.0,
        ge=0.2,
        description="how often route state (weights, stage pointer versions) is read from the registry; "
        "a moved stage pointer triggers a full refresh at once",
    )


class RequestLogSpec(StrictModel):
    enabled: bool = True
    path: str = Field(default="logs/gateway-requests.jsonl", description="JSONL file, relative to the llmops home")
    queue_size: int = Field(
        default=10_000, ge=1, description="records waiting to be written; more are dropped (counted)"
    )
    max_bytes: int = Field(
        default=100 * 1024 * 1024,
        ge=1024,
        description="rotate the file before a write would take it past this size (whole records only)",
    )
    files_kept: int = Field(default=10, ge=1, description="rotated files kept (oldest deleted first)")
    capture_max_chars: int = Field(
        default=8192, ge=64, description="each captured text is cut to this many characters (ends with …[truncated])"
    )
    feedback_path: str | None = Field(
        default=None,
        description="feedback JSONL (POST /v1/feedback), relative to the llmops home; default: feedback.jsonl "
        "in the request log's folder",
    )

    def paths(self, home: Path) -> tuple[Path, Path] | None:
        """(request log, feedback log) resolved against the llmops ``home``; None when logging is off. The
        feedback log defaults to ``feedback.jsonl`` beside the request log."""
        if not self.enabled:
            return None
        log = Path(self.path) if Path(self.path).is_absolute() else home / self.path
        named = Path(self.feedback_path) if self.feedback_path is not None else log.with_name("feedback.jsonl")
        return log, named if named.is_absolute() else home / named


class GatewayFile(StrictModel):
    """Schema of ``serving/gateway.yaml``."""

    version: int = Field(default=1, ge=1, le=1)
    server: ServerSpec = ServerSpec()
    engines: dict[Name, EngineSpec] = Field(min_length=1)
    routes: dict[Name, RouteSpec] = Field(min_length=1)
    auth: AuthSpec = AuthSpec()
    limits: LimitsSpec = LimitsSpec()
    routing: RoutingSpec = RoutingSpec()
    refresh: RefreshSpec = RefreshSpec()
    request_log: RequestLogSpec = RequestLogSpec()

    @model_validator(mode="after")
    def _open_only_on_loopback(self) -> GatewayFile:
        if not self.auth.enabled and not is_loopback(self.server.host):
            raise ValueError(
                f"auth.enabled is false, so server.host must be a loopback address (got {self.server.host!r})"
            )
        return self

    @model_validator(mode="after")
    def _engines_exist(self) -> GatewayFile:
        for route, spec in self.routes.items():
            for target in [*spec.targets, *([spec.shadow] if spec.shadow else [])]:
                if target.engine is None and len(self.engines) > 1:
                    raise ValueError(f"route {route}, target {target.name}: name its engine (several are configured)")
                if target.engine is not None and target.engine not in self.engines:
                    raise ValueError(f"route {route}, target {target.name}: unknown engine {target.engine!r}")
        return self


def load_gateway_file(path: Path, *, display: str | None = None) -> GatewayFile:
    """Load and check ``serving/gateway.yaml``; errors name file, line and field."""
    return load_model(GatewayFile, path, display=display)


def engine_of(target: TargetSpec, engines: Mapping[str, EngineSpec]) -> str:
    """The engine a target runs on (the only engine when it names none)."""
    return target.engine or next(iter(engines))
