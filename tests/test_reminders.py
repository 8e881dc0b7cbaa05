"""Speed to lead: one reminder to the attorney, one escalation to the inbox, never once reached
out, never twice — even with several workers on one PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadctl import attorneys, chores, db, erasure, stats, submissions
from leadctl.leads import change_state
from leadctl.models import Event, Lead, OutboxMessage
from leadctl.resumes import check_resume
from leadctl.schema import ensure_schema
from leadctl.settings import Settings
from leadctl.states import Action
from leadctl.timeutil import utcnow
from leadctl.validation import check_prospect
from tests import samples
from tests.conftest import (
    SmtpSink,
    at_once,
    make_settings,
    outbox_statuses,
    smtp_settings,
    submit,
    wait_until,
)


def _lead(s: Settings, first: str = "Jane", email: str = "jane@example.com", **kw: Any) -> Lead:
    resume = check_resume("cv.pdf", samples.pdf(), s.max_resume_bytes)
    return submissions.submit(check_prospect(first, "Doe", email), resume, s, **kw).lead


def _age(lead: Lead, by: timedelta) -> None:
    Lead.update(created_at=utcnow() - by).where(Lead.id == lead.id).execute()


def _messages(purpose: str) -> list[OutboxMessage]:
    return list(
        OutboxMessage.select().where(OutboxMessage.purpose == purpose).order_by(OutboxMessage.id)
    )


@pytest.fixture
def firm(core: Settings) -> Settings:
    attorneys.add("Bob Roe", "bob@firm.example")
    return core.replace(remind_after="1h", escalate_after="2h", intake_email="intake@firm.example")


def test_a_lead_pending_too_long_reminds_its_attorney_once(firm: Settings) -> None:
    lead = _lead(firm)
    fresh = _lead(firm, "Fresh", "fresh@example.com")
    _age(lead, timedelta(minutes=90))
    now = utcnow()
    assert chores.nudge_due(chores.REMINDER, firm, now)[0] == 1
    assert chores.nudge_due(chores.REMINDER, firm, now)[0] == 0  # once
    assert chores.nudge_due(chores.ESCALATION, firm, now)[0] == 0  # not yet 2h
    (mail,) = _messages("reminder")
    assert mail.recipient == "bob@firm.example" and mail.lead_id == lead.id
    assert mail.subject == f"Reminder: lead {lead.reference} has waited 1 hour 30 minutes"
    assert f"leadctl reach-out {lead.id}" in mail.body_text and "Jane Doe" in mail.body_html
    stored = Lead.get_by_id(lead.id)
    assert stored.reminded_at is not None and stored.escalated_at is None
    assert Lead.get_by_id(fresh.id).reminded_at is None
    (event,) = Event.select().where(Event.kind == "reminded")
    assert event.lead_id == lead.id and event.details["to"] == "bob@firm.example"


def test_an_overdue_lead_escalates_to_the_inbox_once(firm: Settings) -> None:
    lead = _lead(firm)
    _age(lead, timedelta(hours=3))
    now = utcnow()
    assert chores.nudge_due(chores.REMINDER, firm, now)[0] == 1
    assert chores.nudge_due(chores.ESCALATION, firm, now)[0] == 1
    assert chores.nudge_due(chores.ESCALATION, firm, now)[0] == 0
    (mail,) = _messages("escalation")
    assert mail.recipient == "intake@firm.example"
    assert "Attorney:   bob@firm.example" in mail.body_text
    assert f"leadctl assign {lead.id} EMAIL" in mail.body_text
    figures = stats.compute()
    assert (figures["reminded"], figures["escalated"]) == (1, 1)


def test_neither_once_reached_out_nor_for_held_or_erased_leads(firm: Settings) -> None:
    reached = _lead(firm, "Reached", "r@example.com")
    held = _lead(firm, "Held", "h@example.com", quarantine_reason="honeypot")
    erased = _lead(firm, "Erased", "e@example.com")
    for lead in (reached, held, erased):
        _age(lead, timedelta(hours=3))
    change_state(reached.id, Action.REACH_OUT, "bob@firm.example")
    erasure.erase([erased.id], "bob@firm.example", "asked")
    now = utcnow()
    assert chores.nudge_due(chores.REMINDER, firm, now)[0] == 0
    assert chores.nudge_due(chores.ESCALATION, firm, now)[0] == 0
    assert _messages("reminder") == [] == _messages("escalation")


def test_off_sends_none(firm: Settings) -> None:
    _age(_lead(firm), timedelta(days=3))
    off = firm.replace(remind_after="off", escalate_after="off")
    assert chores.nudge_due(chores.REMINDER, off, utcnow()) == (0, None)
    assert chores.nudge_due(chores.ESCALATION, off, utcnow()) == (0, None)


def test_an_unassigned_lead_reminds_the_inbox(core: Settings) -> None:
    s = core.replace(remind_after="1h", intake_email="intake@firm.example")
    lead = _lead(s)  # no attorney at all
    _age(lead, timedelta(hours=2))
    assert chores.nudge_due(chores.REMINDER, s, utcnow())[0] == 1
    assert _messages("reminder")[0].recipient == "intake@firm.example"


def test_an_upgrade_does_not_remind_every_old_lead(firm: Settings) -> None:
    old = _lead(firm, "Old", "old@example.com")
    _age(old, timedelta(hours=1) + chores.CATCH_UP + timedelta(hours=1))
    assert chores.nudge_due(chores.REMINDER, firm, utcnow())[0] == 0


def test_the_walk_resumes_where_it_stopped(firm: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chores, "BATCH", 2)
    leads = [_lead(firm, f"P{i}", f"p{i}@example.com") for i in range(5)]
    for i, lead in enumerate(leads):
        _age(lead, timedelta(hours=1, minutes=50 - i))
    routine = chores.Routine(firm.replace(escalate_after="off"), tick=0)
    assert [routine.run() for _ in range(4)] == [2, 2, 1, 0]
    later = _lead(firm, "Later", "later@example.com")
    _age(later, timedelta(hours=1, minutes=1))
    assert routine.run() == 1  # read from where the last walk stopped
    assert len(_messages("reminder")) == 6


def test_reminders_wait_for_a_claim_and_go_out_exactly_once_across_workers(
    firm: Settings,
) -> None:
    """Four workers (threads, each its own connection: on PostgreSQL, its own session) claim
    the same 30 overdue leads at once."""
    leads = [_lead(firm, f"P{i}", f"p{i}@example.com") for i in range(30)]
    Lead.update(created_at=utcnow() - timedelta(hours=3)).where(
        Lead.id.in_([lead.id for lead in leads])
    ).execute()
    db.close_connection()

    def work() -> None:
        routine = chores.Routine(firm, tick=0)
        while routine.run():
            pass

    at_once(work, 4)  # raises what any worker raised
    for purpose in ("reminder", "escalation"):
        got = sorted(m.lead_id for m in _messages(purpose))
        assert got == sorted(lead.id for lead in leads), purpose
    assert Event.select().where(Event.kind == "reminded").count() == 30


@pytest.mark.e2e
def test_the_server_reminds_then_escalates_by_email(
    tmp_path: Path, make_server: Any, smtp_sink: SmtpSink
) -> None:
    s = smtp_settings(
        make_settings(
            tmp_path,
            remind_after="3s",
            escalate_after="4s",
            intake_email="intake@firm.example",
            require_consent=False,
        ),
        smtp_sink.port,
    )
    db.bind(s.database_url)
    ensure_schema()
    attorneys.add("Bob Roe", "bob@firm.example")
    db.close_connection()
    server = make_server(s)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        waiting = submit(client, first="Wai", last="Ting", email="wait@example.com").json()
        answered = submit(client, first="Ann", last="Swered", email="ans@example.com").json()
    db.bind(s.database_url)
    done = Lead.get(Lead.reference == answered["reference"])
    change_state(done.id, Action.REACH_OUT, "bob@firm.example")
    db.close_connection()

    def subjects() -> list[tuple[str, str]]:
        return [(to[0], str(m["Subject"])) for to, m in smtp_sink.received]

    def nudges() -> list[tuple[str, str, bool]]:
        """(kind, recipient, names the waiting lead) of each reminder and escalation received.
        Both may fall due in one pass on a busy machine, and the worker then sends them side by
        side: the sink's order of arrival is not a promise, the order of the events is."""
        got = [(subject.split(":")[0], to, subject) for to, subject in subjects()]
        return sorted(
            (kind, to, waiting["reference"] in subject)
            for kind, to, subject in got
            if kind in ("Reminder", "Escalation")
        )

    wait_until(lambda: len(nudges()) == 2, 20, "the reminder and the escalation")
    assert nudges() == [
        ("Escalation", "intake@firm.example", True),
        ("Reminder", "bob@firm.example", True),
    ]
    wait_until(lambda: set(outbox_statuses(tmp_path)) == {"sent"}, 10, "every email recorded")
    assert len(nudges()) == 2
    db.bind(s.database_url)
    try:
        lead = Lead.get(Lead.reference == waiting["reference"])
        kinds = [e.kind for e in Event.select().where(Event.lead == lead).order_by(Event.id)]
    finally:
        db.close_connection()
    assert [k for k in kinds if k in ("reminded", "escalated")] == ["reminded", "escalated"]


def test_stats_count_reminders_and_escalations(
    lead_cli: Any, seeded: list[Any], cli_env: dict[str, str]
) -> None:
    """`leadctl stats`, locally and through the server, counts them."""
    s = Settings.from_env(
        {},
        database_url=cli_env["LEADS_DATABASE_URL"],
        mail_dir=cli_env["LEADS_MAIL_DIR"],
        remind_after="1h",
        escalate_after="2h",
    )
    db.bind(s.database_url)
    try:
        _age(seeded[0], timedelta(hours=3))
        _age(seeded[1], timedelta(minutes=90))
        routine = chores.Routine(s, tick=0)
        assert routine.run() == 3  # two reminders, one escalation
    finally:
        db.close_connection()
    data = lead_cli("stats", "--json").json()
    assert (data["reminded"], data["escalated"]) == (2, 1)


def test_a_broken_firm_template_stops_only_its_own_chore(
    firm: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "tpl" / "email").mkdir(parents=True)
    (tmp_path / "tpl" / "email" / "reminder.txt").write_text("{% set subject = %}")
    s = firm.replace(templates_dir=str(tmp_path / "tpl"), quarantine_digest="1h")
    _age(_lead(s), timedelta(hours=3))
    _lead(s, "Held", "held@example.com", quarantine_reason="honeypot")
    routine = chores.Routine(s, tick=0)
    assert routine.run() == 2  # the escalation and the digest; the reminder failed
    assert "chore reminded failed" in caplog.text and "reminder.txt" in caplog.text
    assert Lead.select().where(Lead.reminded_at.is_null(False)).count() == 0  # rolled back
    caplog.clear()
    assert routine.run() == 0 and "failed" not in caplog.text  # it rests, quietly
