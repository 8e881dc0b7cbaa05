"""Validation of what a prospect sends: names, email, consent and a resume link, each failure
naming its field."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from leadctl.errors import InvalidInput

NAME_MAX = 100
EMAIL_MAX = 320  # RFC 3696's limit for an address
_FORBIDDEN_CATEGORIES = {"Cc", "Cs", "Co", "Cn", "Zl", "Zp"}
# Embeddings, overrides and isolates reorder what a reader sees (Trojan Source); no name needs
# them. The marks (U+200E, U+200F, U+061C) and the joiners (U+200C, U+200D) stay: right-to-left
# and Indic names and emoji sequences use them.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

# What `consent` may say: the words LEADS_* booleans accept (any case). Absent or empty is "no".
CONSENT_YES = frozenset({"true", "yes", "on", "1"})
CONSENT_NO = frozenset({"false", "no", "off", "0", ""})
MAX_RESUME_URL = 2048
# RFC 3986's characters, nothing else: no space, quote, angle bracket, backslash or control
# character can end an HTML attribute, a Markdown link or a terminal line early.
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")  # `urlsplit` has lowercased the host


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
    if len(text) > EMAIL_MAX:
        raise ValueError(f"email is longer than {EMAIL_MAX} characters")
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


def check_consent(value: str | None) -> bool:
    """True for `true`, `yes`, `on`, `1` (any case, trimmed); False when absent or `false`, `no`,
    `off`, `0`, empty; ValueError for anything else (a typo must not pass as agreement)."""
    text = (value or "").strip().lower()
    if text in CONSENT_YES:
        return True
    if text in CONSENT_NO:
        return False
    shown = value if value is not None and len(value) <= 20 and value.isprintable() else "…"
    raise ValueError(f"consent must be true or false, not {shown!r}")


def check_resume_url(value: str) -> str:
    """A link to the resume, stored and shown but never fetched: https, at most 2,048 characters
    of RFC 3986 (no spaces, quotes, angle brackets, control or non-ASCII characters), a host name
    with a dot (no IP address, no `localhost`), no user name or password. ValueError otherwise."""
    text = value.strip()
    if len(text) > MAX_RESUME_URL:
        raise ValueError(
            f"resume_url must be at most {MAX_RESUME_URL:,} characters (got {len(text):,})"
        )
    if not _URL_CHARS.fullmatch(text):
        raise ValueError(
            "resume_url must be a plain https:// link: no spaces, quotes, angle brackets, control "
            "or non-ASCII characters (percent-encode them)"
        )
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        _ = parts.port
    except ValueError:
        raise ValueError("resume_url is not a valid link") from None
    if parts.scheme.lower() != "https":
        raise ValueError("resume_url must start with https://")
    if parts.username is not None or parts.password is not None:
        raise ValueError("resume_url must not contain a user name or password")
    if "[" in parts.netloc:
        raise ValueError(
            "resume_url must name a public host (a name such as example.com), not an address "
            "in brackets"
        )
    if not _public_host_name(host):
        raise ValueError("resume_url must name a public host (a name such as example.com)")
    return text


def _public_host_name(host: str) -> bool:
    """A DNS name of two labels or more that no browser reads as an IPv4 address: browsers
    (WHATWG URL) parse any host whose last label is a number — decimal, `0x` hex or octal —
    as IPv4, so `0x7f.0x0.0x0.0x1` and `127.0.0.0x1` are 127.0.0.1, and no top-level domain
    is a number."""
    try:
        ipaddress.ip_address(host)
        return False
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    return (
        len(labels) >= 2
        and not _NUMERIC_LABEL.fullmatch(labels[-1])
        and all(map(_HOST_LABEL.fullmatch, labels))
    )
