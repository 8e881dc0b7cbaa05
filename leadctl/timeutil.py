"""UTC clock, ISO 8601 rendering, and parsing of durations (`24h`) and dates given by people."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdwy])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks", "y": "days"}
_SCALE = {"y": 365}  # a year as 365 days: retention periods, `purge --older-than 2y`
MAX_DURATION = timedelta(days=36500)  # a century: longer is a typo, and would overflow dates


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a `Z`, or None."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `24h`, `7d`, `2w`, `2y` → timedelta; ValueError names the accepted forms."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(
            f"{text!r} is not a duration; use a number and a unit, like 30m, 24h, 7d or 2y"
        )
    unit = match.group(2).lower()
    amount = float(match.group(1)) * _SCALE.get(unit, 1)
    try:
        duration = timedelta(**{_UNITS[unit]: amount})
    except OverflowError:
        duration = MAX_DURATION * 2
    if duration > MAX_DURATION:
        raise ValueError(f"{text.strip()!r} is too long a duration; at most 36500d (a century)")
    return duration


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """A point in time: a duration ago (`7d`), a date (`2026-11-01`) or an ISO 8601 timestamp."""
    now = now or utcnow()
    if _DURATION.match(text):
        return now - parse_duration(text)
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            day = date.fromisoformat(text.strip())
        except ValueError:
            raise ValueError(
                f"{text!r} is neither a date (2026-11-01), a timestamp nor a duration (7d)"
            ) from None
        parsed = datetime(day.year, day.month, day.day)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+05:00 is before the first representable moment
        raise ValueError(f"{text.strip()!r} is out of the range of dates") from None


def humanize_age(value: datetime, now: datetime | None = None) -> str:
    """`just now`, `5m`, `3h`, `2d` — a compact age for terminal tables."""
    seconds = int(((now or utcnow()) - value).total_seconds())
    if seconds < 60:
        return "just now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return "just now"  # pragma: no cover - unreachable
