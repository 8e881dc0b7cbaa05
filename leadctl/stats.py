"""Figures for the firm: counts by state, time to first contact, per attorney, overdue leads."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from peewee import JOIN, SQL, NodeList, fn

from leadctl.db import is_sqlite
from leadctl.models import Attorney, Lead
from leadctl.states import State
from leadctl.timeutil import iso, utcnow

OVERDUE_AFTER = timedelta(hours=24)


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    # Nearest-rank percentile: an observed value, easy to explain ("90% were faster than this").
    return ordered[max(math.ceil(fraction * len(ordered)), 1) - 1]


def _summary(durations: list[float]) -> dict[str, Any]:
    return {
        "reached_out": len(durations),
        "median_seconds": statistics.median(durations) if durations else None,
        "p90_seconds": _percentile(durations, 0.9),
    }


def compute(since: datetime | None = None, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    scope = [Lead.quarantined == False]  # noqa: E712 - suspected spam is in no count
    if since is not None:
        scope.append(Lead.created_at >= since)
    # One pass counts by attorney and state (giving both the totals by state and per attorney);
    # only the reached-out leads' durations (plain numbers) come to Python, for median and p90.
    counts = {s.value: 0 for s in State}
    totals: dict[str | None, dict[str, int]] = defaultdict(lambda: {"leads": 0, "pending": 0})
    grouped = (
        Lead.select(Lead.attorney, Lead.state, fn.COUNT(Lead.id))
        .where(*scope)
        .group_by(Lead.attorney, Lead.state)
        .tuples()
    )
    emails: dict[int, str] = dict(Attorney.select(Attorney.id, Attorney.email).tuples())  # type: ignore[arg-type]
    rows: list[tuple[int | None, str, int]] = list(grouped)  # type: ignore[arg-type]
    for attorney_id, state, n in rows:
        counts[state] = counts.get(state, 0) + n
        entry = totals[emails.get(attorney_id) if attorney_id is not None else None]
        entry["leads"] += n
        entry["pending"] += n if state == State.PENDING else 0
    overdue = (
        Lead.select()
        .where(*scope, Lead.state == State.PENDING, Lead.created_at < now - OVERDUE_AFTER)
        .count()
    )
    seconds: Any
    if is_sqlite():
        seconds = (fn.julianday(Lead.reached_out_at) - fn.julianday(Lead.created_at)) * 86400.0
    else:
        seconds = fn.EXTRACT(NodeList((SQL("EPOCH FROM"), Lead.reached_out_at - Lead.created_at)))
    overall: list[float] = []
    per: dict[str | None, list[float]] = defaultdict(list)
    durations = (
        Lead.select(Attorney.email, seconds)
        .join(Attorney, JOIN.LEFT_OUTER)
        .where(*scope, Lead.reached_out_at.is_null(False))
        .tuples()
        .iterator()
    )
    for email, duration in durations:
        value = float(duration)
        overall.append(value)
        per[email].append(value)
    attorneys = [
        {"attorney": email, **totals[email], **_summary(per[email])}
        for email in sorted(totals, key=lambda e: (e is None, e or ""))
    ]
    return {
        "since": iso(since),
        "total": sum(counts.values()),
        "by_state": counts,
        "overdue_24h": overdue,
        "first_contact": _summary(overall),
        "per_attorney": attorneys,
    }
