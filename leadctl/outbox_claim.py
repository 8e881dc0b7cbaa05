"""The outbox's leases: claiming due messages, and recording what became of each (sent, failed,
handed back). Every change of a message's status while a worker holds it is made here.

The claim and the record of deliveries run for every batch a delivery process sends, on the
one SQLite write lock the intake server also needs: each is one hand-written statement in
leadctl.fastpath, not built by peewee per call (bench/RESULTS.md, session 5).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from leadctl import events, fastpath
from leadctl.models import Event, OutboxMessage
from leadctl.settings import Settings
from leadctl.states import MessageAction, MessageStatus, message_move
from leadctl.timeutil import iso, utcnow
from leadctl.transactions import write_transaction
from leadctl.webhooks import PURPOSE as WEBHOOK

BACKOFF_CAP = timedelta(hours=1)


def backoff(attempts: int, base_seconds: float) -> timedelta:
    """Delay before the next try after `attempts` failures: base·2^(n-1), capped at an hour."""
    return min(timedelta(seconds=base_seconds * 2 ** max(attempts - 1, 0)), BACKOFF_CAP)


def lease_for(settings: Settings) -> timedelta:
    """How long a claim holds: longer than one send can take (two SMTP timeouts and a margin;
    writing a file takes milliseconds). A crashed sender's messages come due when it ends."""
    if settings.mail_backend == "file":
        return timedelta(seconds=5)
    return timedelta(seconds=2 * settings.smtp_timeout + 5)


def _message(row: tuple[Any, ...]) -> OutboxMessage:
    """An OutboxMessage from a row of all its columns, in the model's order, as stored."""
    fields = OutboxMessage._meta.sorted_fields
    data = {f.name: f.python_value(value) for f, value in zip(fields, row, strict=True)}
    return OutboxMessage(__no_default__=True, **data)


def claim(
    limit: int, lease: timedelta, now: datetime | None = None, *, webhooks: bool = False
) -> list[OutboxMessage]:
    """Take up to `limit` due messages under a lease, so no other worker sends them meanwhile:
    emails, or with `webhooks` the webhooks (which the worker's webhook lane sends). Oldest due
    first; returned in id order.

    One `UPDATE … RETURNING` for the batch, under SQLite's write lock or PostgreSQL's row locks
    (SKIP LOCKED: two workers take disjoint batches). A message whose sender died mid-send
    comes due again when its lease runs out (at least once).
    """
    now = now or utcnow()
    sources, sending = message_move(MessageAction.CLAIM)
    pending = MessageStatus.PENDING.value
    assert sorted((pending, MessageStatus.SENDING.value)) == sources  # what the SQL spells out
    with write_transaction():
        rows = fastpath.claim_messages(
            (pending, MessageStatus.SENDING.value),
            sending,
            now,
            now + lease,
            limit,
            lane=WEBHOOK,
            webhooks=webhooks,
        )
    return sorted((_message(row) for row in rows), key=lambda m: m.id)


# A delivery or a failure is recorded whatever the status meanwhile: when a lease lapsed
# mid-send, another worker may have claimed (even failed) the message, and the email that went
# out must not be sent again.


def mark_sent(messages: list[OutboxMessage], now: datetime | None = None) -> None:
    """Record deliveries, several in one transaction (one fsync for the lot)."""
    if not messages:
        return
    now = now or utcnow()
    _, sent = message_move(MessageAction.DELIVER)
    with write_transaction():
        fastpath.mark_messages(sent, now, [m.id for m in messages])
        events.record(
            *(
                Event.row(
                    m.lead_id,
                    now,
                    "system",
                    "email_sent",
                    {"message_id": m.message_id, "to": m.recipient, "purpose": m.purpose},
                )
                for m in messages
                if m.lead_id is not None
            )
        )


def mark_failed(
    msg: OutboxMessage, error: str, settings: Settings, now: datetime | None = None
) -> MessageStatus:
    """Record a failed attempt; returns the new status (`pending` to retry, or `dead`)."""
    now = now or utcnow()
    dead = msg.attempts >= settings.mail_max_attempts
    _, status = message_move(MessageAction.GIVE_UP if dead else MessageAction.BACK_OFF)
    retry_at = now + backoff(msg.attempts, settings.mail_retry_seconds)
    with write_transaction():
        OutboxMessage.update(
            status=status, lease_until=None, last_error=error[:1000], next_attempt_at=retry_at
        ).where(OutboxMessage.id == msg.id).execute()
        details: dict[str, object] = {
            "message_id": msg.message_id,
            "to": msg.recipient,
            "purpose": msg.purpose,
            "attempt": msg.attempts,
            "error": error[:300],
        }
        details["next_attempt_at" if not dead else "dead"] = iso(retry_at) if not dead else True
        if msg.lead_id is not None:
            events.record(Event.row(msg.lead_id, now, "system", "email_failed", details))
    return MessageStatus(status)


def release(messages: list[OutboxMessage]) -> None:
    """Hand back claimed messages that were not tried (their worker is stopping): due at once.

    Only while this claim still holds: a lapsed lease may have let another worker take one.
    """
    if not messages:
        return
    sources, pending = message_move(MessageAction.RELEASE)
    with write_transaction():
        OutboxMessage.update(
            status=pending, lease_until=None, attempts=OutboxMessage.attempts - 1
        ).where(
            OutboxMessage.id.in_([m.id for m in messages])
            & OutboxMessage.status.in_(sources)
            & (OutboxMessage.lease_until == messages[0].lease_until)
        ).execute()
