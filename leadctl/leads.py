"""Lead operations: look-ups, listing, state changes, notes and assignment."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from peewee import JOIN, OP, Expression, Field, fn

from leadctl import events
from leadctl.db import is_sqlite
from leadctl.errors import Conflict, InvalidInput, NotFound
from leadctl.models import Attorney, Event, Lead, LeadSearch, Resume, email_key
from leadctl.permissions import Caller, check_change
from leadctl.states import Action, State, target_state
from leadctl.timeutil import iso, utcnow
from leadctl.transactions import write_transaction

if TYPE_CHECKING:
    from leadctl.settings import Settings


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


def resume_of(lead: Lead) -> Resume:
    """The lead's stored resume; NotFound saying why when there is none (erased, or a link)."""
    if lead.erased_at is not None:
        raise NotFound(f"lead {lead.id} was erased on {iso(lead.erased_at)}; its resume is gone")
    if lead.resume_url:
        raise NotFound(
            f"lead {lead.id}'s resume is a link, not a file: {lead.resume_url} "
            "(open it in a browser if you trust it)"
        )
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
    # LEADS_ATTORNEY_SCOPE=own: only this attorney's leads and the inbox's (None: every lead).
    visible_to: int | None = None


def _filtered(q: LeadQuery, now: datetime | None = None):  # type: ignore[no-untyped-def]
    query = (
        Lead.select(Lead, Attorney)
        .join(Attorney, JOIN.LEFT_OUTER)
        .where(Lead.quarantined == q.quarantined)
    )
    if q.state is not None:
        query = query.where(Lead.state == q.state)
    if q.state == State.PENDING or q.overdue is not None:
        # An erased lead is nobody's work: it takes no changes, so no queue or batch holds it.
        query = query.where(Lead.erased_at.is_null())
    if q.attorney is not None:
        query = query.where(Attorney.email == email_key(q.attorney))
    if q.visible_to is not None:
        query = query.where((Lead.attorney == q.visible_to) | Lead.attorney.is_null())
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


def iter_lead_dicts(q: LeadQuery) -> Generator[dict[str, Any], None, None]:
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


def _who(actor: str | Caller) -> str:
    return actor.name if isinstance(actor, Caller) else actor


def allowed(actor: str | Caller, lead: Lead) -> None:
    """A Caller's rights are checked (the staff API, local mode); a plain name is the core's own
    trusted caller (the system, scripts and tests working on the database). Nobody changes an
    erased lead: a note or a reach-out's note would bring personal data back to a tombstone."""
    if isinstance(actor, Caller):
        check_change(actor, lead)
    if lead.erased_at is not None:
        raise Conflict(f"lead {lead.id} was erased on {iso(lead.erased_at)}; it takes no changes")


def change_state(
    ident: str | int, action: Action, actor: str | Caller, note: str | None = None
) -> Outcome:
    """Apply `action` through the transition table; record who, when and the note."""
    if note is not None:
        note = check_note(note, "note")
    with write_transaction():
        lead = find(ident)
        allowed(actor, lead)
        current = State(lead.state)
        target = target_state(action, current)
        if target is None:
            return Outcome(lead_dict(lead), False, f"lead {lead.id} is already {current}")
        now = utcnow()
        lead.state = target
        lead.updated_at = now
        if target == State.REACHED_OUT:
            lead.reached_out_at, lead.reached_out_by = now, _who(actor)
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
        events.record(Event.row(lead.id, now, _who(actor), "state_changed", details))
    return Outcome(lead_dict(lead), True, f"lead {lead.id} is now {target}")


def preview_state(ident: str | int, action: Action, caller: Caller | None = None) -> Outcome:
    """What `change_state` would do, changing nothing (`--dry-run`, the API's `dry_run`); a
    change the caller may not make is refused here as it would be there."""
    lead = find(ident)
    allowed(caller or "preview", lead)
    target = target_state(action, State(lead.state))
    if target is None:
        return Outcome(lead_dict(lead), False, f"lead {lead.id} is already {lead.state}")
    return Outcome(lead_dict(lead), True, f"lead {lead.id} would become {target}")


def add_note(ident: str | int, text: str, actor: str | Caller) -> Outcome:
    text = check_note(text, "text")
    if not text:
        raise InvalidInput([("text", "the note is empty; say what happened")])
    with write_transaction():
        lead = find(ident)
        allowed(actor, lead)
        now = utcnow()
        events.record(Event.row(lead.id, now, _who(actor), "note", {"text": text}))
        Lead.update(updated_at=now).where(Lead.id == lead.id).execute()
        lead.updated_at = now
    return Outcome(lead_dict(lead), True, f"note added to lead {lead.id}")


def assign(
    ident: str | int, attorney_email: str, actor: str | Caller, settings: Settings | None = None
) -> Outcome:
    """Give the lead to another attorney and tell them by email (see leadctl.reassignment)."""
    from leadctl.reassignment import assign as reassign

    return reassign(ident, attorney_email, actor, settings)
