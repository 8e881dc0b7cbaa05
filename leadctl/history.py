"""The audit trail across all leads: events filtered by lead, actor, kind and time, newest first."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadctl.conflict_hits import withhold_event
from leadctl.events import KINDS
from leadctl.models import Event, Lead
from leadctl.timeutil import iso

MAX_KINDS = 50  # a kind list is a few names; a pasted file is a mistake


@dataclass(frozen=True)
class HistoryQuery:
    """Filters of `leadctl history`; None (or empty) means "any". Newest first, paged by id."""

    lead: int | None = None
    actor: str | None = None
    kinds: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None  # the cursor: only events older than this one
    limit: int | None = 50
    # `LEADS_ATTORNEY_SCOPE=own` for a non-admin: only events of this attorney's leads and the
    # inbox's (`permissions.reads_only`); None reads every lead's.
    visible_to: int | None = None


def parse_kinds(values: Sequence[str]) -> tuple[str, ...]:
    """`--action` values, repeated or comma separated, trimmed and lowercased, each once; a
    ValueError names a kind that does not exist (a typo would otherwise match nothing)."""
    kinds: dict[str, None] = {}
    for value in values:
        for part in value.split(","):
            kind = part.strip().lower()
            if kind:
                kinds[kind] = None
    if len(kinds) > MAX_KINDS:
        raise ValueError(f"at most {MAX_KINDS} kinds of event at once")
    for kind in kinds:
        if kind not in KINDS:
            shown = kind if len(kind) <= 40 else kind[:40] + "…"
            raise ValueError(
                f"--action {shown!r} is not a kind of event; the kinds are: {', '.join(KINDS)}"
            )
    return tuple(kinds)


def events(q: HistoryQuery) -> Iterator[dict[str, Any]]:
    """The matching events, newest first (highest id first), each with its lead's reference.

    Ordered by id, the order they were written in: the primary key walks backwards and stops at
    the limit. With a filter, the index on the filtered column does the walking (see the
    schema's event indexes).
    """
    query = (
        Event.select(
            Event.id, Event.lead, Lead.reference, Event.at, Event.actor, Event.kind, Event.details
        )
        .join(Lead)
        .order_by(Event.id.desc())
    )
    if q.lead is not None:
        query = query.where(Event.lead == q.lead)
    if q.visible_to is not None:
        query = query.where((Lead.attorney == q.visible_to) | Lead.attorney.is_null())
    if q.actor is not None:
        actor = q.actor.strip()
        query = query.where(Event.actor == (actor.lower() if "@" in actor else actor))
    if q.kinds:
        query = query.where(Event.kind.in_(list(q.kinds)))
    if q.since is not None:
        query = query.where(Event.at >= q.since)
    if q.until is not None:
        query = query.where(Event.at < q.until)
    if q.before_id is not None:
        query = query.where(Event.id < q.before_id)
    if q.limit is not None:
        query = query.limit(q.limit)
    rows: Any = query.tuples()
    for event_id, lead_id, reference, at, actor, kind, details in rows:
        if kind == "conflicts_found":
            details = withhold_event(details, q.visible_to)  # as `show` shows them
        yield {
            "id": event_id,
            "lead_id": lead_id,
            "reference": reference,
            "at": iso(at),
            "actor": actor,
            "kind": kind,
            "details": details,
        }
