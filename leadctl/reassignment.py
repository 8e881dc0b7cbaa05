"""Reassignment: a lead, or a departing attorney's pending leads, moved to another attorney, who
is told by email (the outbox row written in the same transaction as the move)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from peewee import SQL, Value, fn

from leadctl import events, fastpath
from leadctl.assignment import ROUND_ROBIN_LOCK, choose_many, returning_attorneys
from leadctl.db import is_sqlite
from leadctl.errors import Forbidden, LeadctlError, NotFound
from leadctl.leads import Outcome, allowed, find, lead_dict
from leadctl.models import Attorney, Event, Lead, email_key
from leadctl.permissions import Caller, may_change, owner_of
from leadctl.states import State
from leadctl.timeutil import iso, utcnow
from leadctl.transactions import write_transaction

if TYPE_CHECKING:
    from leadctl.settings import Settings

ROUND_ROBIN = "round-robin"
LISTED = 50  # leads named in one handover email; the rest are counted
# Events per INSERT (5 parameters each, 12 for the webhook each may queue): under SQLite's
# default limit of 32,766 parameters, and PostgreSQL's 65,535.
EVENTS_CHUNK = 2000

Plan = dict[str, tuple[int, list[Any]]]


def _name(actor: str | Caller) -> str:
    return actor.name if isinstance(actor, Caller) else actor


def active_attorney(email: str) -> Attorney:
    """The attorney leads may go to: NotFound for an unknown one, an error for an inactive one."""
    attorney = Attorney.get_or_none(Attorney.email == email_key(email))
    if attorney is None:
        raise NotFound(f"no attorney {email}; see: leadctl attorney list")
    if not attorney.active:
        raise LeadctlError(f"attorney {attorney.email} is deactivated; choose an active one")
    return attorney


def assign(
    ident: str | int, attorney_email: str, actor: str | Caller, settings: Settings | None = None
) -> Outcome:
    """Give one lead to `attorney_email`: recorded as `assigned` (with the previous attorney),
    and the new attorney told by email unless they moved it to themselves."""
    from leadctl.settings import Settings

    settings = settings or Settings.from_env()
    who = _name(actor)
    with write_transaction():
        lead = find(ident)
        allowed(actor, lead)
        attorney = active_attorney(attorney_email)
        if lead.attorney_id == attorney.id:
            return Outcome(
                lead_dict(lead), False, f"lead {lead.id} is already assigned to {attorney.email}"
            )
        previous = owner_of(lead)
        now = utcnow()
        Lead.update(attorney=attorney, updated_at=now).where(Lead.id == lead.id).execute()
        details = {"attorney": attorney.email, "previous": previous, "reason": "manual"}
        events.record(Event.row(lead.id, now, who, "assigned", details))
        lead.attorney, lead.updated_at = attorney, now
        if email_key(who) != attorney.email:
            _queue(
                settings,
                attorney.email,
                [_listed(lead, with_person=True)],
                previous=previous,
                by=who,
                reason="reassigned by hand (leadctl assign)",
                lead=lead,
                now=now,
            )
    return Outcome(lead_dict(lead), True, f"lead {lead.id} assigned to {attorney.email}")


@dataclass
class Handover:
    """What `hand_over` did: the attorney, whether they were deactivated now, and which pending
    leads went to whom (email → lead ids)."""

    attorney: Attorney
    deactivated: bool
    moved: dict[str, list[int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "moved": sum(len(ids) for ids in self.moved.values()),
            "reassigned_to": {email: ids for email, ids in sorted(self.moved.items())},
        }


def hand_over(
    email: str,
    reassign_to: str,
    actor: str | Caller,
    settings: Settings,
) -> Handover:
    """Deactivate the attorney and move their PENDING leads, in ONE transaction, to
    `reassign_to` (an active attorney's email) or `round-robin` (assignment's rule: a returning
    prospect's other attorney, else the least recently assigned). Each new attorney gets one
    email listing their leads by id and reference (no prospect's name: it is not tied to one lead,
    so erasing a lead could not reach it). Reached-out leads stay with them, as history."""
    who = _name(actor)
    with write_transaction():
        # PostgreSQL: the lock every writer takes first (intake/writer.py), before any row here;
        # a new lead then never goes to the attorney between our look-up and our commit.
        fastpath.serialize(ROUND_ROBIN_LOCK)
        attorney = Attorney.get_or_none(Attorney.email == email_key(email))
        if attorney is None:
            raise NotFound(f"no attorney {email}; see: leadctl attorney list")
        if isinstance(actor, Caller) and not may_change(actor, attorney.id):
            raise Forbidden(
                f"only {attorney.email} or an admin may move the leads of {attorney.email}"
            )
        target = None
        if reassign_to.strip().lower() != ROUND_ROBIN:
            if email_key(reassign_to) == attorney.email:
                raise LeadctlError(
                    f"--reassign-to names {attorney.email}, whose leads are being moved; "
                    "choose another attorney or round-robin"
                )
            target = active_attorney(reassign_to)
        changed = False
        if attorney.active:
            attorney.active, changed = False, True
            attorney.save(only=[Attorney.active])
        theirs = (
            (Lead.attorney == attorney.id)
            & (Lead.state == State.PENDING.value)
            & Lead.erased_at.is_null()
        )
        pending = list(
            Lead.select(Lead.id, Lead.reference, Lead.email_key, Lead.created_at)
            .where(theirs)
            .order_by(Lead.id)
            .namedtuples()
        )
        now = utcnow()
        plan = _plan(pending, target, theirs, now)
        if pending and not plan:
            plural = "s" if len(pending) != 1 else ""
            raise LeadctlError(
                f"no other active attorney can take the {len(pending)} pending lead{plural} of "
                f"{attorney.email}; add one first (leadctl attorney add)"
            )
        handover = Handover(attorney, changed)
        reason = f"{attorney.email} was deactivated"
        details = {
            new_id: {"attorney": new_email, "previous": attorney.email, "reason": reason}
            for new_email, (new_id, _leads) in plan.items()
        }
        for new_email, (new_id, leads) in plan.items():
            ids = [lead.id for lead in leads]
            Lead.update(attorney=new_id, updated_at=now).where(_one_of(ids)).execute()
            handover.moved[new_email] = ids
        # One `assigned` event per lead, in the order they were picked.
        owner = {lead.id: new_id for new_id, leads in plan.values() for lead in leads}
        rows = [
            Event.row(lead.id, now, who, "assigned", details[owner[lead.id]]) for lead in pending
        ]
        for start in range(0, len(rows), EVENTS_CHUNK):
            events.record(*rows[start : start + EVENTS_CHUNK])
        for new_email, (_new_id, leads) in plan.items():
            if email_key(who) != new_email:
                _queue(
                    settings,
                    new_email,
                    [_listed(lead, with_person=False) for lead in leads[:LISTED]],
                    previous=attorney.email,
                    by=who,
                    reason=reason,
                    lead=None,
                    now=now,
                    count=len(leads),
                )
    return handover


def _plan(pending: list[Any], target: Attorney | None, theirs: Any, now: datetime) -> Plan:
    """New attorney's email → (their id, the leads they get), in the order of their first pick;
    empty when no one can take them. `theirs` selects `pending` (their email keys: who is a
    returning prospect of whom)."""
    if target is not None:
        return {target.email: (target.id, pending)} if pending else {}
    if not pending:
        return {}
    keys = Lead.select(Lead.email_key).where(theirs & (Lead.email_key != ""))
    picks = choose_many([lead.email_key for lead in pending], returning_attorneys(keys), now)
    if picks is None:
        return {}
    plan: Plan = {}
    for lead, chosen in zip(pending, picks, strict=True):
        plan.setdefault(chosen.email, (chosen.id, []))[1].append(lead)
    return plan


def _one_of(ids: list[int]) -> Any:
    """`Lead.id` is one of `ids`, however many, as one parameter: a PostgreSQL array, a JSON
    array read by SQLite's json_each (an IN list would need one parameter per id)."""
    if is_sqlite():
        return Lead.id.in_(SQL("(SELECT value FROM json_each(?))", [json.dumps(ids)]))
    return Lead.id == fn.ANY(Value(ids, unpack=False))


def _listed(lead: Any, *, with_person: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": lead.id,
        "reference": lead.reference,
        "created_at": iso(lead.created_at),
    }
    if with_person:
        item["name"] = f"{lead.first_name} {lead.last_name}"
        item["email"] = lead.email
    return item


def _queue(
    settings: Settings,
    recipient: str,
    listed: list[dict[str, Any]],
    *,
    previous: str | None,
    by: str,
    reason: str,
    lead: Lead | None,
    now: datetime,
    count: int = 1,
) -> None:
    """The handover email as an outbox row, in the caller's transaction."""
    from leadctl import outbox, rendering
    from leadctl.models import OutboxMessage

    composed = rendering.compose(
        "reassigned",
        recipient,
        settings,
        leads=listed,
        count=count,
        more=count - len(listed),
        previous=previous,
        by=by,
        reason=reason,
    )
    row = outbox.message_row(composed, settings=settings, purpose="reassigned", lead=lead, now=now)
    fastpath.insert_rows(OutboxMessage, [row])
