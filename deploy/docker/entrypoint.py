"""The entrypoint of every llmops image: ``llmops-entrypoint ROLE COMMAND...``.

It checks that the environment the role needs is there, then ``exec``s COMMAND. A missing variable ends the
container at once with ONE log line that names it (exit 78, EX_CONFIG), not a traceback from deep inside a server
that a restart policy then repeats:

- gateway:    MLFLOW_TRACKING_URI, the gateway config (``--config``, default /etc/llmops/gateway.yaml) and every
              variable it names for a key (``auth.keys[].env``, ``engines.*.api_key_env``)
- registry:   MLFLOW_BACKEND_STORE_URI (the PostgreSQL URI; never on the command line)
- engine-cpu: LLMOPS_ENGINE_KEY (the key clients and the gateway send)
- trainer:    MLFLOW_TRACKING_URI

Keys come only from the environment: the images hold none.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

EX_CONFIG = 78
GATEWAY_CONFIG = "/etc/llmops/gateway.yaml"
REQUIRED = {
    "gateway": ("MLFLOW_TRACKING_URI",),
    "registry": ("MLFLOW_BACKEND_STORE_URI",),
    "engine-cpu": ("LLMOPS_ENGINE_KEY",),
    "trainer": ("MLFLOW_TRACKING_URI",),
}


def gateway_key_vars(argv: list[str]) -> tuple[str, list[str]]:
    """The gateway config's path and the environment variables it names for keys."""
    import yaml

    path = GATEWAY_CONFIG
    for i, arg in enumerate(argv):
        if arg in ("--config", "-c") and i + 1 < len(argv):
            path = argv[i + 1]
        elif arg.startswith("--config="):
            path = arg.split("=", 1)[1]
    if not Path(path).is_file():
        fail(f"gateway: the config {path} is missing: mount it (a ConfigMap, or -v FILE:{GATEWAY_CONFIG}:ro)")
    try:
        doc = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        fail(f"gateway: the config {path} cannot be read: {type(exc).__name__}")
    if not isinstance(doc, dict):
        fail(f"gateway: the config {path} is not a YAML mapping")
    names: list[str] = []
    auth = doc.get("auth") or {}
    for key in (auth.get("keys") or []) if isinstance(auth, dict) else []:
        if isinstance(key, dict) and key.get("env"):
            names.append(str(key["env"]))
    for engine in (doc.get("engines") or {}).values() if isinstance(doc.get("engines"), dict) else []:
        if isinstance(engine, dict) and engine.get("api_key_env"):
            names.append(str(engine["api_key_env"]))
    return path, names


def fail(message: str) -> NoReturn:
    print(f"llmops-entrypoint: {message}", file=sys.stderr, flush=True)
    raise SystemExit(EX_CONFIG)


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        fail("usage: llmops-entrypoint ROLE COMMAND [ARG...]")
    role, command = argv[0], argv[1:]
    if role not in REQUIRED:
        fail(f"unknown role {role!r} (one of {', '.join(REQUIRED)})")
    missing = [name for name in REQUIRED[role] if not os.environ.get(name)]
    where = ""
    if not missing and role == "gateway" and command[:3] == ["llmops", "serve", "gateway"]:
        path, names = gateway_key_vars(command)
        missing = [name for name in names if not os.environ.get(name)]
        where = f" (named by {path})"
    if missing:
        fail(
            f"{role}: required environment variable(s) not set: {', '.join(missing)}{where}; pass them with "
            "-e/--env-file (docker) or a Secret (Kubernetes)"
        )
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        fail(f"{role}: cannot run {command[0]!r}: {exc.strerror}")


if __name__ == "__main__":
    main(sys.argv[1:])
