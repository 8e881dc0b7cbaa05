"""The OS keyring end to end: the real `leadctl` and server against a real Secret Service
(gnome-keyring-daemon on a private D-Bus), unlocked, locked, and frozen by SIGSTOP."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    BIN,
    IN_CI,
    LiveServer,
    SmtpSink,
    free_port,
    make_settings,
    smtp_settings,
    submit,
)
from tests.keyrings import SecretServiceDaemon, secret_service_missing
from tests.pty_harness import run_on_a_pty

# A command must give up on a keyring that does not answer: 5 s, plus starting Python.
NEVER_HANG_SECONDS = 15
SMTP_USER = "mailer"
SMTP_PASSWORD = "S3cret pass;\"'$(touch x)`"  # AUTH PLAIN is ASCII; hostile all the same
UNLOCK = "unlock it (log in to your desktop session, or open its passwords app)"


@pytest.fixture
def secret_service(tmp_path: Path) -> Iterator[SecretServiceDaemon]:
    """A real, unlocked Secret Service of this test's own; skipped where it is not installed."""
    reason = secret_service_missing()
    if reason:
        if IN_CI:
            pytest.fail(f"{reason} — CI must run the real-keyring tests (.ci/run installs them)")
        pytest.skip(reason)
    daemon = SecretServiceDaemon(tmp_path / "keyring")
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()  # SIGCONT first: a frozen daemon would not hear SIGTERM


class Leadctl:
    """The real `leadctl` executable, in the daemon's session, on the test's database."""

    def __init__(self, tmp_path: Path, keyring: SecretServiceDaemon) -> None:
        dropped = ("LEADS_", "LEADCTL_", "DBUS_", "XDG_", "PYTHON_KEYRING")
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(dropped)},
            **keyring.env,
            "LEADS_DATABASE_URL": f"sqlite:///{tmp_path}/leads.db",
            "LEADS_MAIL_DIR": str(tmp_path / "mail"),
            "COLUMNS": "200",
        }
        self.config = Path(keyring.env["XDG_CONFIG_HOME"]) / "leadctl" / "config.json"

    def __call__(self, *args: str, input: str = "", **env: str) -> subprocess.CompletedProcess[str]:
        # The timeout makes a hang fail the test instead of stalling the suite.
        return subprocess.run(
            [str(BIN / "leadctl"), *args],
            input=input,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=NEVER_HANG_SECONDS,
            check=False,
        )

    def add_attorney(self, name: str, email: str) -> str:
        added = self("attorney", "add", name, email, "--admin")
        assert added.returncode == 0, added.stderr
        return added.stdout.strip()

    def saved(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.config.read_text())
        return loaded


def timed(
    leadctl: Leadctl, *args: str, **kw: Any
) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = leadctl(*args, **kw)
    return result, time.monotonic() - started


def test_login_whoami_list_logout_and_the_hidden_prompt_on_a_real_keyring(
    secret_service: SecretServiceDaemon, make_server: Any, tmp_path: Path
) -> None:
    leadctl = Leadctl(tmp_path, secret_service)
    token = leadctl.add_attorney("Ann Lee", "ann@firm.example")
    server: LiveServer = make_server(make_settings(tmp_path))
    url = server.url
    with httpx.Client(base_url=url) as client:
        assert submit(client, email="zoe@example.com").status_code == 201

    login = leadctl("login", "--server", url + "/", "--with-token", input=token + "\n")
    assert login.returncode == 0, login.stderr
    assert login.stdout == f"Logged in to {url} as ann@firm.example.\n"
    assert leadctl.saved() == {"server": url}  # the token is in the keyring, not the file
    assert secret_service.lookup(f"token:{url}") == token

    who = leadctl("whoami")
    assert who.stdout == f"Ann Lee <ann@firm.example> (admin) on {url}, token from the keyring.\n"
    listed = leadctl("list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [lead["email"] for lead in json.loads(listed.stdout)] == ["zoe@example.com"]

    out = leadctl("logout")
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"Logged out of {url}; its token was removed from the OS keyring.\n"
    assert secret_service.lookup(f"token:{url}") is None and leadctl.saved() == {}
    assert leadctl("whoami").stdout.startswith("Local mode")
    again = leadctl("--server", url, "logout", "--json")
    assert again.returncode == 0 and json.loads(again.stdout) == {"server": url, "removed": False}

    code, text = run_on_a_pty(
        ["login", "--server", url], leadctl.env, answer=(b"API token", token.encode())
    )
    assert code == 0, text
    assert f"Logged in to {url} as ann@firm.example." in text
    assert token not in text  # typed on a terminal, never echoed
    assert secret_service.lookup(f"token:{url}") == token
    assert "token from the keyring" in leadctl("whoami").stdout


def test_mail_setup_keeps_the_smtp_password_and_the_server_logs_in_with_it(
    secret_service: SecretServiceDaemon, make_server: Any, tmp_path: Path
) -> None:
    leadctl = Leadctl(tmp_path, secret_service)
    smtp = {"LEADS_SMTP_USER": SMTP_USER, "LEADS_SMTP_HOST": "127.0.0.1"}
    setup = leadctl("mail", "setup", input=SMTP_PASSWORD + "\n", **smtp)
    assert setup.returncode == 0, setup.stderr
    assert SMTP_PASSWORD not in setup.stdout + setup.stderr
    assert secret_service.lookup(f"smtp://{SMTP_USER}@127.0.0.1") == SMTP_PASSWORD

    sink = SmtpSink(free_port(), login=(SMTP_USER, SMTP_PASSWORD))
    sink.start()
    try:
        settings = smtp_settings(make_settings(tmp_path), sink.port).replace(smtp_user=SMTP_USER)
        assert settings.smtp_password == ""  # only the keyring can supply it
        server: LiveServer = make_server(settings, **secret_service.env)
        with httpx.Client(base_url=server.url) as client:
            assert submit(client).status_code == 201
        assert sink.wait_for(1), server.log.read_text()
    finally:
        sink.stop()
    assert SMTP_PASSWORD not in server.log.read_text()


def logged_in(
    tmp_path: Path, secret_service: SecretServiceDaemon, make_server: Any
) -> tuple[Leadctl, str, str]:
    """(leadctl, token, server URL): an attorney logged in to a real server, the token kept in
    the real keyring."""
    leadctl = Leadctl(tmp_path, secret_service)
    token = leadctl.add_attorney("Ann Lee", "ann@firm.example")
    url = make_server(make_settings(tmp_path)).url
    assert leadctl("login", "--server", url, "--with-token", input=token + "\n").returncode == 0
    return leadctl, token, url


def test_a_frozen_keyring_makes_commands_exit_with_one_line_not_hang(
    secret_service: SecretServiceDaemon, make_server: Any, tmp_path: Path
) -> None:
    leadctl, token, url = logged_in(tmp_path, secret_service, make_server)

    secret_service.freeze()
    try:
        who, seconds = timed(leadctl, "whoami")
        assert who.returncode == 1 and who.stdout == "", who.stderr
        assert who.stderr == (
            f"leadctl: error: no token for {url}: the OS keyring did not answer within 5 s; "
            "check that it is running and unlocked, or set LEADCTL_TOKEN\n"
        )
        assert seconds < NEVER_HANG_SECONDS  # measured 5.3-5.5 s; the bound only proves it exits

        out = leadctl("logout")
        assert out.returncode == 1 and out.stdout == ""
        assert out.stderr.startswith(f"leadctl: error: still logged in to {url}: its token")
        assert out.stderr.count("\n") == 1 and "leadctl logout again" in out.stderr
        assert leadctl.saved() == {"server": url}  # kept, so logout can be run again

        relogin = leadctl("login", "--server", url, "--with-token", input=token + "\n")
        assert relogin.returncode == 1 and relogin.stderr.count("\n") == 1
        assert "did not answer" in relogin.stderr and "LEADCTL_TOKEN" in relogin.stderr

        # Where no keyring is needed, nothing waits for it.
        fine = leadctl("whoami", LEADCTL_TOKEN=token)
        assert fine.returncode == 0 and "token from LEADCTL_TOKEN" in fine.stdout
    finally:
        secret_service.thaw()
    assert secret_service.lookup(f"token:{url}") == token  # logout said so: it is still there
    assert "token from the keyring" in leadctl("whoami").stdout


def test_the_server_waits_out_a_frozen_keyring_and_then_delivers(
    secret_service: SecretServiceDaemon, make_server: Any, tmp_path: Path
) -> None:
    leadctl = Leadctl(tmp_path, secret_service)
    smtp = {"LEADS_SMTP_USER": SMTP_USER, "LEADS_SMTP_HOST": "127.0.0.1"}
    assert leadctl("mail", "setup", input=SMTP_PASSWORD + "\n", **smtp).returncode == 0
    sink = SmtpSink(free_port(), login=(SMTP_USER, SMTP_PASSWORD))
    sink.start()
    secret_service.freeze()
    try:
        settings = smtp_settings(make_settings(tmp_path), sink.port).replace(smtp_user=SMTP_USER)
        server: LiveServer = make_server(settings, **secret_service.env)  # starts all the same
        with httpx.Client(base_url=server.url) as client:
            assert submit(client).status_code == 201  # the submission never waits for mail
        log = server.wait_log("did not answer within 5 s", timeout=NEVER_HANG_SECONDS)
        assert "did not answer within 5 s" in log and "set LEADS_SMTP_PASSWORD" in log
        secret_service.thaw()
        assert sink.wait_for(1, timeout=30), server.log.read_text()
    finally:
        secret_service.thaw()
        sink.stop()
    assert SMTP_PASSWORD not in server.log.read_text()


def test_a_locked_keyring_says_what_to_do_and_logout_keeps_the_login(
    secret_service: SecretServiceDaemon, make_server: Any, tmp_path: Path
) -> None:
    leadctl, token, url = logged_in(tmp_path, secret_service, make_server)
    secret_service.lock()

    who = leadctl("whoami")
    assert who.returncode == 1
    assert who.stderr == (
        f"leadctl: error: no token for {url}: the OS keyring is locked; {UNLOCK}, "
        "or set LEADCTL_TOKEN\n"
    )
    out = leadctl("logout")
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr == (
        f"leadctl: error: still logged in to {url}: its token could not be removed from the OS "
        f"keyring: the OS keyring is locked; {UNLOCK}, then run leadctl logout again\n"
    )
    as_json = leadctl("logout", "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout) == {
        "server": url,
        "removed": False,
        "reason": "the OS keyring is locked",
    }
    assert leadctl.saved() == {"server": url}

    relogin = leadctl("login", "--server", url, "--with-token", input=token + "\n")
    assert relogin.returncode == 1
    assert relogin.stderr == (
        f"leadctl: error: the token was not kept: the OS keyring is locked; {UNLOCK}, "
        "or set LEADCTL_SERVER and LEADCTL_TOKEN\n"
    )
    smtp = {
        "LEADS_SMTP_USER": SMTP_USER,
        "LEADS_SMTP_HOST": "127.0.0.1",
        "LEADS_MAIL_BACKEND": "smtp",
        "LEADS_SMTP_PORT": str(free_port()),
    }
    mail = leadctl("mail", "test", "ann@example.com", **smtp)
    assert mail.returncode == 1
    assert mail.stderr == (
        f"leadctl: error: no SMTP password for {SMTP_USER} at 127.0.0.1: the OS keyring is "
        f"locked; {UNLOCK}, or set LEADS_SMTP_PASSWORD\n"
    )
    setup = leadctl("mail", "setup", input="pw\n", **smtp)
    assert setup.returncode == 1
    assert setup.stderr == (
        f"leadctl: error: the SMTP password was not stored: the OS keyring is locked; {UNLOCK}, "
        "or set LEADS_SMTP_PASSWORD\n"
    )
    for result in (who, out, as_json, relogin, mail, setup):
        assert token not in result.stdout + result.stderr


# -- logout where the desktop session's keyring is out of reach -----------------------------------


def test_logout_from_a_shell_without_the_desktop_session_does_not_lose_the_token(
    secret_service: SecretServiceDaemon, make_server: Any, tmp_path: Path
) -> None:
    """Logged in inside a D-Bus session with gnome-keyring, then `logout` where there is none
    (SSH, cron): the token is still in the keyring, so the login that points to it stays."""
    leadctl = Leadctl(tmp_path, secret_service)
    token = leadctl.add_attorney("Ann Lee", "ann@firm.example")
    url = make_server(make_settings(tmp_path)).url
    assert leadctl("login", "--server", url, "--with-token", input=token + "\n").returncode == 0

    def without_dbus(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in leadctl.env.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
        return subprocess.run(
            [str(BIN / "leadctl"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=NEVER_HANG_SECONDS,
            check=False,
        )

    out = without_dbus("logout")
    assert out.returncode == 1 and out.stdout == "", out.stderr
    assert out.stderr.startswith(f"leadctl: error: still logged in to {url}: its token, if one")
    assert "leadctl logout --forget" in out.stderr and out.stderr.count("\n") == 1
    assert leadctl.saved() == {"server": url}
    assert secret_service.lookup(f"token:{url}") == token

    back = leadctl("logout")  # in the session again: the token goes, and the login with it
    assert back.returncode == 0, back.stderr
    assert back.stdout == f"Logged out of {url}; its token was removed from the OS keyring.\n"
    assert secret_service.lookup(f"token:{url}") is None and leadctl.saved() == {}
