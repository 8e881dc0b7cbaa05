"""Invisible characters a prospect types reach the firm's mail escaped, as on the terminal: an
outsider's name of tag characters spelt a hidden "AB" in the notification's subject and body,
and in the reassignment email."""

from __future__ import annotations

from email import message_from_string, policy
from email.message import EmailMessage
from pathlib import Path

from leadctl import attorneys, outbox, submissions
from leadctl.leads import assign
from leadctl.mailer import FileSender
from leadctl.resumes import check_resume
from leadctl.settings import Settings
from leadctl.validation import check_prospect
from tests import samples

FIRST, LAST = "A\U000e0041\U000e0042", "Ev\u00adil"  # tag characters; a soft hyphen
SHOWN_FIRST, SHOWN_LAST = "A\\U000e0041\\U000e0042", "Ev\\xadil"
HIDDEN = ("\U000e0041", "\U000e0042", "\u00ad")


def _sent(settings: Settings) -> dict[str, list[EmailMessage]]:
    """Every message written so far, by subject's first word."""
    found: dict[str, list[EmailMessage]] = {}
    for path in sorted(Path(settings.mail_dir).glob("*.eml")):
        message = message_from_string(path.read_bytes().decode("utf-8"), policy=policy.default)
        assert isinstance(message, EmailMessage)
        found.setdefault(str(message["Subject"]).split()[0], []).append(message)
    return found


def _text(message: EmailMessage) -> str:
    parts = [message.get_body(preferencelist=(kind,)) for kind in ("plain", "html")]
    return str(message["Subject"]) + "".join(p.get_content() for p in parts if p is not None)


def test_the_attorneys_mail_shows_invisible_characters_escaped(sqlite_core: Settings) -> None:
    s = sqlite_core
    attorneys.add("Ann Lee", "ann@firm.example", "admin")
    attorneys.add("Bob Roe", "bob@firm.example")
    resume = check_resume("cv.pdf", samples.pdf(3000), s.max_resume_bytes)
    lead = submissions.submit(check_prospect(FIRST, LAST, "ab@example.com"), resume, s).lead
    assign(lead.id, "bob@firm.example", "ann@firm.example", s)
    assert outbox.drain(FileSender(s.mail_dir), s).sent == 3
    sent = _sent(s)
    (notification,) = sent["New"]
    (moved,) = sent["Lead"]
    for message in (notification, moved):
        shown = _text(message)
        assert f"{SHOWN_FIRST} {SHOWN_LAST}" in shown
        assert not any(ch in shown for ch in HIDDEN)
    assert str(notification["Subject"]).endswith(f": {SHOWN_FIRST} {SHOWN_LAST}")
