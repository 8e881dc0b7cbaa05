"""The delivery worker's timed chores: reminders and escalations of leads left pending, the
quarantine digest, and the daily retention purge. Each is claimed in the database, so two
servers on one PostgreSQL never send the same email twice."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from peewee import JOIN, SQL, fn

from leadctl import events, fastpath, outbox, rendering
from leadctl.models import Attorney, Event, Lead, OutboxMessage
from leadctl.redaction import DIGEST, DIGESTED  # defined where erasure follows the link back
from leadctl.settings import Settings
from leadctl.states import State
from leadctl.timeutil import iso, utcnow
from leadctl.transactions import write_transaction

log = logging.getLogger("leadctl.outbox")

TICK_SECONDS = 1.0  # how often the worker looks (when idle): tests use periods of seconds
BATCH = 50  # leads reminded (or escalated) per transaction: the write lock is held briefly
# A lead first seen overdue by more than this (an upgrade, a worker down for a week) is left to
# `leadctl list --overdue`: an upgrade must not mail a reminder for every old lead at once.
CATCH_UP = timedelta(days=7)
# Each walk starts this far before where the last one stopped: a lead whose transaction
# committed late is not skipped. Every WALK_AGAIN seconds a walk starts from CATCH_UP again, for
# leads that became pending again (reopened, released from quarantine).
WALK_SETTLE = timedelta(minutes=10)
WALK_AGAIN = 3600.0
DIGEST_LISTED = 50  # leads a digest names; the rest are counted ("and N more")
MARK_CHUNK = 1000  # DIGESTED events per INSERT
DIGEST_FIRST = timedelta(days=30)  # the first digest covers leads held this long (see purge)
# A held lead's transaction may commit a little after its created_at: each digest looks this
# far behind the previous one; the DIGESTED events keep it from listing a lead twice.
DIGEST_SETTLE = timedelta(minutes=10)
PURGE_EVERY = 24 * 3600.0  # seconds between retention purges (and one at start)
CHORE_REST = 60.0  # seconds a failed chore waits before it is tried again


@dataclass(frozen=True)
class Nudge:
    """A reminder or an escalation: which column claims it, which email and event it makes."""

    kind: str  # the event: `reminded` or `escalated`
    template: str
    column: Any
    period: Callable[[Settings], timedelta | None]
    recipient: Callable[[Settings, Any], str]


def _attorney_or_inbox(settings: Settings, row: Any) -> str:
    """A reminder goes to the lead's attorney; to the intake inbox when it has none (or theirs
    was deactivated without moving their leads)."""
    return (
        row.attorney_email if row.attorney_email and row.attorney_active else settings.intake_email
    )


REMINDER = Nudge(
    "reminded",
    "reminder",
    Lead.reminded_at,
    lambda s: s.remind_after_period,
    _attorney_or_inbox,
)
ESCALATION = Nudge(
    "escalated",
    "escalation",
    Lead.escalated_at,
    lambda s: s.escalate_after_period,
    lambda s, _row: s.intake_email,
)


def _eligible(nudge: Nudge) -> Any:
    """Pending, neither held nor erased, not yet nudged: what a claim may still change."""
    return (
        (Lead.quarantined == False)  # noqa: E712
        & (Lead.state == State.PENDING.value)
        & nudge.column.is_null()
        & Lead.erased_at.is_null()
    )


def nudge_due(
    nudge: Nudge, settings: Settings, now: datetime, since: datetime | None = None
) -> tuple[int, datetime | None]:
    """Send `nudge` for up to BATCH leads pending longer than its period: (how many, how far the
    walk got). `since` is where the previous walk stopped, so an idle pass reads only the leads
    that became overdue since (along the (quarantined, state, created_at) index)."""
    period = nudge.period(settings)
    if period is None:
        return 0, None
    cutoff = now - period
    floor = cutoff - CATCH_UP if since is None else max(cutoff - CATCH_UP, since - WALK_SETTLE)
    rows = list(
        Lead.select(
            Lead.id,
            Lead.reference,
            Lead.first_name,
            Lead.last_name,
            Lead.email,
            Lead.created_at,
            Lead.attorney,
            Attorney.email.alias("attorney_email"),
            Attorney.active.alias("attorney_active"),
        )
        .join(Attorney, JOIN.LEFT_OUTER, on=(Lead.attorney == Attorney.id))
        .where(_eligible(nudge) & (Lead.created_at >= floor) & (Lead.created_at < cutoff))
        .order_by(Lead.created_at, Lead.id)
        .limit(BATCH)
        .objects()
    )
    reached = cutoff if len(rows) < BATCH else rows[-1].created_at
    if not rows:
        return 0, reached
    # Rendered before the write lock is taken; claimed lead by lead inside it.
    composed = [(row, _compose(nudge, settings, row, now)) for row in rows]
    sent = 0
    with write_transaction():
        messages, history = [], []
        for row, mail in composed:
            claimed = (
                Lead.update({nudge.column: now})
                .where((Lead.id == row.id) & _eligible(nudge))
                .execute()
            )
            if not claimed:  # reached out meanwhile, or another server got there first
                continue
            lead = Lead(id=row.id, reference=row.reference)
            purpose = nudge.template
            messages.append(
                outbox.message_row(mail, settings=settings, purpose=purpose, lead=lead, now=now)
            )
            details = {"to": mail.recipient, "pending_since": iso(row.created_at)}
            history.append(Event.row(row.id, now, "system", nudge.kind, details))
        if messages:
            fastpath.insert_rows(OutboxMessage, messages)
            events.record(*history)
            sent = len(messages)
    return sent, reached


def _compose(nudge: Nudge, settings: Settings, row: Any, now: datetime) -> Any:
    recipient = nudge.recipient(settings, row)
    lead = {
        "id": row.id,
        "reference": row.reference,
        "full_name": f"{row.first_name} {row.last_name}",
        "email": row.email,
        "submitted_at": iso(row.created_at),
        "waited": waited(now - row.created_at),
        "attorney": row.attorney_email,
        "attorney_active": bool(row.attorney_active),
    }
    commands = [f"leadctl show {row.id}", f"leadctl open {row.id}", f"leadctl reach-out {row.id}"]
    if nudge is ESCALATION:
        commands.append(f"leadctl assign {row.id} EMAIL")
    return rendering.compose(nudge.template, recipient, settings, lead=lead, commands=commands)


def waited(delta: timedelta) -> str:
    """`3 days 4 hours`, `26 minutes`: how long a lead has waited, as a person says it."""
    seconds = max(int(delta.total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "day"), (hours, "hour"), (minutes, "minute"), (seconds, "second")]
    shown = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n][:2]
    return " ".join(shown) or "0 seconds"


# -- the quarantine digest --------------------------------------------------------------------


def _last_digest() -> datetime | None:
    row = (
        OutboxMessage.select(OutboxMessage.created_at)
        .where(OutboxMessage.purpose == DIGEST)
        .order_by(OutboxMessage.created_at.desc())
        .first()
    )
    return None if row is None else row.created_at


def _undigested(since: datetime) -> Any:
    """Held leads since `since` that no digest has listed yet."""
    listed = Event.select(SQL("1")).where((Event.lead == Lead.id) & (Event.kind == DIGESTED))
    return Lead.select(Lead.id).where(
        (Lead.quarantined == True)  # noqa: E712
        & (Lead.created_at >= since)
        & Lead.erased_at.is_null()
        & ~fn.EXISTS(listed)
    )


def digest_due(settings: Settings, now: datetime) -> int:
    """Send the intake inbox one digest of the leads held since the last one, when the period
    has passed and there are any: 1 if sent, else 0."""
    period = settings.quarantine_digest_period
    if period is None:
        return 0
    last = _last_digest()
    if last is not None and now - last < period:
        return 0
    since = last - DIGEST_SETTLE if last is not None else now - DIGEST_FIRST
    if not _undigested(since).exists():  # read first: an idle pass takes no write lock
        return 0
    with write_transaction():
        fastpath.serialize(DIGEST)  # PostgreSQL: one server at a time decides
        if _last_digest() != last:
            return 0  # another server sent it meanwhile
        held = _undigested(since)
        count = held.count()
        if not count:
            return 0
        listed = list(
            Lead.select(
                Lead.id,
                Lead.reference,
                Lead.first_name,
                Lead.last_name,
                Lead.email,
                Lead.quarantine_reason,
                Lead.created_at,
            )
            .where(Lead.id.in_(held.order_by(Lead.created_at, Lead.id).limit(DIGEST_LISTED)))
            .order_by(Lead.created_at, Lead.id)
        )
        mail = rendering.compose(
            "quarantine_digest",
            settings.intake_email,
            settings,
            leads=[_held(lead) for lead in listed],
            count=count,
            more=count - len(listed),
            since=iso(last),
        )
        row = outbox.message_row(mail, settings=settings, purpose=DIGEST, lead=None, now=now)
        fastpath.insert_rows(OutboxMessage, [row])
        # Every lead counted is marked (ids read first: an INSERT … SELECT that reads the table
        # it writes ran quadratic on PostgreSQL, 1.3 s for 10,000).
        # `listed` says whether the digest names the lead or only counts it: erasure takes the
        # names out of the digests that name them (leadctl.redaction.redact_digests).
        ids = [row.id for row in held.order_by(Lead.id)]
        named = {lead.id for lead in listed}
        details = {flag: {"digest": row["message_id"], "listed": flag} for flag in (True, False)}
        for start in range(0, len(ids), MARK_CHUNK):
            fastpath.insert_rows(
                Event,
                [
                    Event.row(i, now, "system", DIGESTED, details[i in named])
                    for i in ids[start : start + MARK_CHUNK]
                ],
            )
    return 1


def _held(lead: Lead) -> dict[str, Any]:
    return {
        "id": lead.id,
        "reference": lead.reference,
        "full_name": f"{lead.first_name} {lead.last_name}",
        "email": lead.email,
        "reason": lead.quarantine_reason or "",
        "held_at": iso(lead.created_at),
    }


# -- retention --------------------------------------------------------------------------------


def purge_due(settings: Settings, now: datetime) -> int:
    """Erase the leads older than `LEADS_RETENTION` (leadctl.retention); how many."""
    from leadctl import retention  # the erasure machinery loads only where it runs

    return retention.purge_due(settings, now)


# -- the worker's round -----------------------------------------------------------------------


@dataclass
class Routine:
    """What the delivery worker runs when idle, every TICK_SECONDS; `run` returns how many
    emails it queued (the worker then delivers them at once)."""

    settings: Settings
    tick: float = TICK_SECONDS
    _next: float = 0.0
    _next_purge: float = 0.0  # at start, then daily
    _next_walk: float = 0.0  # when the walks start again from CATCH_UP
    _walked: dict[str, datetime | None] = field(default_factory=dict)
    _resting: dict[str, float] = field(default_factory=dict)  # failed chores, until when

    def run(self, now: datetime | None = None) -> int:
        if time.monotonic() < self._next:
            return 0
        self._next = time.monotonic() + self.tick
        now = now or utcnow()
        if time.monotonic() >= self._next_walk:
            self._next_walk = time.monotonic() + WALK_AGAIN
            self._walked.clear()
        queued = 0
        queued += self._chore(REMINDER.kind, lambda: self._nudge(REMINDER, now))
        queued += self._chore(ESCALATION.kind, lambda: self._nudge(ESCALATION, now))
        queued += self._chore(DIGEST, lambda: digest_due(self.settings, now))
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + PURGE_EVERY
            purged = self._chore("retention", lambda: purge_due(self.settings, now))
            if purged:
                log.info("retention: %d leads erased", purged)
            if "retention" in self._resting:  # failed: again in a while, not in a day
                self._next_purge = self._resting["retention"]
        return queued

    def _nudge(self, nudge: Nudge, now: datetime) -> int:
        sent, reached = nudge_due(nudge, self.settings, now, self._walked.get(nudge.kind))
        self._walked[nudge.kind] = reached
        return sent

    def _chore(self, name: str, chore: Callable[[], int]) -> int:
        """Run one chore; a failure (a bad template, the database gone) is logged, and that
        chore rests a while: it never stops the others, nor the mail, nor fills the log."""
        if time.monotonic() < self._resting.get(name, 0.0):
            return 0
        self._resting.pop(name, None)
        try:
            return chore()
        except Exception:
            log.exception("chore %s failed; trying again in %.0f s", name, CHORE_REST)
            self._resting[name] = time.monotonic() + CHORE_REST
            return 0
