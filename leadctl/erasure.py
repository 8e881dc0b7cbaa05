"""Erasure: which leads, and their personal data removed in one transaction, a tombstone and its
keyed hashes kept, the audit trail and emails redacted (by `leadctl.redaction`, never deleted),
and SQLite's files left holding none of it."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from peewee import (
    SQL,
    Case,
    EnclosedNodeList,
    Entity,
    NodeList,
    OperationalError,
    SqliteDatabase,
    Value,
)

from leadctl import events, mentions
from leadctl.db import chunks
from leadctl.errors import NotFound, StorageUnavailable
from leadctl.models import (
    Event,
    IdempotencyKey,
    Lead,
    LeadSearch,
    NameToken,
    OutboxMessage,
    Resume,
    database,
)
from leadctl.names import keyed_hash
from leadctl.redaction import (
    erase_messages,
    locked,
    redact_digests,
    redact_events,
)
from leadctl.states import MessageStatus
from leadctl.timeutil import iso, utcnow
from leadctl.transactions import write_transaction

log = logging.getLogger("leadctl.erasure")

_REFERENCE = re.compile(r"^[0-9A-Z]{4}-?[0-9A-Z]{4}$")


@dataclass
class Erasure:
    """What one call did: `changed` (erased now), `unchanged` (erased before), `failed` (not
    found, or an email to the lead is being sent this moment)."""

    changed: list[dict[str, Any]] = field(default_factory=list)
    unchanged: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"changed": self.changed, "unchanged": self.unchanged, "failed": self.failed}


# ---------------------------------------------------------------------------------------------
# Which leads


def resolve(idents: Iterable[str | int]) -> tuple[list[int], list[dict[str, Any]]]:
    """(ids of the leads named, in the order given, each once; failures `{"id", "error"}`).

    Ids and references are looked up in batches: ten thousand ids are a few queries. Anything
    else (`1;DROP`, an empty string, a 40-digit number) is "no lead", never SQL.
    """
    ids: dict[int, str] = {}
    refs: dict[str, str] = {}
    failed: list[dict[str, Any]] = []
    order: list[tuple[str, str, int | str]] = []
    for raw in idents:
        text = str(raw).strip()
        if text.isascii() and text.isdigit() and len(text) <= 15:
            ids[int(text)] = text
            order.append(("id", text, int(text)))
        elif text.isascii() and _REFERENCE.match(text.upper()):
            ref = text.upper().replace("-", "")
            ref = f"{ref[:4]}-{ref[4:]}"
            refs[ref] = text
            order.append(("ref", text, ref))
        else:
            order.append(("bad", text, text))
    found_ids: set[int] = set()
    for chunk in chunks(list(ids)):
        found_ids.update(r.id for r in Lead.select(Lead.id).where(Lead.id.in_(chunk)))
    by_ref: dict[str, int] = {}
    for chunk in chunks(list(refs)):
        by_ref.update(
            (r.reference, r.id)
            for r in Lead.select(Lead.id, Lead.reference).where(Lead.reference.in_(chunk))
        )
    result: dict[int, None] = {}
    for kind, text, key in order:
        lead_id = key if kind == "id" and key in found_ids else by_ref.get(str(key))
        if kind == "bad" or lead_id is None:
            failed.append({"id": text, "error": f"no lead {text}"})
        else:
            result[int(lead_id)] = None
    return list(result), failed


def preview(lead_ids: Sequence[int]) -> list[dict[str, Any]]:
    """What erasing these leads would remove (`--dry-run`): names, address, counts."""
    items = []
    for chunk in chunks(list(lead_ids)):
        rows = Lead.select().where(Lead.id.in_(chunk)).order_by(Lead.id)
        for lead in rows:
            items.append(
                {
                    "id": lead.id,
                    "reference": lead.reference,
                    "first_name": lead.first_name,
                    "last_name": lead.last_name,
                    "email": lead.email,
                    "created_at": iso(lead.created_at),
                    "state": lead.state,
                    "erased_at": iso(lead.erased_at),
                    "resume": Resume.select().where(Resume.lead == lead.id).exists(),
                    "events": Event.select().where(Event.lead == lead.id).count(),
                    "messages": OutboxMessage.select().where(OutboxMessage.lead == lead.id).count(),
                }
            )
    return items


# ---------------------------------------------------------------------------------------------
# Erasing


def erase(
    idents: Iterable[str | int],
    actor: str,
    reason: str,
    *,
    kind: str = "erased",
    now: datetime | None = None,
) -> Erasure:
    """Erase the leads named (ids or references) in ONE transaction; see `erase_ids`."""
    lead_ids, failed = resolve(idents)
    result = erase_ids(lead_ids, actor, reason, kind=kind, now=now)
    result.failed[:0] = failed
    return result


def erase_person(email: str, actor: str, reason: str, *, now: datetime | None = None) -> Erasure:
    """Erase every lead filed under the address, whatever its case, in one transaction."""
    from leadctl.person import person_leads

    live, gone = person_leads(email)
    if not live and not gone:
        raise NotFound(f"no lead has the address {email.strip()}")
    result = erase_ids(live, actor, reason, now=now)
    known = {item["id"] for item in result.changed + result.unchanged}
    for tomb in gone:
        if tomb["id"] not in known:
            result.unchanged.append(
                {**tomb, "message": already_erased(tomb["id"], tomb["erased_at"])}
            )
    return result


def erase_ids(
    lead_ids: Sequence[int],
    actor: str,
    reason: str,
    *,
    kind: str = "erased",
    now: datetime | None = None,
    merge_search: bool = True,
) -> Erasure:
    """Remove the personal data of these leads in ONE transaction.

    Gone: names, address (and its compared forms), the resume (bytes and link), the name words,
    idempotency keys, the subjects and bodies of the lead's emails (unsent ones are cancelled),
    its name and address in the quarantine digests that list it and in the conflict hits and
    notifications of later leads whose intake check named it (`leadctl.mentions`), and every
    value in its events' details that is not the firm's own (`leadctl.redaction`). Kept: id,
    reference, dates, state, attorney, consent, and keyed hashes of the name and address key.
    An `erased` (or `purged`) event records `actor` and `reason`. An erased lead is left as it
    is; a lead with an email being sent this moment is refused (try again once it is sent).
    `merge_search` False leaves `forget_erased_text` to the caller (a purge, once at its end).
    """
    now = now or utcnow()
    result = Erasure()
    if not lead_ids:
        return result
    keyed_hash("")  # the secret exists before the transaction: making it is a write of its own
    with _deleted_bytes_zeroed(), write_transaction():
        erased: list[Lead] = []
        for chunk in chunks(list(lead_ids)):
            erased += _erase_chunk(chunk, actor, reason, kind, now, result)
        # Once, after every lead is locked: the later leads that named them, then the digests,
        # each locked in one order.
        mentions.redact(erased)
        redact_digests(erased)
    if result.changed and merge_search:
        forget_erased_text()
    return result


def forget_erased_text() -> None:
    """SQLite, after an erasure has committed: merge the search index so no erased name's
    trigrams are left in it (`_merge_search_index`), then checkpoint the WAL so the database
    file's pages no longer hold the old text and the WAL file is emptied. Best effort: the
    erasure is done either way, and what cannot be done now (a reader holds the WAL, the lock
    is busy) is done by SQLite's next checkpoint and the next erasure's merge."""
    db = database.obj
    if not isinstance(db, SqliteDatabase):
        return
    try:
        with _deleted_bytes_zeroed(), write_transaction():
            _merge_search_index()
        db.pragma("wal_checkpoint", "TRUNCATE")
    except (StorageUnavailable, OperationalError) as exc:
        log.warning("erasure: the search index or the WAL could not be cleared now (%s)", exc)


def _erase_chunk(
    chunk: list[int], actor: str, reason: str, kind: str, now: datetime, result: Erasure
) -> list[Lead]:
    """Erase the leads of one chunk; the leads erased, as they were read (with their data)."""
    # Locked in id order (PostgreSQL): a reach-out or a note in flight finishes first, and two
    # erasures never deadlock. SQLite's write lock was taken at BEGIN.
    leads = list(
        locked(
            Lead.select(
                Lead.id,
                Lead.reference,
                Lead.first_name,
                Lead.last_name,
                Lead.email,
                Lead.email_key,
                Lead.name_key,
                Lead.erased_at,
            )
            .where(Lead.id.in_(chunk))
            .order_by(Lead.id)
        )
    )
    busy = _sending(chunk, now)
    todo = []
    for lead in leads:
        if lead.erased_at is not None:
            result.unchanged.append(_tomb(lead, already_erased(lead.id, iso(lead.erased_at))))
        elif lead.id in busy:
            result.failed.append(
                {
                    "id": str(lead.id),
                    "error": f"an email about lead {lead.id} is being sent right now; "
                    f"try again after {iso(busy[lead.id])}",
                }
            )
        else:
            todo.append(lead)
    if not todo:
        return todo
    ids = [lead.id for lead in todo]
    # One UPDATE for the chunk: each lead's own hashes through CASE (peewee spends milliseconds
    # building an UPDATE; ten thousand of them were most of an erasure of 10,000 leads).
    names = [(lead.id, keyed_hash(lead.name_key) if lead.name_key else None) for lead in todo]
    emails = [(lead.id, keyed_hash(lead.email_key) if lead.email_key else None) for lead in todo]
    Lead.update(
        first_name="",
        last_name="",
        email="",
        email_key="",
        name_key="",
        search_key="",
        resume_url=None,
        erased_at=now,
        updated_at=now,
        erased_name_hash=Case(Lead.id, names),
        erased_email_hash=Case(Lead.id, emails),
    ).where(Lead.id.in_(ids)).execute()
    for table in (Resume, NameToken, IdempotencyKey):
        table.delete().where(table.lead.in_(ids)).execute()
    erase_messages(todo)
    redact_events(todo)
    events.record(*(Event.row(i, now, actor, kind, {"reason": reason}) for i in ids))
    for lead in todo:
        lead.erased_at = now
        result.changed.append(_tomb(lead, f"lead {lead.id} ({lead.reference}) erased"))
    return todo


def _sending(ids: list[int], now: datetime) -> dict[int, datetime]:
    """Leads with an email claimed by a worker whose lease still runs: {lead id: lease end}.

    Its worker holds the text in memory and will record the delivery (with the recipient) once
    done; erasing meanwhile would leave that record behind.
    """
    rows = locked(
        OutboxMessage.select(OutboxMessage.lead, OutboxMessage.lease_until)
        .where(
            OutboxMessage.lead.in_(ids)
            & (OutboxMessage.status == MessageStatus.SENDING.value)
            & (OutboxMessage.lease_until >= now)
        )
        .order_by(OutboxMessage.id)
    )
    busy: dict[int, datetime] = {}
    for row in rows:
        if row.lead_id is not None:
            busy[row.lead_id] = max(row.lease_until, busy.get(row.lead_id, row.lease_until))
    return busy


@contextlib.contextmanager
def _deleted_bytes_zeroed() -> Iterator[None]:
    """SQLite: overwrite what erasure deletes (the resume's pages, a name's old bytes in its
    page) with zeros instead of leaving it in free space, on this connection while erasing."""
    db = database.obj
    if not isinstance(db, SqliteDatabase):
        yield
        return
    db.pragma("secure_delete", 1)
    try:
        yield
    finally:
        db.pragma("secure_delete", 0)


def _merge_search_index() -> None:
    """SQLite: FTS5 keeps a deleted name's trigrams in its older segments (and the delete
    markers hold them too) until the segments are merged; merge them all now (`optimize`).
    SQLite 3.42's FTS5 `secure-delete` option would remove them at once; this is 3.40.
    It rewrites the whole index: about 1 s at 250,000 leads (bench/privacy.py)."""
    db = database.obj
    if isinstance(db, SqliteDatabase):  # PostgreSQL's trigram index is the column's own
        # FTS5's command: INSERT INTO lead_search (lead_search) VALUES ('optimize'), built by
        # peewee as playhouse's FTS5Model.optimize() builds it.
        table = Entity(LeadSearch._meta.table_name)
        command = NodeList(
            (
                SQL("INSERT INTO"),
                table,
                EnclosedNodeList([table]),
                SQL("VALUES"),
                EnclosedNodeList([Value("optimize")]),
            )
        )
        db.execute(command)


def _tomb(lead: Lead, message: str) -> dict[str, Any]:
    return {
        "id": lead.id,
        "reference": lead.reference,
        "erased_at": iso(lead.erased_at),
        "message": message,
    }


def already_erased(lead_id: int, when: str | None) -> str:
    return f"lead {lead_id} was already erased on {when}; nothing to do"
