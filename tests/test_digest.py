"""The quarantine digest: the intake inbox hears of held submissions, at most once per period,
each lead listed once, a flood summed up in a bounded email."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadctl import chores, db, fastpath, submissions
from leadctl.models import Event, Lead, OutboxMessage
from leadctl.resumes import check_resume
from leadctl.settings import Settings
from leadctl.timeutil import utcnow
from leadctl.validation import check_prospect
from tests import samples
from tests.conftest import (
    SmtpSink,
    at_once,
    erase_while_another_erasure_holds_its_locks,
    make_settings,
    outbox_statuses,
    smtp_settings,
    submit,
    wait_until,
)


def _held(s: Settings, first: str = "Real", last: str = "Person", n: int = 0) -> Lead:
    resume = check_resume("cv.pdf", samples.pdf(), s.max_resume_bytes)
    prospect = check_prospect(first, last, f"held{n}@example.com")
    return submissions.submit(prospect, resume, s, quarantine_reason="honeypot").lead


def _digests() -> list[OutboxMessage]:
    return list(
        OutboxMessage.select()
        .where(OutboxMessage.purpose == chores.DIGEST)
        .order_by(OutboxMessage.id)
    )


@pytest.fixture
def inbox(core: Settings) -> Settings:
    return core.replace(quarantine_digest="1h", intake_email="intake@firm.example")


def test_held_leads_are_listed_once_and_at_most_one_digest_per_period(inbox: Settings) -> None:
    first = _held(inbox, "Zoë", "Ñúñez", 1)
    now = utcnow()
    assert chores.digest_due(inbox, now) == 1
    (mail,) = _digests()
    assert mail.recipient == "intake@firm.example" and mail.lead_id is None
    assert mail.subject == "1 submission was held as suspected spam"
    assert first.reference in mail.body_text and "Zoë Ñúñez <held1@example.com>" in mail.body_text
    assert f"leadctl release {first.id}" in mail.body_text and "honeypot" in mail.body_text
    second = _held(inbox, "Sam", "Second", 2)
    assert chores.digest_due(inbox, now + timedelta(minutes=30)) == 0  # within the period
    assert chores.digest_due(inbox, utcnow() + timedelta(hours=1)) == 1
    latest = _digests()[-1]
    assert second.reference in latest.body_text and first.reference not in latest.body_text
    assert chores.digest_due(inbox, utcnow() + timedelta(hours=3)) == 0  # nothing new: none
    marks = Event.select().where(Event.kind == chores.DIGESTED)
    assert sorted(e.lead_id for e in marks) == [first.id, second.id]


def test_nothing_held_sends_nothing_and_off_sends_none(inbox: Settings) -> None:
    assert chores.digest_due(inbox, utcnow()) == 0
    _held(inbox)
    assert chores.digest_due(inbox.replace(quarantine_digest="off"), utcnow()) == 0
    assert _digests() == []


def test_a_released_or_purged_lead_is_not_listed(inbox: Settings) -> None:
    released = _held(inbox, n=1)
    submissions.release(released.id, "ann@firm.example", inbox)
    assert chores.digest_due(inbox, utcnow()) == 0


def test_a_lead_committed_late_is_still_listed(inbox: Settings) -> None:
    """A held lead whose created_at falls just before the last digest's cut-off (its
    transaction committed after the digest looked) is in the next one."""
    _held(inbox, n=1)
    assert chores.digest_due(inbox, utcnow()) == 1
    late = _held(inbox, n=2)
    Lead.update(created_at=utcnow() - timedelta(minutes=1)).where(Lead.id == late.id).execute()
    assert chores.digest_due(inbox, utcnow() + timedelta(hours=1)) == 1
    assert late.reference in _digests()[-1].body_text


def test_purge_quarantine_takes_the_purged_out_of_the_digests(inbox: Settings) -> None:
    """Deleting held leads deletes the marks that lead to their digest: the names go first."""
    old = _held(inbox, "Zoë", "Ñúñez", 1)
    young = _held(inbox, "Sam", "Young", 2)
    assert chores.digest_due(inbox, utcnow()) == 1
    (before,) = _digests()
    assert "Zoë Ñúñez <held1@example.com>" in before.body_text
    Lead.update(created_at=utcnow() - timedelta(days=40)).where(Lead.id == old.id).execute()
    assert submissions.purge_quarantine(timedelta(days=30)) == 1
    (after,) = _digests()
    for text in (after.subject, after.body_text, after.body_html):
        assert "Zoë" not in text and "Ñúñez" not in text and "held1@" not in text
    assert "[erased] <[erased]>" in after.body_text and old.reference in after.body_text
    assert "Sam Young <held2@example.com>" in after.body_text  # the lead still held stays
    assert Lead.get_or_none(Lead.id == old.id) is None and Lead.get_by_id(young.id)


def test_names_are_escaped_in_the_html(inbox: Settings) -> None:
    _held(inbox, "<script>alert(1)</script>", "<b>Bold</b>", 1)
    chores.digest_due(inbox, utcnow())
    (mail,) = _digests()
    assert "<script>" not in mail.body_html and "&lt;script&gt;" in mail.body_html
    assert "<b>Bold" not in mail.body_html


def test_ten_thousand_held_leads_make_one_bounded_digest(inbox: Settings) -> None:
    now = utcnow()
    rows = [
        {
            "reference": f"Q{i:07d}",
            "first_name": "Spam",
            "last_name": f"Bot{i}",
            "email": f"bot{i}@example.com",
            "email_key": f"bot{i}@example.com",
            "name_key": f"spam bot{i}",
            "search_key": f"spam bot{i} bot{i}@example.com",
            "state": "PENDING",
            "created_at": now - timedelta(seconds=i),
            "updated_at": now,
            "quarantined": True,
            "quarantine_reason": "form sent back too fast",
        }
        for i in range(10_000)
    ]
    for start in range(0, len(rows), 500):
        fastpath.insert_rows(Lead, rows[start : start + 500])
    assert chores.digest_due(inbox, utcnow()) == 1
    (mail,) = _digests()
    assert mail.subject == "10000 submissions were held as suspected spam"
    assert "... and 9950 more: leadctl list --quarantined" in mail.body_text
    assert mail.body_text.count("leadctl release") == chores.DIGEST_LISTED
    assert len(mail.body_text) < 20_000 and len(mail.body_html) < 30_000
    assert Event.select().where(Event.kind == chores.DIGESTED).count() == 10_000
    assert chores.digest_due(inbox, utcnow() + timedelta(hours=2)) == 0


def test_two_workers_send_one_digest(inbox: Settings) -> None:
    for i in range(5):
        _held(inbox, n=i)
    db.close_connection()
    sent = at_once(lambda: chores.digest_due(inbox, utcnow()), 4)
    assert sorted(sent) == [0, 0, 0, 1]
    assert len(_digests()) == 1


def test_marks_say_which_leads_the_digest_names(
    inbox: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each held lead counted gets a mark with the digest's Message-ID and whether the digest
    names it: what erasure follows to take a name out of the digest (leadctl.redaction)."""
    monkeypatch.setattr(chores, "DIGEST_LISTED", 2)
    leads = [_held(inbox, "Ann", f"Held{n}", n) for n in range(3)]
    assert chores.digest_due(inbox, utcnow()) == 1
    (mail,) = _digests()
    marks = {e.lead_id: e.details for e in Event.select().where(Event.kind == chores.DIGESTED)}
    assert marks == {
        leads[0].id: {"digest": mail.message_id, "listed": True},
        leads[1].id: {"digest": mail.message_id, "listed": True},
        leads[2].id: {"digest": mail.message_id, "listed": False},
    }
    assert "Ann Held2" not in mail.body_text and "and 1 more" in mail.body_text


def test_two_erasures_at_once_each_take_their_lead_out_of_one_digest(inbox: Settings) -> None:
    """The digest is locked before it is read: an erasure that waits for another's digest reads
    it after that one committed, and does not write the other lead's name back."""
    if inbox.database_url.startswith("sqlite"):
        pytest.skip("SQLite has one write lock: two erasures run one after the other")
    leads = [_held(inbox, "Zed", f"Racer{n}", n) for n in range(2)]
    assert chores.digest_due(inbox, utcnow()) == 1
    erase_while_another_erasure_holds_its_locks([leads[0].id], [leads[1].id])
    (mail,) = _digests()
    for lead in leads:
        assert lead.reference in mail.body_text and lead.reference in mail.body_html
    for text in (mail.subject, mail.body_text, mail.body_html):
        assert "Racer" not in text and "held0@" not in text and "held1@" not in text


@pytest.mark.e2e
def test_the_server_mails_a_digest_of_a_bot_caught_by_the_honeypot(
    tmp_path: Path, make_server: Any, smtp_sink: SmtpSink
) -> None:
    s = smtp_settings(
        make_settings(
            tmp_path,
            quarantine_digest="2s",
            intake_email="intake@firm.example",
            require_consent=False,
        ),
        smtp_sink.port,
    )
    server = make_server(s)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        answer = submit(client, first="Real", last="Human", website="http://spam.example")
    assert answer.status_code == 201
    received = smtp_sink.wait_for(1, timeout=15)
    ((to, mail),) = received
    assert to == ["intake@firm.example"]
    assert "held as suspected spam" in str(mail["Subject"])
    text = mail.get_body(("plain",)).get_content()
    assert answer.json()["reference"] in text and "Real Human" in text
    wait_until(lambda: outbox_statuses(tmp_path) == ["sent"], 10, "the digest recorded as sent")
    assert len(smtp_sink.received) == 1  # nothing to the bot, nothing to an attorney


def test_purging_one_held_lead_keeps_a_name_that_holds_its_own(inbox: Settings) -> None:
    """ "Ann Lee" is inside "Mary-Ann Lee": purging Ann leaves Mary-Ann's line of the digest
    whole."""
    resume = check_resume("cv.pdf", samples.pdf(), inbox.max_resume_bytes)
    held = [
        submissions.submit(
            check_prospect(first, "Lee", email), resume, inbox, quarantine_reason="honeypot"
        ).lead
        for first, email in (("Ann", "ann@example.com"), ("Mary-Ann", "jo.ann@example.com"))
    ]
    assert chores.digest_due(inbox, utcnow()) == 1
    Lead.update(created_at=utcnow() - timedelta(days=40)).where(Lead.id == held[0].id).execute()
    assert submissions.purge_quarantine(timedelta(days=30)) == 1
    (mail,) = _digests()
    assert "Mary-Ann Lee" in mail.body_text and "jo.ann@example.com" in mail.body_text
    assert "Mary-[erased]" not in mail.body_text + mail.body_html
    assert "ann@example.com>" not in mail.body_text.replace("jo.ann@example.com", "")
    assert "Ann Lee" not in mail.body_text.replace("Mary-Ann Lee", "")  # Ann herself is gone
