"""Who gets a new lead: the returning prospect's attorney, else the least recently assigned one."""

from __future__ import annotations

from datetime import datetime

from leadctl import fastpath
from leadctl.models import Attorney, email_key


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
