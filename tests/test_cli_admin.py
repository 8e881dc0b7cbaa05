"""leadctl admin commands: attorneys, tokens, outbox, mail, database."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from tests.conftest import SmtpSink, free_port


def test_attorney_add_prints_the_token_once_and_stores_only_its_hash(
    cli: Any, tmp_path: Path
) -> None:
    added = cli("attorney", "add", "Ann Lee", "Ann@Firm.example", "--admin", "--json")
    assert added.code == 0, added.stderr
    data = added.json()
    assert (
        data["email"] == "ann@firm.example" and data["role"] == "admin" and data["active"] is True
    )
    token = data["token"]
    assert token.startswith("lct_") and len(token) >= 4 + 43
    with sqlite3.connect(tmp_path / "leads.db") as conn:
        dump = "\n".join(conn.iterdump())
    assert token not in dump
    listed = cli("attorney", "list", "--json").json()
    assert listed == [{k: v for k, v in data.items() if k not in {"token", "token_id"}}]
    assert "token" not in cli("attorney", "list").stdout


def test_attorney_add_plain_prints_just_the_token(cli: Any) -> None:
    result = cli("attorney", "add", "Bob Roe", "bob@firm.example")
    assert result.stdout.startswith("lct_") and result.stdout.count("\n") == 1
    assert "shown only now" in result.stderr


def test_attorney_add_refuses_duplicates_and_bad_input(cli: Any) -> None:
    cli("attorney", "add", "Bob Roe", "bob@firm.example")
    dup = cli("attorney", "add", "Bob Two", "BOB@firm.example")
    assert dup.code == 1 and "exists already" in dup.stderr
    bad = cli("attorney", "add", "Bob", "not-an-email")
    assert bad.code == 1 and "email is not valid" in bad.stderr


def test_deactivate_needs_yes_off_a_terminal(cli: Any) -> None:
    cli("attorney", "add", "Bob Roe", "bob@firm.example")
    refused = cli("attorney", "deactivate", "bob@firm.example")
    assert refused.code == 2 and "--yes" in refused.stderr
    done = cli("attorney", "deactivate", "bob@firm.example", "--yes", "--json")
    assert done.json()["active"] is False and done.json()["changed"] is True
    again = cli("attorney", "deactivate", "bob@firm.example", "--yes")
    assert again.stdout == "bob@firm.example is already inactive\n"
    asked = cli("attorney", "deactivate", "nobody@firm.example", tty=True, input="y\n")
    assert asked.code == 1 and "no attorney nobody@firm.example" in asked.stderr


def test_tokens_create_list_revoke(cli: Any) -> None:
    cli("attorney", "add", "Bob Roe", "bob@firm.example")
    created = cli("token", "create", "bob@firm.example", "--name", "laptop", "--json").json()
    assert created["token"].startswith("lct_") and created["name"] == "laptop"
    listed = cli("token", "list", "--json").json()
    assert [t["name"] for t in listed] == ["initial", "laptop"]
    assert all("token" not in t for t in listed)
    assert created["token"] not in cli("token", "list").stdout
    revoked = cli("token", "revoke", str(created["id"]), "--yes", "--json").json()
    assert revoked["revoked_at"] and revoked["changed"] is True
    assert cli("token", "revoke", "999", "--yes").code == 1


def test_outbox_list_send_and_retry(cli: Any, seeded: list[Any], tmp_path: Path) -> None:
    pending = cli("outbox", "--json", "--status", "pending").json()
    assert len(pending) == 6 and {m["purpose"] for m in pending} == {"confirmation", "notification"}
    sent = cli("outbox", "send", "--json")
    assert sent.code == 0 and sent.json()["sent"] == 6
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 6
    assert cli("outbox", "--json", "--status", "sent").json()[0]["sent_at"]
    assert cli("outbox", "--status", "weird").code == 2
    assert cli("outbox", "retry").code == 2
    requeued = cli("outbox", "retry", str(pending[0]["id"]), "--json")
    assert requeued.code == 1 and requeued.json()["requeued"] == 0  # never sent again
    assert cli("outbox", "retry", "9999").code == 1


def test_outbox_send_reports_failures_and_dead_messages_can_be_retried(
    cli: Any, seeded: list[Any]
) -> None:
    env = {
        "LEADS_MAIL_BACKEND": "smtp",
        "LEADS_SMTP_HOST": "127.0.0.1",
        "LEADS_SMTP_PORT": str(free_port()),
        "LEADS_SMTP_STARTTLS": "false",
        "LEADS_MAIL_MAX_ATTEMPTS": "1",
    }
    failed = cli("outbox", "send", "--json", env=env)
    assert failed.code == 1 and failed.json()["dead"] == 6
    dead = cli("outbox", "--status", "dead", "--json").json()
    assert len(dead) == 6 and "Connection refused" in dead[0]["last_error"]
    assert cli("outbox", "retry", "--dead", "--json").json() == {"requeued": 6}
    assert cli("outbox", "send", "--json").json()["sent"] == 6


def test_mail_test_says_plainly_whether_it_worked(cli: Any, smtp_sink: SmtpSink) -> None:
    env = {
        "LEADS_MAIL_BACKEND": "smtp",
        "LEADS_SMTP_HOST": "127.0.0.1",
        "LEADS_SMTP_PORT": str(smtp_sink.port),
        "LEADS_SMTP_STARTTLS": "false",
    }
    ok = cli("mail", "test", "it@firm.example", env=env)
    assert ok.code == 0 and "Test message sent to it@firm.example via smtp" in ok.stdout
    assert smtp_sink.wait_for(1)[0][0] == ["it@firm.example"]
    down = cli("mail", "test", "it@firm.example", env={**env, "LEADS_SMTP_PORT": str(free_port())})
    assert down.code == 1 and "was NOT sent" in down.stderr
    assert cli("mail", "test", "not-an-address").code == 2


def test_mail_setup_stores_the_password_in_the_keyring(cli: Any, memory_keyring: Any) -> None:
    env = {"LEADS_SMTP_USER": "mailer", "LEADS_SMTP_HOST": "smtp.firm.example"}
    result = cli("mail", "setup", input="hunter2-secret\n", env=env)
    assert result.code == 0, result.stderr
    assert memory_keyring.store == {
        ("leadctl", "smtp://mailer@smtp.firm.example"): "hunter2-secret"
    }
    assert "hunter2" not in result.stdout + result.stderr


def test_mail_setup_without_a_keyring_names_the_variable(cli: Any, no_keyring: None) -> None:
    env = {"LEADS_SMTP_USER": "mailer"}
    result = cli("mail", "setup", input="pw\n", env=env)
    assert result.code == 1 and "LEADS_SMTP_PASSWORD" in result.stderr


def test_db_backup_is_consistent_and_never_overwrites(
    cli: Any, seeded: list[Any], tmp_path: Path
) -> None:
    target = tmp_path / "backup.db"
    result = cli("db", "backup", str(target), "--json")
    assert result.code == 0 and result.json()["integrity"] == "ok"
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT COUNT(*) FROM lead").fetchone()[0] == 3
        assert conn.execute("SELECT COUNT(*) FROM resume").fetchone()[0] == 3
    again = cli("db", "backup", str(target))
    assert again.code == 1 and "exists" in again.stderr


def test_db_upgrade_on_a_current_database(cli: Any, seeded: list[Any]) -> None:
    result = cli("db", "upgrade", "--json")
    from leadctl.schema import SCHEMA_VERSION

    assert result.json() == {
        "from_version": SCHEMA_VERSION,
        "to_version": SCHEMA_VERSION,
        "changed": False,
    }
