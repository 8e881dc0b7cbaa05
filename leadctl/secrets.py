"""Secrets in the OS keyring (service `leadctl`), time-boxed; environment variables as fallback."""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Callable
from typing import TypeVar

from leadctl.errors import LeadctlError

SERVICE = "leadctl"
KEYRING_TIMEOUT_SECONDS = 5.0
T = TypeVar("T")


class KeyringUnavailable(LeadctlError):
    """No usable OS keyring backend (headless Linux, CI) or it did not answer in time."""


def _timeboxed(call: Callable[[], T]) -> T:
    # A locked desktop keyring can block on an unlock prompt nobody sees; never hang a command.
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="keyring")
    try:
        return pool.submit(call).result(timeout=KEYRING_TIMEOUT_SECONDS)
    except concurrent.futures.TimeoutError:
        raise KeyringUnavailable(
            f"the OS keyring did not answer within {KEYRING_TIMEOUT_SECONDS:.0f} s"
        ) from None
    finally:
        pool.shutdown(wait=False)


def keyring_usable() -> tuple[bool, str]:
    """(usable, reason): a real backend — not the fail one, nor a plaintext file picked silently."""
    import keyring
    from keyring.backends import fail

    backend = keyring.get_keyring()
    name = f"{type(backend).__module__}.{type(backend).__name__}"
    if isinstance(backend, fail.Keyring) or "null" in name.lower():
        return False, "no OS keyring backend is available"
    if "keyrings.alt" in name and not os.environ.get("PYTHON_KEYRING_BACKEND"):
        return False, f"the only keyring backend is a plaintext file ({name})"
    return True, name


def get_secret(key: str) -> str | None:
    """The secret stored under `key`, or None; KeyringUnavailable when there is no keyring."""
    import keyring
    from keyring.errors import KeyringError

    try:
        return _timeboxed(lambda: keyring.get_password(SERVICE, key))
    except KeyringError as exc:
        raise KeyringUnavailable(f"the OS keyring cannot be used: {type(exc).__name__}") from None


def set_secret(key: str, value: str) -> None:
    import keyring
    from keyring.errors import KeyringError

    usable, reason = keyring_usable()
    if not usable:
        raise KeyringUnavailable(reason)
    try:
        _timeboxed(lambda: keyring.set_password(SERVICE, key, value))
    except KeyringError as exc:
        raise KeyringUnavailable(f"the OS keyring cannot be used: {type(exc).__name__}") from None


def delete_secret(key: str) -> bool:
    """Remove the secret; False when there was none."""
    import keyring
    from keyring.errors import KeyringError, PasswordDeleteError

    try:
        _timeboxed(lambda: keyring.delete_password(SERVICE, key))
    except PasswordDeleteError:
        return False
    except KeyringError as exc:
        raise KeyringUnavailable(f"the OS keyring cannot be used: {type(exc).__name__}") from None
    return True


def smtp_key(user: str, host: str) -> str:
    return f"smtp://{user}@{host}"


def smtp_password(user: str, host: str, from_env: str) -> tuple[str, str]:
    """(password, source) for the SMTP login: `LEADS_SMTP_PASSWORD`, else the keyring."""
    if from_env:
        return from_env, "LEADS_SMTP_PASSWORD"
    try:
        stored = get_secret(smtp_key(user, host))
    except KeyringUnavailable as exc:
        raise LeadctlError(f"no SMTP password for {user}: {exc}; set LEADS_SMTP_PASSWORD") from None
    if stored is None:
        raise LeadctlError(
            f"no SMTP password for {user} at {host}; run: leadctl mail setup "
            "(or set LEADS_SMTP_PASSWORD where no keyring works)"
        )
    return stored, "keyring"
