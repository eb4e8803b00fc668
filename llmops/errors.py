"""The one exception tree of llmops.

Every error llmops raises on purpose derives from :class:`LlmopsError`. The CLI prints
``str(error)`` (one clear line, naming the file, field, URI or object involved) and exits
non-zero; the gateway maps the tree to HTTP status codes in a single place.

::

    LlmopsError
    ├── ConfigError              a workspace file is malformed or breaks its schema (file, line, field)
    │   └── ValidationFailed     several problems collected at once (``.problems``)
    ├── InvalidNameError         a prompt/adapter/route name outside ``[a-z0-9][a-z0-9._-]{0,63}``
    ├── RegistryError            the MLflow registry is unreachable or refused an operation (uri, credentials redacted)
    │   └── NotFoundError        a prompt, adapter, version or alias does not exist
    │       └── NoReleaseAtStage    ``llmops report``: the route has no release at that stage (route, stage); exit 1
    ├── PromptError              a prompt spec or reference is unusable (prompt name, version)
    │   ├── TemplateSecurityError   a template reaches for unsafe attributes (file, line)
    │   └── RenderError             a variable is missing or invalid, or output is too large
    ├── ModelError               a base model is missing or cannot be built or loaded
    ├── IntegrityError           an artifact holds forbidden files or fails its sha256 check
    ├── FinetuneError            a fine-tune job cannot start or failed (job file)
    │   └── TrainingInterrupted     SIGTERM/SIGINT stopped training after saving a checkpoint
    ├── LaunchError              a cluster refused, lost or does not know a job (address, job id)
    ├── PromotionRefused         no passing eval record for the release on a required suite, or no such suite
    ├── NotEnoughData            ``llmops retrain``: too few usable production rows (route, counts); exit 3
    ├── LeaseHeld                another promotion of the route (or prompt) holds its lease (holder)
    ├── LeaseLost                this promotion's lease expired or was taken over midway
    ├── RolloutActive            a rollout owns the route's weights; a manual write needs ``force`` (rollout id; HTTP 409)
    ├── ServerError              a child server (MLflow, vLLM, Ray) failed to start or become healthy
    ├── MissingExtra             a command needs an optional extra that is not installed (command, extra, modules)
    └── GatewayError             a gateway request cannot be served (OpenAI ``code`` and ``param``)
        ├── AuthenticationError     no API key, or an unknown one
        ├── PermissionDeniedError   the key lacks the scope (admin) the endpoint needs
        ├── InvalidRequestError     a malformed body, a forbidden or out-of-limit parameter
        │   └── PayloadTooLargeError   the body exceeds the gateway's size limit
        ├── RouteNotFoundError      the requested ``model`` names no route (route)
        ├── RouteUnavailableError   the route exists but has not been resolved yet (route)
        ├── RateLimitError          the API key is over its request rate or concurrency (``retry_after``)
        └── UpstreamError           the engine failed, refused or broke the connection (engine)
            ├── UpstreamTimeoutError   the engine missed its connect or read deadline
            ├── EngineBusyError        no pooled connection to the engine freed up in time
            └── EngineUnavailableError the engine refused the connection (down or restarting)

The gateway maps this tree to HTTP status codes and OpenAI-style error bodies in one place,
:mod:`llmops.gateway.errors`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llmops.redact import redact


class LlmopsError(Exception):
    """Base class of every error llmops raises on purpose."""

    exit_code: int = 2


@dataclass(frozen=True)
class Problem:
    """One problem found in a workspace file: where it is and what is wrong."""

    file: str
    message: str
    field: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        field = f" [{self.field}]" if self.field else ""
        return f"{where}{field}: {self.message}"


class ConfigError(LlmopsError):
    """A workspace file is malformed or invalid."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem

    @classmethod
    def at(cls, file: str | Path, message: str, *, field: str | None = None, line: int | None = None) -> ConfigError:
        return cls(Problem(str(file), message, field=field, line=line))


class ValidationFailed(ConfigError):
    """Several problems, reported together so a user fixes them all in one pass."""

    def __init__(self, problems: list[Problem]) -> None:
        if not problems:
            raise ValueError("ValidationFailed needs at least one problem")
        LlmopsError.__init__(self, "\n".join(str(p) for p in problems))
        self.problem = problems[0]
        self.problems = problems


class InvalidNameError(LlmopsError):
    """A name outside ``[a-z0-9][a-z0-9._-]{0,63}``."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(
            f"invalid {kind} name {name!r}: use 1-64 characters of a-z, 0-9, '.', '_', '-', "
            "starting with a letter or digit"
        )
        self.kind = kind
        self.name = name


class RegistryError(LlmopsError):
    """The MLflow registry is unreachable or refused an operation."""

    def __init__(self, message: str, *, uri: str | None = None) -> None:
        uri = redact(uri) if uri else uri  # a URI's credentials never reach a message or a log line
        super().__init__(redact(f"{message} (registry: {uri})" if uri else message))
        self.uri = uri


class NotFoundError(RegistryError):
    """A prompt, adapter, version or alias does not exist in the registry."""


class NoReleaseAtStage(NotFoundError):
    """A route has no release at the stage asked for (nothing to document or trace); exit 1."""

    exit_code = 1

    def __init__(self, route: str, stage: str, hint: str = "") -> None:
        super().__init__(f"route {route} has no release at stage {stage}" + (f": {hint}" if hint else ""))
        self.route = route
        self.stage = stage


class PromptError(LlmopsError):
    """A prompt spec or prompt reference is unusable."""

    def __init__(self, message: str, *, prompt: str | None = None, version: int | None = None) -> None:
        label = ""
        if prompt:
            label = f"prompt {prompt}" + (f" v{version}" if version is not None else "") + ": "
        super().__init__(label + message)
        self.prompt = prompt
        self.version = version


class TemplateSecurityError(PromptError):
    """A template reaches for attributes such as ``__class__``; refused at validate and push."""


class RenderError(PromptError):
    """Rendering failed: a missing or invalid variable, or output over the size bound."""


class ModelError(LlmopsError):
    """A base model is missing or cannot be built or loaded."""


class IntegrityError(LlmopsError):
    """An adapter or model folder holds a forbidden file (pickle, .bin, .pt) or fails its sha256 check."""


class FinetuneError(LlmopsError):
    """A fine-tune job cannot start (bad resume state, unusable settings) or failed while training."""


class TrainingInterrupted(FinetuneError):
    """SIGTERM or SIGINT stopped training after a checkpoint was saved; ``--resume`` continues from it.

    Exit code 75 (EX_TEMPFAIL): the job did not fail, it was stopped and can be retried.
    """

    exit_code = 75


class LaunchError(LlmopsError):
    """A cluster (the Ray Jobs API) is unreachable, refused a submission, or does not know a job id."""


class PromotionRefused(LlmopsError):
    """``llmops promote`` found no passing eval record for the release on a suite the route requires."""

    exit_code = 1


class NotEnoughData(LlmopsError):
    """``llmops retrain`` found fewer usable production rows than it needs; nothing was trained (exit 3)."""

    exit_code = 3


class LeaseHeld(LlmopsError):
    """Another promotion holds the lease of the route or prompt (``.holder``) past the wait.

    Exit code 75 (EX_TEMPFAIL): nothing was changed; retry later.
    """

    exit_code = 75

    def __init__(self, message: str, *, holder: str | None = None) -> None:
        super().__init__(message)
        self.holder = holder


class LeaseLost(LlmopsError):
    """A promotion's lease expired or was taken over before it finished; it moved nothing more (exit 75)."""

    exit_code = 75


class RolloutActive(LlmopsError):
    """A running rollout (``.rollout``) owns the weights of ``.route``: a write needs ``force`` (HTTP 409, exit 2)."""

    def __init__(self, route: str, rollout: str, message: str | None = None) -> None:
        super().__init__(
            message
            or f"route {route} is owned by rollout {rollout}: its weights change only through it "
            "(`llmops rollout abort`), or force the write"
        )
        self.route = route
        self.rollout = rollout


class ServerError(LlmopsError):
    """A child server failed to start, exited, or did not become healthy in time."""

    def __init__(self, message: str, *, log_path: Path | None = None) -> None:
        super().__init__(f"{message} (log: {log_path})" if log_path else message)
        self.log_path = log_path


class MissingExtra(LlmopsError):
    """``.command`` needs one of the ``.extras``, none installed (``.missing``: the modules not found); exit 2."""

    def __init__(self, command: str, extras: tuple[str, ...], missing: list[str]) -> None:
        names = " or ".join(extras)
        installs = " or ".join(f"'llmops[{extra}]'" for extra in extras)
        super().__init__(
            f"llmops {command} needs the {names} extra: pip install {installs} (missing: {', '.join(missing)})"
        )
        self.command = command
        self.extras = extras
        self.missing = missing


class GatewayError(LlmopsError):
    """A gateway request cannot be served; ``code`` and ``param`` fill the OpenAI error body."""

    default_code: str = "invalid_request_error"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.param = param


class AuthenticationError(GatewayError):
    """No API key was sent, or the key is unknown."""

    default_code = "invalid_api_key"


class PermissionDeniedError(GatewayError):
    """The API key is valid but lacks the scope the endpoint needs (admin)."""

    default_code = "insufficient_scope"


class InvalidRequestError(GatewayError):
    """A malformed request body, or a forbidden or out-of-limit parameter (``param`` names it)."""


class PayloadTooLargeError(InvalidRequestError):
    """The request body exceeds the gateway's size limit."""

    default_code = "payload_too_large"


class RouteNotFoundError(GatewayError):
    """The requested ``model`` names no route."""

    default_code = "model_not_found"

    def __init__(self, route: str) -> None:
        super().__init__(f"The model `{route}` does not exist", param="model")
        self.route = route


class RouteUnavailableError(GatewayError):
    """The route exists but could not be resolved yet (registry or engine unreachable)."""

    default_code = "route_unavailable"

    def __init__(self, route: str, reason: str) -> None:
        super().__init__(f"route {route} is not available: {reason}", param="model")
        self.route = route


class UpstreamError(GatewayError):
    """The engine failed, refused the request, or broke the connection."""

    default_code = "upstream_error"

    def __init__(self, message: str, *, engine: str | None = None, code: str | None = None) -> None:
        super().__init__(f"engine {engine}: {message}" if engine else message, code=code)
        self.engine = engine


class UpstreamTimeoutError(UpstreamError):
    """The engine missed its connect or read deadline."""

    default_code = "upstream_timeout"


class EngineBusyError(UpstreamError):
    """Every pooled connection to the engine stayed busy for the whole pool wait (``pool_timeout_s``)."""

    default_code = "engine_busy"


class EngineUnavailableError(UpstreamError):
    """The engine refused or dropped the connection before answering (down or restarting): a fast 503."""

    default_code = "engine_unavailable"


class RateLimitError(GatewayError):
    """The API key is over its request rate or its concurrent-request limit; retry after ``retry_after`` s."""

    default_code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
