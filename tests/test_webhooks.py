"""Webhooks: lead events queued with their change, signed, retried, dead-lettered, and sent to a
real HTTP receiver on 127.0.0.1 — which fails, hangs, floods and redirects."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadctl import attorneys, chat_text, erasure, events, outbox, submissions, webhooks
from leadctl.leads import add_note, assign, change_state
from leadctl.models import OutboxMessage
from leadctl.resumes import check_resume
from leadctl.settings import Settings, SettingsError
from leadctl.states import Action
from leadctl.validation import check_prospect
from tests import samples
from tests.conftest import make_settings, wait_until
from tests.receiver import Receiver

SECRET = "s3cret-key"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def hooked(core: Settings, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The core (SQLite and PostgreSQL) with webhooks on, to the receiver."""
    monkeypatch.setattr(events, "_webhooks", False)  # restored after the test
    s = core.replace(
        webhook_url=receiver.url,
        webhook_secret=SECRET,
        mail_max_attempts=3,
        mail_retry_seconds=60,  # a failed POST is tried again by the tests that say so
    )
    events.configure(s)
    attorneys.add("Bob Roe", "bob@firm.example")
    attorneys.add("Cy Poe", "cy@firm.example")
    return s


def _lead(s: Settings, first: str = "Jane", last: str = "Doe", **kw: Any) -> Any:
    resume = check_resume("cv.pdf", samples.pdf(), s.max_resume_bytes)
    prospect = check_prospect(first, last, kw.pop("email", "jane@example.com"))
    return submissions.submit(prospect, resume, s, **kw).lead


def _hooks() -> list[dict[str, Any]]:
    rows = (
        OutboxMessage.select().where(OutboxMessage.purpose == "webhook").order_by(OutboxMessage.id)
    )
    return [json.loads(row.body_text) for row in rows]


def _drain(s: Settings) -> tuple[int, int]:
    return webhooks.drain(s)


def test_each_lead_event_is_queued_with_its_change_and_without_personal_data(
    hooked: Settings,
) -> None:
    lead = _lead(hooked)
    _lead(hooked, "Spam", "Bot", email="bot@example.com", quarantine_reason="honeypot")
    change_state(lead.id, Action.REACH_OUT, "bob@firm.example", note="called her about the case")
    change_state(lead.id, Action.REOPEN, "bob@firm.example")
    add_note(lead.id, "privileged: she told us about the merger", "bob@firm.example")
    assign(lead.id, "cy@firm.example", "ann@firm.example")
    hooks = _hooks()
    assert [h["type"] for h in hooks] == [
        "lead.created",  # one per new lead, its assignment folded in; none for the held one
        "lead.reached_out",
        "lead.reopened",
        "lead.assigned",  # notes send none
    ]
    assert hooks[0]["data"]["attorney"] == "bob@firm.example"
    assert hooks[0]["lead"] == {"id": lead.id, "reference": lead.reference}
    assert hooks[1]["actor"] == "bob@firm.example"
    assert hooks[3]["data"] == {
        "attorney": "cy@firm.example",
        "previous": "bob@firm.example",
        "reason": "manual",
    }
    stored = " ".join(row.body_text for row in OutboxMessage.select())
    webhook_text = " ".join(json.dumps(h) for h in hooks)
    assert "Jane" not in webhook_text and "jane@example.com" not in webhook_text
    assert "merger" not in webhook_text and "called her" not in webhook_text
    assert "Jane" in stored  # (the emails do carry the name)
    assert len({h["id"] for h in hooks}) == 4


def test_nothing_is_queued_when_webhooks_are_off(core: Settings) -> None:
    assert not events.webhooks_on()
    lead = _lead(core)
    change_state(lead.id, Action.REACH_OUT, "bob@firm.example")
    assert _hooks() == []


def test_a_receiver_that_fails_twice_gets_it_once_signed_then_never_again(
    hooked: Settings, receiver: Receiver
) -> None:
    receiver.fail_first = 2
    hooked = hooked.replace(mail_retry_seconds=0.05)
    lead = _lead(hooked)
    wait_until(lambda: (_drain(hooked), _status() == ["sent"])[1], 10, "the retries")
    got = receiver.received
    assert len(got) == 3
    assert len({r.body for r in got}) == 1  # the same bytes every time
    assert len({r.headers["x-leadctl-event-id"] for r in got}) == 1
    first = got[0]
    assert first.signed_with(SECRET) and not first.signed_with("another key")
    assert first.headers["content-type"] == "application/json"
    assert first.path == "/hooks/leadctl"
    body = first.json()
    assert body["id"] == first.headers["x-leadctl-event-id"]
    assert body["type"] == first.headers["x-leadctl-event"] == "lead.created"
    assert body["data"]["prospect"] == {
        "first_name": "Jane",
        "last_name": "Doe",
        "email": "jane@example.com",
    }
    assert body["lead"]["reference"] == lead.reference
    assert _drain(hooked) == (0, 0)  # exactly once after success
    assert len(receiver.received) == 3


def _status() -> list[str]:
    return [m.status for m in OutboxMessage.select().where(OutboxMessage.purpose == "webhook")]


def test_a_receiver_that_always_fails_dead_letters_the_webhook(
    hooked: Settings, receiver: Receiver
) -> None:
    receiver.mode = "fail"
    hooked = hooked.replace(mail_retry_seconds=0.05)
    _lead(hooked)
    wait_until(lambda: (_drain(hooked), _status() == ["dead"])[1], 10, "the dead letter")
    assert len(receiver.received) == hooked.mail_max_attempts == 3
    row = OutboxMessage.get(OutboxMessage.purpose == "webhook")
    port = receiver.url.split(":")[2].split("/")[0]
    assert row.last_error == f"http://127.0.0.1:{port} answered 500: try later"
    assert outbox.retry(None, dead=True) == 1  # `leadctl outbox retry --dead` brings it back
    receiver.mode = "ok"
    assert _drain(hooked) == (1, 0)


def test_an_erased_lead_sends_no_personal_data(hooked: Settings, receiver: Receiver) -> None:
    lead = _lead(hooked)
    erasure.erase([lead.id], "ann@firm.example", "the prospect asked")
    assert _drain(hooked) == (2, 0)
    created, erased = (r.json() for r in receiver.received)  # one lead's: in order
    assert created["type"] == "lead.created" and "prospect" not in created["data"]
    assert erased["type"] == "lead.erased"
    assert erased["lead"] == {"id": lead.id, "reference": lead.reference}
    for r in receiver.received:
        assert b"Jane" not in r.body and b"jane@" not in r.body


def test_slack_format_escapes_mentions_and_links(hooked: Settings, receiver: Receiver) -> None:
    s = hooked.replace(webhook_format="slack")
    lead = _lead(s, "<!channel>", "<https://evil.example|click> &amp;")
    change_state(lead.id, Action.REACH_OUT, "bob@firm.example")
    assert _drain(s) == (2, 0)
    created, reached = (r.json() for r in receiver.received)
    assert set(created) == {"text"}
    assert created["text"] == (
        f"New lead {lead.reference} (#{lead.id}): `&lt;!channel&gt;` "
        "`&lt;https://evil.example|click&gt; &amp;amp;`, assigned to `bob@firm.example`."
    )
    assert (
        reached["text"]
        == f"Lead {lead.reference} (#{lead.id}) was reached out by `bob@firm.example`."
    )
    assert all(r.signed_with(SECRET) for r in receiver.received)


def test_slack_format_sets_outside_text_in_inline_code(
    hooked: Settings, receiver: Receiver
) -> None:
    """A bare link (Slack links it), `*bold*` and `_italic_` (mrkdwn), a Markdown link (Teams)
    and a backtick that would end the code early: each shown as typed, inert."""
    s = hooked.replace(webhook_format="slack")
    lead = _lead(s, "https://evil.example/login", "*URGENT* [click](https://evil) _x_ `y`")
    assert _drain(s) == (1, 0)
    assert receiver.received[0].json()["text"] == (
        f"New lead {lead.reference} (#{lead.id}): `https://evil.example/login` "
        "`*URGENT* [click](https://evil) _x_ \u02cby\u02cb`, assigned to `bob@firm.example`."
    )


def test_slack_escape_makes_control_characters_visible() -> None:
    assert chat_text.slack_escape("a\x1b[31mb\u202ec") == "a\\x1b[31mb\\u202ec"
    assert chat_text.inert("a\u00adb`") == "`a\\xadb\u02cb`"
    assert chat_text.inert("  ") == "(blank)"


def test_slack_text_of_a_lead_moved_to_the_inbox_says_so() -> None:
    payload = {
        "type": "lead.assigned",
        "lead": {"id": 3, "reference": "ABCD-EFGH"},
        "actor": "ann@firm.example",
        "data": {"attorney": None, "previous": "bob@firm.example", "reason": "manual"},
    }
    assert chat_text.slack_text(payload) == (
        "Lead ABCD-EFGH (#3) was moved to the intake inbox by `ann@firm.example` (`manual`)."
    )


def test_a_receiver_that_hangs_is_cut_off(
    hooked: Settings, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "DEADLINE_SECONDS", 0.5)
    receiver.mode = "hang"
    _lead(hooked)
    assert _drain(hooked) == (0, 1)
    row = OutboxMessage.get(OutboxMessage.purpose == "webhook")
    assert row.status == "pending" and "did not answer within" in row.last_error


@pytest.mark.parametrize("status", [200, 500])
def test_an_endless_answer_is_read_only_so_far(
    hooked: Settings, receiver: Receiver, status: int
) -> None:
    receiver.mode, receiver.status = "flood", status
    _lead(hooked)
    assert _drain(hooked) == ((1, 0) if status == 200 else (0, 1))
    assert receiver.flood_sent < 64 * 1024**2  # 10 GB promised; we hung up long before
    row = OutboxMessage.get(OutboxMessage.purpose == "webhook")
    assert len(row.last_error or "") < 300


def test_a_redirect_is_never_followed(hooked: Settings, receiver: Receiver) -> None:
    elsewhere = Receiver().start()
    try:
        receiver.mode, receiver.location = "redirect", elsewhere.url
        _lead(hooked)
        assert _drain(hooked) == (0, 1)
        row = OutboxMessage.get(OutboxMessage.purpose == "webhook")
        assert "answered 302 (a redirect: webhooks never follow one)" in row.last_error
        assert elsewhere.received == []
    finally:
        elsewhere.stop()


def test_the_url_is_read_at_send_time(hooked: Settings, receiver: Receiver) -> None:
    _lead(hooked)
    other = Receiver().start()
    try:
        assert _drain(hooked.replace(webhook_url=other.url)) == (1, 0)
        assert len(other.received) == 1 and receiver.received == []
    finally:
        other.stop()


def test_credentials_and_paths_of_the_url_never_reach_an_error_or_a_log(
    hooked: Settings, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.mode = "fail"
    port = receiver.url.split(":")[2].split("/")[0]
    secret_url = f"http://user:pa55word@127.0.0.1:{port}/services/T000/B000/XXXXSECRET"
    _lead(hooked)
    assert _drain(hooked.replace(webhook_url=secret_url)) == (0, 1)
    row = OutboxMessage.get(OutboxMessage.purpose == "webhook")
    assert "pa55word" not in row.last_error and "XXXXSECRET" not in row.last_error
    assert "answered 500" in caplog.text  # our own line, naming the host only
    assert "pa55word" not in caplog.text and "XXXXSECRET" not in caplog.text
    assert webhooks.where(secret_url) == f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/a\r\nX-Evil: 1",
        "https://hooks.example.com/a b",
        "http://hooks.example.com/plain-http-elsewhere",
        "ftp://hooks.example.com/",
        "https://",
    ],
)
def test_settings_refuse_a_bad_webhook_url(url: str) -> None:
    with pytest.raises(SettingsError, match="LEADS_WEBHOOK_URL"):
        Settings.from_env({"LEADS_WEBHOOK_URL": url, "LEADS_WEBHOOK_SECRET": "k"})


def test_settings_need_a_secret_with_a_url() -> None:
    with pytest.raises(SettingsError, match="LEADS_WEBHOOK_SECRET"):
        Settings.from_env({"LEADS_WEBHOOK_URL": "https://hooks.example.com/x"})


def test_the_delivery_worker_posts_webhooks_in_a_lane_of_their_own(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the worker, a webhook receiver that fails does not hold up the email."""
    from leadctl import db
    from leadctl.delivery import DeliveryWorker
    from leadctl.mailer import make_sender
    from leadctl.schema import ensure_schema

    monkeypatch.setattr(events, "_webhooks", False)
    s = make_settings(tmp_path, webhook_url=receiver.url, webhook_secret=SECRET)
    db.bind(s.database_url)
    ensure_schema()
    events.configure(s)
    receiver.fail_first = 2
    _lead(s)
    worker = DeliveryWorker(s, make_sender, poll_seconds=0.1)
    worker.start()
    try:
        wait_until(lambda: len(list((tmp_path / "mail").glob("*.eml"))) == 2, 10, "the emails")
        got = receiver.wait_for(3)
        assert len(got) == 3 and got[2].signed_with(SECRET)
        wait_until(lambda: _status() == ["sent"], 10, "the webhook recorded as sent")
    finally:
        worker.stop()
        db.close_connection()


@pytest.mark.e2e
def test_the_server_posts_a_new_lead_to_a_receiver_that_fails_twice(
    tmp_path: Path, make_server: Any, receiver: Receiver
) -> None:
    receiver.fail_first = 2
    s = make_settings(
        tmp_path,
        webhook_url=receiver.url,
        webhook_secret=SECRET,
        mail_retry_seconds=0.1,
        require_consent=False,
    )
    server = make_server(s)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        from tests.conftest import submit

        answer = submit(client, first="Zoë", last="Ñúñez", email="zoe@example.com")
    assert answer.status_code == 201, answer.text
    got = receiver.wait_for(3)
    assert len(got) == 3 and all(r.signed_with(SECRET) for r in got)
    body = got[2].json()
    assert body["type"] == "lead.created"
    assert body["lead"]["reference"] == answer.json()["reference"]
    assert body["data"]["prospect"]["first_name"] == "Zoë"
    assert len({r.headers["x-leadctl-event-id"] for r in got}) == 1


def test_one_leads_events_go_in_order_and_wait_for_each_other(
    hooked: Settings, receiver: Receiver
) -> None:
    receiver.fail_first = 1
    lead = _lead(hooked)
    change_state(lead.id, Action.REACH_OUT, "bob@firm.example")
    assert _drain(hooked) == (0, 2)
    assert len(receiver.received) == 1  # the second waits for the first
    errors = [
        m.last_error
        for m in OutboxMessage.select()
        .where(OutboxMessage.purpose == "webhook")
        .order_by(OutboxMessage.id)
    ]
    assert errors[1] == f"not sent: an earlier event of lead {lead.id} failed"
    OutboxMessage.update(next_attempt_at=OutboxMessage.created_at).execute()  # due again now
    assert _drain(hooked) == (2, 0)
    assert [r.json()["type"] for r in receiver.received[1:]] == ["lead.created", "lead.reached_out"]
