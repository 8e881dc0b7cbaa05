"""The HTML form's hidden token: when it was shown (signed), and a key that makes resubmits safe."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class FormCheck:
    """`key` identifies the rendering (an idempotency key); `bot_reason` is set for a bot."""

    key: str | None
    bot_reason: str | None


def issue(secret: bytes, now: float | None = None, previous: str | None = None) -> str:
    """A token for a new rendering. Re-shown after an error, the form keeps the time it was
    first shown (from a valid `previous` token): a person fixing a typo fast is no bot."""
    stamp = int((time.time() if now is None else now) * 1000)
    first_shown = _valid_stamp(secret, previous)
    payload = f"{first_shown if first_shown is not None else stamp}.{secrets.token_urlsafe(12)}"
    return f"{payload}.{_sign(secret, payload)}"


def _valid_stamp(secret: bytes, token: str | None) -> int | None:
    parts = (token or "").split(".")
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    if not hmac.compare_digest(_sign(secret, f"{parts[0]}.{parts[1]}"), parts[2]):
        return None
    return int(parts[0])


def check(
    secret: bytes, token: str | None, min_fill_seconds: float, now: float | None = None
) -> FormCheck:
    """A person takes a few seconds to fill the form; a bot posts at once or forges the token."""
    now = time.time() if now is None else now
    stamp = _valid_stamp(secret, token)
    if stamp is None:
        return FormCheck(None, "the form token is missing, malformed or forged")
    parts = (token or "").split(".")
    elapsed = now - stamp / 1000
    if elapsed < min_fill_seconds:
        return FormCheck(
            f"form:{parts[1]}", f"the form came back {max(elapsed, 0):.1f} s after it was shown"
        )
    return FormCheck(f"form:{parts[1]}", None)


def _sign(secret: bytes, payload: str) -> str:
    return hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()[:32]
