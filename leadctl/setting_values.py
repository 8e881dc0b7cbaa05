"""How the text of a setting becomes its value: rates, networks, origins, periods and URLs.

Each parser raises SettingsError with one line naming the variable and the accepted forms.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from urllib.parse import urlsplit

from leadctl.envfile import quoted

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
MAX_URL = 2048


class SettingsError(ValueError):
    """A variable holds a value the setting cannot take, or the env file cannot be read."""


def parse_rate(text: str) -> tuple[int, float] | None:
    """`10/minute` → (10, 60.0); `off` → None; SettingsError names the accepted forms.

    Parsed by hand, not by a pattern: every command validates its settings at start-up."""
    text = text.strip().lower()
    if text in {"off", "none", "0", ""}:
        return None
    count, slash, unit = (part.strip() for part in text.partition("/"))
    unit = unit.removesuffix("s")
    if not (slash and count.isascii() and count.isdigit() and len(count) <= 9) or (
        unit not in _PERIODS or int(count) < 1
    ):
        raise SettingsError(f"LEADS_RATE_LIMIT must look like 10/minute or be off, not {text!r}")
    return int(count), float(_PERIODS[unit])


def parse_proxies(text: str) -> list[Network]:
    networks = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise SettingsError(
                f"LEADS_TRUSTED_PROXIES: {quoted(item)} is not an address or network"
            ) from None
    return networks


_ORIGIN = r"https?://(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:\d{1,5})?"  # compiled on use


def parse_frame_ancestors(text: str) -> list[str]:
    """Origins (`https://www.firm.example`, `https://*.firm.example`) or `self`; nothing that
    could add another directive to the Content-Security-Policy."""
    sources: list[str] = []
    for item in text.replace(",", " ").split():
        if item.strip("'").lower() == "self":
            sources.append("'self'")
        elif re.fullmatch(_ORIGIN, item):
            sources.append(item.lower())
        else:
            raise SettingsError(
                f"LEADS_FRAME_ANCESTORS: {quoted(item)} is not an origin like "
                "https://www.firm.example"
            )
    return sources


MAX_MAIL_CONCURRENCY = 64


def check_mail_concurrency(value: int) -> None:
    if not 1 <= value <= MAX_MAIL_CONCURRENCY:
        raise SettingsError(
            f"LEADS_MAIL_CONCURRENCY must be 1 to {MAX_MAIL_CONCURRENCY}, not {value}"
        )


def parse_period(env: str, text: str) -> timedelta | None:
    """`24h`, `730d`, `2y` → timedelta; `off` → None."""
    from leadctl.timeutil import parse_duration

    text = text.strip()
    if text.lower() in {"off", "none", "0", ""}:
        return None
    try:
        period = parse_duration(text)
    except ValueError as exc:
        raise SettingsError(f"{env}: {exc}, or off") from None
    if period <= timedelta(0):
        raise SettingsError(f"{env} must be a positive duration or off, not {quoted(text)}")
    return period


def parse_url(env: str, text: str, *, loopback_http: bool = False) -> str:
    """An https URL of at most 2,048 characters ('' stays ''); plain http only to this machine
    when `loopback_http` (a local receiver). Nothing that could break out of a link or a header."""
    text = text.strip()
    if not text:
        return ""
    if len(text) > MAX_URL or not text.isprintable() or any(c in text for c in ' "<>\\`'):
        raise SettingsError(f"{env} must be a URL of at most {MAX_URL} plain characters")
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        _ = parts.port
    except ValueError:
        raise SettingsError(f"{env}: {quoted(text)} is not a URL") from None
    local = host in {"localhost", "127.0.0.1", "::1"}
    if not host or not (
        parts.scheme == "https" or (parts.scheme == "http" and loopback_http and local)
    ):
        allowed = "https:// (or http:// to this machine)" if loopback_http else "https://"
        raise SettingsError(f"{env} must start with {allowed}, not {quoted(text)}")
    return text
