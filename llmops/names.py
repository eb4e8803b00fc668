"""Names of prompts, adapters, routes and models: one rule, checked at every edge."""

from __future__ import annotations

import re

from llmops.errors import InvalidNameError

NAME_PATTERN = r"[a-z0-9][a-z0-9._-]{0,63}"
_NAME_RE = re.compile(NAME_PATTERN)


def is_valid_name(name: str) -> bool:
    """True when ``name`` matches ``[a-z0-9][a-z0-9._-]{0,63}``."""
    return isinstance(name, str) and _NAME_RE.fullmatch(name) is not None


def check_name(name: str, kind: str = "object") -> str:
    """Return ``name`` unchanged, or raise :class:`InvalidNameError` naming the kind."""
    if not is_valid_name(name):
        raise InvalidNameError(kind, str(name))
    return name
