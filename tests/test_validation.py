"""What a prospect types: names and emails are checked and normalized, every failure named."""

from __future__ import annotations

import pytest

from leadctl.errors import InvalidInput
from leadctl.validation import (
    check_consent,
    check_name,
    check_prospect,
    check_resume_url,
    normalize_email,
)


def test_names_are_trimmed_and_kept_in_unicode() -> None:
    assert check_name("  Zoë Ñúñez ", "first name") == "Zoë Ñúñez"
    assert check_name("李雷", "first name") == "李雷"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "is required"),
        ("   ", "is required"),
        ("Jane\r\nBcc: victim@example.com", "control characters"),
        ("Jane\x00", "control characters"),
        ("Jane\u2028Doe", "control characters"),
        ("x" * 101, "at most 100"),
        ("x" * 10_000, "at most 100"),
    ],
)
def test_bad_names_are_refused_with_the_reason(value: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        check_name(value, "first name")


def test_a_name_of_exactly_100_characters_is_accepted() -> None:
    assert len(check_name("x" * 100, "last name")) == 100


def test_email_is_normalized_without_network() -> None:
    assert normalize_email(" Jane.Doe@EXAMPLE.com ") == "Jane.Doe@example.com"
    assert normalize_email("zoë@exämple.com") == "zoë@exämple.com"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "jane",
        "jane@",
        "@example.com",
        "Jane <jane@example.com>",
        "a@b@c.com",
        "x" * 400 + "@e.com",
    ],
)
def test_bad_emails_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="email"):
        normalize_email(value)


def test_every_failing_field_is_named_at_once() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_prospect("", "Do\ne", "not-an-email")
    assert [field for field, _ in caught.value.errors] == ["first_name", "last_name", "email"]


def test_a_valid_prospect() -> None:
    p = check_prospect(" Jane ", "Doe", "JANE@Example.com")
    assert (p.first_name, p.last_name, p.email) == ("Jane", "Doe", "JANE@example.com")


@pytest.mark.parametrize(
    ("value", "agreed"),
    [
        ("true", True),
        (" TRUE ", True),
        ("yes", True),
        ("on", True),
        ("1", True),
        (None, False),
        ("", False),
        ("false", False),
        ("No", False),
        ("off", False),
        ("0", False),
    ],
)
def test_consent_words(value: str | None, agreed: bool) -> None:
    assert check_consent(value) is agreed


@pytest.mark.parametrize("value", ["maybe", "true!", "y", "ja", "\x1b[2J", "2"])
def test_an_unclear_consent_is_refused_not_guessed(value: str) -> None:
    with pytest.raises(ValueError, match="consent must be true or false"):
        check_consent(value)


def test_a_resume_link_is_kept_as_given_once_trimmed() -> None:
    assert check_resume_url("  https://Example.com/cv.pdf?a=1&b=2#x ") == (
        "https://Example.com/cv.pdf?a=1&b=2#x"
    )
    assert check_resume_url("HTTPS://example.com/cv") == "HTTPS://example.com/cv"
