"""Backups and checks of the database: an online SQLite copy or pg_dump, kept N deep, 0600.

A backup into a folder is named `leads-YYYYMMDDTHHMMSSZ.db` (`.dump` from pg_dump), so that the
names sort by age; pruning only ever deletes files with exactly such a name.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from peewee import DatabaseError

from leadctl.db import location, no_database, sqlite_path
from leadctl.errors import LeadctlError
from leadctl.private import private_file, private_folder
from leadctl.timeutil import utcnow

BACKUP_NAME = re.compile(r"leads-\d{8}T\d{6}Z\.(db|dump)")
_SEARCH_PATH = re.compile(r"-c\s*search_path=([^\s,]+)")
PAGES_PER_STEP = 4096  # the online copy goes in steps, so the server's writers are not held up


@dataclass
class Backup:
    path: Path
    size: int
    integrity: str | None  # SQLite's integrity_check of the copy; None for a pg_dump archive
    pruned: list[Path] = field(default_factory=list)


class PgDumpMissing(LeadctlError):
    """pg_dump is not installed here; `command` is what to run where it is."""

    def __init__(self, command: str) -> None:
        self.command = command
        super().__init__(
            "pg_dump is not installed here (Debian: apt install postgresql-client); "
            f"run this where it is: {command}"
        )


def backup_name(now: datetime, suffix: str) -> str:
    return f"leads-{now:%Y%m%dT%H%M%SZ}.{suffix}"


def make_backup(url: str, dest: Path, *, into_folder: bool, keep: int | None = None) -> Backup:
    """Back up the database at `url` to the new file `dest`, or into the folder `dest` under a
    timestamped name, keeping the newest `keep` backups there. Missing folders are made 0700."""
    postgres = url.startswith(("postgresql:", "postgres:"))
    suffix = "dump" if postgres else "db"
    if not postgres and not Path(sqlite_path(url)).is_file():
        raise no_database(url)
    if into_folder:
        if dest.exists() and not dest.is_dir():
            raise LeadctlError(f"{dest} is a file; a backup folder was expected")
        target = dest / backup_name(utcnow(), suffix)
    else:
        target = dest
    done = _pg_dump(url, target) if postgres else _sqlite_copy(url, target)
    if into_folder and keep is not None:
        done.pruned = prune(dest, keep, suffix)
    return done


def _claim(target: Path) -> None:
    """Create the backup's file, empty and 0600 (it holds client data), failing if it exists."""
    try:
        private_folder(target.parent)
        private_file(target)
    except FileExistsError:
        raise LeadctlError(f"{target} exists; a backup never overwrites a file") from None
    except OSError as exc:
        raise LeadctlError(f"cannot create {target}: {exc.strerror}") from None


def _sqlite_copy(url: str, target: Path) -> Backup:
    source = Path(sqlite_path(url))
    _claim(target)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst, pages=PAGES_PER_STEP)
        # One self-contained file: opened as the database later, it goes back to WAL itself.
        dst.execute("PRAGMA journal_mode=DELETE")
        integrity = dst.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.Error as exc:
        target.unlink(missing_ok=True)
        raise LeadctlError(f"the backup of {source} failed: {exc}") from None
    finally:
        dst.close()
        src.close()
    return Backup(target, target.stat().st_size, integrity)


def pg_dump_command(url: str, target: Path) -> tuple[list[str], dict[str, str]]:
    """pg_dump's arguments (custom format, only leadctl's schema when the URL names one) and
    the environment that carries the password, which never goes on a command line."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}@" if parts.username else ""
    dbname = parts._replace(scheme="postgresql", netloc=user + host).geturl()
    args = ["pg_dump", "--format=custom", "--no-owner", f"--file={target}", f"--dbname={dbname}"]
    options = dict(parse_qsl(parts.query)).get("options", "")
    schema = _SEARCH_PATH.search(options)
    if schema:
        args.append(f"--schema={schema.group(1)}")
    env = {"PGPASSWORD": parts.password} if parts.password else {}
    return args, env


def _pg_dump(url: str, target: Path) -> Backup:
    args, secret = pg_dump_command(url, target)
    program = shutil.which("pg_dump")
    if program is None:
        shown = " ".join(shlex.quote(a) for a in args)
        password = " (give the password by PGPASSWORD or ~/.pgpass)" if secret else ""
        raise PgDumpMissing(f"(umask 077 && {shown}){password}")
    _claim(target)
    try:
        done = subprocess.run(  # noqa: S603 - fixed program, arguments as a list, no shell
            [program, *args[1:]],
            env={**os.environ, **secret},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        target.unlink(missing_ok=True)
        raise LeadctlError(f"pg_dump could not be run: {exc.strerror}") from None
    if done.returncode != 0:
        target.unlink(missing_ok=True)
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise LeadctlError(f"pg_dump failed for {location(url)}: {why}")
    return Backup(target, target.stat().st_size, None)


def prune(folder: Path, keep: int, suffix: str) -> list[Path]:
    """Delete all but the newest `keep` backups of this kind in `folder`; only regular files
    named exactly like a backup are ever touched. Returns what was deleted."""
    if keep < 1:
        raise LeadctlError("--keep must be at least 1")
    named = sorted(
        entry.name
        for entry in os.scandir(folder)
        if BACKUP_NAME.fullmatch(entry.name)
        and entry.name.endswith(f".{suffix}")
        and entry.is_file(follow_symlinks=False)
    )
    doomed = [folder / name for name in named[: max(len(named) - keep, 0)]]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def check(url: str) -> list[str]:
    """What is wrong with the database at `url` (bound already), one line each; empty when it
    is sound.

    SQLite: `integrity_check` and `foreign_key_check`, on a read-only connection of their own.
    PostgreSQL: it answers. Both: the schema is this leadctl's version.
    """
    from leadctl.db import ping
    from leadctl.schema import SCHEMA_VERSION, current_version

    problems: list[str] = []
    try:
        if url.startswith("sqlite:"):
            problems += _sqlite_problems(Path(sqlite_path(url)))
        elif not ping():
            return [f"{location(url)} does not answer"]
        version = current_version()
    except (DatabaseError, sqlite3.Error) as exc:
        return [*problems, f"the database cannot be read: {exc}"]
    if version is None:
        problems.append("it holds no leadctl tables; run: leadctl db upgrade")
    elif version < SCHEMA_VERSION:
        problems.append(
            f"schema version {version}, this leadctl needs {SCHEMA_VERSION}; back it up, "
            "then run: leadctl db upgrade"
        )
    elif version > SCHEMA_VERSION:
        problems.append(f"schema version {version} is newer than this leadctl; upgrade leadctl")
    return problems


def _sqlite_problems(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall()]
        orphans = conn.execute("PRAGMA foreign_key_check").fetchall()
    finally:
        conn.close()
    problems = [] if rows == ["ok"] else [f"integrity: {row}" for row in rows[:20]]
    if orphans:
        problems.append(f"{len(orphans)} row(s) refer to rows that do not exist")
    return problems
