"""The API key an engine demands, and how its clients find it.

vLLM with runtime LoRA loading on lets anyone who reaches its port load an adapter under any name, so
every engine llmops starts demands a key (vLLM's ``VLLM_API_KEY``: ``Authorization: Bearer KEY`` on
every ``/v1/*`` call; ``/health`` stays open). Where the key comes from:

* ``llmops serve engine --name NAME``: the variable :data:`ENGINE_KEY_ENV` (``LLMOPS_ENGINE_KEY``) if
  set; else the key file ``<llmops home>/engines/NAME.key``, generated (``secrets.token_urlsafe``,
  mode 0600) on first start and reused later, so a gateway keeps working across engine restarts.
  Delete the file to rotate the key.
* the gateway: engine ``NAME`` of ``serving/gateway.yaml`` sends the variable its ``api_key_env``
  names when that is set, else the key file of ``NAME``; with neither it sends no key.
* ``llmops eval run --endpoint URL`` / :func:`llmops.engine.local.attach`: ``LLMOPS_ENGINE_KEY``.
* engines started for one run (eval, demo): a fresh key each, handed to their clients in memory.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from llmops.errors import ConfigError

ENGINE_KEY_ENV = "LLMOPS_ENGINE_KEY"
KEYS_DIR = "engines"


def new_engine_key() -> str:
    """A fresh random key (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def engine_key_path(home: Path, name: str) -> Path:
    """``<home>/engines/NAME.key``."""
    return home / KEYS_DIR / f"{name}.key"


def read_engine_key(home: Path, name: str) -> str | None:
    """The key in engine ``name``'s key file; None when there is no file."""
    path = engine_key_path(home, name)
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError.at(path, f"cannot read the key of engine {name}: {exc}") from exc
    if not value:
        raise ConfigError.at(path, "the engine key file is empty; delete it to generate a new key")
    return value


def write_engine_key(home: Path, name: str, key: str) -> Path:
    """Write ``key`` to engine ``name``'s key file, readable by this user only (0600, folder 0700)."""
    path = engine_key_path(home, name)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    os.replace(tmp, path)
    return path


def serve_key(home: Path, name: str, env: Mapping[str, str] | None = None) -> tuple[str, Path]:
    """The key ``llmops serve engine --name NAME`` demands, and the file its clients read it from:
    ``LLMOPS_ENGINE_KEY`` if set (written to the file, so the gateway finds it), else the existing
    file's key, else a new one."""
    env = os.environ if env is None else env
    given = env.get(ENGINE_KEY_ENV)
    key = given or read_engine_key(home, name) or new_engine_key()
    path = engine_key_path(home, name)
    if given or not path.exists():
        path = write_engine_key(home, name, key)
    return key, path


def client_key(home: Path, name: str, env_name: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """The key a client of engine ``name`` sends: the variable ``env_name`` if set, else the key file."""
    env = os.environ if env is None else env
    if env_name and env.get(env_name):
        return env[env_name]
    return read_engine_key(home, name)
