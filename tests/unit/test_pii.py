"""PII detection and redaction (llmops.pii): what ``data validate`` flags and what the gateway's capture masks."""

from __future__ import annotations

import pytest

from llmops.pii import iban_valid, pii_kinds, redact_pii


@pytest.mark.parametrize(
    ("text", "redacted", "kinds"),
    [
        ("write to jane.doe+x@mail.example.org today", "write to [EMAIL] today", {"email"}),
        ("ring 555-123-4567 please", "ring [PHONE] please", {"phone"}),
        ("call +44 20 7946 0958", "call [PHONE]", {"phone"}),
        ("card 4111 1111 1111 1111, exp 12/27", "card [CARD], exp 12/27", {"card"}),
        ("pay to DE89 3704 0044 0532 0130 00 OK", "pay to [IBAN] OK", {"iban"}),
        ("IBAN: GB82WEST12345698765432.", "IBAN: [IBAN].", {"iban"}),
        ("NL91 ABNA 0417 1643 00 and x@y.io", "[IBAN] and [EMAIL]", {"iban", "email"}),
    ],
)
def test_each_kind_is_found_and_masked(text: str, redacted: str, kinds: set[str]) -> None:
    assert redact_pii(text) == redacted
    assert pii_kinds(text) == kinds


@pytest.mark.parametrize(
    "text",
    [
        "order #50397 arrived broken",
        "order #50397-221-884 is late",
        "I paid $1,299.00 on 2024-01-15",
        "total 1299.00 EUR",
        "error code E404, ticket 123456",
        "in 12 days",
        "DE00 3704 0044 0532 0130 00",  # IBAN-shaped but its check digits are wrong, and no Luhn card
        '{"intent":"billing","priority":"high"}',
    ],
)
def test_order_numbers_prices_and_dates_are_not_personal_data(text: str) -> None:
    assert pii_kinds(text) == set()
    assert redact_pii(text) == text


def test_iban_check_is_iso_13616_mod_97() -> None:
    assert iban_valid("DE89370400440532013000")
    assert iban_valid("gb82 west 1234 5698 7654 32")
    assert not iban_valid("DE89370400440532013001")
    assert not iban_valid("DE8937")


def test_data_validate_uses_the_same_detectors() -> None:
    from llmops.finetune import validation

    assert validation.pii_kinds is pii_kinds
    assert validation.pii_kinds("refund to FR14 2004 1010 0505 0001 3M02 606") == {"iban"}
