"""Credentials out of every message and log line: one helper, :func:`redact`.

A registry or engine URI may carry credentials (``http://user:pass@host``, ``postgresql://user:pass@db/x``,
``…?token=…``, a libpq ``password=…``). :func:`redact` replaces them with ``***`` and leaves the rest of
the text readable (scheme, host, path). It is used where such text is born
(:class:`llmops.errors.RegistryError` redacts its message and URI) and where it leaves the process
(:class:`RedactingFilter` on log handlers, installed by :func:`install_log_redaction`).

The lowest layer of llmops: it imports nothing of the package.
"""

from __future__ import annotations

import logging
import re
import traceback

MASK = "***"

# scheme://USERINFO@host: everything between "//" and the last "@" before the host's end
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<userinfo>[^\s/?#'\"<>]+)@")
# secret-looking key=value pairs: URI query parameters and libpq / DSN key-value strings
_SECRET_KEYS = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "access_token",
    "refresh_token",
    "api_key",
    "apikey",
    "client_secret",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "sig",
    "signature",
)
_KEY_VALUE = re.compile(
    r"(?P<key>(?<![a-zA-Z0-9_\-])(?:" + "|".join(re.escape(k) for k in _SECRET_KEYS) + r")\s*=\s*)"
    r"(?P<value>'[^']*'|\"[^\"]*\"|[^\s&;,'\"<>)]+)",
    re.IGNORECASE,
)
# HTTP authorization schemes written out in a message
_AUTH_HEADER = re.compile(r"(?P<scheme>\b(?:Bearer|Basic|Token)\s+)(?P<value>[A-Za-z0-9._~+/=\-]{6,})")


def redact(text: str) -> str:
    """``text`` with credentials in URIs, secret ``key=value`` pairs and authorization values masked."""
    if not text:
        return text
    out = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    out = _KEY_VALUE.sub(lambda m: f"{m['key']}{MASK}", out)
    return _AUTH_HEADER.sub(lambda m: f"{m['scheme']}{MASK}", out)


class RedactingFilter(logging.Filter):
    """A handler filter: the record's message and traceback text pass through :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed format: leave it to the formatter to report
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Add one :class:`RedactingFilter` to every handler of ``logger`` (default: the root logger)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
