"""What erasure leaves of a lead's trail: its events' details cut down to the firm's own words,
its emails emptied (unsent ones cancelled), and its name and address taken out of the quarantine
digests that list it (`rewrite_messages`, which `leadctl.mentions` uses for later leads'
notifications too). Called by `leadctl.erasure`, inside the erasure's transaction."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from markupsafe import escape

from leadctl.db import chunks, is_sqlite
from leadctl.models import Event, Lead, OutboxMessage, email_key
from leadctl.states import MessageStatus
from leadctl.text import visible

ERASED = "[erased]"  # what stands where personal data was: in event details, in a digest
CANCELLED = "cancelled: the lead was erased"  # an unsent message's last_error

# The quarantine digest (leadctl.chores) is an email with no lead of its own; each lead it
# counts gets a DIGESTED event holding the digest's Message-ID: the link erasure follows back.
DIGEST = "quarantine_digest"  # the digest's outbox purpose
DIGESTED = "quarantine_digested"  # a held lead counted in a digest: {"digest", "listed"}
CONFLICTS_FOUND = "conflicts_found"

# Keys of event details that the firm's machinery writes (states, attorneys, ids, counts,
# message ids, scores, dates): kept, unless the value holds the prospect's address (a
# confirmation's `to`). Every other value (a note, a resume's name, an SMTP error, a typed
# reason) becomes ERASED: what a future kind of event adds is redacted unless it is listed here.
KEPT_KEYS = frozenset(
    {
        "from", "to", "attorney", "previous", "by", "purpose", "message_id", "attempt",
        "next_attempt_at", "dead", "size", "hits", "source", "id", "date", "score", "matched",
        "digest", "listed", "pending_since",
    }
)  # fmt: skip
# Kept only when the system wrote the event: its own words ("round robin", "honeypot").
KEPT_FROM_SYSTEM = frozenset({"reason"})
# Kept in events of one kind whoever wrote them: an assignment's reason is always the firm's
# words ("manual", "ann@firm.example was deactivated"); nobody types it.
KEPT_BY_KIND = {"assigned": frozenset({"reason"})}
# A conflict hit names another lead or one of the firm's parties. A party's name, role and
# matter are the firm's own list, not the person's data: they stay. A lead's name (which
# matched this person's) and the searched text go.
HIT_KEYS = frozenset({"source", "id", "reference", "date", "score", "matched"})
PARTY_KEYS = frozenset({"name", "role", "matter"})
_WORD = re.compile(r"\w")
_JOINERS = frozenset("-.'’@+")  # inside a name or an address: `Mary-Ann`, `jo.ann@x.com`


def redact(details: dict[str, Any], address: str, *, kind: str, system: bool) -> dict[str, Any]:
    """An event's `details` with every value outside the kept keys replaced by ERASED, and any
    kept string that holds `address` (the prospect's email key) too. `kind` is the event's,
    `system` whether the system wrote it."""
    kept = KEPT_KEYS | KEPT_BY_KIND.get(kind, frozenset())
    if system:
        kept |= KEPT_FROM_SYSTEM
    return dict(_redacted(details, address, kept, kind == CONFLICTS_FOUND))


def _redacted(value: Any, address: str, kept: frozenset[str], hits: bool = False) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if hits and k == "hits" and isinstance(v, list):
                out[k] = [_hit(hit, address) for hit in v]
            elif k in kept:
                out[k] = _redacted(v, address, kept)
            else:
                out[k] = ERASED if v not in (None, "") else v
        return out
    if isinstance(value, list):
        return [_redacted(v, address, kept) for v in value]
    if isinstance(value, str) and address and address in value.casefold():
        return ERASED
    return value


def _hit(hit: Any, address: str) -> Any:
    party = isinstance(hit, dict) and hit.get("source") == "party"
    return _redacted(hit, address, HIT_KEYS | PARTY_KEYS if party else HIT_KEYS)


def redact_events(leads: Sequence[Lead]) -> None:
    """Each event's details redacted in place; kind, time and actor stay. Events whose details
    end up alike are updated together (a purge of thousands of leads is a few statements)."""
    addresses = {lead.id: lead.email_key for lead in leads}
    groups: dict[str, list[int]] = {}
    redacted: dict[str, dict[str, Any]] = {}
    for ids in chunks(list(addresses)):
        query: Any = (
            Event.select(Event.id, Event.lead, Event.actor, Event.kind, Event.details)
            .where(Event.lead.in_(ids))
            .tuples()
        )
        for event_id, lead_id, actor, kind, details in query:
            details = details or {}
            new = redact(details, addresses.get(lead_id, ""), kind=kind, system=actor == "system")
            if new != details:
                text = Event.details.db_value(new)
                groups.setdefault(text, []).append(event_id)
                redacted[text] = new
    for text, event_ids in groups.items():
        for chunk in chunks(event_ids):
            # The one update the audit trail allows: erasure's redaction (see tests/test_privacy).
            Event.update(details=redacted[text]).where(Event.id.in_(chunk)).execute()


def erase_messages(leads: Sequence[Lead]) -> None:
    """The leads' own emails: subjects and bodies gone; the prospect's address gone; unsent
    messages cancelled (dead, never retried into an empty email: their recipient is gone too)."""
    keys = {lead.id: lead.email_key for lead in leads}
    sent, prospect, cancel = [], [], []
    for ids in chunks(list(keys)):
        rows = OutboxMessage.select(
            OutboxMessage.id, OutboxMessage.lead, OutboxMessage.recipient, OutboxMessage.status
        ).where(OutboxMessage.lead.in_(ids))
        for row in rows:
            if row.status != MessageStatus.SENT.value:
                cancel.append(row.id)
            elif email_key(row.recipient) == keys.get(row.lead_id or 0):
                prospect.append(row.id)
            else:
                sent.append(row.id)
    wiped = {"subject": "", "body_text": "", "body_html": "", "mailbox": None}
    for chunk in chunks(sent):
        OutboxMessage.update(**wiped).where(OutboxMessage.id.in_(chunk)).execute()
    for chunk in chunks(prospect):
        OutboxMessage.update(**wiped, recipient="", last_error=None).where(
            OutboxMessage.id.in_(chunk)
        ).execute()
    for chunk in chunks(cancel):
        OutboxMessage.update(
            **wiped,
            recipient="",
            status=MessageStatus.DEAD.value,
            lease_until=None,
            last_error=CANCELLED,
        ).where(OutboxMessage.id.in_(chunk)).execute()


def redact_digests(leads: Sequence[Lead]) -> int:
    """Take these leads' names and addresses out of the quarantine digests that list them
    (subject, text and HTML): how many digests changed. The leads are read before their rows
    were emptied. A digest stays what it was for the other leads it lists, and is still sent if
    it was not yet: it is the firm's notice, to the firm's inbox.

    The digests are found through the leads' DIGESTED events (by lead, then by Message-ID: two
    index look-ups), not by searching every digest's text; only those that name the lead (a
    digest names 50 and counts the rest) are read. They are locked before they are read, so
    two erasures of leads in one digest each take their own lead out of the other's result.
    """
    by_id = {lead.id: lead for lead in leads}
    links: dict[str, list[int]] = {}
    for ids in chunks(list(by_id)):
        marks: Any = (
            Event.select(Event.lead, Event.details)
            .where(Event.lead.in_(ids) & (Event.kind == DIGESTED))
            .tuples()
        )
        for lead_id, details in marks:
            digest = (details or {}).get("digest")
            # `listed` False: the digest only counted the lead. Marks written before there was
            # a `listed` are looked for in the text all the same.
            if isinstance(digest, str) and digest and (details or {}).get("listed") is not False:
                links.setdefault(digest, []).append(lead_id)
    found: dict[int, list[str]] = {}
    for message_ids in chunks(sorted(links)):
        query = OutboxMessage.select(OutboxMessage.id, OutboxMessage.message_id).where(
            OutboxMessage.message_id.in_(message_ids) & (OutboxMessage.purpose == DIGEST)
        )
        found.update(
            (row.id, forms(v for i in links[row.message_id] for v in template_values(by_id[i])))
            for row in query
        )
    return rewrite_messages(found)


def rewrite_messages(
    targets: dict[int, list[str]], keep: dict[int, list[str]] | None = None
) -> int:
    """Outbox rows (id → the forms to take out, from `forms`) with each whole form in their
    subject, text and HTML replaced by ERASED, except inside a form of `keep` (id → the forms
    that stay: a later lead's own name holding the erased one); how many changed. The rows are
    locked in id order before they are read: two erasures never deadlock, nor write each other's
    names back."""
    keep = keep or {}
    changed = 0
    for row_ids in chunks(sorted(i for i, f in targets.items() if f)):
        rows = locked(
            OutboxMessage.select(
                OutboxMessage.id,
                OutboxMessage.subject,
                OutboxMessage.body_text,
                OutboxMessage.body_html,
            )
            .where(OutboxMessage.id.in_(row_ids))
            .order_by(OutboxMessage.id)
        )
        for row in rows:
            taken, kept = targets[row.id], keep.get(row.id, [])
            new = {
                "subject": _without(row.subject, taken, kept),
                "body_text": _without(row.body_text, taken, kept),
                "body_html": _without(row.body_html, taken, kept),
            }
            if new != {"subject": row.subject, "body_text": row.body_text,
                       "body_html": row.body_html}:  # fmt: skip
                OutboxMessage.update(**new).where(OutboxMessage.id == row.id).execute()
                changed += 1
    return changed


def template_values(lead: Lead) -> tuple[str, str]:
    """What a template gets of a person: `full_name` and `email`."""
    return f"{lead.first_name or ''} {lead.last_name or ''}".strip(), lead.email or ""


def forms(values: Iterable[str]) -> list[str]:
    """Every way a template can have printed these values (a person's name, address): as they
    are, through the `visible` filter, autoescaped in HTML, with white space collapsed (a
    subject). Longest first."""
    found: set[str] = set()
    for value in values:
        for shown in {value, visible(value)}:
            found.update({shown, " ".join(shown.split()), str(escape(shown))})
    return sorted((f for f in found if f.strip()), key=len, reverse=True)


def _without(text: str | None, forms: list[str], keep: Iterable[str] = ()) -> str:
    """`text` with each whole occurrence of a form (not a piece of a longer word: `Al` is not
    taken out of `Alba`, `Ann` out of `Mary-Ann` or `ann@x.com` out of `jo.ann@x.com`) as
    ERASED, except inside an occurrence of a `keep` form. Forms come longest first, so a name is
    taken whole before a shorter form could split it. Plain `str.find`: a regular expression of
    a hundred forms spent 25 ms on one digest."""
    text = text or ""
    taken = bytearray(len(text))  # 1 where a longer form, or one to keep, was already found
    for form in sorted(keep, key=len, reverse=True):
        for at, end in _occurrences(text, form, taken):
            taken[at:end] = b"\x01" * (end - at)
    spans = []
    for form in forms:
        for at, end in _occurrences(text, form, taken):
            taken[at:end] = b"\x01" * (end - at)
            spans.append((at, end))
    if not spans:
        return text
    parts, last = [], 0
    for at, end in sorted(spans):
        parts += [text[last:at], ERASED]
        last = end
    return "".join([*parts, text[last:]])


def _occurrences(text: str, form: str, taken: bytearray) -> Iterator[tuple[int, int]]:
    """The whole occurrences of `form` in `text` that touch nothing `taken`, one by one (the
    caller marks each as taken before the next is looked for)."""
    if not form:
        return
    at = text.find(form)
    while at != -1:
        end = at + len(form)
        if not any(taken[at:end]) and _whole(text, at, end):
            yield at, end
        at = text.find(form, at + 1)


def _whole(text: str, at: int, end: int) -> bool:
    """Whether text[at:end] is not a piece of a longer word or address: the character beside
    it is a letter or digit, or a joiner (`Mary-Ann`, `jo.ann@x.com`, `O'Neil`) with a letter
    or digit beyond it. A sentence's own `.` or `-` after a name is no joiner."""
    return not (
        (_WORD.match(text[at]) and _joined(text, at - 1, -1))
        or (_WORD.match(text[end - 1]) and _joined(text, end, 1))
    )


def _joined(text: str, i: int, step: int) -> bool:
    """Whether text[i] continues a word (from the side `step` points away from)."""
    if not 0 <= i < len(text):
        return False
    if _WORD.match(text[i]):
        return True
    beyond = i + step
    return text[i] in _JOINERS and 0 <= beyond < len(text) and bool(_WORD.match(text[beyond]))


def locked(query: Any) -> Any:
    """`query` FOR UPDATE on PostgreSQL; SQLite's one write lock was taken at BEGIN."""
    return query if is_sqlite() else query.for_update()
