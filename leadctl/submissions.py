"""Taking a submission into storage: one transaction, idempotent, deduplicated, or quarantined."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from leadctl import events, fastpath
from leadctl.assignment import choose_attorney
from leadctl.conflict_hits import told_to
from leadctl.errors import Conflict, LeadctlError
from leadctl.leads import find, fold, lead_dict
from leadctl.models import (
    AppSecret,
    Attorney,
    Event,
    IdempotencyKey,
    Lead,
    NameToken,
    OutboxMessage,
    Resume,
    email_key,
)
from leadctl.names import name_key, words
from leadctl.settings import Settings
from leadctl.states import State
from leadctl.timeutil import utcnow
from leadctl.transactions import write_transaction

if TYPE_CHECKING:
    from leadctl.resumes import CheckedResume, ResumeLink
    from leadctl.validation import Prospect

# Crockford-style alphabet without 0/O, 1/I/L and U: easy to read out on the phone.
_REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
IDEMPOTENCY_WINDOW = timedelta(hours=24)
CONFIRMATION_WINDOW = timedelta(hours=1)  # one confirmation per mailbox in this time
DOUBLE_CLICK_WINDOW = timedelta(minutes=10)
QUARANTINE_KEPT = timedelta(days=30)


def new_reference() -> str:
    """A short, non-sequential public code like `K7QF-M2XD` (about 2^39 possibilities)."""
    chars = "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"


@dataclass(frozen=True)
class ResumeFacts:
    """What the notification says of a lead's resume: a file's name, type and size, or a link."""

    filename: str | None = None
    content_type: str | None = None
    size: int | None = None
    url: str | None = None


@dataclass(frozen=True)
class Submitted:
    """The stored lead; `replayed` when an earlier identical submission's answer is given again."""

    lead: Lead
    attorney: Attorney | None
    replayed: bool = False


def body_hash(prospect: Prospect, resume: CheckedResume | ResumeLink) -> str:
    """What makes two submissions "the same body": the normalized fields and the file's hash
    (or the resume's link)."""
    url = getattr(resume, "url", None)
    what = f"link:{url}" if url is not None else resume.sha256  # type: ignore[union-attr]
    canonical = "\n".join((prospect.first_name, prospect.last_name, prospect.email, what))
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit(
    prospect: Prospect,
    resume: CheckedResume | ResumeLink,
    settings: Settings,
    *,
    idempotency_key: str | None = None,
    quarantine_reason: str | None = None,
    disclaimer_version: str | None = None,
    conflict_hits: list[dict[str, Any]] | None = None,
) -> Submitted:
    """Store the lead, its resume, its events and its emails in ONE transaction.

    Either all of it is committed or none of it is: there is never a lead without its resume or a
    message without its lead. A resume given as a link (`ResumeLink`) is kept on the lead, and
    no resume row is written. A repeated `idempotency_key` with the same body, or (without a
    key) the same email (any case) and resume within ten minutes, returns the first lead instead
    of a second one; the same key with another body is a Conflict. A quarantined lead gets no
    attorney and no mail. `disclaimer_version`, when the prospect accepted the disclaimer, is
    stored with the time of consent (now). `conflict_hits`: the conflict check already made
    for this prospect (outside the write lock, see `check_conflicts`); else it is made here.
    """
    now = utcnow()
    digest = body_hash(prospect, resume)
    url: str | None = getattr(resume, "url", None)
    with write_transaction():
        earlier = _earlier_answer(idempotency_key, digest, prospect, resume, now)
        if earlier is not None:
            return Submitted(earlier, earlier.attorney if earlier.attorney_id else None, True)
        # The fast path's hand-written SQL (see fastpath): this runs for every submission on
        # the one writer, inside the write lock.
        attorney, reason = (None, "") if quarantine_reason else choose_attorney(prospect.email, now)
        lead = _insert_lead(
            prospect,
            attorney,
            now,
            quarantine_reason,
            url=url,
            disclaimer_version=disclaimer_version,
        )
        if url is None:
            checked: CheckedResume = resume  # type: ignore[assignment]
            fastpath.insert_resume(lead.id, checked)
            facts = ResumeFacts(checked.filename, checked.content_type, checked.size)
            details: dict[str, Any] = {
                "resume": checked.filename,
                "size": checked.size,
                "sha256": checked.sha256,
            }
        else:
            facts = ResumeFacts(url=url)
            details = {"resume_url": url}
        rows = [Event.row(lead.id, now, "prospect", "submitted", details)]
        if quarantine_reason is not None:
            rows.append(
                Event.row(lead.id, now, "system", "quarantined", {"reason": quarantine_reason})
            )
        else:
            rows += _notify(lead, attorney, reason, facts, settings, now, conflict_hits)
        events.record(*rows)
        if idempotency_key is not None:
            fastpath.insert_rows(
                IdempotencyKey,
                [{"key": idempotency_key, "body_hash": digest, "lead": lead.id, "created_at": now}],
            )
    return Submitted(lead, attorney)


def _earlier_answer(
    key: str | None,
    digest: str,
    prospect: Prospect,
    resume: CheckedResume | ResumeLink,
    now: datetime,
) -> Lead | None:
    if key is not None:
        stored = fastpath.idempotency_answer(key, now - IDEMPOTENCY_WINDOW)
        if stored is None:
            return None
        if stored[0] != digest:
            raise Conflict("this Idempotency-Key was already used for a different submission")
        return find(stored[1], include_quarantined=True)
    url = getattr(resume, "url", None)
    duplicate = fastpath.same_lead_since(
        email_key(prospect.email),
        prospect.first_name,
        prospect.last_name,
        None if url is not None else resume.sha256,  # type: ignore[union-attr]
        url,
        now - DOUBLE_CLICK_WINDOW,
    )
    return find(duplicate, include_quarantined=True) if duplicate is not None else None


def _insert_lead(
    prospect: Prospect,
    attorney: Attorney | None,
    now: datetime,
    quarantine_reason: str | None,
    *,
    url: str | None = None,
    disclaimer_version: str | None = None,
) -> Lead:
    full_name = f"{prospect.first_name} {prospect.last_name}"
    fields: dict[str, Any] = {
        "reference": "",
        "first_name": prospect.first_name,
        "last_name": prospect.last_name,
        "email": prospect.email,
        "email_key": email_key(prospect.email),
        "name_key": name_key(full_name),
        "search_key": fold(f"{full_name} {prospect.email}"),
        "state": State.PENDING.value,
        "attorney": attorney,
        "created_at": now,
        "updated_at": now,
        "quarantined": quarantine_reason is not None,
        "quarantine_reason": quarantine_reason,
        "resume_url": url,
        "consent_at": now if disclaimer_version else None,
        "disclaimer_version": disclaimer_version or None,
    }
    # 30^8 codes: among a million leads a clash is likely somewhere (the birthday bound), so a
    # taken reference is simply not inserted, and another one is tried.
    for _ in range(5):
        fields["reference"] = new_reference()
        lead_id = fastpath.insert_lead(fields)
        if lead_id is not None:
            tokens = [{"token": word, "lead": lead_id} for word in words(full_name)]
            if tokens:
                fastpath.insert_rows(NameToken, tokens)
            return Lead(id=lead_id, **fields)
    raise LeadctlError("could not allocate a unique reference; try again")


def _notify(
    lead: Lead,
    attorney: Attorney | None,
    reason: str,
    resume: ResumeFacts,
    settings: Settings,
    now: datetime,
    hits: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Check conflicts and queue the two emails (inside the caller's transaction); returns the
    events to record with the caller's own (the assignment, the conflicts found, a skipped
    confirmation)."""
    from leadctl import messages, outbox  # the mail machinery stays off the CLI's start-up path
    from leadctl.mailer import mailbox_key

    history = [
        Event.row(
            lead.id,
            now,
            "system",
            "assigned",
            {"attorney": attorney.email if attorney else None, "reason": reason},
        )
    ]
    if hits is None:
        hits = check_conflicts(lead.first_name, lead.last_name, lead.email, lead.id)
    if hits:
        from leadctl import mentions  # only when something was found: the common case pays nothing

        hits = mentions.record(lead.id, hits)  # the link erasure of a lead named here follows
        history.append(Event.row(lead.id, now, "system", "conflicts_found", {"hits": hits}))
    rows = []
    mailbox = mailbox_key(lead.email)
    skip = _confirmation_cap(mailbox, settings, now)
    if skip is None:
        confirm = messages.confirmation(lead.reference, lead.email, settings)
        rows.append(
            outbox.message_row(
                confirm,
                settings=settings,
                purpose="confirmation",
                lead=lead,
                now=now,
                mailbox=mailbox,
            )
        )
    else:
        history.append(Event.row(lead.id, now, "system", "confirmation_skipped", {"reason": skip}))
    created = Lead.created_at
    earlier = [
        (ident, ref, created.python_value(at))
        for ident, ref, _state, at in fastpath.earlier_leads(lead.email_key, lead.id)
    ]
    consent = (lead.consent_at, lead.disclaimer_version) if lead.consent_at else None
    notify = messages.notification(
        lead_id=lead.id,
        reference=lead.reference,
        first_name=lead.first_name,
        last_name=lead.last_name,
        email=lead.email,
        submitted_at=lead.created_at,
        recipient=attorney.email if attorney else settings.intake_email,
        assigned=attorney is not None,
        resume_name=resume.filename,
        resume_size=resume.size,
        resume_type=resume.content_type,
        resume_url=resume.url,
        reason=reason,
        attorney=(attorney.name, attorney.email) if attorney else None,
        consent=consent,  # type: ignore[arg-type]
        earlier=earlier,
        conflicts=told_to(attorney, hits, settings.attorney_scope),
        settings=settings,
    )
    rows.append(
        outbox.message_row(notify, settings=settings, purpose="notification", lead=lead, now=now)
    )
    fastpath.insert_rows(OutboxMessage, rows)
    return history


def check_conflicts(
    first_name: str, last_name: str, email: str, lead_id: int = 0
) -> list[dict[str, Any]]:
    """The conflict check at intake (leadctl.conflicts: index look-ups only). The server makes
    it before the lead is stored (`lead_id` 0: no lead of its own to leave out), off the one
    writer: the look-ups cost more than the rest of the notification."""
    from leadctl import conflicts

    return conflicts.at_intake(first_name, last_name, email, lead_id)


def _confirmation_cap(mailbox: str, settings: Settings, now: datetime) -> str | None:
    """Why no confirmation may go to `mailbox` now, or None: the form must not mail strangers."""
    hour_ago = now - CONFIRMATION_WINDOW
    if fastpath.confirmation_went_to(mailbox, hour_ago):
        return "a confirmation went to this address (however spelt) within the hour"
    cap = settings.confirmations_per_hour
    if fastpath.confirmations_since(hour_ago, cap) >= cap:
        return f"{cap} confirmations were sent within the hour"
    return None


def release(ident: str | int, actor: str, settings: Settings) -> dict[str, object]:
    """Turn a quarantined lead into a real one: assigned, emails queued, recorded."""
    now = utcnow()
    with write_transaction():
        lead = find(ident, include_quarantined=True)
        if not lead.quarantined:
            raise LeadctlError(f"lead {lead.id} is not quarantined")
        Lead.update(quarantined=False, quarantine_reason=None, updated_at=now).where(
            Lead.id == lead.id
        ).execute()
        lead.quarantined, lead.updated_at = False, now
        events.record(Event.row(lead.id, now, actor, "released", {}))
        attorney, reason = choose_attorney(lead.email, now)
        Lead.update(attorney=attorney).where(Lead.id == lead.id).execute()
        events.record(*_notify(lead, attorney, reason, _resume_facts(lead), settings, now))
    return lead_dict(find(lead.id))


def _resume_facts(lead: Lead) -> ResumeFacts:
    row = (
        Resume.select(Resume.filename, Resume.content_type, Resume.size)
        .where(Resume.lead == lead.id)
        .first()
    )
    if row is None:
        return ResumeFacts(url=lead.resume_url)
    return ResumeFacts(row.filename, row.content_type, row.size)


def purge_quarantine(older_than: timedelta = QUARANTINE_KEPT, *, dry_run: bool = False) -> int:
    """Delete quarantined leads (with resumes and history) older than `older_than`, after
    taking their names and addresses out of the quarantine digests that listed them."""
    from leadctl.db import chunks
    from leadctl.redaction import locked, redact_digests

    cutoff = utcnow() - older_than
    doomed = Lead.select(Lead.id).where((Lead.quarantined == True) & (Lead.created_at < cutoff))  # noqa: E712
    if dry_run:
        return doomed.count()
    with write_transaction():
        held = list(
            locked(
                Lead.select(Lead.id, Lead.first_name, Lead.last_name, Lead.email)
                .where(Lead.id.in_(doomed))
                .order_by(Lead.id)
            )
        )
        redact_digests(held)  # before the marks that lead to the digests are deleted
        deleted = 0
        for ids in chunks([lead.id for lead in held]):
            for table in (Event, OutboxMessage, IdempotencyKey, Resume):
                table.delete().where(table.lead.in_(ids)).execute()
            deleted += Lead.delete().where(Lead.id.in_(ids)).execute()
        return deleted


def forget_old_keys(now: datetime | None = None) -> int:
    """Idempotency keys are kept 24 hours; older ones are deleted here."""
    cutoff = (now or utcnow()) - IDEMPOTENCY_WINDOW
    with write_transaction():
        return IdempotencyKey.delete().where(IdempotencyKey.created_at < cutoff).execute()


def shared_secret(name: str) -> bytes:
    """A random secret every server process shares (kept in the database, made on first use)."""
    row = AppSecret.get_or_none(AppSecret.name == name)
    if row is None:
        with write_transaction():
            fastpath.serialize("app-secret", name)  # PostgreSQL: one process makes it
            row = AppSecret.get_or_none(AppSecret.name == name)
            if row is None:
                row = AppSecret.create(name=name, value=secrets.token_hex(32))
    return bytes.fromhex(row.value)
