"""The hot paths' hand-written SQL: the only statements in leadctl not built by peewee.

A submission makes a dozen statements on the one writer, inside the write lock, where peewee's
statement building bounded intake throughput (bench/RESULTS.md, "Intake throughput"); the
delivery process claims and records every batch under the same lock. Here each statement is
written once (or, for an INSERT, built from the model once per shape) and run with plain
parameters. Everything else goes through peewee.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from peewee import Model, SqliteDatabase

from leadctl.models import Attorney, IdempotencyKey, Lead, OutboxMessage, Resume, database

if TYPE_CHECKING:
    from leadctl.resumes import CheckedResume


def run_sql(sql: str, params: Sequence[Any] = ()) -> Any:
    """Run SQL written with `?` placeholders on either database; returns the cursor."""
    db = database.obj
    if not isinstance(db, SqliteDatabase):
        sql = pyformat(sql)
    return db.execute_sql(sql, params)


# What must not be read as a placeholder: quoted text and names, comments, dollar quotes.
_SQL_TOKENS = (  # compiled on first use (PostgreSQL only)
    r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|\$(\w*)\$.*?\$\1\$|[?%]"""
)


@functools.lru_cache(maxsize=256)
def pyformat(sql: str) -> str:
    """SQL written with `?` placeholders in psycopg's `%s` style.

    A `?` in quotes or in a comment stays text. Every `%` is doubled, quoted or not: psycopg
    reads `%` anywhere in the statement. (A `?` outside quotes is always a placeholder: write
    PostgreSQL's jsonb `?` operator as `jsonb_exists()`.)
    """

    def swap(match: re.Match[str]) -> str:
        token = match.group(0)
        return "%s" if token == "?" else token.replace("%", "%%")

    return re.sub(_SQL_TOKENS, swap, sql, flags=re.DOTALL)


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


# ---------------------------------------------------------------------------------------------
# The look-ups and writes of one submission


def serialize(purpose: str, value: str = "") -> None:
    """On PostgreSQL, wait until no other transaction holds the lock named `purpose`:`value`,
    then hold it until this one ends; nothing on SQLite, whose one write lock serializes all.

    Several servers share one PostgreSQL: a look-up ("is this key stored?", "who is least
    recently assigned?") and the write it decides must not interleave with another server's.
    Under READ COMMITTED a row lock does not do it (ORDER BY … LIMIT is not re-evaluated after
    the wait); a transaction-level advisory lock taken before the look-up does. The name is
    hashed with the current schema, so databases in separate schemas never wait for each other.
    """
    if isinstance(database.obj, SqliteDatabase):
        return
    run_sql(
        "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || ?, 0))",
        (f":leadctl:{purpose}:{value}",),
    )


def idempotency_answer(key: str, since: datetime) -> tuple[str, int] | None:
    """(body hash, lead id) stored for `key` after `since`; an expired entry is deleted.

    The key stays locked until the transaction ends: the same key on another server waits, then
    finds this answer instead of failing on the primary key."""
    serialize("idempotency", key)
    row = run_sql(
        "SELECT body_hash, lead_id FROM idempotency_key WHERE key = ? AND created_at > ?",
        (key, IdempotencyKey.created_at.db_value(since)),
    ).fetchone()
    if row is None:
        run_sql("DELETE FROM idempotency_key WHERE key = ?", (key,))  # an expired one, if any
        return None
    return row[0], row[1]


def same_lead_since(
    email_key: str,
    first_name: str,
    last_name: str,
    sha256: str | None,
    resume_url: str | None,
    since: datetime,
) -> int | None:
    """The first lead after `since` with these names, this address (any case: `email_key`) and
    this resume (the file's `sha256`, or the same `resume_url`): a double click; or None. The
    address stays locked until the transaction ends, so the same body sent to two servers at
    once makes one lead."""
    serialize("double-click", email_key)
    if sha256 is not None:
        sql = (
            "SELECT lead.id FROM lead JOIN resume ON resume.lead_id = lead.id "
            "WHERE lead.email_key = ? AND lead.created_at > ? AND resume.sha256 = ? "
            "AND lead.first_name = ? AND lead.last_name = ? ORDER BY lead.id LIMIT 1"
        )
        resume: str | None = sha256
    else:
        sql = (
            "SELECT id FROM lead WHERE email_key = ? AND created_at > ? AND resume_url = ? "
            "AND first_name = ? AND last_name = ? ORDER BY id LIMIT 1"
        )
        resume = resume_url
    row = run_sql(
        sql, (email_key, Lead.created_at.db_value(since), resume, first_name, last_name)
    ).fetchone()
    return row[0] if row else None


def insert_lead(fields: dict[str, Any]) -> int | None:
    """The new lead's id, or None when its reference is taken already."""
    inserted = insert_rows(
        Lead, [fields], 'ON CONFLICT ("reference") DO NOTHING RETURNING "id"'
    ).fetchall()
    return inserted[0][0] if inserted else None


BLOB_CHUNK = 1024 * 1024


def insert_resume(lead_id: int, resume: CheckedResume) -> None:
    """The resume row. On SQLite the bytes are written in 1 MiB pieces into a zeroblob the size
    of the file: binding a 10 MiB value makes sqlite3 copy it twice (the binding, then the
    record), which took an accepted upload past 32 MiB of extra memory."""
    row = {
        "lead": lead_id,
        "filename": resume.filename,
        "content_type": resume.content_type,
        "size": resume.size,
        "sha256": resume.sha256,
    }
    db = database.obj
    if not isinstance(db, SqliteDatabase):
        insert_rows(Resume, [{**row, "data": resume.data}])
        return
    run_sql(
        "INSERT INTO resume (lead_id, filename, content_type, size, sha256, data) "
        "VALUES (?, ?, ?, ?, ?, zeroblob(?))",
        (*row.values(), resume.size),
    )
    view = memoryview(resume.data)
    with db.connection().blobopen("resume", "data", lead_id) as blob:
        for start in range(0, len(view), BLOB_CHUNK):
            blob.write(view[start : start + BLOB_CHUNK])


def returning_attorney(email_key: str) -> tuple[int, str, str] | None:
    """(id, name, email) of the active attorney of this address's latest lead (any case:
    `email_key`), or None."""
    return run_sql(
        "SELECT attorney.id, attorney.name, attorney.email FROM attorney "
        "JOIN lead ON lead.attorney_id = attorney.id "
        "WHERE lead.email_key = ? AND lead.quarantined = ? AND attorney.active = ? "
        "ORDER BY lead.id DESC LIMIT 1",
        (email_key, False, True),
    ).fetchone()


def earlier_leads(email_key: str, lead_id: int, limit: int = 5) -> list[tuple[int, str, str, Any]]:
    """(id, reference, state, created_at as stored) of the latest leads from this address (any
    case: `email_key`) before lead `lead_id`, newest first, quarantined and erased ones left
    out: the notification says the prospect is returning, and `show` lists them."""
    return run_sql(
        "SELECT id, reference, state, created_at FROM lead WHERE email_key = ? "
        "AND quarantined = ? AND id < ? AND erased_at IS NULL ORDER BY id DESC LIMIT ?",
        (email_key, False, lead_id, limit),
    ).fetchall()


_LEAST_RECENT = (
    "SELECT id, name, email FROM attorney WHERE active = ? "
    "ORDER BY last_assigned_at ASC NULLS FIRST, id LIMIT 1"
)


def least_recent_attorney() -> tuple[int, str, str] | None:
    """(id, name, email) of the active attorney assigned a lead longest ago (or never).

    Round robin stays strict across servers: the choice is locked until the transaction that
    marks it commits, so the next server's look-up sees the mark (see `serialize`)."""
    serialize("round-robin")
    return run_sql(_LEAST_RECENT, (True,)).fetchone()


def mark_assigned(attorney_id: int, now: datetime) -> None:
    if isinstance(database.obj, SqliteDatabase):
        sql = "UPDATE attorney SET last_assigned_at = ? WHERE id = ?"
    else:
        # Never before the latest mark: a server whose clock is behind, or whose `now` was read
        # before it waited for the round-robin lock, would otherwise put its pick first in line.
        sql = (
            "UPDATE attorney SET last_assigned_at = GREATEST(CAST(? AS timestamp), "
            "(SELECT MAX(last_assigned_at) FROM attorney) + interval '1 microsecond') "
            "WHERE id = ?"
        )
    run_sql(sql, (Attorney.last_assigned_at.db_value(now), attorney_id))


def confirmation_went_to(mailbox: str, since: datetime) -> bool:
    """True when a confirmation to `mailbox` was queued after `since`."""
    return bool(
        run_sql(  # (mailbox, purpose, created_at): a few rows at most
            "SELECT 1 FROM outbox_message WHERE mailbox = ? AND purpose = ? AND created_at > ? "
            "LIMIT 1",
            (mailbox, "confirmation", OutboxMessage.created_at.db_value(since)),
        ).fetchone()
    )


def confirmations_since(since: datetime, cap: int) -> int:
    """How many confirmations were queued after `since`, counting no further than `cap`."""
    (recent,) = run_sql(  # counting stops at the cap: bounded work whatever the traffic
        "SELECT COUNT(*) FROM (SELECT 1 FROM outbox_message WHERE purpose = ? AND created_at > ? "
        "LIMIT ?) AS recent",
        ("confirmation", OutboxMessage.created_at.db_value(since), cap),
    ).fetchone()
    return int(recent)


# ---------------------------------------------------------------------------------------------
# The per-client rate limit on PostgreSQL: one shared sliding log (`rate_limit_hit`), so that
# several servers keep one limit. At most `limit` accepted submissions in any `period` seconds,
# as the in-memory limiter of intake/ratelimit.py; every time is the database's clock, so
# servers whose clocks differ agree. A client's rows older than the period go when it records
# a hit; the delivery worker's hourly chore deletes those of clients that never came back.

_NOW = "CAST(clock_timestamp() AT TIME ZONE 'UTC' AS timestamp)"


def rate_client_key(client: str) -> str:
    """The stored name of a client: a hash, so any text a proxy passes on fits and means
    nothing to the database."""
    return hashlib.sha256(client.encode("utf-8", "surrogatepass")).hexdigest()


def rate_limit_wait(client: str, limit: int, period: float) -> int | None:
    """Seconds until `client` may submit again, or None if it may now."""
    # The limit-th most recent hit inside the window, if there are that many: when it leaves
    # the window, the client is under the limit again. The (client, at) index serves it.
    row = run_sql(
        f"SELECT EXTRACT(EPOCH FROM (at - {_NOW})) FROM rate_limit_hit "  # noqa: S608 - constant
        f"WHERE client = ? AND at > {_NOW} - make_interval(secs => ?) "
        "ORDER BY at DESC OFFSET ? LIMIT 1",
        (rate_client_key(client), float(period), limit - 1),
    ).fetchone()
    if row is None:
        return None
    return max(1, math.ceil(period + float(row[0])))


def record_rate_hit(client: str, period: float) -> None:
    """Count an accepted submission of `client`, and forget its hits that no longer count."""
    key = rate_client_key(client)
    run_sql(f"INSERT INTO rate_limit_hit (client, at) VALUES (?, {_NOW})", (key,))  # noqa: S608
    run_sql(
        f"DELETE FROM rate_limit_hit WHERE client = ? "  # noqa: S608 - constant
        f"AND at <= {_NOW} - make_interval(secs => ?)",
        (key, float(period)),
    )


def forget_rate_hits(period: float) -> int:
    """Delete every hit older than the period (clients that did not come back); a chore."""
    cursor = run_sql(
        f"DELETE FROM rate_limit_hit WHERE at <= {_NOW} - make_interval(secs => ?)",  # noqa: S608
        (float(period),),
    )
    return int(cursor.rowcount or 0)


# ---------------------------------------------------------------------------------------------
# The conflict check made on every submission (leadctl.conflicts.at_intake): three look-ups,
# each from an index. Through peewee, building the statements and decoding the rows was a
# quarter of the intake server's time under load (bench/RESULTS.md, session 4).

_INTAKE_LEAD = (
    "id",
    "reference",
    "first_name",
    "last_name",
    "created_at",
    "name_key",
    "email_key",
    "quarantined",
    "erased_at",
    "erased_name_hash",
    "erased_email_hash",
)
_INTAKE_PARTY = ("id", "name", "role", "matter", "name_key", "created_at")


def _marks(count: int) -> str:
    return ", ".join("?" * count) if count else "NULL"  # IN (NULL) matches nothing


def _selected(table: str, columns: tuple[str, ...], where: str) -> str:
    listed = ", ".join(f'"t1"."{c}"' for c in columns)
    return f'SELECT {listed} FROM "{table}" AS "t1" WHERE {where} LIMIT ?'  # noqa: S608


def _rows(sql: str, params: Sequence[Any], columns: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = [dict(zip(columns, row, strict=True)) for row in run_sql(sql, params).fetchall()]
    as_time = Lead.created_at.python_value
    for row in rows:
        row["created_at"] = as_time(row["created_at"])
        if "erased_at" in row:
            row["erased_at"] = as_time(row["erased_at"])
            row["quarantined"] = bool(row["quarantined"])
    return rows


def leads_by_address(
    email_key: str, email_hash: str, name_hashes: Sequence[str], lead_id: int, limit: int
) -> list[dict[str, Any]]:
    """Leads (erased ones too) with this email key, or whose tombstone holds one of these keyed
    hashes of a name key or this one of the email key; other than `lead_id`."""
    where = (
        f'("t1"."email_key" = ? OR "t1"."erased_name_hash" IN ({_marks(len(name_hashes))}) '
        'OR "t1"."erased_email_hash" = ?) AND "t1"."id" != ?'
    )
    params = [email_key, *name_hashes, email_hash, lead_id, limit]
    return _rows(_selected("lead", _INTAKE_LEAD, where), params, _INTAKE_LEAD)


def leads_by_name_keys(keys: Sequence[str], lead_id: int, limit: int) -> list[dict[str, Any]]:
    """Leads whose name key is one of `keys`, other than `lead_id`."""
    where = f'"t1"."name_key" IN ({_marks(len(keys))}) AND "t1"."id" != ?'
    return _rows(_selected("lead", _INTAKE_LEAD, where), [*keys, lead_id, limit], _INTAKE_LEAD)


def parties_by_name_keys(keys: Sequence[str], limit: int) -> list[dict[str, Any]]:
    """Parties whose name key is one of `keys`."""
    where = f'"t1"."name_key" IN ({_marks(len(keys))})'
    return _rows(_selected("party", _INTAKE_PARTY, where), [*keys, limit], _INTAKE_PARTY)


# ---------------------------------------------------------------------------------------------
# The outbox's leases (leadctl.outbox_claim): one statement to claim a batch, one to record it.

# What a claim may start from (states.MESSAGE_TRANSITIONS), and when: a pending message once
# its attempt is due, a sending one once its lease has lapsed. Parameters: status, now, status,
# now.
_DUE = "((status = ? AND next_attempt_at <= ?) OR (status = ? AND lease_until < ?))"


def claim_messages(
    due: tuple[str, str],
    to: str,
    now: datetime,
    until: datetime,
    limit: int,
    *,
    lane: str,
    webhooks: bool,
) -> list[tuple[Any, ...]]:
    """Move up to `limit` due messages (`due`: the pending and the sending status) to status
    `to` under a lease until `until`, oldest due first: emails, or with `webhooks` those of
    purpose `lane`. Returns their rows, all columns in the model's order, as stored."""
    at = OutboxMessage.next_attempt_at.db_value(now)
    when = (due[0], at, due[1], at)
    params = (to, OutboxMessage.lease_until.db_value(until), *when, lane, limit, *when)
    postgres = not isinstance(database.obj, SqliteDatabase)
    rows: list[tuple[Any, ...]] = run_sql(_claim_sql(webhooks, postgres), params).fetchall()
    return rows


@functools.lru_cache(maxsize=8)
def _claim_sql(webhooks: bool, postgres: bool) -> str:
    columns = ", ".join(f'"{f.column_name}"' for f in OutboxMessage._meta.sorted_fields)
    lane = "purpose = ?" if webhooks else "purpose != ?"
    chosen = (
        f"SELECT id FROM outbox_message WHERE {_DUE} AND {lane} "  # noqa: S608 - constants
        "ORDER BY next_attempt_at, id LIMIT ?"
    )
    if postgres:
        # ARRAY(...) runs the subquery once: as `id IN (...)` PostgreSQL may run it again
        # (a semi-join), each run locking and adding other rows, past the LIMIT.
        chosen = f"id = ANY(ARRAY({chosen} FOR UPDATE SKIP LOCKED))"
    else:
        chosen = f"id IN ({chosen})"
    # Constants and the model's own column names only; every value is a parameter. The due
    # condition again: the claim succeeds only for what is still due.
    return (
        "UPDATE outbox_message SET status = ?, lease_until = ?, attempts = attempts + 1 "  # noqa: S608
        f"WHERE {chosen} AND {_DUE} RETURNING {columns}"
    )


def mark_messages(status: str, sent_at: datetime, ids: Sequence[int]) -> None:
    """Record messages `ids` as delivered (`status`) at `sent_at`, their leases ended."""
    run_sql(
        "UPDATE outbox_message SET status = ?, sent_at = ?, lease_until = NULL, "  # noqa: S608
        f"last_error = NULL WHERE id IN ({_marks(len(ids))})",
        (status, OutboxMessage.sent_at.db_value(sent_at), *ids),
    )
