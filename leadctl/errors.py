"""Domain exceptions of the core, and the one table that gives each its HTTP status and code.

The server answers an error with its status and its stable `code`; the remote CLI turns the
two back into the same exception. Both read `KINDS`, so neither can drift from the other.
"""

from __future__ import annotations

from typing import ClassVar


class LeadctlError(Exception):
    """Base of every error the core raises on purpose; its message is for people."""

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 400


class NotFound(LeadctlError):
    """The lead, attorney, token or message named does not exist."""

    code = "not_found"
    http_status = 404


class InvalidTransition(LeadctlError):
    """The state machine does not allow this change."""

    code = "invalid_transition"
    http_status = 409


class Conflict(LeadctlError):
    """The request contradicts what is stored (a duplicate email, a reused key)."""

    code = "conflict"
    http_status = 409


class InvalidInput(LeadctlError):
    """Input failed validation; `errors` lists (field, message) pairs."""

    code = "invalid_input"
    http_status = 422

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(_pair(field, message) for field, message in errors))


class UnsupportedResume(LeadctlError):
    """The resume's content is not one of the accepted document types."""

    code = "unsupported_resume"
    http_status = 415


class ResumeTooLarge(LeadctlError):
    """The resume is larger than the configured limit."""

    code = "resume_too_large"
    http_status = 413


class StorageUnavailable(LeadctlError):
    """The database cannot take the write now (locked, read-only, gone); try again shortly."""

    code = "storage_unavailable"
    http_status = 503


class AuthError(LeadctlError):
    """No valid credentials: the caller must log in or provide a token."""

    code = "auth_required"
    http_status = 401


class Forbidden(LeadctlError):
    """Valid credentials, but not allowed to do this."""

    code = "forbidden"
    http_status = 403


class NoDatabase(LeadctlError):
    """There is no database where the settings point, and this command does not create one."""

    code = "no_database"
    http_status = 503


# Every kind a server may answer with, by its code. Where two share a status (409), the first
# is what a status without a code (an older server) is read as.
KINDS: dict[str, type[LeadctlError]] = {
    kind.code: kind
    for kind in (
        InvalidInput,
        ResumeTooLarge,
        UnsupportedResume,
        NotFound,
        InvalidTransition,
        Conflict,
        AuthError,
        Forbidden,
        StorageUnavailable,
    )
}
_BY_STATUS: dict[int, type[LeadctlError]] = {}
for _kind in KINDS.values():
    _BY_STATUS.setdefault(_kind.http_status, _kind)


def from_answer(status: int, code: str | None, pairs: list[tuple[str | None, str]]) -> LeadctlError:
    """The exception a server meant by an error answer: by its code, else by its status."""
    kind = KINDS.get(code or "") or _BY_STATUS.get(status, LeadctlError)
    if kind is InvalidInput:
        return InvalidInput([(field or "", message) for field, message in pairs])
    return kind("; ".join(_pair(field, message) for field, message in pairs) or f"HTTP {status}")


def _pair(field: str | None, message: str) -> str:
    return f"{field}: {message}" if field else message
