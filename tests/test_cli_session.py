"""Remote sessions: login keeps the token in the OS keyring, never in a file; clear failures."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leadctl.settings import Settings
from tests.conftest import free_port, serve_in_thread


@pytest.fixture
def server(cli_env: dict[str, str], seeded: Any) -> Iterator[str]:
    settings = Settings.from_env(
        {}, database_url=cli_env["LEADS_DATABASE_URL"], mail_dir=cli_env["LEADS_MAIL_DIR"]
    )
    with serve_in_thread(settings) as running:
        yield running.url


def test_login_checks_the_token_and_keeps_it_in_the_keyring(
    cli: Any, server: str, seeded: Any, memory_keyring: Any, tmp_path: Path
) -> None:
    token = seeded.tokens["bob@firm.example"]
    result = cli("login", "--server", server + "/", "--with-token", input=token + "\n")
    assert result.code == 0, result.stderr
    assert result.stdout == f"Logged in to {server} as bob@firm.example.\n"
    assert memory_keyring.store == {("leadctl", f"token:{server}"): token}
    config = (tmp_path / "config" / "leadctl" / "config.json").read_text()
    assert server in config and token not in config
    who = cli("whoami", env={"LEADCTL_ACTOR": ""})
    assert (
        who.stdout
        == f"Bob Roe <bob@firm.example> (attorney) on {server}, token from the keyring.\n"
    )
    listed = cli("list", "--json", "--mine")  # the saved login selects remote mode
    assert [i["attorney"] for i in listed.json()] == ["bob@firm.example"]
    assert cli("--db", f"sqlite:///{tmp_path}/leads.db", "whoami").stdout.startswith("Local mode")
    out = cli("logout")
    assert out.code == 0 and memory_keyring.store == {}
    assert cli("whoami").stdout.startswith("Local mode")


def test_a_prompted_token_is_read_hidden_on_a_real_terminal(
    server: str, seeded: Any, cli_env: dict[str, str], tmp_path: Path
) -> None:
    import os

    from tests.pty_harness import run_on_a_pty

    token = seeded.tokens["ann@firm.example"]
    root = Path(__file__).resolve().parent.parent
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LEADS_", "LEADCTL_"))},
        **cli_env,
        "PYTHON_KEYRING_BACKEND": "tests.keyrings.MemoryKeyring",
        "PYTHONPATH": str(root),
    }
    returncode, text = run_on_a_pty(
        ["login", "--server", server], env, answer=(b"API token", token.encode())
    )
    assert returncode == 0, text
    assert f"Logged in to {server} as ann@firm.example." in text
    assert token not in text  # typed on a terminal, never echoed


def test_a_bad_token_is_refused_with_exit_4_and_nothing_is_stored(
    cli: Any, server: str, memory_keyring: Any
) -> None:
    result = cli("login", "--server", server, "--with-token", input="lct_wrong\n")
    assert result.code == 4
    assert result.stderr.startswith("leadctl: error: ") and "lct_wrong" not in result.stderr
    assert memory_keyring.store == {}


def test_without_a_keyring_login_names_leadctl_token(
    cli: Any, server: str, seeded: Any, no_keyring: None
) -> None:
    import keyring
    from keyring.backends import fail

    keyring.set_keyring(fail.Keyring())
    result = cli(
        "login", "--server", server, "--with-token", input=seeded.tokens["ann@firm.example"] + "\n"
    )
    assert result.code == 1 and "LEADCTL_TOKEN" in result.stderr
    env = {"LEADCTL_SERVER": server, "LEADCTL_TOKEN": seeded.tokens["ann@firm.example"]}
    who = cli("whoami", env=env)
    assert who.code == 0 and "token from LEADCTL_TOKEN" in who.stdout
    none = cli("list", env={"LEADCTL_SERVER": server})
    assert none.code == 4 and "LEADCTL_TOKEN" in none.stderr


def test_a_plaintext_keyring_picked_silently_is_refused(cli: Any, server: str, seeded: Any) -> None:
    import keyring
    from keyring.backend import KeyringBackend

    class PlaintextKeyring(KeyringBackend):
        priority = 1  # type: ignore[assignment]

        def get_password(self, service: str, username: str) -> str | None:
            return None

        def set_password(self, service: str, username: str, password: str) -> None:
            raise AssertionError("must not store a token in plaintext")

        def delete_password(self, service: str, username: str) -> None:
            pass

    PlaintextKeyring.__module__ = "keyrings.alt.file"
    previous = keyring.get_keyring()
    keyring.set_keyring(PlaintextKeyring())
    try:
        result = cli(
            "login",
            "--server",
            server,
            "--with-token",
            input=seeded.tokens["ann@firm.example"] + "\n",
        )
    finally:
        keyring.set_keyring(previous)
    assert result.code == 1 and "plaintext" in result.stderr and "LEADCTL_TOKEN" in result.stderr


def test_an_unreachable_server_is_one_line_and_exit_1(cli: Any) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = cli("list", env={"LEADCTL_SERVER": url, "LEADCTL_TOKEN": "lct_x"})
    assert result.code == 1
    assert result.stderr == f"leadctl: error: cannot reach {url}: is the server running?\n"


def test_a_revoked_token_is_exit_4_with_the_next_step(cli: Any, server: str, seeded: Any) -> None:
    result = cli(
        "show", "1", env={"LEADCTL_SERVER": server, "LEADCTL_TOKEN": "lct_revoked-or-wrong"}
    )
    assert result.code == 4
    assert f"run: leadctl login --server {server}" in result.stderr


def test_as_is_refused_in_remote_mode(cli: Any, server: str, seeded: Any) -> None:
    env = {"LEADCTL_SERVER": server, "LEADCTL_TOKEN": seeded.tokens["ann@firm.example"]}
    result = cli("--as", "bob@firm.example", "list", env=env)
    assert result.code == 2 and "--as is for local mode" in result.stderr


def test_server_and_db_together_are_a_usage_error(cli: Any) -> None:
    assert cli("--db", "sqlite:///x.db", "--server", "http://127.0.0.1:1", "list").code == 2


def test_commands_on_the_database_itself_say_so_to_a_remote_user(cli: Any, tmp_path: Path) -> None:
    """`history`, `person`, `parties`, `purge`… read the database, never a server: given one,
    they say where they work instead of missing a local file or reading one silently."""
    url = "http://127.0.0.1:9"
    explicit = cli("--server", url, "history")
    assert (explicit.code, explicit.stdout) == (2, "")
    assert explicit.stderr == (
        "leadctl: error: leadctl history works on the database itself: run it where the "
        "database is, with --db URL or LEADS_DATABASE_URL instead of --server\n"
    )
    after = cli("person", "show", "zoe@example.com", "--server", url)
    assert after.code == 2 and "leadctl person show works on the database itself" in after.stderr
    missing = tmp_path / "nowhere.db"
    remote_user = cli(
        "parties",
        "list",
        env={"LEADCTL_SERVER": url, "LEADS_DATABASE_URL": f"sqlite:///{missing}"},
    )
    assert remote_user.code == 1 and remote_user.stderr.count("\n") == 1
    assert remote_user.stderr.startswith(
        f"leadctl: error: leadctl parties list works on the database itself, not through {url}: "
        "run it where the database is (no leadctl database: "
    )
    assert not missing.exists()


UNLOCK = "unlock it (log in to your desktop session, or open its passwords app)"


def test_a_locked_keyring_says_what_to_do_and_logout_keeps_the_login(
    cli: Any, server: str, seeded: Any, memory_keyring: Any, tmp_path: Path
) -> None:
    import keyring

    from tests.keyrings import LockedKeyring

    token = seeded.tokens["bob@firm.example"]
    assert cli("login", "--server", server, "--with-token", input=token + "\n").code == 0
    keyring.set_keyring(LockedKeyring())  # the memory_keyring fixture puts the old one back
    who = cli("whoami")
    assert who.code == 1
    assert who.stderr == (
        f"leadctl: error: no token for {server}: the OS keyring is locked; {UNLOCK}, "
        "or set LEADCTL_TOKEN\n"
    )
    out = cli("logout", "--json")
    assert out.code == 1
    assert out.json() == {"server": server, "removed": False, "reason": "the OS keyring is locked"}
    assert out.stderr.startswith(f"leadctl: error: still logged in to {server}: its token")
    config = tmp_path / "config" / "leadctl" / "config.json"
    assert server in config.read_text()  # kept: the token is still stored, so is the login
    keyring.set_keyring(memory_keyring)
    assert cli("logout").stdout == (
        f"Logged out of {server}; its token was removed from the OS keyring.\n"
    )
    assert cli("logout").stdout == "Not logged in.\n"


def test_a_keyring_that_never_answers_is_given_up_once_and_not_waited_for_again(
    cli: Any, server: str, seeded: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    import keyring

    from leadctl import secrets
    from tests.keyrings import StuckKeyring

    monkeypatch.setattr(secrets, "KEYRING_TIMEOUT_SECONDS", 0.2)
    stuck = StuckKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(stuck)
    env = {"LEADCTL_SERVER": server}
    try:
        first = cli("whoami", env=env)
        assert first.code == 1
        assert first.stderr == (
            f"leadctl: error: no token for {server}: the OS keyring did not answer within 0.2 s; "
            "check that it is running and unlocked, or set LEADCTL_TOKEN\n"
        )
        second = cli("whoami", env=env)  # fails at once, leaving no second thread behind
        assert second.code == 1
        # How long it has waited depends on how busy the machine is: only the form is promised.
        assert re.fullmatch(
            f"leadctl: error: no token for {re.escape(server)}: the OS keyring has not answered "
            r"for \d+ s; check that it is running and unlocked, or set LEADCTL_TOKEN\n",
            second.stderr,
        )
        (waiting,) = [t for t in threading.enumerate() if t.name == "keyring"]
        stuck.release.set()
        waiting.join(10)
        assert not waiting.is_alive(), "the released keyring call never ended"
        after = cli("whoami", env=env)  # answered again: nothing stored, so not logged in
        assert after.code == 4 and "not logged in" in after.stderr
    finally:
        stuck.release.set()
        keyring.set_keyring(previous)


def test_a_keyring_failure_never_shows_its_own_text(cli: Any, server: str, seeded: Any) -> None:
    import keyring

    from tests.keyrings import LeakyKeyring

    token = seeded.tokens["ann@firm.example"]
    previous = keyring.get_keyring()
    keyring.set_keyring(LeakyKeyring())
    try:
        who = cli("whoami", env={"LEADCTL_SERVER": server})
        login = cli("login", "--server", server, "--with-token", input=token + "\n")
        out = cli("--server", server, "logout")
    finally:
        keyring.set_keyring(previous)
    assert who.code == login.code == out.code == 1
    assert "the OS keyring failed (RuntimeError); check that it is running" in who.stderr
    assert "the OS keyring failed (KeyringError)" in login.stderr
    assert "the OS keyring failed (OSError)" in out.stderr
    for result in (who, login, out):
        text = result.stdout + result.stderr
        assert "lct_leaked" not in text and "\x1b" not in text and token not in text
        assert result.stderr.count("\n") == 1


def test_the_real_executable_exits_when_the_keyring_never_answers(
    server: str, cli_env: dict[str, str]
) -> None:
    import os
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parent.parent
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LEADS_", "LEADCTL_"))},
        **cli_env,
        "LEADCTL_SERVER": server,
        "PYTHON_KEYRING_BACKEND": "tests.keyrings.StuckKeyring",  # never released
        "PYTHONPATH": str(root),
    }
    started = time.monotonic()
    # A thread the interpreter joined at exit kept this waiting for ever; 15 s proves it exits.
    result = subprocess.run(
        [str(Path(sys.executable).parent / "leadctl"), "whoami"],
        env=env,
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        f"leadctl: error: no token for {server}: the OS keyring did not answer within 5 s; "
        "check that it is running and unlocked, or set LEADCTL_TOKEN\n"
    )
    assert time.monotonic() - started < 15


# -- logout where no keyring answers -------------------------------------------------------------


def test_logout_with_no_keyring_in_reach_keeps_the_login_until_told_to_forget_it(
    cli: Any, server: str, seeded: Any, memory_keyring: Any, tmp_path: Path
) -> None:
    import keyring

    from tests.keyrings import NoKeyring

    token = seeded.tokens["bob@firm.example"]
    assert cli("login", "--server", server, "--with-token", input=token + "\n").code == 0
    config = tmp_path / "config" / "leadctl" / "config.json"
    keyring.set_keyring(NoKeyring())  # as in a shell with no D-Bus session; fixture restores

    kept = cli("logout")
    assert (kept.code, kept.stdout) == (1, "")
    assert kept.stderr == (
        f"leadctl: error: still logged in to {server}: its token, if one was stored, cannot be "
        "reached from here: no OS keyring backend is available; run leadctl logout again where "
        "that keyring works (e.g. in your desktop session), or leadctl logout --forget to "
        "forget the server and leave any token where it is\n"
    )
    assert server in config.read_text()
    as_json = cli("logout", "--json")
    assert as_json.code == 1
    reason = "no OS keyring backend is available"
    assert as_json.json() == {"server": server, "removed": False, "reason": reason}

    forgot = cli("logout", "--forget")
    assert forgot.code == 0, forgot.stderr
    assert forgot.stdout == (
        f"Logged out of {server}; its token, if one was stored, was not removed ({reason}) and "
        "may remain in the OS keyring.\n"
    )
    assert server not in config.read_text()
    assert memory_keyring.store == {("leadctl", f"token:{server}"): token}  # said: left there
    assert cli("logout").stdout == "Not logged in.\n"


def test_forget_with_a_working_keyring_is_a_plain_logout(
    cli: Any, server: str, seeded: Any, memory_keyring: Any
) -> None:
    token = seeded.tokens["bob@firm.example"]
    assert cli("login", "--server", server, "--with-token", input=token + "\n").code == 0
    out = cli("logout", "--forget", "--json")
    assert out.code == 0 and out.json() == {"server": server, "removed": True}
    assert memory_keyring.store == {}
