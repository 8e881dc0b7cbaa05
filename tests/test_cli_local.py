"""leadctl behaviour that exists only in local mode: the database, the actor, the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port


def test_mine_needs_an_email_identity(cli: Any, seeded: list[Any]) -> None:
    result = cli("list", "--mine", env={"LEADCTL_ACTOR": "ann"})
    assert result.code == 2 and "--as EMAIL" in result.stderr


def test_global_options_work_after_the_command_too(
    cli: Any, seeded: list[Any], tmp_path: Path
) -> None:
    lead = str(seeded[1].id)  # bob's
    refused = cli("reach-out", lead, "--as", "x@firm.example")  # not an attorney
    assert refused.code == 1 and "x@firm.example is not an attorney" in refused.stderr
    done = cli("reach-out", lead, "--note", "--as", "--as", "bob@firm.example", "--json")
    assert done.code == 0, done.stderr  # the note is "--as"; the option after it is global
    changed = done.json()["changed"][0]
    assert changed["reached_out_by"] == "bob@firm.example"
    other = tmp_path / "other.db"
    moved = cli("attorney", "add", "Cy Poe", "cy@firm.example", "--db", f"sqlite:///{other}")
    assert moved.code == 0 and other.exists()
    env_file = tmp_path / "settings.env"
    env_file.write_text("LEADS_ATTORNEY_SCOPE=own\n")
    scoped = cli("list", "--json", "--env-file", str(env_file), "--as=bob@firm.example")
    assert [i["attorney"] for i in scoped.json()] == ["bob@firm.example"]
    assert cli("list", "--db").code == 2  # a global option without its value: a usage error
    assert cli("list", "--", "--db").code == 2  # after --, nothing is an option


def test_database_problems_are_one_line(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "a-folder").mkdir()
    result = cli("list", env={"LEADS_DATABASE_URL": f"sqlite:///{tmp_path}/a-folder"})
    assert result.code == 1
    assert result.stderr.startswith("leadctl: error: the database cannot be used")
    assert "Traceback" not in result.stderr
    bad = cli("list", env={"LEADS_DATABASE_URL": "mysql://x"})
    assert bad.code == 1 and "sqlite:///" in bad.stderr
    # psycopg's message spans two indented lines: they read as one, not as escaped \n\t.
    closed = f"postgresql://nobody@127.0.0.1:{free_port()}/test"
    refused = cli("list", env={"LEADS_DATABASE_URL": closed})
    assert refused.code == 1 and refused.stderr.count("\n") == 1
    assert "Connection refused Is the server running" in refused.stderr
    assert "\\n" not in refused.stderr and "\\t" not in refused.stderr


def test_environment_errors_are_usage_errors(cli: Any) -> None:
    result = cli("list", env={"LEADS_MAX_RESUME_MB": "lots"})
    assert result.code == 2 and "LEADS_MAX_RESUME_MB must be a number" in result.stderr


READ_COMMANDS = [
    ("list",),
    ("list", "--quarantined"),
    ("show", "1"),
    ("stats",),
    ("export", "--format", "csv"),
    ("attorney", "list"),
    ("token", "list"),
    ("outbox",),
    ("whoami",),
    ("db", "upgrade"),
]


@pytest.mark.parametrize("args", READ_COMMANDS, ids=" ".join)
@pytest.mark.parametrize("tty", [False, True], ids=["piped", "terminal"])
def test_every_read_command_works_piped_and_on_a_terminal(
    cli: Any, seeded: list[Any], args: tuple[str, ...], tty: bool
) -> None:
    result = cli(*args, tty=tty)
    assert result.code == 0, result.stderr
    assert result.stdout.strip() or args == ("list", "--quarantined")
    if not tty:
        assert "\x1b[" not in result.stdout + result.stderr  # piped: no colour, no cursor codes
    elif args[0] in {"list", "attorney", "token", "outbox"} and result.stdout.strip():
        assert "\x1b[" in result.stdout  # a coloured table on a terminal
    if args[0] == "export" and tty:
        assert "Exporting" in result.stderr  # the progress bar, on stderr only
    assert "Traceback" not in result.stderr
    json_result = cli(*args, "--json", tty=tty) if args[0] != "export" else None
    if json_result is not None:
        assert json_result.code == 0
        json_result.json()  # always parseable, terminal or not


def test_serve_refuses_bad_settings_in_one_line(cli: Any) -> None:
    result = cli("serve", env={"LEADS_RATE_LIMIT": "lots"})
    assert result.code == 2 and result.stderr.startswith("leadctl: error: LEADS_RATE_LIMIT")
    result = cli("serve", env={"LEADS_TRUSTED_PROXIES": "my-proxy"})
    assert result.code == 2 and "LEADS_TRUSTED_PROXIES" in result.stderr
