"""The audit trail's one way in: every event of a lead is written by `record`, and becomes a
webhook (an outbox row, in the same transaction) when `configure` turned webhooks on; the one
list of the kinds of event there are (`KINDS`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from leadctl.models import Event, OutboxMessage

if TYPE_CHECKING:
    from leadctl.settings import Settings

# Every kind of event, and who writes it. `record` refuses any other (a programming error),
# and `leadctl history --action` offers these. A new kind is added here first.
KINDS: dict[str, str] = {
    "submitted": "the prospect sent the form (submissions)",
    "quarantined": "held as suspected spam (submissions)",
    "released": "taken out of quarantine (submissions.release)",
    "assigned": "given to an attorney or the inbox (submissions, reassignment, assign)",
    "conflicts_found": "the intake conflict check's hits (submissions)",
    "confirmation_skipped": "no confirmation: the mail cap (submissions)",
    "state_changed": "reached out or reopened (leads)",
    "note": "an attorney's note (leads)",
    "email_sent": "an email delivered (outbox_claim)",
    "email_failed": "an email attempt failed (outbox_claim)",
    "reminded": "its attorney reminded (chores)",
    "escalated": "the inbox told it waits (chores)",
    "quarantine_digested": "counted in a quarantine digest (chores)",
    "erased": "its personal data erased (erasure)",
    "purged": "erased by retention (retention)",
}

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

    Through the fast path's INSERT: a submission writes its events here too. A kind not in
    `KINDS` is a ValueError, before anything is written.
    """
    for event in events:
        if event["kind"] not in KINDS:
            raise ValueError(f"unknown kind of event {event['kind']!r}; add it to events.KINDS")
    if events:
        from leadctl.fastpath import insert_rows  # not at import: reading commands never write

        insert_rows(Event, events)
        if _webhooks:
            from leadctl.webhooks import outbox_rows

            rows = outbox_rows(events)
            if rows:
                insert_rows(OutboxMessage, rows)
