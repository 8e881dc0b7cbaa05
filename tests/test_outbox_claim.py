"""The outbox's one-statement claim (`UPDATE … RETURNING`) and the delivery loop's one thread pool,
on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from leadctl import outbox, outbox_claim, submissions
from leadctl.fastpath import insert_rows
from leadctl.mailer import make_sender
from leadctl.messages import Composed
from leadctl.models import OutboxMessage
from leadctl.resumes import check_resume
from leadctl.settings import Settings
from leadctl.states import MessageStatus
from leadctl.timeutil import utcnow
from leadctl.transactions import write_transaction
from leadctl.validation import check_prospect
from leadctl.webhooks import PURPOSE as WEBHOOK
from tests import samples
from tests.conftest import SmtpSink, at_once, smtp_settings

pytestmark = pytest.mark.postgres


def _queue(settings: Settings, count: int, *, purpose: str = "notification", at: datetime) -> None:
    rows = [
        outbox.message_row(
            Composed(f"r{i}@example.com", f"s{i}", "text", "<p>html</p>"),
            settings=settings,
            purpose=purpose,
            lead=None,
            now=at + timedelta(seconds=i),
        )
        for i in range(count)
    ]
    with write_transaction():
        insert_rows(OutboxMessage, rows)


def test_claim_takes_the_oldest_due_first_and_returns_whole_messages(core: Settings) -> None:
    start = utcnow() - timedelta(minutes=5)
    _queue(core, 5, at=start)
    _queue(core, 2, purpose=WEBHOOK, at=start - timedelta(minutes=1))  # the other lane
    OutboxMessage.update(next_attempt_at=utcnow() + timedelta(hours=1)).where(
        (OutboxMessage.subject == "s4") & (OutboxMessage.purpose != WEBHOOK)  # not due yet
    ).execute()
    now = utcnow()
    claimed = outbox.claim(3, timedelta(seconds=30), now=now)
    assert [m.subject for m in claimed] == ["s0", "s1", "s2"]
    assert [m.id for m in claimed] == sorted(m.id for m in claimed)
    for m in claimed:
        assert m.status == MessageStatus.SENDING.value and m.attempts == 1
        assert m.lease_until == now + timedelta(seconds=30)
        assert m.lease_until.tzinfo is UTC and m.created_at.tzinfo is UTC
        assert (m.lead_id, m.purpose, m.body_html) == (None, "notification", "<p>html</p>")
        assert m.message_id.startswith("<notification.")
    rest = outbox.claim(10, timedelta(seconds=30), now=now)
    assert [m.subject for m in rest] == ["s3"]  # s4 is not due; webhooks are another lane
    hooks = outbox.claim(10, timedelta(seconds=30), now=now, webhooks=True)
    assert len(hooks) == 2 and {m.purpose for m in hooks} == {WEBHOOK}
    # A lapsed lease makes a message due again, with its attempt counted.
    again = outbox.claim(10, timedelta(seconds=30), now=now + timedelta(seconds=31))
    assert [m.subject for m in again] == ["s0", "s1", "s2", "s3"]
    assert all(m.attempts == 2 for m in again)
    # A release by the claim that lapsed changes nothing now; the current one's does.
    outbox.release(claimed)
    assert outbox.claim(10, timedelta(seconds=30), now=now + timedelta(seconds=32)) == []
    outbox.release(again)
    row = OutboxMessage.get_by_id(claimed[0].id)
    assert (row.status, row.attempts, row.lease_until) == ("pending", 1, None)


def test_concurrent_claims_take_disjoint_batches(core: Settings) -> None:
    _queue(core, 60, at=utcnow() - timedelta(minutes=1))

    def claimer() -> list[int]:
        mine: list[int] = []
        while batch := outbox.claim(7, timedelta(seconds=60)):
            mine += [m.id for m in batch]
        return mine

    taken = at_once(claimer, 3)  # raises what any claimer raised
    every = [i for mine in taken for i in mine]
    assert len(every) == 60 and len(set(every)) == 60
    assert OutboxMessage.select().where(OutboxMessage.attempts != 1).count() == 0


def test_the_sending_threads_are_the_callers_pool_batch_after_batch(
    core: Settings, smtp_sink: SmtpSink
) -> None:
    for i in range(6):
        submissions.submit(
            check_prospect("Ana", f"Lee{i}", f"ana{i}@example.com"),
            check_resume("cv.pdf", samples.pdf(2000), core.max_resume_bytes),
            core,
        )
    s = smtp_settings(core, smtp_sink.port)
    senders = [make_sender(s) for _ in range(3)]
    seen: set[str] = set()
    real_send = outbox._send_one

    def noting(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.add(threading.current_thread().name)
        return real_send(*args, **kwargs)

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(outbox, "_send_one", noting)
            with ThreadPoolExecutor(3, thread_name_prefix="loop-pool") as pool:
                sent = [outbox.deliver_due(senders, s, batch=1, pool=pool).sent for _ in range(5)]
    finally:
        for sender in senders:
            sender.close()
    assert sent == [3, 3, 3, 3, 0]  # 12 emails, three a batch, all on the loop's threads
    assert seen and all(name.startswith("loop-pool") for name in seen)
    assert len(smtp_sink.wait_for(12, timeout=10)) == 12
    assert OutboxMessage.select().where(OutboxMessage.status != "sent").count() == 0


def test_mark_sent_records_each_delivery_once(core: Settings) -> None:
    _queue(core, 3, at=utcnow() - timedelta(minutes=1))
    claimed = outbox_claim.claim(10, timedelta(seconds=30))
    outbox_claim.mark_sent(claimed[:2])
    rows = {m.id: m for m in OutboxMessage.select()}
    assert [rows[m.id].status for m in claimed] == ["sent", "sent", "sending"]
    assert all(
        rows[m.id].sent_at is not None and rows[m.id].lease_until is None for m in claimed[:2]
    )
