"""Who gets a new lead: the returning prospect's attorney, else the least recently assigned one."""

from __future__ import annotations

from datetime import datetime

from leadctl.db import is_sqlite, run_sql
from leadctl.models import Attorney

_LEAST_RECENT = (
    "SELECT id, name, email FROM attorney WHERE active = ? "
    "ORDER BY last_assigned_at ASC NULLS FIRST, id LIMIT 1"
)


def choose_attorney(email: str, now: datetime) -> tuple[Attorney | None, str]:
    """Pick (attorney or None, reason) and mark the pick; call inside the lead's transaction.

    Hand-written SQL: this runs for every submission, on the intake's one writer.
    """
    reason = "returning prospect"
    row = run_sql(
        "SELECT attorney.id, attorney.name, attorney.email FROM attorney "
        "JOIN lead ON lead.attorney_id = attorney.id "
        "WHERE lead.email = ? AND lead.quarantined = ? AND attorney.active = ? "
        "ORDER BY lead.id DESC LIMIT 1",
        (email, False, True),
    ).fetchone()
    if row is None:
        reason = "round robin"
        # On PostgreSQL two servers assigning at once must not pick the same "least recent" one.
        row = run_sql(
            _LEAST_RECENT if is_sqlite() else f"{_LEAST_RECENT} FOR UPDATE", (True,)
        ).fetchone()
    if row is None:
        return None, "no active attorney"
    run_sql(
        "UPDATE attorney SET last_assigned_at = ? WHERE id = ?",
        (Attorney.last_assigned_at.db_value(now), row[0]),
    )
    return Attorney(id=row[0], name=row[1], email=row[2], active=True), reason
