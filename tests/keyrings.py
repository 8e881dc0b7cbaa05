"""Keyrings for tests: an in-memory backend, one that fails like headless Linux, and a real
Secret Service (gnome-keyring-daemon on a private D-Bus session bus)."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keyring.backend import KeyringBackend
from keyring.errors import KeyringError, KeyringLocked, NoKeyringError, PasswordDeleteError


class MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.store.pop((service, username), None) is None:
            raise PasswordDeleteError("no such password")


class NoKeyring(KeyringBackend):
    """Behaves like keyring's fail backend on a headless machine: every call raises."""

    priority = 0  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        raise NoKeyringError("No recommended backend was available.")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise NoKeyringError("No recommended backend was available.")

    def delete_password(self, service: str, username: str) -> None:
        raise NoKeyringError("No recommended backend was available.")


class LockedKeyring(KeyringBackend):
    """Like the Secret Service with its collection locked and nobody to answer the prompt."""

    priority = 1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("Failed to unlock the collection!")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringLocked("Failed to unlock the collection!")

    def delete_password(self, service: str, username: str) -> None:
        raise KeyringLocked("Failed to unlock the collection!")


class StuckKeyring(KeyringBackend):
    """Every call waits until `release` is set, as a frozen daemon's D-Bus reply would."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        self.release.wait()
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.release.wait()
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.release.wait()
        if self.store.pop((service, username), None) is None:
            raise PasswordDeleteError("no such password")


class LeakyKeyring(KeyringBackend):
    """Fails with an exception whose text an attacker chose (a secret, terminal escapes)."""

    priority = 1  # type: ignore[assignment]
    text = "lct_leaked-secret \x1b]8;;http://evil.example\x07click\x1b[2J"

    def get_password(self, service: str, username: str) -> str | None:
        raise RuntimeError(self.text)

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringError(self.text)

    def delete_password(self, service: str, username: str) -> None:
        raise OSError(self.text)


# -- a real Secret Service: gnome-keyring-daemon on a private D-Bus session bus -------------------

# No <servicedir>: nothing on this bus is started on demand, so only our daemon answers for
# org.freedesktop.secrets and no unlock prompter can be launched (as on a headless machine).
_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""

SECRETS_BUS_NAME = "org.freedesktop.secrets"


def secret_service_missing() -> str | None:
    """Why a real Secret Service cannot be started here, or None."""
    missing = [p for p in ("dbus-daemon", "gnome-keyring-daemon") if shutil.which(p) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (Debian: dbus, gnome-keyring)"
    return None


@dataclass
class SecretServiceDaemon:
    """gnome-keyring-daemon (secrets component, unlocked) on a D-Bus session bus of its own, with
    HOME and the XDG directories under `root`, so that its keyring files stay private."""

    root: Path
    password: str = "keyring-test-password"
    bus: subprocess.Popen[bytes] | None = None
    daemon: subprocess.Popen[bytes] | None = None
    address: str = ""
    env: dict[str, str] = field(default_factory=dict)

    def start(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        for name in ("home", "run", "data", "config"):
            (self.root / name).mkdir(parents=True, exist_ok=True, mode=0o700)
        config = self.root / "bus.conf"
        config.write_text(_BUS_CONFIG)
        self.bus = subprocess.Popen(
            ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.bus.stdout is not None
        line = b""
        while not line.endswith(b"\n"):
            ready, _, _ = select.select([self.bus.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(self.bus.stdout.fileno(), 1024)
                if not chunk:
                    raise RuntimeError("dbus-daemon exited before printing its address")
                line += chunk
            if time.monotonic() > deadline:
                raise RuntimeError("dbus-daemon did not print its address")
        self.address = line.decode().strip()
        self.env = {
            "DBUS_SESSION_BUS_ADDRESS": self.address,
            "HOME": str(self.root / "home"),
            "XDG_RUNTIME_DIR": str(self.root / "run"),
            "XDG_DATA_HOME": str(self.root / "data"),
            "XDG_CONFIG_HOME": str(self.root / "config"),
        }
        base = {k: v for k, v in os.environ.items() if not k.startswith(("DBUS_", "XDG_"))}
        self.daemon = subprocess.Popen(
            ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
            env={**base, **self.env},
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert self.daemon.stdin is not None
        self.daemon.stdin.write(self.password.encode())
        self.daemon.stdin.close()
        while not self._owned():
            if self.daemon.poll() is not None:
                raise RuntimeError("gnome-keyring-daemon exited at start")
            if time.monotonic() > deadline:
                raise RuntimeError("gnome-keyring-daemon did not come up on the bus")
            time.sleep(0.05)

    def _connect(self) -> Any:
        from jeepney.io.blocking import open_dbus_connection

        return open_dbus_connection(bus=self.address)

    def _owned(self) -> bool:
        from jeepney.bus_messages import message_bus

        with self._connect() as conn:
            reply = conn.send_and_get_reply(message_bus.NameHasOwner(SECRETS_BUS_NAME), timeout=5)
            return bool(reply.body[0])

    def lookup(self, key: str, service: str = "leadctl") -> str | None:
        """What the daemon itself holds under (service, key), read over D-Bus, not via keyring."""
        import secretstorage

        with self._connect() as conn:
            collection = secretstorage.get_default_collection(conn)
            for item in collection.search_items({"service": service, "username": key}):
                return item.get_secret().decode()
        return None

    def lock(self) -> None:
        import secretstorage

        with self._connect() as conn:
            secretstorage.get_default_collection(conn).lock()

    def freeze(self) -> None:
        assert self.daemon is not None
        os.kill(self.daemon.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            os.kill(self.daemon.pid, signal.SIGCONT)

    def stop(self) -> None:
        self.thaw()
        for proc in (self.daemon, self.bus):
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.bus is not None and self.bus.stdout is not None:
            self.bus.stdout.close()
