"""Credentials never reach a message or a log line: llmops.redact, RegistryError, the registry's errors."""

from __future__ import annotations

import logging

import pytest

from llmops.errors import NotFoundError, RegistryError
from llmops.redact import RedactingFilter, install_log_redaction, redact
from llmops.registry.backend import brief

SECRETS = ("s3cr3t", "hunter2", "tok-abcdef123456", "AKIAxyz", "sigvalue123")


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("http://alice:s3cr3t@mlflow.internal:5000/api", "http://***@mlflow.internal:5000/api"),
        ("https://alice:s3cr3t@mlflow.internal", "https://***@mlflow.internal"),
        ("postgresql://mlflow:hunter2@db.internal:5432/mlflow", "postgresql://***@db.internal:5432/mlflow"),
        ("postgresql+psycopg2://mlflow:hunter2@db/x failed", "postgresql+psycopg2://***@db/x failed"),
        ("mysql://u:p%40ss-hunter2@db/x", "mysql://***@db/x"),
        ("postgresql://mlflow:hun@ter2-hunter2@db/x", "postgresql://***@db/x"),  # a raw '@' in the password
        ("https://tok-abcdef123456@git.example.com/r.git", "https://***@git.example.com/r.git"),
        ("s3://bucket/a?X-Amz-Signature=sigvalue123&X-Amz-Credential=AKIAxyz", "s3://bucket/a?X-Amz-Signature=***"),
        ("host=db user=mlflow password=hunter2 dbname=x", "host=db user=mlflow password=*** dbname=x"),
        ("http://h/api?token=tok-abcdef123456&x=1", "http://h/api?token=***&x=1"),
        ("Authorization: Bearer tok-abcdef123456", "Authorization: Bearer ***"),
    ],
)
def test_credentials_are_masked_and_the_rest_stays_readable(text: str, kept: str) -> None:
    out = redact(text)
    assert not any(s in out for s in SECRETS), out
    assert out.startswith(kept) or kept in out, out


@pytest.mark.parametrize(
    "text",
    [
        "sqlite:////home/u/.llmops/mlflow.db",
        "http://127.0.0.1:5000",
        "prompt support-triage/3 not found",
        "route triage: target stable: cannot read the production release",
        "max tokens=64 exceeded",
        "",
    ],
)
def test_text_without_credentials_is_unchanged(text: str) -> None:
    assert redact(text) == text


def test_registry_errors_never_carry_credentials() -> None:
    uri = "http://alice:s3cr3t@mlflow.internal:5000"
    err = RegistryError(f"cannot reach {uri}/api/2.0/mlflow: refused", uri=uri)
    assert "s3cr3t" not in str(err) and "alice" not in str(err)
    assert err.uri == "http://***@mlflow.internal:5000"
    assert "mlflow.internal:5000" in str(err)  # still says which registry
    missing = NotFoundError("prompt x not found", uri="postgresql://u:hunter2@db/mlflow")
    assert "hunter2" not in str(missing)


def test_driver_errors_lose_their_sql_and_parameters() -> None:
    raw = (
        "(sqlite3.OperationalError) database is locked\n"
        "[SQL: SELECT registered_models.name FROM registered_models WHERE registered_models.name = ?]\n"
        "[parameters: ('triage.release',)]\n"
        "(Background on this error at: https://sqlalche.me/e/20/e3q8)"
    )
    assert brief(raw) == "(sqlite3.OperationalError) database is locked"
    assert len(brief("x" * 5000)) == 500


def test_the_log_filter_redacts_messages_arguments_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("llmops.test_redact")
    handler = caplog.handler
    handler.addFilter(RedactingFilter())
    try:
        with caplog.at_level(logging.INFO, logger="llmops.test_redact"):
            logger.info("connecting to %s", "postgresql://mlflow:hunter2@db/x")
            try:
                raise RuntimeError("refused by http://alice:s3cr3t@mlflow.internal")
            except RuntimeError:
                logger.exception("registry call failed")
        text = caplog.text
        assert "postgresql://***@db/x" in text
        assert "hunter2" not in text and "s3cr3t" not in text
        assert "RuntimeError" in text  # the traceback is still there
    finally:
        handler.filters.clear()


def test_install_adds_one_filter_per_handler() -> None:
    logger = logging.getLogger("llmops.test_redact.install")
    handler = logging.StreamHandler()
    logger.addHandler(handler)
    try:
        install_log_redaction(logger)
        install_log_redaction(logger)
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
    finally:
        logger.removeHandler(handler)
