"""Validation of what a prospect types: names and email, each failure naming its field."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from leadctl.errors import InvalidInput

NAME_MAX = 100
_FORBIDDEN_CATEGORIES = {"Cc", "Cs", "Co", "Cn", "Zl", "Zp"}
# Embeddings, overrides and isolates reorder what a reader sees (Trojan Source); no name needs
# them. The marks (U+200E, U+200F, U+061C) and the joiners (U+200C, U+200D) stay: right-to-left
# and Indic names and emoji sequences use them.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True)
class Prospect:
    first_name: str
    last_name: str
    email: str


def check_name(value: str | None, label: str) -> str:
    """A trimmed name of 1–100 characters with no control characters; ValueError otherwise.

    Bidirectional embeddings, overrides and isolates count as control characters here.
    """
    text = unicodedata.normalize("NFC", (value or "")).strip()
    if not text:
        raise ValueError(f"{label} is required")
    if any(unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in text):
        raise ValueError(f"{label} must not contain control characters or line breaks")
    if not BIDI_CONTROLS.isdisjoint(text):
        raise ValueError(
            f"{label} must not contain bidirectional control characters (U+202A–U+202E, "
            "U+2066–U+2069)"
        )
    if len(text) > NAME_MAX:
        raise ValueError(f"{label} must be at most {NAME_MAX} characters (got {len(text)})")
    return text


def normalize_email(value: str | None) -> str:
    """The normalized address (email-validator, no DNS look-up); ValueError when invalid."""
    text = (value or "").strip()
    if not text:
        raise ValueError("email is required")
    if len(text) > 320:
        raise ValueError("email is longer than 320 characters")
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"email is not valid: {exc}") from None


def check_prospect(first_name: str | None, last_name: str | None, email: str | None) -> Prospect:
    """All three fields checked; InvalidInput lists every failing field at once."""
    errors: list[tuple[str, str]] = []
    checked: dict[str, str] = {}
    for field, check in (
        ("first_name", lambda: check_name(first_name, "first name")),
        ("last_name", lambda: check_name(last_name, "last name")),
        ("email", lambda: normalize_email(email)),
    ):
        try:
            checked[field] = check()
        except ValueError as exc:
            errors.append((field, str(exc)))
    if errors:
        raise InvalidInput(errors)
    return Prospect(**checked)
