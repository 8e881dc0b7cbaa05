"""Lead operations: look-ups, listing, state changes, notes and assignment."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from peewee import JOIN, OP, Expression, Field, fn

from leadctl import events
from leadctl.db import is_sqlite
from leadctl.errors import InvalidInput, LeadctlError, NotFound
from leadctl.models import Attorney, Event, Lead, LeadSearch, Resume, email_key
from leadctl.states import Action, State, target_state
from leadctl.timeutil import iso, utcnow
from leadctl.transactions import write_transaction


def fold(text: str) -> str:
    """Case- and accent-insensitive form used for search: `Zoë Ñúñez` → `zoe nunez`."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


# ---------------------------------------------------------------------------------------------
# Reading


def find(ident: str | int, *, include_quarantined: bool = False) -> Lead:
    """The lead by integer id or by reference (case-insensitive, dash optional).

    Quarantined leads (suspected spam) are found only when asked for.
    """
    text = str(ident).strip()
    query = Lead.select(Lead, Attorney).join(Attorney, JOIN.LEFT_OUTER)
    if not include_quarantined:
        query = query.where(Lead.quarantined == False)  # noqa: E712
    if text.isascii() and text.isdigit():
        # Beyond 2^53 no lead id exists, and SQLite cannot even take the number.
        lead = query.where(Lead.id == int(text)).first() if len(text) <= 15 else None
    else:
        ref = text.upper().replace("-", "")
        lead = (
            query.where(Lead.reference == f"{ref[:4]}-{ref[4:]}").first() if len(ref) == 8 else None
        )
    if lead is None:
        raise NotFound(f"no lead {text}")
    return lead


# The lead's fields in the API's names and order, each with the column it is read from: the one
# list that `lead_dict` and `iter_lead_dicts` both follow.
LEAD_FIELDS: dict[str, Field] = {
    "id": Lead.id,
    "reference": Lead.reference,
    "first_name": Lead.first_name,
    "last_name": Lead.last_name,
    "email": Lead.email,
    "state": Lead.state,
    "attorney": Attorney.email,
    "created_at": Lead.created_at,
    "updated_at": Lead.updated_at,
    "reached_out_at": Lead.reached_out_at,
    "reached_out_by": Lead.reached_out_by,
}
_TIMES = ("created_at", "updated_at", "reached_out_at")


def lead_dict(lead: Lead) -> dict[str, Any]:
    """The lead in the API's field names; `attorney` is an email or None."""
    data: dict[str, Any] = {}
    for name in LEAD_FIELDS:
        if name == "attorney":
            attorney = lead.attorney if lead.attorney_id is not None else None
            data[name] = attorney.email if attorney is not None else None
        elif name in _TIMES:
            data[name] = iso(getattr(lead, name))
        else:
            data[name] = getattr(lead, name)
    return data


def detail_dict(lead: Lead) -> dict[str, Any]:
    """The lead with its resume metadata (never the bytes) and its history, oldest first."""
    resume = (
        Resume.select(Resume.filename, Resume.content_type, Resume.size, Resume.sha256)
        .where(Resume.lead == lead.id)
        .first()
    )
    events = Event.select().where(Event.lead == lead.id).order_by(Event.at, Event.id)
    data = lead_dict(lead)
    data["resume"] = (
        {
            "filename": resume.filename,
            "content_type": resume.content_type,
            "size": resume.size,
            "sha256": resume.sha256,
        }
        if resume
        else None
    )
    data["events"] = [
        {"at": iso(e.at), "actor": e.actor, "kind": e.kind, "details": e.details} for e in events
    ]
    # A returning prospect: their earlier leads, so the attorney sees the whole story.
    data["earlier_leads"] = [
        row.id
        for row in Lead.select(Lead.id)
        .where((Lead.email == lead.email) & (Lead.id < lead.id) & (Lead.quarantined == False))  # noqa: E712
        .order_by(Lead.id)
    ]
    data["quarantined"] = bool(lead.quarantined)
    data["quarantine_reason"] = lead.quarantine_reason
    return data


def resume_of(lead: Lead) -> Resume:
    resume = Resume.get_or_none(Resume.lead == lead.id)
    if resume is None:
        raise NotFound(f"lead {lead.id} has no resume")
    return resume


@dataclass(frozen=True)
class LeadQuery:
    """Filters of `list`, `export` and `GET /api/v1/leads`; None means "any"."""

    state: State | None = None
    attorney: str | None = None
    search: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    overdue: timedelta | None = None
    before_id: int | None = None
    limit: int | None = 50
    quarantined: bool = False  # True lists only suspected spam; False (normal) never shows it


def _filtered(q: LeadQuery, now: datetime | None = None):  # type: ignore[no-untyped-def]
    query = (
        Lead.select(Lead, Attorney)
        .join(Attorney, JOIN.LEFT_OUTER)
        .where(Lead.quarantined == q.quarantined)
    )
    if q.state is not None:
        query = query.where(Lead.state == q.state)
    if q.attorney is not None:
        query = query.where(Attorney.email == email_key(q.attorney))
    if term := _search_term(q):
        query = _matching(query, term)
    if q.since is not None:
        query = query.where(Lead.created_at >= q.since)
    if q.until is not None:
        query = query.where(Lead.created_at < q.until)
    if q.overdue is not None:
        cutoff = (now or utcnow()) - q.overdue
        query = query.where((Lead.state == State.PENDING) & (Lead.created_at < cutoff))
    return query


def _search_term(q: LeadQuery) -> str:
    return fold(q.search.strip()) if q.search else ""


def _uses_search_table(q: LeadQuery) -> bool:
    return is_sqlite() and len(_search_term(q)) >= 3


def _matching(query: Any, term: str) -> Any:
    """Leads whose name or email contains `term` (already folded), through the trigram index.

    A `%` or `_` the user types is matched literally. Terms under three characters have no
    trigram, and are matched by reading the leads (instr on SQLite; on PostgreSQL the planner
    decides).
    """
    if not is_sqlite():
        # LIKE, which pg_trgm's index serves; backslash is PostgreSQL's default LIKE escape.
        escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return query.where(Expression(Lead.search_key, OP.LIKE, f"%{escaped}%"))
    if len(term) < 3:
        return query.where(fn.instr(Lead.search_key, term) > 0)
    phrase = '"' + term.replace('"', '""') + '"'
    return query.join_from(Lead, LeadSearch, on=(LeadSearch.rowid == Lead.id)).where(
        Expression(LeadSearch.search_key, "MATCH", phrase)
    )


def count(q: LeadQuery) -> int:
    return _filtered(q).count()


def _ordered(q: LeadQuery, query: Any) -> Any:
    # With the search table in the query, order and page by its rowid (the lead's id): FTS5
    # then hands out matches newest first and the query stops at the limit.
    key = LeadSearch.rowid if _uses_search_table(q) else Lead.id
    if q.before_id is not None:
        query = query.where(key < q.before_id)
    query = query.order_by(key.desc())
    return query.limit(q.limit) if q.limit is not None else query


def iter_lead_dicts(q: LeadQuery) -> Iterator[dict[str, Any]]:
    """Matching leads, newest first (highest id first), after the cursor, shaped like
    `lead_dict` — streamed as plain rows: a million leads' model objects would cost seconds."""
    query = _ordered(q, _filtered(q).select(*LEAD_FIELDS.values()))
    names = tuple(LEAD_FIELDS)
    as_iso = Lead.created_at.iso
    for row in _stream(query):
        item = dict(zip(names, row, strict=True))
        for key in _TIMES:
            item[key] = as_iso(item[key])
        yield item


def _stream(query: Any) -> Iterator[tuple[Any, ...]]:
    """Rows as the driver gives them, one by one in constant memory. SQLite's cursor streams by
    itself; psycopg fetches a whole result unless it is a named (server-side) cursor, which lives
    in a transaction."""
    db = Lead._meta.database
    if is_sqlite():
        # The driver's own rows, without peewee's per-value conversion (see UtcDateTimeField.iso).
        yield from db.execute(query)
        return
    sql, params = query.sql()
    with db.atomic(), db.connection().cursor(name=f"leadctl_{uuid.uuid4().hex}") as cursor:
        cursor.itersize = 2000
        cursor.execute(sql, params)
        yield from cursor


# ---------------------------------------------------------------------------------------------
# Changing


NOTE_MAX = 4000


def check_note(text: str, field: str) -> str:
    """A note trimmed, with CRLF as LF; InvalidInput naming `field` when too long or when it
    holds a control character other than newline and tab (a terminal would act on it)."""
    text = text.replace("\r\n", "\n").strip()
    if len(text) > NOTE_MAX:
        raise InvalidInput(
            [(field, f"the note must be at most {NOTE_MAX:,} characters (got {len(text):,})")]
        )
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in text):
        raise InvalidInput(
            [(field, "the note must not contain control characters other than newline and tab")]
        )
    return text


@dataclass
class Outcome:
    """What a change did to one lead: `changed` False means it was already so (not a failure)."""

    lead: dict[str, Any]
    changed: bool
    message: str
    extra: dict[str, Any] = field(default_factory=dict)


def change_state(ident: str | int, action: Action, actor: str, note: str | None = None) -> Outcome:
    """Apply `action` through the transition table; record who, when and the note."""
    if note is not None:
        note = check_note(note, "note")
    with write_transaction():
        lead = find(ident)
        current = State(lead.state)
        target = target_state(action, current)
        if target is None:
            return Outcome(lead_dict(lead), False, f"lead {lead.id} is already {current}")
        now = utcnow()
        lead.state = target
        lead.updated_at = now
        if target == State.REACHED_OUT:
            lead.reached_out_at, lead.reached_out_by = now, actor
            lead.reached_out_seconds = (now - lead.created_at).total_seconds()
        else:
            lead.reached_out_at, lead.reached_out_by, lead.reached_out_seconds = None, None, None
        lead.save(
            only=[
                Lead.state,
                Lead.updated_at,
                Lead.reached_out_at,
                Lead.reached_out_by,
                Lead.reached_out_seconds,
            ]
        )
        details: dict[str, Any] = {"from": current.value, "to": target.value}
        if note:
            details["note"] = note
        events.record(Event.row(lead.id, now, actor, "state_changed", details))
    return Outcome(lead_dict(lead), True, f"lead {lead.id} is now {target}")


def preview_state(ident: str | int, action: Action) -> Outcome:
    """What `change_state` would do, changing nothing (`--dry-run`, the API's `dry_run`)."""
    lead = find(ident)
    target = target_state(action, State(lead.state))
    if target is None:
        return Outcome(lead_dict(lead), False, f"lead {lead.id} is already {lead.state}")
    return Outcome(lead_dict(lead), True, f"lead {lead.id} would become {target}")


def add_note(ident: str | int, text: str, actor: str) -> Outcome:
    text = check_note(text, "text")
    if not text:
        raise InvalidInput([("text", "the note is empty; say what happened")])
    with write_transaction():
        lead = find(ident)
        now = utcnow()
        events.record(Event.row(lead.id, now, actor, "note", {"text": text}))
        Lead.update(updated_at=now).where(Lead.id == lead.id).execute()
        lead.updated_at = now
    return Outcome(lead_dict(lead), True, f"note added to lead {lead.id}")


def assign(ident: str | int, attorney_email: str, actor: str) -> Outcome:
    with write_transaction():
        lead = find(ident)
        attorney = Attorney.get_or_none(Attorney.email == email_key(attorney_email))
        if attorney is None:
            raise NotFound(f"no attorney {attorney_email}; see: leadctl attorney list")
        if not attorney.active:
            raise LeadctlError(f"attorney {attorney.email} is deactivated")
        if lead.attorney_id == attorney.id:
            return Outcome(
                lead_dict(lead), False, f"lead {lead.id} is already assigned to {attorney.email}"
            )
        previous = lead.attorney.email if lead.attorney is not None else None
        now = utcnow()
        Lead.update(attorney=attorney, updated_at=now).where(Lead.id == lead.id).execute()
        details = {"attorney": attorney.email, "previous": previous, "reason": "manual"}
        events.record(Event.row(lead.id, now, actor, "assigned", details))
        lead.attorney, lead.updated_at = attorney, now
    return Outcome(lead_dict(lead), True, f"lead {lead.id} assigned to {attorney.email}")
