"""Secrets in the OS keyring (service `leadctl`), time-boxed; environment variables as fallback."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from leadctl.errors import LeadctlError

SERVICE = "leadctl"
KEYRING_TIMEOUT_SECONDS = 5.0
T = TypeVar("T")

UNLOCK = "unlock it (log in to your desktop session, or open its passwords app)"
CHECK = "check that it is running and unlocked"


class KeyringUnavailable(LeadctlError):
    """The OS keyring cannot be used now: none works here, it is locked, or it did not answer.

    `str()` is the reason alone; `advice(variable)` adds what to do, ending with the
    environment variable that serves instead of the keyring.
    """

    def __init__(self, reason: str, remedy: str = "", *, absent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.remedy = remedy
        self.absent = absent  # no keyring on this machine at all, rather than one out of order

    def advice(self, variable: str) -> str:
        if self.remedy:
            return f"{self.reason}; {self.remedy}, or set {variable}"
        return f"{self.reason}; set {variable} instead"


# One call at a time may be stuck in a keyring that never answers: later calls fail at once
# rather than each leaving another thread (and D-Bus connection) behind in a long-lived process.
_stuck_lock = threading.Lock()
_stuck_since: float | None = None


def _timeboxed(call: Callable[[], T]) -> T:
    """`call()` in a daemon thread, given up after KEYRING_TIMEOUT_SECONDS.

    A frozen Secret Service, or a locked one showing an unlock prompt nobody sees, blocks in
    D-Bus with no timeout of its own. The thread is a daemon so that the interpreter does not
    wait for it at exit (a ThreadPoolExecutor's workers are joined at exit: the command hung).
    """
    global _stuck_since
    with _stuck_lock:
        if _stuck_since is not None:
            waited = time.monotonic() - _stuck_since
            raise KeyringUnavailable(f"the OS keyring has not answered for {waited:.0f} s", CHECK)
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def run() -> None:
        global _stuck_since
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = exc
        finally:
            with _stuck_lock:
                done.set()
                if _stuck_since == started:  # this was the stuck call: the keyring is back
                    _stuck_since = None

    started = time.monotonic()
    threading.Thread(target=run, name="keyring", daemon=True).start()
    if not done.wait(KEYRING_TIMEOUT_SECONDS):
        with _stuck_lock:
            if not done.is_set():
                _stuck_since = started
                raise KeyringUnavailable(
                    f"the OS keyring did not answer within {KEYRING_TIMEOUT_SECONDS:g} s", CHECK
                )
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value


def _unavailable(exc: Exception) -> KeyringUnavailable:
    """What a keyring failure means for the person; never the exception's text (it may carry a
    D-Bus path or, from some backends, more)."""
    from keyring.errors import InitError, KeyringLocked, NoKeyringError

    if isinstance(exc, KeyringLocked):
        return KeyringUnavailable("the OS keyring is locked", UNLOCK)
    if isinstance(exc, NoKeyringError):
        return KeyringUnavailable("no OS keyring backend is available", absent=True)
    if isinstance(exc, InitError):
        return KeyringUnavailable(f"the OS keyring cannot be reached ({type(exc).__name__})", CHECK)
    return KeyringUnavailable(f"the OS keyring failed ({type(exc).__name__})", CHECK)


def _call(call: Callable[[], T]) -> T:
    """A keyring call, time-boxed, its failures made KeyringUnavailable (a missing password's
    PasswordDeleteError excepted: it is an answer)."""
    from keyring.errors import PasswordDeleteError

    try:
        return _timeboxed(call)
    except (KeyringUnavailable, PasswordDeleteError):
        raise
    except Exception as exc:  # noqa: BLE001 - D-Bus and backends raise beyond KeyringError
        raise _unavailable(exc) from None


def _backend() -> Any:
    import keyring

    # Choosing a backend asks D-Bus whether a Secret Service is there: bounded too.
    return _call(keyring.get_keyring)


def require_keyring() -> Any:
    """The keyring backend, if it is a real one: not the fail one, nor a plaintext file picked
    silently; KeyringUnavailable otherwise."""
    from keyring.backends import fail

    backend = _backend()
    name = f"{type(backend).__module__}.{type(backend).__name__}"
    if isinstance(backend, fail.Keyring) or "null" in name.lower():
        raise KeyringUnavailable("no OS keyring backend is available", absent=True)
    if "keyrings.alt" in name and not os.environ.get("PYTHON_KEYRING_BACKEND"):
        raise KeyringUnavailable(
            f"the only keyring backend is a plaintext file ({name})", absent=True
        )
    return backend


def keyring_usable() -> tuple[bool, str]:
    """(usable, reason or the backend's name)."""
    try:
        backend = require_keyring()
    except KeyringUnavailable as exc:
        return False, str(exc)
    return True, f"{type(backend).__module__}.{type(backend).__name__}"


def get_secret(key: str) -> str | None:
    """The secret stored under `key`, or None; KeyringUnavailable when the keyring cannot say."""
    backend = _backend()
    value: str | None = _call(lambda: backend.get_password(SERVICE, key))
    return value


def set_secret(key: str, value: str) -> None:
    backend = require_keyring()
    _call(lambda: backend.set_password(SERVICE, key, value))


def delete_secret(key: str) -> bool:
    """Remove the secret; False when there was none, KeyringUnavailable when it may remain."""
    from keyring.errors import PasswordDeleteError

    backend = _backend()
    try:
        _call(lambda: backend.delete_password(SERVICE, key))
    except PasswordDeleteError:
        return False
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
        raise LeadctlError(
            f"no SMTP password for {user} at {host}: {exc.advice('LEADS_SMTP_PASSWORD')}"
        ) from None
    if stored is None:
        raise LeadctlError(
            f"no SMTP password for {user} at {host}; run: leadctl mail setup "
            "(or set LEADS_SMTP_PASSWORD where no keyring works)"
        )
    return stored, "keyring"
