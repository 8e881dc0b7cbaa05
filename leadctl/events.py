"""The audit trail's one way in: every event of a lead is written by `record`, and becomes a
webhook (an outbox row, in the same transaction) when `configure` turned webhooks on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from leadctl.models import Event, OutboxMessage

if TYPE_CHECKING:
    from leadctl.settings import Settings

# Whether lead events also become webhooks: set once per process by `configure`, so that
# `record` (on the submission fast path) costs one test of a boolean when they are off.
_webhooks = False


def configure(settings: Settings) -> None:
    """Turn webhooks on in this process when `LEADS_WEBHOOK_URL` is set (off otherwise).

    Called wherever settings meet the database: the server's start, the CLI's local mode, the
    delivery process. The URL itself is read by the sender, at send time.
    """
    global _webhooks
    _webhooks = bool(settings.webhook_url)


def webhooks_on() -> bool:
    return _webhooks


def record(*events: dict[str, Any]) -> None:
    """Write the events (rows made by `Event.row`) in one INSERT, inside the caller's transaction;
    with webhooks on, the lead events among them are queued as webhooks in the same transaction.

    Through the fast path's INSERT: a submission writes its events here too.
    """
    if events:
        from leadctl.fastpath import insert_rows  # not at import: reading commands never write

        insert_rows(Event, events)
        if _webhooks:
            from leadctl.webhooks import outbox_rows

            rows = outbox_rows(events)
            if rows:
                insert_rows(OutboxMessage, rows)
