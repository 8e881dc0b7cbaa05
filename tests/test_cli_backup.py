"""db backup (a file, or a folder kept N deep), restore from a backup, db check; on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import postgres_schema

NAME = re.compile(r"leads-\d{8}T\d{6}Z\.db")


def test_a_folder_backup_keeps_the_newest_n_and_deletes_nothing_else(
    cli: Any, seeded: list[Any], tmp_path: Path
) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    for old in ("leads-20200101T000000Z.db", "leads-20200102T000000Z.db"):
        (folder / old).write_bytes(b"old")
    precious = tmp_path / "precious.db"
    precious.write_bytes(b"keep me")
    decoys = {
        "leads-20190101T000000Z.db.txt": b"x",
        "notes.db": b"x",
        "leads-2019.db": b"x",
        "leads-20190101T000000Z.DB": b"x",
        "../leads-20190101T000000Z.db": b"outside",
    }
    for name, data in decoys.items():
        (folder / name).write_bytes(data)
    (folder / "leads-20180101T000000Z.db").symlink_to(precious)  # a link: never followed
    (folder / "leads-20170101T000000Z.db").mkdir()  # a folder with a backup's name

    result = cli("db", "backup", str(folder), "--keep", "2", "--json")
    assert result.code == 0, result.stderr
    made = Path(result.json()["path"])
    assert made.parent == folder and NAME.fullmatch(made.name)
    assert result.json()["pruned"] == [str(folder / "leads-20200101T000000Z.db")]
    left = {p.name for p in folder.iterdir()}
    assert left == {
        made.name,
        "leads-20200102T000000Z.db",
        "leads-20180101T000000Z.db",
        "leads-20170101T000000Z.db",
        *(n for n in decoys if "/" not in n),
    }
    assert precious.read_bytes() == b"keep me"
    assert (tmp_path / "leads-20190101T000000Z.db").read_bytes() == b"outside"
    assert made.stat().st_mode & 0o777 == 0o600
    human = cli("db", "backup", str(folder), "--keep", "1")
    if human.code == 1:  # the same second as the backup above: refused, never overwritten
        assert "exists" in human.stderr
    else:
        assert (
            human.stdout.startswith("Backed up to ") and "Deleted the older backup" in human.stdout
        )
        backups = [p for p in folder.iterdir() if p.is_file() and not p.is_symlink()]
        # The folder and the link named like backups are never pruned: they are not backups.
        assert sorted(p.name for p in backups if NAME.fullmatch(p.name)) == [
            Path(human.stdout.split()[3]).name
        ]


def test_a_path_ending_in_a_slash_is_a_folder_and_keep_needs_one(
    cli: Any, seeded: list[Any], tmp_path: Path
) -> None:
    made = cli("db", "backup", f"{tmp_path}/new-folder/", "--json")
    assert made.code == 0 and NAME.fullmatch(Path(made.json()["path"]).name)
    (tmp_path / "file.db").write_bytes(b"x")
    clash = cli("db", "backup", str(tmp_path / "file.db"), "--keep", "3")
    assert clash.code == 1 and "is a file" in clash.stderr
    assert cli("db", "backup", str(tmp_path), "--keep", "0").code == 2
    assert cli("db", "backup", " ").code == 2


def test_a_backup_opened_as_the_database_serves_the_same_leads_and_resumes(
    cli: Any, seeded: list[Any], tmp_path: Path
) -> None:
    backup = tmp_path / "restore" / "copy.db"
    assert cli("db", "backup", str(backup)).code == 0
    restored = f"sqlite:///{backup}"
    assert cli("--db", restored, "list", "--json").json() == cli("list", "--json").json()
    assert cli("--db", restored, "db", "check").code == 0
    for lead in seeded:
        assert cli("--db", restored, "show", str(lead.id), "--json").json() == (
            cli("show", str(lead.id), "--json").json()
        )
        ours, theirs = tmp_path / f"a{lead.id}.pdf", tmp_path / f"b{lead.id}.pdf"
        assert cli("open", str(lead.id), "--save", str(ours)).code == 0
        assert cli("--db", restored, "open", str(lead.id), "--save", str(theirs)).code == 0
        assert ours.read_bytes() == theirs.read_bytes() and len(ours.read_bytes()) > 1000
    # and it is a working database, not a read-only relic
    assert cli("--db", restored, "reach-out", str(seeded[0].id)).code == 0
    assert cli("--db", restored, "list", "--state", "pending", "--json").json() != (
        cli("list", "--state", "pending", "--json").json()
    )


def test_db_check_finds_a_damaged_file_and_a_missing_one(
    cli: Any, seeded: list[Any], tmp_path: Path
) -> None:
    ok = cli("db", "check", "--json")
    assert ok.code == 0 and ok.json()["ok"] is True
    assert ok.json()["database"] == str(tmp_path / "leads.db")
    damaged = tmp_path / "damaged.db"
    shutil.copy(tmp_path / "leads.db", damaged)
    with sqlite3.connect(damaged) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'lead'").fetchone()[0]
    with damaged.open("r+b") as handle:  # scribble over the lead table's first page
        handle.seek((root - 1) * page + 8)
        handle.write(b"\xff" * 64)
    bad = cli("--db", f"sqlite:///{damaged}", "db", "check")
    assert bad.code == 1 and str(damaged) in bad.stdout and "Traceback" not in bad.stderr
    missing = cli("--db", f"sqlite:///{tmp_path}/nothing.db", "db", "check")
    assert missing.code == 1 and f"{tmp_path}/nothing.db does not exist" in missing.stderr
    assert not (tmp_path / "nothing.db").exists()


@pytest.mark.postgres
def test_postgres_check_and_pg_dump(cli: Any, tmp_path: Path) -> None:
    with postgres_schema() as url:
        empty = cli("--db", url, "db", "check")
        assert empty.code == 1 and "db upgrade" in empty.stdout
        assert cli("--db", url, "db", "upgrade").code == 0
        assert cli("--db", url, "db", "check", "--json").json()["ok"] is True
        added = cli("--db", url, "attorney", "add", "Ann Lee", "ann@firm.example")
        assert added.code == 0, added.stderr

        done = cli("--db", url, "db", "backup", str(tmp_path / "pg"), "--keep", "1", "--json")
        assert done.code == 0, done.stderr
        dump = Path(done.json()["path"])
        assert dump.name.endswith("Z.dump") and dump.stat().st_mode & 0o777 == 0o600
        listing = subprocess.run(
            ["pg_restore", "--list", str(dump)], capture_output=True, text=True, check=True
        ).stdout
        assert re.search(r"TABLE DATA \S+ attorney", listing)
        assert "TABLE DATA public" not in listing  # only leadctl's schema, named in the URL

        secret_url = url.replace("postgres@", "postgres:s3cret@")
        nowhere = {"PATH": str(tmp_path / "empty-bin")}
        missing = cli("--db", secret_url, "db", "backup", str(tmp_path / "pg2"), env=nowhere)
        assert missing.code == 1 and "pg_dump is not installed" in missing.stderr
        command = missing.stdout.strip()
        assert command.startswith("(umask 077 && pg_dump --format=custom")
        assert "--schema=t_" in command and "PGPASSWORD" in command
        assert "s3cret" not in missing.stdout + missing.stderr
        assert not (tmp_path / "pg2").exists() or not any((tmp_path / "pg2").iterdir())


def test_pg_dump_failure_is_one_line_and_leaves_no_file(cli: Any, tmp_path: Path) -> None:
    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    url = "postgresql://nobody@127.0.0.1:1/none"  # nothing listens on port 1
    result = cli(
        "--db", url, "db", "backup", str(tmp_path / "out"), env={"PATH": os.environ["PATH"]}
    )
    assert result.code == 1 and result.stderr.startswith("leadctl: error: pg_dump failed")
    assert result.stderr.count("\n") == 1 and not (tmp_path / "out").exists()
