"""The texts of the two emails every lead causes, in plain text and simple HTML."""

from __future__ import annotations

import html
import secrets
from dataclasses import dataclass
from datetime import datetime

from leadctl.timeutil import iso


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


def _html_page(paragraphs: list[str]) -> str:
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>\n'
        f'<body style="font-family: sans-serif; line-height: 1.5">\n{body}\n</body></html>\n'
    )


def confirmation(reference: str, recipient: str) -> Composed:
    """To the prospect: we have your details, here is your reference, what happens next.

    The greeting is neutral on purpose: anyone can type anyone's address into the form, so
    nothing the prospect wrote (a "first name" such as `Visit evil.example/win`) is echoed
    to that address. Only our own words and the reference go out.
    """
    text = (
        "Hello,\n\n"
        "Thank you for contacting us. We have received your details and your resume.\n\n"
        f"Your reference is {reference}. Please quote it if you write to us.\n\n"
        "What happens next: an attorney will review what you sent and contact you at this "
        "address, usually within two business days. There is nothing more you need to do.\n\n"
        "Kind regards,\nThe intake team\n"
    )
    page = _html_page(
        [
            "Hello,",
            "Thank you for contacting us. We have received your details and your resume.",
            f"Your reference is <strong>{html.escape(reference)}</strong>. "
            "Please quote it if you write to us.",
            "What happens next: an attorney will review what you sent and contact you at this "
            "address, usually within two business days. There is nothing more you need to do.",
            "Kind regards,<br>The intake team",
        ]
    )
    return Composed(recipient, f"We received your details (reference {reference})", text, page)


def notification(
    *,
    lead_id: int,
    reference: str,
    first_name: str,
    last_name: str,
    email: str,
    submitted_at: datetime,
    resume_name: str,
    resume_size: int,
    recipient: str,
    assigned: bool,
) -> Composed:
    """To the assigned attorney (or the intake inbox): who, when, the resume, and the commands."""
    full_name = f"{first_name} {last_name}"
    who = "You have been assigned" if assigned else "No active attorney could take"
    rows = [
        ("Name", full_name),
        ("Email", email),
        ("Reference", reference),
        ("Submitted", iso(submitted_at) or ""),
        ("Resume", f"{resume_name} ({resume_size:,} bytes)"),
    ]
    commands = [f"leadctl show {lead_id}", f"leadctl open {lead_id}"]
    text = (
        f"{who} a new lead.\n\n"
        + "".join(f"{label + ':':<11} {value}\n" for label, value in rows)
        + "\nWork it from your terminal:\n"
        + "".join(f"  {c}\n" for c in commands)
    )
    e = html.escape
    table = "".join(
        f"<tr><th align='left'>{e(label)}</th><td>{e(value)}</td></tr>" for label, value in rows
    )
    page = _html_page(
        [
            f"{who} a new lead.",
            f"<table>{table}</table>",
            "Work it from your terminal:<br>"
            + "<br>".join(f"<code>{e(c)}</code>" for c in commands),
        ]
    )
    return Composed(recipient, f"New lead {reference}: {full_name}", text, page)


def test_message(recipient: str) -> Composed:
    text = "This is a test message from leadctl. If you can read it, mail delivery works.\n"
    return Composed(
        recipient, "leadctl test message", text, _html_page([html.escape(text.strip())])
    )
