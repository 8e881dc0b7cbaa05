"""The emails every lead causes: the prospect's confirmation and the attorney's notification,
composed from the templates `email/confirmation.*` and `email/notification.*` (the firm may
override either), and the message id every outbox row keeps."""

from __future__ import annotations

import html
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from leadctl.timeutil import iso

if TYPE_CHECKING:
    from leadctl.settings import Settings


@dataclass(frozen=True)
class Composed:
    recipient: str
    subject: str
    text: str
    html: str


def new_message_id(from_email: str, hint: str) -> str:
    """A globally unique, stable Message-ID; kept on the outbox row so retries reuse it."""
    domain = from_email.rpartition("@")[2] or "localhost"
    if not domain.isascii():  # a Message-ID is ASCII: an internationalized domain as IDNA
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            domain = "localhost"
    return f"<{hint}.{secrets.token_hex(8)}@{domain}>"


def _settings(settings: Settings | None) -> Settings:
    from leadctl.settings import Settings

    return settings if settings is not None else Settings()


def confirmation(reference: str, recipient: str, settings: Settings | None = None) -> Composed:
    """To the prospect: we have your details, here is your reference, what happens next.

    The template gets the reference and nothing else of the lead: anyone can type anyone's
    address into the form, so nothing the prospect wrote (a "first name" such as
    `Visit evil.example/win`) is echoed to that address, whatever a firm's template tries.
    """
    from leadctl.rendering import compose

    return compose("confirmation", recipient, _settings(settings), reference=reference)


def notification(
    *,
    lead_id: int,
    reference: str,
    first_name: str,
    last_name: str,
    email: str,
    submitted_at: datetime,
    recipient: str,
    assigned: bool,
    resume_name: str | None = None,
    resume_size: int | None = None,
    resume_type: str | None = None,
    resume_url: str | None = None,
    reason: str = "",
    attorney: tuple[str, str] | None = None,
    consent: tuple[datetime, str] | None = None,
    earlier: Sequence[tuple[int, str, datetime]] = (),
    conflicts: Sequence[dict[str, Any]] = (),
    settings: Settings | None = None,
) -> Composed:
    """To the assigned attorney (or the intake inbox): who, when, the resume (a file's name,
    type and size, or the link), the consent, the prospect's earlier leads (id, reference,
    time), the conflicts found at intake, and the commands to work the lead."""
    from leadctl.rendering import compose
    from leadctl.resumes import TYPE_LABELS

    commands = [f"leadctl show {lead_id}", f"leadctl open {lead_id}"]
    if conflicts:
        commands.append(f"leadctl conflicts --lead {lead_id}")
    commands.append(f"leadctl reach-out {lead_id}")
    context = {
        "lead": {
            "id": lead_id,
            "reference": reference,
            "first_name": first_name,
            "last_name": last_name,
            "full_name": f"{first_name} {last_name}",
            "email": email,
            "submitted_at": iso(submitted_at) or "",
        },
        "resume": {
            "url": resume_url,
            "filename": resume_name,
            "type": TYPE_LABELS.get(resume_type or "", resume_type),
            "size": resume_size,
        },
        "assigned": assigned,
        "reason": reason,
        "attorney": {"name": attorney[0], "email": attorney[1]} if attorney else None,
        "consent": {"at": iso(consent[0]), "version": consent[1]} if consent else None,
        "earlier": [
            {"id": ident, "reference": ref, "date": iso(at) or ""} for ident, ref, at in earlier
        ],
        "conflicts": list(conflicts),
        "commands": commands,
    }
    return compose("notification", recipient, _settings(settings), **context)


def test_message(recipient: str) -> Composed:
    text = "This is a test message from leadctl. If you can read it, mail delivery works.\n"
    page = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>\n'
        f'<body style="font-family: sans-serif; line-height: 1.5">\n'
        f"<p>{html.escape(text.strip())}</p>\n</body></html>\n"
    )
    return Composed(recipient, "leadctl test message", text, page)
