"""Exit codes, in one place, and the mapping from core errors to them."""

from __future__ import annotations

from enum import IntEnum

from leadctl.errors import AuthError, LeadctlError


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1  # in a batch: at least one item failed, the rest were still done
    USAGE = 2
    AUTH = 4  # authentication needed: log in or provide a token
    INTERRUPTED = 130


def exit_code_for(exc: LeadctlError) -> ExitCode:
    return ExitCode.AUTH if isinstance(exc, AuthError) else ExitCode.FAILURE
