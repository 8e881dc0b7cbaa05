"""How the text of a setting becomes its value: booleans, numbers, choices, and the parsed
ones (rates, networks, origins, periods and URLs).

Each parser raises SettingsError with one line naming the variable and the accepted forms.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any
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


def convert(f: dataclasses.Field[Any], raw: str) -> Any:
    """The raw text of setting `f` (a field of `Settings`) as its type, checked as `Settings`
    will check it, so that each bad setting is found on its own; SettingsError names the
    variable."""
    env, kind = f.metadata["env"], type(f.default)
    value = _typed(env, raw, kind)
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        raise SettingsError(f"{env} must be {' or '.join(choices)}, not {quoted(raw)}")
    if env in PARSERS:
        PARSERS[env](value)
    return value


# The settings whose value is parsed further (each is checked again as `Settings` starts).
PARSERS: dict[str, Callable[[Any], object]] = {
    "LEADS_MAIL_CONCURRENCY": check_mail_concurrency,
    "LEADS_RATE_LIMIT": parse_rate,
    "LEADS_TRUSTED_PROXIES": parse_proxies,
    "LEADS_FRAME_ANCESTORS": parse_frame_ancestors,
    "LEADS_RETENTION": partial(parse_period, "LEADS_RETENTION"),
    "LEADS_REMIND_AFTER": partial(parse_period, "LEADS_REMIND_AFTER"),
    "LEADS_ESCALATE_AFTER": partial(parse_period, "LEADS_ESCALATE_AFTER"),
    "LEADS_QUARANTINE_DIGEST": partial(parse_period, "LEADS_QUARANTINE_DIGEST"),
    "LEADS_PRIVACY_URL": partial(parse_url, "LEADS_PRIVACY_URL"),
    "LEADS_WEBHOOK_URL": partial(parse_url, "LEADS_WEBHOOK_URL", loopback_http=True),
}


def _typed(env: str, raw: str, kind: type) -> Any:
    """`raw` as a bool, a number (finite, not negative) or kept as text, after the default's
    type `kind`."""
    if kind is bool:
        lowered = raw.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(f"{env} must be true or false, not {quoted(raw)}")
    if kind in (int, float):
        try:
            value = kind(raw)
        except ValueError:
            raise SettingsError(f"{env} must be a number, not {quoted(raw)}") from None
        if not math.isfinite(value) or value < 0:
            raise SettingsError(f"{env} must be a finite number, not negative, not {quoted(raw)}")
        return value
    return raw
