"""The one exception tree of llmops.

Every error llmops raises on purpose derives from :class:`LlmopsError`. The CLI prints
``str(error)`` (one clear line, naming the file, field, URI or object involved) and exits
non-zero; the gateway maps the tree to HTTP status codes in a single place.

::

    LlmopsError
    ├── ConfigError              a workspace file is malformed or breaks its schema (file, line, field)
    │   └── ValidationFailed     several problems collected at once (``.problems``)
    ├── InvalidNameError         a prompt/adapter/route name outside ``[a-z0-9][a-z0-9._-]{0,63}``
    ├── RegistryError            the MLflow registry is unreachable or refused an operation (uri)
    │   └── NotFoundError        a prompt, adapter, version or alias does not exist
    ├── PromptError              a prompt spec or reference is unusable (prompt name, version)
    │   ├── TemplateSecurityError   a template reaches for unsafe attributes (file, line)
    │   └── RenderError             a variable is missing or invalid, or output is too large
    ├── ModelError               a base model is missing or cannot be built or loaded
    ├── IntegrityError           an artifact holds forbidden files or fails its sha256 check
    └── ServerError              a child server (MLflow, vLLM, Ray) failed to start or become healthy
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
        super().__init__(f"{message} (registry: {uri})" if uri else message)
        self.uri = uri


class NotFoundError(RegistryError):
    """A prompt, adapter, version or alias does not exist in the registry."""


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


class ServerError(LlmopsError):
    """A child server failed to start, exited, or did not become healthy in time."""

    def __init__(self, message: str, *, log_path: Path | None = None) -> None:
        super().__init__(f"{message} (log: {log_path})" if log_path else message)
        self.log_path = log_path
