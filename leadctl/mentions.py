"""Erasure's reach into later leads: a later lead's intake check that named an earlier lead
(a conflict hit) is linked to it (`ConflictMention`), and erasing the earlier lead follows the
link to take its person's name out of the later lead's `conflicts_found` event and attorney
notification. Called at intake (`record`), by erasure (`redact`) and by schema version 7."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from leadctl.db import chunks
from leadctl.models import ConflictMention, Event, Lead, OutboxMessage
from leadctl.redaction import (
    CONFLICTS_FOUND,
    ERASED,
    HIT_KEYS,
    forms,
    locked,
    rewrite_messages,
    template_values,
)

NOTIFICATION = "notification"  # the outbox purpose of the attorney's notification


def named_leads(hits: Sequence[dict[str, Any]]) -> list[int]:
    """The ids of the leads among the hits (an intake check's), each once."""
    found = (h.get("id") for h in hits if isinstance(h, dict) and h.get("source") == "lead")
    # A lead id: an int (not a bool) a database column holds; an old event may hold anything.
    return list(dict.fromkeys(i for i in found if type(i) is int and 0 < i < 2**63))


def record(lead_id: int, hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At intake, inside the submission's transaction, when the check found leads: link each to
    `lead_id`, and return the hits with those erased since the check (made before the write
    lock) in the form a check makes of an erased lead. Nothing is written without a lead hit.

    The links go first: on PostgreSQL each takes a key-share lock on the lead it names, so an
    erasure of that lead running now has either committed (and is seen below) or waits for
    this submission and then finds its link."""
    from leadctl.fastpath import insert_rows

    named = named_leads(hits)
    if not named:
        return hits
    insert_rows(ConflictMention, [{"named": i, "lead": lead_id} for i in named])
    gone: Any = Lead.select(Lead.id).where(Lead.id.in_(named) & Lead.erased_at.is_null(False))
    erased = {row.id for row in gone}
    return [erased_hit(h) if h.get("id") in erased else h for h in hits] if erased else hits


def erased_hit(hit: dict[str, Any]) -> dict[str, Any]:
    """A hit on a lead as the conflict check reports an erased lead (`conflict_hits.hit`):
    source `erased`, no name; its id, reference, date, score and how it matched kept (the
    firm's own facts). A hit that is not a dict is left alone."""
    if not isinstance(hit, dict):
        return hit
    kept = {k: hit.get(k) for k in sorted(HIT_KEYS) if k != "source"}
    return {**kept, "source": "erased", "name": "", "role": None, "matter": None}


def redact(leads: Sequence[Lead]) -> None:
    """Take these leads' persons out of the later leads whose intake check named them: in the
    hits of their `conflicts_found` events (`erased_hit`) and in their notifications (subject,
    text, HTML: each whole form of the name or address as ERASED, as in the digests). The
    leads are read before their rows were emptied (the names of a tombstone are gone: then the
    hits' own names are taken out). The later leads' own name and address stay, even where the
    earlier person's were the same. Inside erasure's transaction; the links are dropped.

    Found through `ConflictMention` by the erased lead (an index look-up), never by reading
    every event. Locked in one order, notifications then events, as erasure's own
    `erase_messages` then `redact_events` take them: two erasures never deadlock."""
    by_id = {lead.id: lead for lead in leads}
    later: dict[int, set[int]] = {}  # later lead → the erased leads it named
    for ids in chunks(list(by_id)):
        query: Any = (
            ConflictMention.select(ConflictMention.lead, ConflictMention.named)
            .where(ConflictMention.named.in_(ids))
            .tuples()
        )
        for lead_id, named in query:
            if lead_id not in by_id:  # erased in this very transaction: its records are gone
                later.setdefault(lead_id, set()).add(named)
    messages = _notifications(list(later))
    hit_names = _redact_hits(later)
    own = _own_values(list(later))
    targets: dict[int, list[str]] = {}
    keep: dict[int, list[str]] = {}
    for message_id, lead_id in messages.items():
        taken = [v for i in later[lead_id] for v in template_values(by_id[i])]
        taken += hit_names.get(lead_id, [])
        mine = forms(own.get(lead_id, ()))
        targets[message_id] = [f for f in forms(taken) if f not in set(mine)]
        keep[message_id] = mine  # "Mary-Ann Lee" stays whole when "Ann Lee" is erased
    rewrite_messages(targets, keep)
    for ids in chunks(list(by_id)):
        ConflictMention.delete().where(
            ConflictMention.named.in_(ids) | ConflictMention.lead.in_(ids)
        ).execute()


def _notifications(lead_ids: list[int]) -> dict[int, int]:
    """The later leads' notifications, locked in id order: {outbox id: lead id}."""
    found: dict[int, int] = {}
    for ids in chunks(sorted(lead_ids)):
        query = locked(
            OutboxMessage.select(OutboxMessage.id, OutboxMessage.lead)
            .where(OutboxMessage.lead.in_(ids) & (OutboxMessage.purpose == NOTIFICATION))
            .order_by(OutboxMessage.id)
        )
        found.update((row.id, row.lead_id) for row in query)
    return found


def _redact_hits(later: dict[int, set[int]]) -> dict[int, list[str]]:
    """Each later lead's `conflicts_found` events (locked in id order) with its hits on the
    erased leads as `erased_hit`; the names those hits gave, by later lead."""
    names: dict[int, list[str]] = {}
    for ids in chunks(sorted(later)):
        rows = locked(
            Event.select(Event.id, Event.lead, Event.details)
            .where(Event.lead.in_(ids) & (Event.kind == CONFLICTS_FOUND))
            .order_by(Event.id)
        )
        for row in rows:
            details = row.details if isinstance(row.details, dict) else {}
            hits = details.get("hits")
            if not isinstance(hits, list):
                continue
            gone = later[row.lead_id]
            new = []
            for hit in hits:
                if isinstance(hit, dict) and hit.get("source") == "lead" and hit.get("id") in gone:
                    name = hit.get("name")
                    if isinstance(name, str) and name != ERASED:
                        names.setdefault(row.lead_id, []).append(name)
                    hit = erased_hit(hit)
                new.append(hit)
            if new != hits:
                # The audit trail's other allowed update: erasure's redaction (tests/test_privacy).
                Event.update(details={**details, "hits": new}).where(Event.id == row.id).execute()
    return names


def _own_values(lead_ids: list[int]) -> dict[int, tuple[str, str]]:
    """Each later lead's own name and address, as its templates got them."""
    own: dict[int, tuple[str, str]] = {}
    for ids in chunks(lead_ids):
        query = Lead.select(Lead.id, Lead.first_name, Lead.last_name, Lead.email).where(
            Lead.id.in_(ids)
        )
        own.update((lead.id, template_values(lead)) for lead in query)
    return own


def backfill(batch: int = 1000) -> int:
    """Schema version 7: link the hits of every `conflicts_found` event written before the
    links existed (read through the event kind's index, a thousand events at a time), then
    follow the links of leads already erased, as an erasure now would. How many links."""
    made = 0
    last = 0
    while True:
        rows: Any = list(
            Event.select(Event.id, Event.lead, Event.details)
            .where((Event.kind == CONFLICTS_FOUND) & (Event.id > last))
            .order_by(Event.id)
            .limit(batch)
            .tuples()
        )
        if not rows:
            break
        pairs = {
            (named, lead_id)
            for _id, lead_id, details in rows
            for named in named_leads(_hits(details))
        }
        made += _link(pairs)
        last = rows[-1][0]
    tombs: Any = (
        Lead.select(Lead.id, Lead.first_name, Lead.last_name, Lead.email)
        .join(ConflictMention, on=ConflictMention.named == Lead.id)
        .where(Lead.erased_at.is_null(False))
        .distinct()
    )
    redact(list(tombs))
    return made


def _hits(details: Any) -> list[dict[str, Any]]:
    hits = details.get("hits") if isinstance(details, dict) else None
    return [h for h in hits if isinstance(h, dict)] if isinstance(hits, list) else []


def _link(pairs: Iterable[tuple[int, int]]) -> int:
    """Insert the links whose named lead still exists (a deleted one has nothing to erase)."""
    from leadctl.fastpath import insert_rows

    wanted = sorted(set(pairs))
    made = 0
    for chunk in chunks(wanted):
        named = {n for n, _lead in chunk}
        existing: Any = Lead.select(Lead.id).where(Lead.id.in_(list(named))).tuples()
        known = {i for (i,) in existing}
        rows = [{"named": n, "lead": lead} for n, lead in chunk if n in known]
        if rows:
            insert_rows(ConflictMention, rows, "ON CONFLICT DO NOTHING")
            made += len(rows)
    return made
