"""Figures for the firm: counts by state, time to first contact, per attorney, overdue leads."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from peewee import SQL, fn

from leadctl.models import Attorney, Lead, OutboxMessage
from leadctl.states import State
from leadctl.timeutil import iso, utcnow

OVERDUE_AFTER = timedelta(hours=24)


def _summary(scope: list[Any], reached: int) -> dict[str, Any]:
    """Median and p90 of the time to first contact of the `reached` leads in `scope`.

    Read off the `(quarantined, …, state, reached_out_seconds)` indexes at two offsets, instead
    of bringing every duration to Python. The median of an even count is the mean of the middle
    two; p90 is the nearest rank, an observed value ("90% were reached faster than this").
    """
    if reached == 0:
        return {"reached_out": 0, "median_seconds": None, "p90_seconds": None}
    durations = (
        Lead.select(Lead.reached_out_seconds)
        .where(*scope, Lead.state == State.REACHED_OUT, Lead.reached_out_seconds.is_null(False))
        .order_by(Lead.reached_out_seconds)
    )

    def at(offset: int, n: int = 1) -> list[float]:
        rows: list[tuple[float]] = list(durations.limit(n).offset(offset).tuples())  # type: ignore[arg-type]
        return [row[0] for row in rows]

    middle = at((reached - 1) // 2, 2 if reached % 2 == 0 else 1)
    p90 = at(max(math.ceil(0.9 * reached), 1) - 1)
    return {
        "reached_out": reached,
        "median_seconds": sum(middle) / len(middle) if middle else None,
        "p90_seconds": p90[0] if p90 else None,
    }


def nudges(since: datetime | None = None) -> tuple[int, int]:
    """How many reminders and escalations were sent (since `since`): counted from the outbox's
    (purpose, created_at) index. Counting `Lead.reminded_at` read every lead (0.9 s of a
    million); erasure blanks these emails but keeps their rows, so the counts stay."""

    def sent(purpose: str) -> int:
        query = OutboxMessage.select().where(OutboxMessage.purpose == purpose)
        if since is not None:
            query = query.where(OutboxMessage.created_at >= since)
        return int(query.count())

    return sent("reminder"), sent("escalation")


def compute(since: datetime | None = None, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    scope = [Lead.quarantined == False]  # noqa: E712 - suspected spam is in no count
    if since is not None:
        scope.append(Lead.created_at >= since)
    # One pass over an index counts by attorney and state, giving the totals by state, per
    # attorney, and how many durations each attorney has.
    counts = {s.value: 0 for s in State}  # the leads still held, by state
    erased = 0
    totals: dict[int | None, dict[str, int]] = defaultdict(
        lambda: {"leads": 0, "pending": 0, "reached": 0}
    )
    timed = fn.COUNT(Lead.reached_out_seconds)
    # An erased lead keeps its state and dates, so it counts in the total and the timings, but
    # it is nobody's work: it is counted apart from the states, in no pending count, never
    # overdue.
    live = fn.COUNT(Lead.id).filter(Lead.erased_at.is_null())
    grouped = (
        Lead.select(Lead.attorney, Lead.state, fn.COUNT(SQL("*")), timed, live)
        .where(*scope)
        .group_by(Lead.attorney, Lead.state)
        .tuples()
    )
    rows: list[tuple[int | None, str, int, int, int]] = list(grouped)  # type: ignore[arg-type]
    for attorney_id, state, n, with_duration, not_erased in rows:
        counts[state] = counts.get(state, 0) + not_erased
        erased += n - not_erased
        entry = totals[attorney_id]
        entry["leads"] += n
        entry["pending"] += not_erased if state == State.PENDING else 0
        entry["reached"] += with_duration if state == State.REACHED_OUT else 0
    overdue = (
        Lead.select()
        .where(
            *scope,
            Lead.state == State.PENDING,
            Lead.created_at < now - OVERDUE_AFTER,
            Lead.erased_at.is_null(),
        )
        .count()
    )
    reminded, escalated = nudges(since)
    emails: dict[int, str] = dict(Attorney.select(Attorney.id, Attorney.email).tuples())  # type: ignore[arg-type]

    def attorney_row(attorney_id: int | None) -> dict[str, Any]:
        entry = totals[attorney_id]
        mine = Lead.attorney.is_null() if attorney_id is None else Lead.attorney == attorney_id
        return {
            "attorney": emails.get(attorney_id) if attorney_id is not None else None,
            "leads": entry["leads"],
            "pending": entry["pending"],
            **_summary([*scope, mine], entry["reached"]),
        }

    attorneys = sorted(
        (attorney_row(a) for a in totals),
        key=lambda row: (row["attorney"] is None, row["attorney"] or ""),
    )
    return {
        "since": iso(since),
        "total": sum(counts.values()) + erased,
        "by_state": counts,
        "erased": erased,
        "overdue_24h": overdue,
        "reminded": reminded,
        "escalated": escalated,
        "first_contact": _summary(scope, sum(t["reached"] for t in totals.values())),
        "per_attorney": attorneys,
    }
