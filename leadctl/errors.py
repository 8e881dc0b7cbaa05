"""Domain exceptions of the core; each face maps them to HTTP statuses or exit codes once."""

from __future__ import annotations


class LeadctlError(Exception):
    """Base of every error the core raises on purpose; its message is for people."""


class NotFound(LeadctlError):
    """The lead, attorney, token or message named does not exist."""


class InvalidTransition(LeadctlError):
    """The state machine does not allow this change."""


class Conflict(LeadctlError):
    """The request contradicts what is stored (a duplicate email, a reused key)."""


class InvalidInput(LeadctlError):
    """Input failed validation; `errors` lists (field, message) pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors))


class UnsupportedResume(LeadctlError):
    """The resume's content is not one of the accepted document types."""


class ResumeTooLarge(LeadctlError):
    """The resume is larger than the configured limit."""


class StorageUnavailable(LeadctlError):
    """The database cannot take the write now (locked, read-only, gone); try again shortly."""


class AuthError(LeadctlError):
    """No valid credentials: the caller must log in or provide a token."""


class Forbidden(LeadctlError):
    """Valid credentials, but not allowed to do this."""
