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


def issue(secret: bytes, now: float | None = None) -> str:
    stamp = int((time.time() if now is None else now) * 1000)
    payload = f"{stamp}.{secrets.token_urlsafe(12)}"
    return f"{payload}.{_sign(secret, payload)}"


def check(
    secret: bytes, token: str | None, min_fill_seconds: float, now: float | None = None
) -> FormCheck:
    """A person takes a few seconds to fill the form; a bot posts at once or forges the token."""
    now = time.time() if now is None else now
    parts = (token or "").split(".")
    if len(parts) != 3 or not parts[0].isdigit():
        return FormCheck(None, "the form token is missing or malformed")
    payload = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_sign(secret, payload), parts[2]):
        return FormCheck(None, "the form token's signature is wrong")
    elapsed = now - int(parts[0]) / 1000
    if elapsed < min_fill_seconds:
        return FormCheck(
            f"form:{parts[1]}", f"the form came back {max(elapsed, 0):.1f} s after it was shown"
        )
    return FormCheck(f"form:{parts[1]}", None)


def _sign(secret: bytes, payload: str) -> str:
    return hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()[:32]
