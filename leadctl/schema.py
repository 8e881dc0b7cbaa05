"""The schema: its versions, the migrations between them, and the search index."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from peewee import Database, IntegrityError, OperationalError, ProgrammingError, SqliteDatabase

from leadctl.errors import LeadctlError
from leadctl.models import ALL_MODELS, SchemaVersion, database
from leadctl.transactions import write_transaction

log = logging.getLogger(__name__)


def _add_with_default(db: Database, table: str, column: str, sql_type: str, default: str) -> None:
    """A NOT NULL column with a default, by plain DDL. Peewee's migrator adds it as NULL and
    then rebuilds SQLite's table to forbid NULL; dropping the old `lead` table on the way
    cascaded to every resume, event and email (upgrades from version 1 lost them all)."""
    db.execute_sql(
        f'ALTER TABLE "{table}" ADD COLUMN "{column}" {sql_type} NOT NULL DEFAULT {default}'
    )


def _v2_quarantine_idempotency(db: Database) -> None:
    """Quarantined leads, idempotency keys, shared secrets, and an index for the mail cap."""
    from peewee import CharField
    from playhouse.migrate import SchemaMigrator, migrate

    from leadctl.models import AppSecret, IdempotencyKey

    sqlite = isinstance(db, SqliteDatabase)
    _add_with_default(
        db, "lead", "quarantined", "INTEGER" if sqlite else "BOOLEAN", "0" if sqlite else "false"
    )
    migrator = SchemaMigrator.from_database(db)
    migrate(
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

    from leadctl.mailer import mailbox_key
    from leadctl.models import OutboxMessage
    from leadctl.submissions import CONFIRMATION_WINDOW
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


def _v5_rate_limit_hits(db: Database) -> None:
    """The rate limit's log in the database, shared by several servers on one PostgreSQL."""
    from leadctl.models import RateLimitHit

    db.create_tables([RateLimitHit])


def _v6_duties_and_day(db: Database) -> None:
    """Consent, a resume given as a link, erasure's tombstone, reminders, the compared forms of
    each lead's email and name, the firm's parties, and the words the conflict check looks up."""
    from peewee import CharField, TextField
    from playhouse.migrate import SchemaMigrator, migrate

    from leadctl.models import UtcDateTimeField

    _add_with_default(db, "lead", "email_key", "VARCHAR(320)", "''")
    _add_with_default(db, "lead", "name_key", "VARCHAR(400)", "''")
    migrator = SchemaMigrator.from_database(db)
    migrate(
        migrator.add_column("lead", "consent_at", UtcDateTimeField(null=True)),
        migrator.add_column("lead", "disclaimer_version", CharField(max_length=64, null=True)),
        migrator.add_column("lead", "resume_url", TextField(null=True)),
        migrator.add_column("lead", "reminded_at", UtcDateTimeField(null=True)),
        migrator.add_column("lead", "escalated_at", UtcDateTimeField(null=True)),
        migrator.add_column("lead", "erased_at", UtcDateTimeField(null=True)),
        migrator.add_column("lead", "erased_name_hash", CharField(max_length=64, null=True)),
        migrator.add_column("lead", "erased_email_hash", CharField(max_length=64, null=True)),
    )
    from leadctl.models import NameToken, Party

    db.create_tables([Party, NameToken])
    _fill_compared_forms()
    migrate(
        migrator.add_index("lead", ("email_key", "quarantined"), False),
        migrator.add_index("lead", ("name_key",), False),
        migrator.add_index("lead", ("erased_name_hash",), False),
        migrator.add_index("lead", ("erased_email_hash",), False),
        migrator.add_index("event", ("actor", "id"), False),
        migrator.add_index("event", ("kind", "id"), False),
    )


def _fill_compared_forms(batch: int = 1000) -> None:
    """Each existing lead's email key, name key and name words, a thousand leads at a time."""
    from leadctl.models import Lead, NameToken, email_key
    from leadctl.names import name_key, words

    last = 0
    while True:
        rows = list(
            Lead.select(Lead.id, Lead.first_name, Lead.last_name, Lead.email)
            .where(Lead.id > last)
            .order_by(Lead.id)
            .limit(batch)
        )
        if not rows:
            return
        tokens = []
        for lead in rows:
            full = f"{lead.first_name} {lead.last_name}"
            lead.email_key, lead.name_key = email_key(lead.email), name_key(full)
            tokens += [{"token": word, "lead": lead.id} for word in words(full)]
        Lead.bulk_update(rows, fields=[Lead.email_key, Lead.name_key], batch_size=batch)
        if tokens:
            NameToken.insert_many(tokens).execute()
        last = rows[-1].id


def _v7_conflict_mentions(db: Database) -> None:
    """The link from a lead to the later leads whose intake check named it, so that erasing it
    reaches their records; made for the hits recorded before it existed, and followed at once
    for the leads already erased (leadctl.mentions.backfill)."""
    from leadctl.mentions import backfill
    from leadctl.models import ConflictMention

    db.create_tables([ConflictMention])
    made = backfill()
    log.info("schema 7: %d conflict hits on earlier leads linked", made)


def _v7_mentions_and_invisible_names(db: Database) -> None:
    _v7_conflict_mentions(db)
    _refold_invisible_names()


def _refold_invisible_names(batch: int = 1000) -> None:
    """Names holding an invisible character (a soft hyphen, a zero-width space) were split into
    words at it before `names.words` dropped such characters, so "Nu\u00adnez" was "nu" and
    "nez": their name keys and words are made again. Only those rows are written."""
    from leadctl.models import Lead, NameToken, Party
    from leadctl.names import has_ignorable, name_key, words

    sources: list[tuple[Any, Any, Any]] = [
        (Lead, (Lead.first_name, Lead.last_name), NameToken.lead),
        (Party, (Party.name,), NameToken.party),
    ]
    for model, columns, owner in sources:
        last = 0
        while rows := list(
            model.select(model.id, *columns).where(model.id > last).order_by(model.id).limit(batch)
        ):
            last = rows[-1].id
            for row in rows:
                full = " ".join(getattr(row, c.name) for c in columns)
                if not has_ignorable(full):
                    continue
                model.update(name_key=name_key(full)).where(model.id == row.id).execute()
                NameToken.delete().where(owner == row.id).execute()
                found = [{"token": w, owner.name: row.id} for w in words(full)]
                if found:
                    NameToken.insert_many(found).execute()


# Each entry upgrades the schema from version N-1 to N; version 1 is create_tables().
MIGRATIONS: dict[int, Callable[[Database], None]] = {
    2: _v2_quarantine_idempotency,
    3: _v3_stats_and_search,
    4: _v4_confirmation_mailbox,
    5: _v5_rate_limit_hits,
    6: _v6_duties_and_day,
    7: _v7_mentions_and_invisible_names,
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
        from leadctl.fastpath import serialize  # only on a new database: the CLI starts lighter

        with write_transaction():
            serialize("schema")  # PostgreSQL: two servers starting at once take turns
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
    from leadctl.fastpath import serialize

    with write_transaction():
        serialize("schema")
        for target in range(version + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[target](database.obj)
            SchemaVersion.create(version=target)
    return (start, SCHEMA_VERSION)
