"""Every file the project creates holds client data: 0600 files and 0700 folders, whatever the umask."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_settings, submit


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask, for this test (and the processes it starts) only."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.e2e
def test_the_server_creates_private_files_under_any_umask(
    tmp_path: Path, make_server: Any, open_umask: None
) -> None:
    s = make_settings(tmp_path, mail_dir=str(tmp_path / "spool" / "mail"))
    server = make_server(s)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert submit(client).status_code == 201
    mail = tmp_path / "spool" / "mail"
    deadline = time.monotonic() + 20
    while len(list(mail.glob("*.eml"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    emails = list(mail.glob("*.eml"))
    assert len(emails) == 2
    for path in [tmp_path / "leads.db", tmp_path / "leads.db-wal", tmp_path / "leads.db-shm"]:
        assert _mode(path) == 0o600, path
    for path in emails:
        assert _mode(path) == 0o600, path
    assert _mode(mail) == 0o700


def test_backups_and_saved_resumes_are_private(
    tmp_path: Path, cli: Any, seeded: Any, open_umask: None
) -> None:
    backup = tmp_path / "backup.db"
    done = cli("db", "backup", str(backup))
    assert done.code == 0, done.stderr
    assert _mode(backup) == 0o600
    again = cli("db", "backup", str(backup))
    assert again.code == 1 and "exists" in again.stderr
    # Missing folders are made, each 0700; the folder's backups 0600.
    deep = cli("db", "backup", str(tmp_path / "no" / "such" / "folder"), "--keep", "2", "--json")
    assert deep.code == 0, deep.stderr
    assert _mode(tmp_path / "no") == _mode(tmp_path / "no" / "such" / "folder") == 0o700
    assert _mode(Path(deep.json()["path"])) == 0o600
    (tmp_path / "a-file").write_text("not a folder")
    refused = cli("db", "backup", str(tmp_path / "a-file" / "b.db"))
    assert refused.code == 1 and "cannot create" in refused.stderr
    assert "Traceback" not in refused.stderr

    saved = tmp_path / "cv.pdf"
    assert cli("open", str(seeded[0].id), "--save", str(saved)).code == 0
    assert _mode(saved) == 0o600
    saved.chmod(0o644)  # a file that was readable by others before --force overwrote it
    assert cli("open", str(seeded[0].id), "--save", str(saved), "--force").code == 0
    assert _mode(saved) == 0o600


def test_open_save_into_a_new_folder_or_a_missing_one(
    tmp_path: Path, cli: Any, seeded: Any, open_umask: None
) -> None:
    lead = str(seeded[0].id)
    into = cli("open", lead, "--save", f"{tmp_path}/dl/")  # a folder made on the way
    assert into.code == 0, into.stderr
    assert into.stdout.strip() == f"{tmp_path}/dl/cv.pdf"
    assert _mode(tmp_path / "dl") == 0o700 and _mode(tmp_path / "dl" / "cv.pdf") == 0o600
    missing = cli("open", lead, "--save", f"{tmp_path}/nowhere/x.pdf")
    assert missing.code == 1 and missing.stdout == ""
    assert missing.stderr.count("\n") == 1 and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert not (tmp_path / "nowhere").exists()
