"""CLI paper cuts a newcomer found: `outbox retry` of a message it will not send, `history --all
--limit`, an empty `-` on standard input, usage errors, list commands' formats. (Logout with no
keyring in reach: tests/test_cli_session.py and tests/test_keyring_real.py.)"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import free_port

NOTHING_READ = "no lead ids on standard input; nothing done\n"


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


def test_under_scope_own_the_outbox_is_an_admins(
    monkeypatch: pytest.MonkeyPatch, cli_env: dict[str, str], seeded: Any
) -> None:
    """It lists every lead's mail (recipients, subjects with references): a second outsider's
    look read another attorney's prospects there while their `show` was refused."""
    from tests.cli_harness import Cli

    own = Cli(monkeypatch, {**cli_env, "LEADS_ATTORNEY_SCOPE": "own"})
    refused = own("--as", "bob@firm.example", "outbox", "--json")
    assert (refused.code, refused.stdout) == (1, "")
    assert "leadctl outbox needs an admin" in refused.stderr
    assert own("--as", "ann@firm.example", "outbox", "--json").json()
    every_lead = Cli(monkeypatch, cli_env)  # without scope own, every attorney reads it all
    assert every_lead("--as", "bob@firm.example", "outbox", "--json").json()
