"""The CLI's contract: never a silent empty database, one confirmation rule, one error mapping."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadctl import errors
from leadctl.cli.remote import RemoteBackend
from tests import samples
from tests.conftest import make_settings, postgres_schema, serve_in_thread

# Every command that only reads, or changes what must already exist: none may make a database.
NEVER_CREATE = [
    ("list",),
    ("show", "1"),
    ("open", "1", "--print-path"),
    ("stats",),
    ("export",),
    ("outbox",),
    ("outbox", "send"),
    ("outbox", "retry", "--dead"),
    ("whoami",),
    ("attorney", "list"),
    ("attorney", "deactivate", "a@firm.example", "--yes"),
    ("token", "list"),
    ("token", "create", "a@firm.example"),
    ("token", "revoke", "1", "--yes"),
    ("release", "1"),
    ("purge-quarantine", "--yes"),
    ("reach-out", "1"),
    ("reopen", "1"),
    ("note", "1", "called"),
    ("assign", "1", "a@firm.example"),
    ("db", "check"),
    ("db", "backup", "backups/"),
]


@pytest.mark.parametrize("args", NEVER_CREATE, ids=" ".join)
def test_no_command_but_the_creators_makes_a_database(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("--db", "sqlite:///relative/leads.db", *args)
    assert result.code == 1, result.stderr
    # the absolute path, and how to point elsewhere, in one line
    assert result.stderr.startswith(f"leadctl: error: no leadctl database: {tmp_path}/relative/")
    assert "--db URL or LEADS_DATABASE_URL" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "relative" / "leads.db").exists()


@pytest.mark.parametrize(
    "args", [("attorney", "add", "Ann Lee", "ann@firm.example"), ("db", "upgrade")], ids=" ".join
)
def test_attorney_add_and_db_upgrade_create_it(
    cli: Any, tmp_path: Path, args: tuple[str, ...]
) -> None:
    path = tmp_path / "fresh.db"
    result = cli("--db", f"sqlite:///{path}", *args)
    assert result.code == 0, result.stderr
    assert path.stat().st_mode & 0o777 == 0o600
    who = cli("--db", f"sqlite:///{path}", "whoami", "--json")
    assert who.json()["database"] == str(path)


def test_an_empty_file_is_no_database_either(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "empty.db").write_bytes(b"")
    result = cli("--db", f"sqlite:///{tmp_path}/empty.db", "list")
    assert result.code == 1 and "empty.db holds no leadctl tables" in result.stderr
    with sqlite3.connect(tmp_path / "empty.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0


@pytest.mark.postgres
def test_an_empty_postgres_schema_is_left_empty(cli: Any) -> None:
    with postgres_schema() as url:
        result = cli("--db", url.replace("postgres@", "postgres:pw-secret@"), "stats")
        assert result.code == 1 and "holds no leadctl tables" in result.stderr
        assert "pw-secret" not in result.stderr and "postgres:***@" in result.stderr
        assert cli("--db", url, "db", "check").code == 1  # still nothing there


# -- confirmation --------------------------------------------------------------------------


def test_destructive_changes_need_yes_off_a_terminal_and_ask_on_one(
    cli: Any, seeded: list[Any]
) -> None:
    for args in (
        ("attorney", "deactivate", "bob@firm.example"),
        ("token", "revoke", "1"),
        ("purge-quarantine",),
    ):
        refused = cli(*args)
        assert refused.code == 2 and "--yes" in refused.stderr, args
        declined = cli(*args, tty=True, input="n\n")
        assert declined.code == 1 and "cancelled" in declined.stderr, args
    assert cli("attorney", "list", "--json").json()[1]["active"] is True
    assert cli("purge-quarantine", "--dry-run").code == 0  # nothing to confirm


def test_a_batch_asks_a_person_and_goes_ahead_in_a_pipe(cli: Any, seeded: list[Any]) -> None:
    ids = [str(lead.id) for lead in seeded]
    declined = cli("reach-out", *ids, tty=True, input="n\n")
    assert declined.code == 1 and "Reach out to 3 leads?" in declined.stderr
    assert {r["state"] for r in cli("list", "--json").json()} == {"PENDING"}
    piped = cli("reach-out", "-", input="\n".join(ids) + "\n")
    assert piped.code == 0 and piped.stdout.count("is now REACHED_OUT") == 3


# -- one mapping between HTTP answers and core errors ----------------------------------------


@pytest.mark.parametrize("kind", list(errors.KINDS.values()), ids=lambda k: k.code)
def test_every_error_kind_survives_the_trip_through_http(kind: type[errors.LeadctlError]) -> None:
    back = errors.from_answer(kind.http_status, kind.code, [("field", "what is wrong")])
    assert type(back) is kind and "what is wrong" in str(back)


def test_an_answer_without_a_code_is_read_by_its_status() -> None:
    assert type(errors.from_answer(409, None, [(None, "x")])) is errors.InvalidTransition
    assert type(errors.from_answer(404, "made-up", [])) is errors.NotFound
    assert type(errors.from_answer(418, None, [])) is errors.LeadctlError


def test_a_conflict_stays_a_conflict_through_the_real_server(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with serve_in_thread(settings) as server:
        key = {"Idempotency-Key": "same-key-twice"}

        def post(email: str) -> httpx.Response:
            files = {"resume": ("cv.pdf", samples.pdf(2000), "application/pdf")}
            data = {"first_name": "Li", "last_name": "Lei", "email": email, "consent": "true"}
            return httpx.post(
                f"{server.url}/api/v1/leads", data=data, files=files, headers=key, timeout=10
            )

        assert post("li@example.com").status_code == 201
        answer = post("other@example.com")
        assert answer.status_code == 409 and answer.json()["code"] == "conflict"
        remote = RemoteBackend(server.url, "no-token-needed-here")
        try:
            with pytest.raises(errors.Conflict, match="Idempotency-Key"):
                raise remote._error(answer.status_code, answer)
            with pytest.raises(errors.AuthError, match="leadctl login"):
                remote.show("1")
            with pytest.raises(errors.InvalidInput):
                raise remote._error(422, httpx.Response(422, json={"code": "invalid_input"}))
        finally:
            remote.close()


def test_a_missing_lead_remotely_is_not_found_with_its_code(lead_cli: Any, seeded: Any) -> None:
    result = lead_cli("show", "999999", "--json")
    assert result.code == 1 and "999999" in result.stderr
