"""Opening the database named by a URL, its pragmas, write transactions, and schema versions."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

from peewee import Database, OperationalError, PostgresqlDatabase, SqliteDatabase

from leadctl.errors import LeadctlError, StorageUnavailable
from leadctl.models import ALL_MODELS, SchemaVersion, database

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": 2,  # FULL: a committed lead survives power loss, not only a crash
    "foreign_keys": 1,
    "busy_timeout": 5000,
    "cache_size": -16000,
}

# Each entry upgrades the schema from version N-1 to N; version 1 is create_tables().
MIGRATIONS: dict[int, Callable[[Database], None]] = {}
SCHEMA_VERSION = 1 + len(MIGRATIONS)


class SchemaOutdated(LeadctlError):
    """The database was made by an older leadctl and needs `leadctl db upgrade`."""


def sqlite_path(url: str) -> str:
    """`sqlite:///leads.db` → `leads.db`; `sqlite:////var/x.db` → `/var/x.db`."""
    if not url.startswith("sqlite:///"):
        raise LeadctlError(f"a SQLite URL looks like sqlite:///leads.db, not {url!r}")
    return unquote(url[len("sqlite:///") :])


def make_database(url: str) -> Database:
    """A peewee database for the URL, not yet connected."""
    if url.startswith("sqlite:"):
        return SqliteDatabase(sqlite_path(url), pragmas=SQLITE_PRAGMAS, timeout=5)
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
        return PostgresqlDatabase(unquote(parts.path.lstrip("/")), **params)
    raise LeadctlError(
        f"LEADS_DATABASE_URL must start with sqlite:/// or postgresql://, not {url.split(':')[0]!r}"
    )


def bind(url: str) -> Database:
    """Make the database for the URL the one every model uses."""
    db = make_database(url)
    database.initialize(db)
    return db


def is_sqlite() -> bool:
    return isinstance(database.obj, SqliteDatabase)


@contextlib.contextmanager
def write_transaction() -> Iterator[None]:
    """A transaction that takes the write lock up front (SQLite `BEGIN IMMEDIATE`).

    A deferred SQLite transaction that reads first and writes later can fail with `database is
    locked` without waiting; taking the lock at BEGIN makes writers queue on the busy timeout.
    Lock and connection failures become StorageUnavailable, which both faces report as "try again".
    """
    db = database.obj
    ctx = db.atomic("IMMEDIATE") if isinstance(db, SqliteDatabase) else db.atomic()
    try:
        with ctx:
            yield
    except OperationalError as exc:
        raise StorageUnavailable(f"the database cannot take writes right now ({exc})") from exc


def current_version() -> int | None:
    """The stored schema version, or None for an empty database."""
    db = database.obj
    if not db.table_exists(SchemaVersion._meta.table_name):
        return None
    row = SchemaVersion.select(SchemaVersion.version).order_by(SchemaVersion.version.desc()).first()
    return row.version if row else 0


def ensure_schema() -> None:
    """Create the schema on first use; refuse to run on an outdated one (see `upgrade`)."""
    version = current_version()
    if version == SCHEMA_VERSION:
        return
    if version is None:
        with write_transaction():
            if current_version() is None:  # another process may have won the race
                database.obj.create_tables(ALL_MODELS, safe=True)
                SchemaVersion.create(version=SCHEMA_VERSION)
        return
    if version < SCHEMA_VERSION:
        raise SchemaOutdated(
            f"the database schema is version {version}, this leadctl needs {SCHEMA_VERSION}; "
            "back it up, then run: leadctl db upgrade"
        )
    raise SchemaOutdated(
        f"the database schema is version {version}, newer than this leadctl knows "
        f"({SCHEMA_VERSION}); upgrade leadctl"
    )


def upgrade() -> tuple[int, int]:
    """Apply every pending migration in one transaction; returns (from, to) versions."""
    version = current_version()
    if version is None:
        ensure_schema()
        return (0, SCHEMA_VERSION)
    start = version
    with write_transaction():
        for target in range(version + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[target](database.obj)
            SchemaVersion.create(version=target)
    return (start, SCHEMA_VERSION)


def close_connection() -> None:
    """Close this thread's connection, if it has one."""
    if not database.obj.is_closed():
        database.obj.close()


def ping() -> bool:
    """True when the database answers a trivial query."""
    try:
        database.obj.execute_sql("SELECT 1").fetchone()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not healthy"
        with contextlib.suppress(Exception):
            database.obj.close()
        return False
