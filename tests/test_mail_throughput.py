"""Mail keeps up with intake: several SMTP connections at once, each reused, every message once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from leadctl import outbox, submissions
from leadctl.db import close_connection
from leadctl.mailer import FileSender, SmtpSender, make_sender
from leadctl.models import OutboxMessage
from leadctl.resumes import check_resume
from leadctl.settings import Settings, SettingsError
from leadctl.states import MessageStatus
from tests import samples
from tests.conftest import (
    closing_controller,
    free_port,
    make_settings,
    smtp_settings,
    submit,
    wait_until,
)

BURST = 150  # leads: 300 messages, enough for every connection to carry many


@dataclass
class CountingSink:
    """aiosmtpd that counts its connections: how many at once at most, and how many in all."""

    port: int
    message_ids: list[str] = field(default_factory=list)
    open_now: int = 0
    open_peak: int = 0
    connections: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Controller:
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
                msg = message_from_bytes(envelope.original_content, policy=policy.default)
                with sink._lock:
                    sink.message_ids.append(str(msg["Message-ID"]))
                return "250 Message accepted"

        class Counted(SMTP):
            def connection_made(self, transport: Any) -> None:
                with sink._lock:
                    sink.connections += 1
                    sink.open_now += 1
                    sink.open_peak = max(sink.open_peak, sink.open_now)
                super().connection_made(transport)

            def connection_lost(self, exc: Exception | None) -> None:
                with sink._lock:
                    sink.open_now -= 1
                super().connection_lost(exc)

        counting = closing_controller(lambda c: Counted(c.handler, **c.SMTP_kwargs))
        controller = counting(Handler(), hostname="127.0.0.1", port=self.port)
        controller.start()
        return controller

    def received(self) -> int:
        with self._lock:
            return len(self.message_ids)


@pytest.fixture
def counting_sink() -> Iterator[CountingSink]:
    sink = CountingSink(free_port())
    controller = sink.start()
    # The controller connects once itself to see the server up: that one does not count.
    wait_until(lambda: sink.open_now == 0, 5, "the controller's own connection to close")
    sink.connections = sink.open_peak = 0
    yield sink
    controller.stop()


def _queue(settings: Settings, count: int, tag: str = "q") -> None:
    resume = check_resume("cv.pdf", samples.pdf(2000), settings.max_resume_bytes)
    from leadctl.validation import check_prospect

    for i in range(count):
        submissions.submit(
            check_prospect("Ana", f"N{i}", f"{tag}{i}@example.com"), resume, settings
        )


def _statuses() -> Counter[str]:
    return Counter(m.status for m in OutboxMessage.select(OutboxMessage.status))


@pytest.mark.e2e
@pytest.mark.parametrize("concurrency", [4, 1])
def test_a_burst_goes_out_once_each_over_reused_concurrent_connections(
    db_url: str, tmp_path: Path, make_server: Any, counting_sink: CountingSink, concurrency: int
) -> None:
    s = smtp_settings(
        make_settings(tmp_path, db_url, confirmations_per_hour=10**6),
        counting_sink.port,
        mail_concurrency=concurrency,
    )
    live = make_server(s)
    body = samples.pdf(20_000)

    def one(i: int) -> int:
        with httpx.Client(base_url=live.url, timeout=30) as client:
            return int(submit(client, email=f"burst{i}@example.com", resume=body).status_code)

    with ThreadPoolExecutor(8) as pool:  # several clients at once, as under load
        answers = list(pool.map(one, range(BURST)))
    assert answers == [201] * BURST
    wait_until(lambda: counting_sink.received() >= 2 * BURST, 60, "every email at the sink")
    ids = Counter(counting_sink.message_ids)
    assert len(ids) == 2 * BURST and max(ids.values()) == 1, ids.most_common(3)
    # Connections are kept and reused: never more than one per sender for the whole burst.
    assert counting_sink.connections <= concurrency, counting_sink.connections
    if concurrency > 1:
        assert counting_sink.open_peak > 1
    else:
        assert counting_sink.open_peak == 1


def test_a_stop_finishes_the_messages_in_hand_and_hands_back_the_rest(
    core: Settings, counting_sink: CountingSink
) -> None:
    s = smtp_settings(core, counting_sink.port, confirmations_per_hour=10**6)
    _queue(s, 30)
    senders = [SmtpSender(s, None) for _ in range(4)]
    try:
        checks = iter([False])  # the stop comes once the four connections have begun
        result = outbox.deliver_due(senders, s, batch=20, stop=lambda: next(checks, True))
        # What they had in hand went out; nothing more was started.
        assert result.sent <= 4 and result.failed == 0
        statuses = _statuses()
        assert statuses[MessageStatus.SENT.value] == result.sent
        assert statuses[MessageStatus.PENDING.value] == 60 - result.sent  # due again at once
        handed_back = OutboxMessage.select().where(OutboxMessage.status == "pending")
        assert all(m.attempts == 0 and m.lease_until is None for m in handed_back)
        assert outbox.drain(senders, s).sent == 60 - result.sent
    finally:
        for sender in senders:
            sender.close()
    ids = Counter(counting_sink.message_ids)
    assert len(ids) == 60 and max(ids.values()) == 1


class _BrokenSender:
    """A sender that fails with something no one expected (a bug, not an SMTP refusal)."""

    def __init__(self) -> None:
        self.calls = 0

    def send(self, msg: Any) -> None:
        self.calls += 1
        raise RuntimeError("a bug in a sender")

    def close(self) -> None:
        pass


def test_one_broken_sender_loses_nothing_and_doubles_nothing(core: Settings) -> None:
    _queue(core, 10)
    good = FileSender(core.mail_dir)
    with pytest.raises(RuntimeError, match="a bug in a sender"):
        outbox.deliver_due([good, _BrokenSender()], core, batch=10)
    # What the good sender delivered is recorded; what nobody tried is due again.
    statuses = _statuses()
    sent = statuses[MessageStatus.SENT.value]
    assert sent == len(list(Path(core.mail_dir).glob("*.eml")))
    assert statuses[MessageStatus.PENDING.value] >= 1
    # The broken one's message (and any the halt left) goes out after its lease; the rest now.
    sender = FileSender(core.mail_dir)
    later = outbox.deliver_due(sender, core, batch=100)
    assert sent + later.sent + statuses[MessageStatus.SENDING.value] == 20
    assert len(list(Path(core.mail_dir).glob("*.eml"))) == sent + later.sent


def test_two_workers_at_once_claim_disjoint_batches(
    core: Settings, counting_sink: CountingSink
) -> None:
    s = smtp_settings(core, counting_sink.port, confirmations_per_hour=10**6)
    _queue(s, 60)

    def worker() -> int:
        senders = [make_sender(s) for _ in range(3)]
        try:
            return outbox.drain(senders, s).sent
        finally:
            for sender in senders:
                sender.close()
            close_connection()  # this thread's own database connection

    with ThreadPoolExecutor(2) as pool:
        totals = list(pool.map(lambda _: worker(), range(2)))
    assert sum(totals) == 120
    ids = Counter(counting_sink.message_ids)
    assert len(ids) == 120 and max(ids.values()) == 1
    assert _statuses() == Counter({MessageStatus.SENT.value: 120})


@pytest.mark.parametrize("raw", ["many", "-2", "2.5", "1e999", "4\n5", "0", "65", "1000000000"])
def test_a_bad_concurrency_is_refused_in_one_line(raw: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"LEADS_MAIL_CONCURRENCY": raw})
    message = str(caught.value)
    assert "LEADS_MAIL_CONCURRENCY" in message and "\n" not in message


def test_the_file_backend_writes_one_file_at_a_time(tmp_path: Path) -> None:
    from leadctl.delivery import _DeliveryLoop

    files = make_settings(tmp_path, mail_concurrency=8)
    assert _DeliveryLoop(files, make_sender, 1.0, (), 1.0).width == 1
