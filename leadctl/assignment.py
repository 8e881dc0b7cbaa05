"""Who gets a lead: the returning prospect's attorney, else the least recently assigned one; for
one new lead (`choose_attorney`) or for many at once (`choose_many`, a departing attorney's)."""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from peewee import fn

from leadctl import fastpath
from leadctl.db import is_sqlite
from leadctl.models import Attorney, Lead, email_key

ROUND_ROBIN_LOCK = "round-robin"  # fastpath.serialize: the lock every round-robin pick holds
TICK = timedelta(microseconds=1)  # the instants of one batch's picks, apart: their order
NEVER = datetime.min.replace(tzinfo=UTC)


def choose_attorney(email: str, now: datetime) -> tuple[Attorney | None, str]:
    """Pick (attorney or None, reason) and mark the pick; call inside the lead's transaction.

    A returning prospect is recognized whatever the case of the address (`Jane@Example.com` is
    `jane@example.com`). Through the fast path's SQL: this runs for every submission, on the
    intake's one writer.
    """
    reason = "returning prospect"
    row = fastpath.returning_attorney(email_key(email))
    if row is None:
        reason = "round robin"
        row = fastpath.least_recent_attorney()
    if row is None:
        return None, "no active attorney"
    fastpath.mark_assigned(row[0], now)
    return Attorney(id=row[0], name=row[1], email=row[2], active=True), reason


def returning_attorneys(keys: Any) -> dict[str, Attorney]:
    """Email key → the active attorney of that address's latest lead (not quarantined), for
    each key the query `keys` selects that has one: `fastpath.returning_attorney` for many
    addresses in one statement."""
    latest = (
        Lead.select(fn.MAX(Lead.id))
        .join(Attorney)
        .where(Lead.email_key.in_(keys) & (Lead.quarantined == False) & Attorney.active)  # noqa: E712
        .group_by(Lead.email_key)
    )
    query = (
        Lead.select(Lead.email_key, Attorney.id, Attorney.name, Attorney.email)
        .join(Attorney)
        .where(Lead.id.in_(latest))
    )
    rows: list[tuple[str, int, str, str]] = list(query.tuples())  # type: ignore[arg-type]
    return {
        key: Attorney(id=i, name=name, email=email, active=True) for key, i, name, email in rows
    }


def choose_many(
    keys: Sequence[str], returning: Mapping[str, Attorney], now: datetime
) -> list[Attorney] | None:
    """The attorney of each lead (given by its email key, in the order they are to be picked),
    exactly as `choose_attorney` would pick them one after another at `now`, `now` + 1 µs, …;
    None when no attorney is active. `returning` is `returning_attorneys` of these keys. Call
    inside the transaction that moves the leads, after `fastpath.serialize(ROUND_ROBIN_LOCK)`.

    One read of the attorneys, the picks made in memory, and one UPDATE per attorney picked
    (their last mark): a few statements for any number of leads, where one pick at a time took
    three round trips a lead (29.8 s for 10,000 on PostgreSQL).
    """
    fastpath.serialize(ROUND_ROBIN_LOCK)  # taken already by the caller; held to the commit
    marks: dict[int, datetime | None] = {}
    active: dict[int, Attorney] = {}
    for attorney in Attorney.select(
        Attorney.id, Attorney.name, Attorney.email, Attorney.active, Attorney.last_assigned_at
    ):
        marks[attorney.id] = attorney.last_assigned_at
        if attorney.active:
            active[attorney.id] = attorney
    if not active:
        return None
    # PostgreSQL's mark is never before the latest one (fastpath.mark_assigned); SQLite's is `now`.
    monotonic = not is_sqlite()
    latest = max((m for m in marks.values() if m is not None), default=None)
    # The line: active attorneys, least recently assigned first, never assigned before all (as
    # fastpath's ORDER BY last_assigned_at NULLS FIRST, id). A pick adds the attorney again
    # with their new mark; the entry with their old one is dropped when it comes to the front.
    line = [(_place(marks[i]), i) for i in active]
    heapq.heapify(line)
    picked: list[Attorney] = []
    for step, key in enumerate(keys):
        chosen = returning.get(key)
        if chosen is None:
            while line[0][0] != _place(marks[line[0][1]]):
                heapq.heappop(line)
            chosen = active[line[0][1]]
        mark = now + step * TICK
        if monotonic and latest is not None and mark <= latest:
            mark = latest + TICK
        latest = mark if latest is None else max(latest, mark)
        marks[chosen.id] = mark
        heapq.heappush(line, (_place(mark), chosen.id))
        picked.append(chosen)
    for attorney_id in sorted({a.id for a in picked}):
        Attorney.update(last_assigned_at=marks[attorney_id]).where(
            Attorney.id == attorney_id
        ).execute()
    return picked


def _place(mark: datetime | None) -> tuple[bool, datetime]:
    """Where a mark puts an attorney in round robin's line: never assigned first, then oldest."""
    return (mark is not None, mark or NEVER)
