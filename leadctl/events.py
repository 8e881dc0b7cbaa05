"""The audit trail's one way in: every event of a lead is written by `record`."""

from __future__ import annotations

from typing import Any

from leadctl.models import Event


def record(*events: dict[str, Any]) -> None:
    """Write the events (rows made by `Event.row`) in one INSERT, inside the caller's transaction.

    Through the fast path's INSERT: a submission writes its events here too.
    """
    if events:
        from leadctl.fastpath import insert_rows  # not at import: reading commands never write

        insert_rows(Event, events)
