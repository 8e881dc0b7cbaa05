"""Who gets a new lead: the returning prospect's attorney, else the least recently assigned one."""

from __future__ import annotations

from datetime import datetime

from leadctl.db import is_sqlite
from leadctl.models import Attorney, Lead


def choose_attorney(email: str, now: datetime) -> tuple[Attorney | None, str]:
    """Pick (attorney or None, reason) and mark the pick; call inside the lead's transaction."""
    earlier = (
        Attorney.select()
        .join(Lead, on=(Lead.attorney == Attorney.id))
        .where((Lead.email == email) & (Attorney.active == True) & (Lead.quarantined == False))  # noqa: E712
        .order_by(Lead.id.desc())
        .first()
    )
    if earlier is not None:
        reason = "returning prospect"
        chosen: Attorney | None = earlier
    else:
        reason = "round robin"
        query = (
            Attorney.select()
            .where(Attorney.active == True)  # noqa: E712
            .order_by(Attorney.last_assigned_at.asc(nulls="first"), Attorney.id)
        )
        if not is_sqlite():
            # Two servers assigning at once must not both pick the same "least recent" attorney.
            query = query.for_update()
        chosen = query.first()
    if chosen is None:
        return None, "no active attorney"
    Attorney.update(last_assigned_at=now).where(Attorney.id == chosen.id).execute()
    return chosen, reason
