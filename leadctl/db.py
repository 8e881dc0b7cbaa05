"""Opening the database named by a URL: its drivers, its pragmas, and the connection's health."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

from peewee import Database, PostgresqlDatabase, Psycopg3Adapter, SqliteDatabase

from leadctl.errors import LeadctlError, NoDatabase
from leadctl.models import database
from leadctl.private import private_file

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": 2,  # FULL: a committed lead survives power loss, not only a crash
    "foreign_keys": 1,
    "cache_size": -16000,
}


class LazyPsycopg3Adapter(Psycopg3Adapter):
    """peewee's psycopg 3 adapter, importing psycopg when a PostgreSQL database is first made.

    leadctl/__init__.py keeps peewee from importing psycopg at start-up, so every place where
    peewee's adapter reaches for its module-level `psycopg` is answered here instead.
    """

    def __init__(self) -> None:
        import psycopg
        from psycopg.pq import TransactionStatus
        from psycopg.types.json import Json, Jsonb

        self._psycopg = psycopg
        self._in_transaction = TransactionStatus.INTRANS
        self.txn_idle = TransactionStatus.IDLE
        self.txn_inerror = TransactionStatus.INERROR
        self.txn_unknown = TransactionStatus.UNKNOWN
        super().__init__()
        self.json_type, self.jsonb_type = Json, Jsonb

    def check_driver(self) -> None:
        pass

    def get_binary_type(self) -> Any:
        return self._psycopg.Binary

    def connect(self, db: Any, **params: Any) -> Any:
        if db._encoding:
            params.setdefault("client_encoding", db._encoding)
        params.setdefault("dbname", db.database)
        return self._psycopg.connect(**params)

    def server_side_cursor(self, conn: Any) -> Any:
        in_txn = self.txn_status(conn) == self._in_transaction
        return conn.cursor(name=str(uuid.uuid1()), withhold=not in_txn)


class Psycopg3Database(PostgresqlDatabase):
    """PostgreSQL through psycopg 3, whichever drivers peewee saw at import time."""

    psycopg2_adapter = psycopg3_adapter = LazyPsycopg3Adapter


def sqlite_path(url: str) -> str:
    """`sqlite:///leads.db` → `leads.db`; `sqlite:////var/x.db` → `/var/x.db`."""
    if not url.startswith("sqlite:///"):
        raise LeadctlError(f"a SQLite URL looks like sqlite:///leads.db, not {url!r}")
    return unquote(url[len("sqlite:///") :])


def location(url: str) -> str:
    """Where the URL points, for people: a SQLite file's absolute path, else the URL without
    its password."""
    if url.startswith("sqlite:///") and sqlite_path(url) != ":memory:":
        return os.path.abspath(sqlite_path(url))
    return mask_url(url)


def mask_url(url: str) -> str:
    """The URL with its password, if any, replaced by `***`."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def no_database(url: str, why: str = "does not exist") -> NoDatabase:
    """The error of a command that found no database and may not create one."""
    where = location(url)
    return NoDatabase(
        f"no leadctl database: {where} {why}; point leadctl at yours with --db URL or "
        "LEADS_DATABASE_URL (e.g. --db sqlite:////srv/leads/leads.db), or make a new one with "
        "leadctl db upgrade"
    )


def make_database(url: str, busy_timeout_ms: int = 5000, *, create: bool = True) -> Database:
    """A peewee database for the URL, not yet connected; with `create` False a SQLite file that
    does not exist is an error (NoDatabase) instead of a new, empty database."""
    if url.startswith("sqlite:"):
        path = sqlite_path(url)
        if path != ":memory:" and not os.path.exists(path):
            if not create:
                raise no_database(url)
            # Created here, 0600, rather than by SQLite under the umask; SQLite gives its -wal
            # and -shm files the mode of the database file.
            with contextlib.suppress(FileExistsError, FileNotFoundError):
                private_file(path)
        pragmas = {**SQLITE_PRAGMAS, "busy_timeout": busy_timeout_ms}
        return SqliteDatabase(path, pragmas=pragmas, timeout=busy_timeout_ms / 1000)
    if url.startswith(("postgresql:", "postgres:")):
        parts = urlsplit(url)
        params: dict[str, Any] = {}
        for pair in filter(None, parts.query.split("&")):
            key, _, value = pair.partition("=")
            params[unquote(key)] = unquote(value)
        if parts.username:
            params["user"] = unquote(parts.username)
        if parts.password:
            params["password"] = unquote(parts.password)
        if parts.hostname:
            params["host"] = parts.hostname
        if parts.port:
            params["port"] = parts.port
        params.setdefault("connect_timeout", 5)
        return Psycopg3Database(unquote(parts.path.lstrip("/")), **params)
    raise LeadctlError(
        f"LEADS_DATABASE_URL must start with sqlite:/// or postgresql://, not {url.split(':')[0]!r}"
    )


def bind(url: str, busy_timeout_ms: int = 5000, *, create: bool = True) -> Database:
    """Make the database for the URL the one every model uses."""
    db = make_database(url, busy_timeout_ms, create=create)
    database.initialize(db)
    return db


def is_sqlite() -> bool:
    return isinstance(database.obj, SqliteDatabase)


def close_connection() -> None:
    """Close this thread's connection, if it has one."""
    if not database.obj.is_closed():
        database.obj.close()


def ping() -> bool:
    """True when the database answers a trivial query."""
    return unanswered() is None


def unanswered() -> str | None:
    """None when the database answers a trivial query, else the kind of failure; a failed
    connection is closed, so the next try connects afresh."""
    try:
        database.obj.execute_sql("SELECT 1").fetchone()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
        with contextlib.suppress(Exception):
            database.obj.close()
        return type(exc).__name__


IN_CHUNK = 500  # ids per IN (...): well under SQLite's and PostgreSQL's parameter limits


def chunks(items: list[Any], size: int = IN_CHUNK) -> Iterator[list[Any]]:
    """`items` in slices of `size`, one IN (...) each."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
