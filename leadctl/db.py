"""Opening the database named by a URL, its pragmas, write transactions, and schema versions."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from peewee import (
    Database,
    IntegrityError,
    InterfaceError,
    Model,
    OperationalError,
    PostgresqlDatabase,
    ProgrammingError,
    Psycopg3Adapter,
    SqliteDatabase,
)

from leadctl.errors import LeadctlError, StorageUnavailable
from leadctl.models import ALL_MODELS, SchemaVersion, database
from leadctl.private import private_file

log = logging.getLogger(__name__)

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": 2,  # FULL: a committed lead survives power loss, not only a crash
    "foreign_keys": 1,
    "cache_size": -16000,
}


def _v2_quarantine_idempotency(db: Database) -> None:
    """Quarantined leads, idempotency keys, shared secrets, and an index for the mail cap."""
    from peewee import BooleanField, CharField
    from playhouse.migrate import SchemaMigrator, migrate

    from leadctl.models import AppSecret, IdempotencyKey

    migrator = SchemaMigrator.from_database(db)
    migrate(
        migrator.add_column("lead", "quarantined", BooleanField(default=False)),
        migrator.add_column("lead", "quarantine_reason", CharField(max_length=100, null=True)),
        migrator.add_index("lead", ("quarantined", "id"), False),
        migrator.add_index("outbox_message", ("purpose", "created_at"), False),
    )
    db.create_tables([IdempotencyKey, AppSecret])


def _v3_stats_and_search(db: Database) -> None:
    """Seconds to first contact as a column, indexes for `stats` and the mail cap, a trigram
    index for search."""
    from peewee import SQL, FloatField, NodeList, fn
    from playhouse.migrate import SchemaMigrator, migrate

    from leadctl.models import Lead

    migrator = SchemaMigrator.from_database(db)
    migrate(migrator.add_column("lead", "reached_out_seconds", FloatField(null=True)))
    seconds: Any
    if isinstance(db, SqliteDatabase):
        seconds = (fn.julianday(Lead.reached_out_at) - fn.julianday(Lead.created_at)) * 86400.0
    else:
        seconds = fn.EXTRACT(NodeList((SQL("EPOCH FROM"), Lead.reached_out_at - Lead.created_at)))
    Lead.update(reached_out_seconds=seconds).where(Lead.reached_out_at.is_null(False)).execute()
    migrate(
        migrator.add_index("lead", ("quarantined", "attorney_id", "state", "reached_out_seconds")),
        migrator.add_index("lead", ("quarantined", "state", "reached_out_seconds")),
        migrator.add_index("lead", ("quarantined", "state", "created_at")),
        migrator.add_index("outbox_message", ("recipient", "purpose", "created_at")),
        migrator.drop_index("lead", "lead_email"),
        migrator.add_index("lead", ("email", "quarantined")),
    )
    create_search_index(db)


def _v4_confirmation_mailbox(db: Database) -> None:
    """The mailbox a confirmation went to, however spelt, so that the one-per-hour cap counts
    mailboxes (`Jane@…`, `jane+x@…`) instead of exact recipients; its index replaces theirs."""
    from peewee import CharField
    from playhouse.migrate import SchemaMigrator, migrate

    from leadctl.models import OutboxMessage
    from leadctl.submissions import CONFIRMATION_WINDOW, mailbox_key
    from leadctl.timeutil import utcnow

    migrator = SchemaMigrator.from_database(db)
    migrate(migrator.add_column("outbox_message", "mailbox", CharField(max_length=400, null=True)))
    # Only confirmations within the cap's window are ever looked up by mailbox: a few rows.
    recent = OutboxMessage.select(OutboxMessage.id, OutboxMessage.recipient).where(
        (OutboxMessage.purpose == "confirmation")
        & (OutboxMessage.created_at > utcnow() - CONFIRMATION_WINDOW)
    )
    for row in list(recent):
        OutboxMessage.update(mailbox=mailbox_key(row.recipient)).where(
            OutboxMessage.id == row.id
        ).execute()
    migrate(
        migrator.add_index("outbox_message", ("mailbox", "purpose", "created_at"), False),
        migrator.drop_index("outbox_message", "outbox_message_recipient_purpose_created_at"),
    )


# Each entry upgrades the schema from version N-1 to N; version 1 is create_tables().
MIGRATIONS: dict[int, Callable[[Database], None]] = {
    2: _v2_quarantine_idempotency,
    3: _v3_stats_and_search,
    4: _v4_confirmation_mailbox,
}
SCHEMA_VERSION = 1 + len(MIGRATIONS)


def create_search_index(db: Database) -> None:
    """A trigram index over `lead.search_key`, so a substring search need not read every lead.

    SQLite: an FTS5 table with the trigram tokenizer, kept in step with `lead` by triggers.
    PostgreSQL: a GIN index with pg_trgm's operator class, which serves `LIKE '%term%'`; where
    the extension cannot be created (no privilege), search still works, by reading every lead.
    """
    if isinstance(db, SqliteDatabase):
        for statement in _SQLITE_SEARCH_DDL:
            db.execute_sql(statement)
        db.execute_sql("INSERT INTO lead_search (lead_search) VALUES ('rebuild')")
        return
    schema = _trigram_schema(db)
    if schema is None:
        log.warning("pg_trgm is not available: name search will read every lead")
        return
    db.execute_sql(
        "CREATE INDEX IF NOT EXISTS lead_search_key_trgm ON lead "
        f'USING gin (search_key "{schema}".gin_trgm_ops)'
    )


_SQLITE_SEARCH_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS lead_search USING fts5("
    "search_key, content='lead', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER IF NOT EXISTS lead_search_insert AFTER INSERT ON lead BEGIN "
    "INSERT INTO lead_search (rowid, search_key) VALUES (new.id, new.search_key); END",
    "CREATE TRIGGER IF NOT EXISTS lead_search_delete AFTER DELETE ON lead BEGIN "
    "INSERT INTO lead_search (lead_search, rowid, search_key) "
    "VALUES ('delete', old.id, old.search_key); END",
    "CREATE TRIGGER IF NOT EXISTS lead_search_update AFTER UPDATE OF search_key ON lead BEGIN "
    "INSERT INTO lead_search (lead_search, rowid, search_key) "
    "VALUES ('delete', old.id, old.search_key); "
    "INSERT INTO lead_search (rowid, search_key) VALUES (new.id, new.search_key); END",
)


def _trigram_schema(db: Database) -> str | None:
    """The schema holding pg_trgm, creating the extension in `public` when it is missing.

    Not in the current schema: that may be one of several private schemas sharing the database.
    """
    query = (
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_trgm'"
    )
    row = db.execute_sql(query).fetchone()
    if row is None:
        try:
            with db.atomic():  # a savepoint: a refusal must not end the migration's transaction
                db.execute_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
        except (OperationalError, ProgrammingError, IntegrityError) as exc:
            log.info("could not create pg_trgm: %s", exc)
        row = db.execute_sql(query).fetchone()
    return row[0] if row else None


class SchemaOutdated(LeadctlError):
    """The database was made by an older leadctl and needs `leadctl db upgrade`."""


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


def make_database(url: str, busy_timeout_ms: int = 5000) -> Database:
    """A peewee database for the URL, not yet connected."""
    if url.startswith("sqlite:"):
        path = sqlite_path(url)
        if path != ":memory:" and not os.path.exists(path):
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


def bind(url: str, busy_timeout_ms: int = 5000) -> Database:
    """Make the database for the URL the one every model uses."""
    db = make_database(url, busy_timeout_ms)
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
    except (OperationalError, InterfaceError) as exc:
        raise StorageUnavailable(f"the database cannot take writes right now ({exc})") from exc


# ---------------------------------------------------------------------------------------------
# Hand-written SQL for the submission path. Building a statement with peewee costs ~0.3 ms of
# Python (a look-up by email: 0.3 ms built, 4 µs run); a submission makes a dozen of them on the
# one writer, inside the write lock, where they bounded intake throughput. Here SQL is written
# (or, for inserts, built from the model) once and run with plain parameters.


def run_sql(sql: str, params: Sequence[Any] = ()) -> Any:
    """Run SQL written with `?` placeholders on either database; returns the cursor."""
    db = database.obj
    if not isinstance(db, SqliteDatabase):
        sql = _with_placeholder(sql, db.param)
    return db.execute_sql(sql, params)


@functools.lru_cache(maxsize=256)
def _with_placeholder(sql: str, param: str) -> str:
    return sql.replace("?", param)


def insert_rows(model: type[Model], rows: Sequence[dict[str, Any]], suffix: str = "") -> Any:
    """INSERT `rows` (dicts of field name → value, all with the same fields) into `model`'s
    table in one statement; each value goes through its field's `db_value`, as with peewee.
    `suffix` is appended (an ON CONFLICT clause, RETURNING). Returns the cursor."""
    names = tuple(rows[0])
    fields = [model._meta.fields[name] for name in names]
    params = [
        field.db_value(row[name]) for row in rows for name, field in zip(names, fields, strict=True)
    ]
    return run_sql(_insert_sql(model, names, len(rows), suffix), params)


@functools.lru_cache(maxsize=256)
def _insert_sql(model: type[Model], names: tuple[str, ...], count: int, suffix: str) -> str:
    table = model._meta.table_name
    columns = ", ".join(f'"{model._meta.fields[name].column_name}"' for name in names)
    values = ", ".join(["(" + ", ".join("?" * len(names)) + ")"] * count)
    # Names from the model's own metadata; every value is a parameter.
    return f'INSERT INTO "{table}" ({columns}) VALUES {values} {suffix}'.rstrip()  # noqa: S608


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
                create_search_index(database.obj)
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
