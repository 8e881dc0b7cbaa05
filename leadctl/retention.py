"""Retention: leads older than a cutoff erased (`leadctl purge`, and daily by `LEADS_RETENTION`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from leadctl.erasure import erase_ids, forget_erased_text
from leadctl.models import Lead
from leadctl.settings import Settings
from leadctl.states import State
from leadctl.timeutil import iso, utcnow

BATCH = 1000  # leads per transaction: intake waits on the write lock for one batch at most


@dataclass
class Purge:
    """What a purge did (or, dry, would do): the leads' ids, and those left for next time
    because an email about them was being sent."""

    cutoff: str
    dry_run: bool
    erased: list[int] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        key = "would_erase" if self.dry_run else "erased"
        return {
            "cutoff": self.cutoff,
            "dry_run": self.dry_run,
            "count": len(self.erased),
            key: self.erased,
            "skipped": self.skipped,
        }


def due(older_than: timedelta, states: Sequence[State] = (), now: datetime | None = None) -> Any:
    """The query of leads not yet erased, created before now - `older_than`, in `states`."""
    cutoff = (now or utcnow()) - older_than
    query = Lead.select(Lead.id).where(Lead.erased_at.is_null() & (Lead.created_at < cutoff))
    if states:
        query = query.where(Lead.state.in_([s.value for s in states]))
    return query.order_by(Lead.id)


def purge(
    older_than: timedelta,
    states: Sequence[State] = (),
    *,
    dry_run: bool = False,
    actor: str = "system",
    now: datetime | None = None,
) -> Purge:
    """Erase (as `erasure.erase_ids` does) every lead older than `older_than`, recording a
    `purged` event with the reason `retention` on each; a thousand leads per transaction."""
    now = now or utcnow()
    result = Purge(cutoff=str(iso(now - older_than)), dry_run=dry_run)
    if dry_run:
        result.erased = [row.id for row in due(older_than, states, now)]
        return result
    reason = f"retention: older than {_days(older_than)}"
    last = 0
    while True:
        ids = [row.id for row in due(older_than, states, now).where(Lead.id > last).limit(BATCH)]
        if not ids:
            if result.erased:
                forget_erased_text()
            return result
        done = erase_ids(ids, actor, reason, kind="purged", now=now, merge_search=False)
        result.erased += [item["id"] for item in done.changed]
        result.skipped += done.failed
        last = ids[-1]


def purge_due(settings: Settings, now: datetime) -> int:
    """The delivery worker's daily chore: erase leads older than `LEADS_RETENTION`; how many.
    Nothing when retention is off."""
    period = settings.retention_period
    if period is None:
        return 0
    return len(purge(period, now=now).erased)


def _days(period: timedelta) -> str:
    days = period.total_seconds() / 86400
    return f"{days:g}d" if days >= 1 else f"{period.total_seconds():g}s"
