"""The transactional outbox: messages written with their lead, then sent in batches by a worker.

Claiming a batch under a lease and recording each message's outcome are in
leadctl.outbox_claim; this module writes the rows, sends a batch, and serves the CLI's views.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from leadctl.errors import LeadctlError
from leadctl.mailer import DeliveryError, Sender, build_message
from leadctl.messages import Composed, new_message_id
from leadctl.models import Lead, OutboxMessage, Resume
from leadctl.outbox_claim import claim, lease_for, mark_failed, mark_sent, release  # also ours
from leadctl.settings import Settings
from leadctl.states import MessageAction, MessageStatus, message_move
from leadctl.timeutil import iso, utcnow
from leadctl.transactions import write_transaction

log = logging.getLogger("leadctl.outbox")


def message_row(
    composed: Composed,
    *,
    settings: Settings,
    purpose: str,
    lead: Lead | None,
    now: datetime,
    mailbox: str | None = None,
) -> dict[str, Any]:
    """One outbox row to insert in the transaction of the change that causes the message;
    `mailbox` is a confirmation's (what the one-per-hour cap counts)."""
    hint = f"{lead.reference}.{purpose}" if lead is not None else purpose
    return {
        "lead": lead.id if lead is not None else None,
        "purpose": purpose,
        "message_id": new_message_id(settings.from_email, hint),
        "recipient": composed.recipient,
        "subject": composed.subject,
        "body_text": composed.text,
        "body_html": composed.html,
        "status": MessageStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "mailbox": mailbox,
    }


Attachment = tuple[str, str, bytes]  # file name, content type, bytes


def attachments_of(msg: OutboxMessage, settings: Settings) -> list[Attachment]:
    """What a message carries besides its text, read at send time: with `LEADS_ATTACH_RESUME`,
    the attorney's notification carries the resume. A lead that gave a link instead of a file,
    or was erased meanwhile, attaches nothing. Called from the thread that owns the database
    connection (the senders' threads do no database work)."""
    if not settings.attach_resume or msg.purpose != "notification" or msg.lead_id is None:
        return []
    row = (
        Resume.select(Resume.filename, Resume.content_type, Resume.data)
        .join(Lead)
        .where((Resume.lead == msg.lead_id) & Lead.erased_at.is_null())
        .first()
    )
    return [] if row is None else [(row.filename, row.content_type, bytes(row.data))]


def as_email(msg: OutboxMessage, settings: Settings, attachments: Sequence[Attachment] = ()):  # type: ignore[no-untyped-def]
    composed = Composed(msg.recipient, msg.subject, msg.body_text, msg.body_html)
    return build_message(composed, settings.from_email, msg.message_id, attachments=attachments)


@dataclass
class DrainResult:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)


FLUSH_SECONDS = 1.0  # how long a delivery may wait to be recorded with others
BATCH_PER_SENDER = 20  # messages claimed per pass for each sender


class _Outcome(Enum):
    SENT = "sent"
    FAILED = "failed"
    LEFT = "left"  # the lease ran short: claimed afresh once it ends
    UNTRIED = "untried"  # the worker is stopping: handed back


def _send_one(
    msg: OutboxMessage,
    settings: Settings,
    idle: queue.SimpleQueue[Sender],
    halt: threading.Event,
    attachments: Sequence[Attachment] = (),
) -> tuple[_Outcome, OutboxMessage, Exception | None]:
    """Send one message on whichever sender (connection) is idle; no database work here (the
    caller read its `attachments`)."""
    if halt.is_set():
        return _Outcome.UNTRIED, msg, None
    if utcnow() + lease_for(settings) / 2 > msg.lease_until:
        # Earlier sends in this batch were slow: the lease may lapse mid-send and another
        # worker could take the message. Leave it; it is claimed afresh once the lease ends.
        return _Outcome.LEFT, msg, None
    sender = idle.get()
    try:
        sender.send(as_email(msg, settings, attachments))
    except (DeliveryError, LeadctlError, ValueError) as exc:
        return _Outcome.FAILED, msg, exc
    finally:
        idle.put(sender)
    return _Outcome.SENT, msg, None


def deliver_due(
    sender: Sender | Sequence[Sender],
    settings: Settings,
    batch: int = BATCH_PER_SENDER,
    stop: Callable[[], bool] | None = None,
    pool: ThreadPoolExecutor | None = None,
) -> DrainResult:
    """Claim and send one batch of due messages; once `stop()` is true, send no more of them.

    Given several senders (one SMTP connection each), `batch` messages per sender are claimed
    under one lease and sent on all of them at once, each message by one sender, on the threads
    of `pool` (one per sender; a delivery loop keeps one for its life) or of a pool made for
    this batch; the database is written from the calling thread only. Deliveries are recorded
    together, at most FLUSH_SECONDS after the first of them: a crash in between sends those
    few again (delivery is at least once), never loses one.
    """
    senders = [sender] if not isinstance(sender, Sequence) else list(sender)
    claimed = claim(batch * len(senders), lease_for(settings))
    if not claimed:
        return DrainResult()
    halt = threading.Event()
    idle: queue.SimpleQueue[Sender] = queue.SimpleQueue()
    for one in senders:
        idle.put(one)
    recorder = _Recorder(settings)
    try:
        if len(senders) == 1:
            for msg in claimed:
                if stop is not None and stop():
                    halt.set()
                files = attachments_of(msg, settings) if not halt.is_set() else []
                recorder.take(*_send_one(msg, settings, idle, halt, files))
        elif pool is not None:
            _send_batch(pool, len(senders), claimed, settings, idle, halt, recorder, stop)
        else:
            with ThreadPoolExecutor(len(senders), thread_name_prefix="outbox-send") as own:
                _send_batch(own, len(senders), claimed, settings, idle, halt, recorder, stop)
        return recorder.result
    finally:
        # Also on an unexpected error: what went out is recorded, what was not tried goes back.
        recorder.finish()


def _send_batch(
    pool: ThreadPoolExecutor,
    width: int,
    claimed: list[OutboxMessage],
    settings: Settings,
    idle: queue.SimpleQueue[Sender],
    halt: threading.Event,
    recorder: _Recorder,
    stop: Callable[[], bool] | None,
) -> None:
    """Send `claimed` on `width` senders at once. Returns once no send of the batch is running
    (as leaving a pool of its own would): a delivery that ends later is never left unrecorded."""
    # One message per sender in flight, the next handed out as one finishes: a stop leaves at
    # most those in hand to finish.
    waiting = iter(claimed)
    if stop is not None and stop():
        halt.set()
    # Attachments are read here, one message ahead of the senders: at most one resume per
    # sender is in memory, however large the batch.
    pending = {
        pool.submit(_send_one, msg, settings, idle, halt, attachments_of(msg, settings))
        for msg in itertools.islice(waiting, width)
    }
    error: BaseException | None = None
    try:
        while pending:
            done, pending = wait(pending, timeout=0.05, return_when=FIRST_COMPLETED)
            if stop is not None and not halt.is_set() and stop():
                halt.set()  # the messages in hand finish; the rest are handed back
            for future in done:
                if future.exception() is not None:
                    # A sender broke unexpectedly: start nothing more, but record what the
                    # others deliver meanwhile before raising it.
                    halt.set()
                    error = error or future.exception()
                else:
                    recorder.take(*future.result())
                for msg in itertools.islice(waiting, 1):
                    if halt.is_set():
                        recorder.untried.append(msg)
                    else:
                        files = attachments_of(msg, settings)
                        pending.add(pool.submit(_send_one, msg, settings, idle, halt, files))
        recorder.untried.extend(waiting)
    finally:
        halt.set()  # on an error of our own, start nothing more
        wait(pending)
    if error is not None:
        raise error


class _Recorder:
    """Writes the outcomes of one batch: failures at once, deliveries in groups."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.result = DrainResult()
        self.delivered: list[OutboxMessage] = []
        self.untried: list[OutboxMessage] = []
        self.first_unrecorded = 0.0

    def take(self, outcome: _Outcome, msg: OutboxMessage, exc: Exception | None) -> None:
        if outcome is _Outcome.UNTRIED:
            self.untried.append(msg)
        elif outcome is _Outcome.FAILED:
            status = mark_failed(msg, str(exc), self.settings)
            self.result.failed += 1
            self.result.dead += status == MessageStatus.DEAD
            self.result.errors.append(f"{msg.id}: {exc}")
            log.warning(
                "mail %s to purpose=%s lead=%s attempt=%d failed: %s",
                status,
                msg.purpose,
                msg.lead_id,
                msg.attempts,
                exc,
            )
        elif outcome is _Outcome.SENT:
            log.info(
                "mail sent purpose=%s lead=%s attempt=%d", msg.purpose, msg.lead_id, msg.attempts
            )
            if not self.delivered:
                self.first_unrecorded = time.monotonic()
            self.delivered.append(msg)
            self.result.sent += 1
            if time.monotonic() - self.first_unrecorded > FLUSH_SECONDS:
                mark_sent(self.delivered)
                self.delivered = []

    def finish(self) -> None:
        delivered, untried, self.delivered, self.untried = self.delivered, self.untried, [], []
        mark_sent(delivered)
        release(untried)


def drain(sender: Sender | Sequence[Sender], settings: Settings) -> DrainResult:
    """Deliver everything due now (one pass over each message), as `leadctl outbox send` does:
    the emails, and the webhooks when `LEADS_WEBHOOK_URL` is set."""
    total = DrainResult()
    if settings.webhook_url:
        from leadctl import webhooks

        total.sent, total.failed = webhooks.drain(settings)
    while True:
        result = deliver_due(sender, settings)
        if result.sent + result.failed == 0:
            return total
        total.sent += result.sent
        total.failed += result.failed
        total.dead += result.dead
        total.errors.extend(result.errors)


def _due_again() -> Any:
    _, pending = message_move(MessageAction.RETRY)
    now = utcnow()
    return OutboxMessage.update(status=pending, attempts=0, next_attempt_at=now, lease_until=None)


def retry(ids: list[int] | None, *, dead: bool) -> int:
    """Make dead (or named pending/dead) messages due again now, with a fresh attempt count:
    how many."""
    if ids:
        return retry_named(ids)[0]
    if not dead:
        raise LeadctlError("name the messages to retry, or pass --dead")
    with write_transaction():
        return int(_due_again().where(OutboxMessage.status == MessageStatus.DEAD.value).execute())


def retry_named(ids: list[int]) -> tuple[int, list[dict[str, Any]]]:
    """Make the named pending or dead messages due again: (how many, one {"id", "error"} for
    each that was not: no such message, sent already, or held by a sender right now).

    Never a sent message (no accidental second email) nor one a worker holds. The statuses
    are read in the retry's own transaction, so the reasons are those it met."""
    sources, _ = message_move(MessageAction.RETRY)
    wanted = list(dict.fromkeys(ids))
    with write_transaction():
        rows = OutboxMessage.select(OutboxMessage.id, OutboxMessage.status)
        status: dict[int, str] = dict(rows.where(OutboxMessage.id.in_(wanted)).tuples())  # type: ignore[arg-type]
        due = [i for i in wanted if status.get(i) in sources]
        moved = _due_again().where(OutboxMessage.id.in_(due) & OutboxMessage.status.in_(sources))
        count = int(moved.execute()) if due else 0
    return count, [
        {"id": i, "error": _not_retried(i, status.get(i))} for i in wanted if i not in due
    ]


def _not_retried(ident: int, status: str | None) -> str:
    if status is None:
        return f"no outbox message with id {ident}"
    if status == MessageStatus.SENT:
        return f"outbox message {ident} was sent already; it is never sent twice"
    return f"outbox message {ident} is {status} right now; not retried"  # a sender holds it


def list_messages(status: MessageStatus | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The newest `limit` messages (of one status, or all), as the CLI and scripts see them;
    never their bodies."""
    m = OutboxMessage
    query = (
        m.select(
            m.id,
            m.lead,
            m.purpose,
            m.recipient,
            m.subject,
            m.message_id,
            m.status,
            m.attempts,
            m.next_attempt_at,
            m.last_error,
            m.created_at,
            m.sent_at,
        )
        .order_by(m.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(m.status == status.value)
    return [
        {
            "id": row.id,
            "lead_id": row.lead_id,
            "purpose": row.purpose,
            "recipient": row.recipient,
            "subject": row.subject,
            "message_id": row.message_id,
            "status": row.status,
            "attempts": row.attempts,
            "next_attempt_at": iso(row.next_attempt_at),
            "last_error": row.last_error,
            "created_at": iso(row.created_at),
            "sent_at": iso(row.sent_at),
        }
        for row in query
    ]
