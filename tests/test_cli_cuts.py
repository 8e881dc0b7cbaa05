"""CLI paper cuts a newcomer found: logout with no keyring in reach, `outbox retry` of a message
it will not send, `history --all --limit`, and an empty `-` on standard input."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leadctl.settings import Settings
from tests.conftest import BIN, IN_CI, free_port, make_settings, serve_in_thread
from tests.keyrings import SecretServiceDaemon, secret_service_missing
from tests.test_keyring_real import NEVER_HANG_SECONDS, Leadctl

NOTHING_READ = "no lead ids on standard input; nothing done\n"


@pytest.fixture
def server(cli_env: dict[str, str], seeded: Any) -> Iterator[str]:
    settings = Settings.from_env(
        {}, database_url=cli_env["LEADS_DATABASE_URL"], mail_dir=cli_env["LEADS_MAIL_DIR"]
    )
    with serve_in_thread(settings) as running:
        yield running.url


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


@pytest.fixture
def secret_service(tmp_path: Path) -> Iterator[SecretServiceDaemon]:
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
        daemon.stop()


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


# -- outbox retry says what it did not retry ----------------------------------------------------


def test_outbox_retry_names_each_message_it_did_not_retry_and_why(
    cli: Any, seeded: list[Any]
) -> None:
    smtp_down = {
        "LEADS_MAIL_BACKEND": "smtp",
        "LEADS_SMTP_HOST": "127.0.0.1",
        "LEADS_SMTP_PORT": str(free_port()),
        "LEADS_SMTP_STARTTLS": "false",
        "LEADS_MAIL_MAX_ATTEMPTS": "1",
    }
    assert cli("outbox", "send", env=smtp_down).code == 1
    dead = sorted(m["id"] for m in cli("outbox", "--status", "dead", "--json").json())
    assert len(dead) == 6
    sent_id, dead_id = dead[0], dead[1]
    assert cli("outbox", "retry", str(sent_id)).stdout == "1 message(s) will be sent again\n"
    assert cli("outbox", "send", "--json").json()["sent"] == 1

    alone = cli("outbox", "retry", str(sent_id))
    assert alone.code == 1
    assert alone.stdout == "0 message(s) will be sent again\n"
    assert alone.stderr == (
        f"leadctl: error: outbox message {sent_id} was sent already; it is never sent twice\n"
    )

    mixed = cli("outbox", "retry", str(sent_id), str(dead_id), "9999", "--json")
    assert mixed.code == 1
    assert mixed.json() == {
        "requeued": 1,
        "failed": [
            {
                "id": sent_id,
                "error": f"outbox message {sent_id} was sent already; it is never sent twice",
            },
            {"id": 9999, "error": "no outbox message with id 9999"},
        ],
    }
    assert mixed.stderr.count("\n") == 2  # one line each, as a batch command says its failures
    statuses = {m["id"]: m["status"] for m in cli("outbox", "--json").json()}
    assert (statuses[sent_id], statuses[dead_id]) == ("sent", "pending")


# -- history: --limit N or --all -----------------------------------------------------------------


def test_history_takes_limit_or_all_not_both(cli: Any, seeded: list[Any]) -> None:
    both = cli("history", "--all", "--limit", "3")
    assert (both.code, both.stdout) == (2, "")
    assert both.stderr == "leadctl: error: choose one of --limit N and --all\n"
    assert len(cli("history", "--limit", "3", "--json").json()) == 3
    everything = cli("history", "--all", "--json").json()
    assert len(everything) > 3
    assert len(cli("history", "--json").json()) == min(50, len(everything))


# -- an empty `-` ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [("reach-out", "-"), ("reopen", "-"), ("assign", "-", "bob@firm.example")],
    ids=["reach-out", "reopen", "assign"],
)
def test_empty_standard_input_says_nothing_was_done(
    lead_cli: Any, seeded: list[Any], args: tuple[str, ...]
) -> None:
    plain = lead_cli(*args, input="")
    assert (plain.code, plain.stdout, plain.stderr) == (0, "", NOTHING_READ)
    comments = lead_cli(*args, input="# nothing matched\n\n")
    assert (comments.code, comments.stderr) == (0, NOTHING_READ)
    as_json = lead_cli(*args, "--json", input="")
    assert (as_json.code, as_json.stderr) == (0, "")
    assert as_json.json() == {"changed": [], "unchanged": [], "failed": []}


def test_erase_of_an_empty_standard_input_says_so_too(cli: Any, seeded: list[Any]) -> None:
    args = ("--as", "ann@firm.example", "erase", "-", "--reason", "asked", "--yes")
    plain = cli(*args, input="")
    assert plain.code == 0 and plain.stderr == NOTHING_READ
    as_json = cli(*args, "--json", input="")
    assert as_json.code == 0 and as_json.stderr == ""
    assert json.loads(as_json.stdout)["changed"] == []


# -- a usage error is one line ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("list", "--bogus"), "no such option: --bogus (see: leadctl list -h)"),
        (("show",), "missing argument 'lead' (see: leadctl show -h)"),
        (("nosuch",), "no such command 'nosuch' (see: leadctl -h)"),
        (("list", "--\x1b[31mx"), "no such option: --\\x1b[31mx (see: leadctl list -h)"),
    ],
)
def test_a_usage_error_is_one_line_naming_where_help_is(
    cli: Any, args: tuple[str, ...], line: str
) -> None:
    """The parser's three lines (Usage, Try, Error) were the only error not written as every
    other: `leadctl: error: …`, one line, exit 2, what was typed shown escaped."""
    out = cli(*args)
    assert (out.code, out.stdout, out.stderr) == (2, "", f"leadctl: error: {line}\n")


def test_a_group_given_nothing_to_do_still_shows_its_help(cli: Any) -> None:
    out = cli("attorney")
    assert out.code == 2 and "Usage: leadctl attorney" in out.stdout + out.stderr


# -- every list command takes the three machine formats ------------------------------------------


@pytest.mark.parametrize(
    "command", [("attorney", "list"), ("token", "list"), ("outbox",), ("history",)]
)
def test_every_list_command_takes_csv_and_ndjson(
    cli: Any, seeded: Any, command: tuple[str, ...]
) -> None:
    """The README says list commands take --json, --csv or --ndjson; these four took --json
    only (history --ndjson too)."""
    as_admin = ("--as", "ann@firm.example")
    rows = cli(*as_admin, *command, "--json").json()
    assert rows, "the seeded firm has some of each"
    as_csv = cli(*as_admin, *command, "--csv")
    assert as_csv.code == 0, as_csv.stderr
    header, *lines = as_csv.stdout.splitlines()
    assert header.split(",")[0] == "id" and len(lines) == len(rows)
    as_ndjson = cli(*as_admin, *command, "--ndjson")
    assert [json.loads(line)["id"] for line in as_ndjson.stdout.splitlines()] == [
        row["id"] for row in rows
    ]
