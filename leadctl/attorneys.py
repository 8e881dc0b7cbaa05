"""Attorneys and their API tokens: random, shown once, stored only as a hash, revocable."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from leadctl.errors import AuthError, Conflict, Forbidden, LeadctlError, NotFound
from leadctl.models import ApiToken, Attorney, email_key
from leadctl.timeutil import iso, utcnow
from leadctl.transactions import write_transaction
from leadctl.validation import check_name, normalize_email

TOKEN_PREFIX = "lct_"
ROLES = ("attorney", "admin")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def attorney_dict(a: Attorney) -> dict[str, Any]:
    return {
        "id": a.id,
        "name": a.name,
        "email": a.email,
        "role": a.role,
        "active": a.active,
        "created_at": iso(a.created_at),
    }


def token_dict(t: ApiToken, attorney_email: str) -> dict[str, Any]:
    return {
        "id": t.id,
        "attorney": attorney_email,
        "name": t.name,
        "hint": t.hint,
        "created_at": iso(t.created_at),
        "last_used_at": iso(t.last_used_at),
        "revoked_at": iso(t.revoked_at),
    }


@dataclass(frozen=True)
class IssuedToken:
    """A new token: `secret` is shown once and never stored."""

    token: ApiToken
    secret: str


def add(name: str, email: str, role: str = "attorney") -> tuple[Attorney, IssuedToken]:
    """A new active attorney and their first API token."""
    if role not in ROLES:
        raise LeadctlError(f"role must be one of {', '.join(ROLES)}")
    try:
        clean_name = check_name(name, "name")
        clean_email = email_key(normalize_email(email))
    except ValueError as exc:
        raise LeadctlError(str(exc)) from None
    with write_transaction():
        if Attorney.get_or_none(Attorney.email == clean_email) is not None:
            raise Conflict(f"attorney {clean_email} exists already")
        attorney = Attorney.create(
            name=clean_name, email=clean_email, role=role, active=True, created_at=utcnow()
        )
        issued = _issue(attorney, "initial")
    return attorney, issued


def _issue(attorney: Attorney, name: str) -> IssuedToken:
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)  # 256 bits of entropy
    token = ApiToken.create(
        attorney=attorney,
        name=name,
        token_hash=hash_token(secret),
        hint=secret[:8] + "…",
        created_at=utcnow(),
    )
    return IssuedToken(token, secret)


def get(email: str) -> Attorney:
    attorney = Attorney.get_or_none(Attorney.email == email_key(email))
    if attorney is None:
        raise NotFound(f"no attorney {email}; see: leadctl attorney list")
    return attorney


def all_attorneys() -> list[Attorney]:
    return list(Attorney.select().order_by(Attorney.email))


def deactivate(email: str) -> tuple[Attorney, bool]:
    """Deactivate; (attorney, changed). Their tokens stop working and no new lead goes to them."""
    with write_transaction():
        attorney = get(email)
        if not attorney.active:
            return attorney, False
        attorney.active = False
        attorney.save(only=[Attorney.active])
    return attorney, True


def create_token(email: str, name: str = "") -> IssuedToken:
    with write_transaction():
        attorney = get(email)
        if not attorney.active:
            raise LeadctlError(f"attorney {attorney.email} is deactivated")
        return _issue(attorney, name)


def tokens(email: str | None = None) -> list[tuple[ApiToken, str]]:
    query = ApiToken.select(ApiToken, Attorney).join(Attorney).order_by(ApiToken.id)
    if email:
        query = query.where(Attorney.email == email_key(email))
    return [(t, t.attorney.email) for t in query]


def revoke_token(token_id: int) -> tuple[ApiToken, bool]:
    with write_transaction():
        token = ApiToken.get_or_none(ApiToken.id == token_id)
        if token is None:
            raise NotFound(f"no token {token_id}; see: leadctl token list")
        if token.revoked_at is not None:
            return token, False
        token.revoked_at = utcnow()
        token.save(only=[ApiToken.revoked_at])
    return token, True


def authenticate(secret: str, *, role: str | None = None) -> Attorney:
    """The attorney a bearer token belongs to; AuthError (401) or Forbidden (403) otherwise."""
    if not secret.startswith(TOKEN_PREFIX):
        raise AuthError("invalid token")
    digest = hash_token(secret)
    token = (
        ApiToken.select(ApiToken, Attorney)
        .join(Attorney)
        .where(ApiToken.token_hash == digest)
        .first()
    )
    # The look-up is by hash (the secret itself is never compared); compare_digest guards the rest.
    if token is None or not hmac.compare_digest(token.token_hash, digest) or token.revoked_at:
        raise AuthError("invalid or revoked token")
    attorney = token.attorney
    if not attorney.active:
        raise Forbidden(f"attorney {attorney.email} is deactivated")
    if role == "admin" and attorney.role != "admin":
        raise Forbidden("this needs an admin")
    now = utcnow()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        with write_transaction():  # at most once a minute: reads must not all become writes
            ApiToken.update(last_used_at=now).where(ApiToken.id == token.id).execute()
    return attorney
