"""The server's delivery process: killed, frozen or signalled, it never takes intake down."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadctl import delivery, outbox
from leadctl.mailer import FileSender, make_sender
from leadctl.models import OutboxMessage
from leadctl.settings import Settings
from tests.conftest import (
    BIN,
    SmtpSink,
    free_port,
    make_settings,
    outbox_statuses,
    server_env,
    smtp_settings,
    wait_until,
)

pytestmark = pytest.mark.e2e

STARTED = re.compile(r"delivery process started \(pid (\d+)\)")


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie has ended; only its parent has not reaped it yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _ready(pid: int) -> bool:
    """True once the delivery process has set itself to ignore SIGINT and SIGTERM."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    ignored = int(status["SigIgn"], 16)
    return all(ignored >> (sig - 1) & 1 for sig in (signal.SIGINT, signal.SIGTERM))


def _delivery_pids(log: Path) -> list[int]:
    return [int(pid) for pid in STARTED.findall(log.read_text(errors="replace"))]


def _emails(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "mail").glob("*.eml"))


def _submit(url: str, i: int) -> httpx.Response:
    from tests import samples

    with httpx.Client(base_url=url, timeout=10) as client:
        return client.post(
            "/api/v1/leads",
            data={
                "first_name": "Zoë",
                "last_name": f"Ñúñez{i}",
                "email": f"p{i}@example.com",
                "consent": "true",
            },
            files={"resume": ("cv.pdf", samples.pdf(), "application/pdf")},
        )


# -- against `leadctl serve` ------------------------------------------------------------------


def test_a_killed_delivery_process_is_replaced_and_the_mail_still_goes(
    tmp_path: Path, make_server: Any
) -> None:
    server = make_server(make_settings(tmp_path))
    first = wait_until(lambda: _delivery_pids(server.log), 20, "the delivery process")[0]
    wait_until(lambda: _ready(first), 30, "the delivery process to start up")  # then asleep, idle
    assert server.proc is not None
    assert Path(f"/proc/{first}/stat").read_text().rpartition(")")[2].split()[1] == str(
        server.proc.pid
    )  # the server's own child

    os.kill(first, signal.SIGKILL)
    wait_until(lambda: not _alive(first), 10, "the killed process to end")
    # At once, before any restart: the next request wakes a dead process and must not hang.
    assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
    references = []
    for i in (1, 2):
        response = _submit(server.url, i)
        assert response.status_code == 201
        references.append(response.json()["reference"])
    assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200

    wait_until(lambda: outbox_statuses(tmp_path) == ["sent"] * 4, 30, "the four emails to be sent")
    texts = [f.read_text(errors="replace") for f in _emails(tmp_path)]
    assert len(texts) == 4
    for i, reference in enumerate(references, 1):
        mine = [t for t in texts if reference in t]
        assert len(mine) == 2  # a confirmation to the prospect and a notification
        assert sum(f"To: p{i}@example.com" in t for t in mine) == 1
    log = server.log.read_text(errors="replace")
    assert f"delivery process {first} ended (killed by SIGKILL)" in log
    second = _delivery_pids(server.log)[-1]
    assert second != first and _alive(second)


def test_a_delivery_process_that_keeps_dying_never_blocks_requests(
    tmp_path: Path, make_server: Any
) -> None:
    """A crash loop (as under the OOM killer) is restarted with a growing delay; intake answers."""
    server = make_server(make_settings(tmp_path))
    killed: list[int] = []
    for _ in range(3):
        pid = wait_until(
            lambda: [p for p in _delivery_pids(server.log) if p not in killed], 30, "a restart"
        )[0]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
        assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
        assert _submit(server.url, len(killed)).status_code == 201
    delays = re.findall(
        r"ended \(killed by SIGKILL\); starting another in ([\d.]+) s",
        server.wait_log("another in 2.0 s", 30),
    )
    assert delays == ["0.5", "1.0", "2.0"]
    wait_until(lambda: outbox_statuses(tmp_path) == ["sent"] * 6, 60, "the six emails to be sent")
    assert len(_emails(tmp_path)) == 6


def test_sigterm_to_the_delivery_process_alone_is_ignored(tmp_path: Path, make_server: Any) -> None:
    """Only the server stops its delivery process; a stray SIGTERM or SIGINT changes nothing."""
    server = make_server(make_settings(tmp_path))
    pid = wait_until(lambda: _delivery_pids(server.log), 20, "the delivery process")[0]
    wait_until(lambda: _ready(pid), 30, "the delivery process to start up")
    os.kill(pid, signal.SIGTERM)
    os.kill(pid, signal.SIGINT)
    assert _submit(server.url, 1).status_code == 201
    wait_until(lambda: len(_emails(tmp_path)) >= 2, 30, "both emails")
    assert _alive(pid) and _delivery_pids(server.log) == [pid]


# -- the whole process group, as systemd and a terminal signal it ---------------------------


@contextlib.contextmanager
def _serve_in_own_group(tmp_path: Path, settings: Settings) -> Iterator[tuple[Any, str, Path]]:
    """`leadctl serve` as the leader of a new session (so of its own process group)."""
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(BIN / "leadctl"), "serve", "--port", str(port)],
            cwd=tmp_path,
            env=server_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            assert proc.poll() is None, f"server exited: {log.read_text()[-2000:]}"
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{url}/health", timeout=1).status_code == 200
            return False

        wait_until(healthy, 30, "the server to start")
        yield proc, url, log
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _in_session(sid: int) -> list[int]:
    """Processes still running in session `sid` (a new session's id is its leader's pid)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
                found.append(int(stat.parent.name))
    return found


@pytest.mark.parametrize(
    ("signum", "busy", "smtp"),
    [
        (signal.SIGTERM, True, False),
        (signal.SIGTERM, True, True),
        (signal.SIGTERM, False, False),
        (signal.SIGINT, False, False),
    ],
    ids=["SIGTERM-delivering", "SIGTERM-delivering-smtp", "SIGTERM-idle", "SIGINT-idle"],
)
def test_a_signal_to_the_whole_group_stops_everything_and_loses_nothing(
    tmp_path: Path, signum: signal.Signals, busy: bool, smtp: bool, request: pytest.FixtureRequest
) -> None:
    """systemd's stop (SIGTERM to the group) and Ctrl-C (SIGINT): all gone, no mail lost.

    Idle, the delivery process sleeps waiting to be woken: where a shared multiprocessing
    Event, whose sleeper was killed, hung the server's shutdown for good. Over SMTP, mail goes
    out on four connections from the delivery loop's one thread pool, which must end too.
    """
    settings = make_settings(tmp_path)
    sink: SmtpSink | None = None
    if smtp:
        sink = request.getfixturevalue("smtp_sink")
        settings = smtp_settings(settings, sink.port, mail_concurrency=4)
    acknowledged: list[str] = []
    with _serve_in_own_group(tmp_path, settings) as (proc, url, log):
        child = wait_until(lambda: _delivery_pids(log), 20, "the delivery process")[0]
        wait_until(lambda: _ready(child), 30, "the delivery process to start up")
        halt = threading.Event()

        def load() -> None:
            i = 0
            while not halt.is_set() and (busy or i < 5):
                i += 1
                with contextlib.suppress(httpx.HTTPError):
                    response = _submit(url, i)
                    if response.status_code == 201:
                        acknowledged.append(response.json()["reference"])

        loader = threading.Thread(target=load, daemon=True)
        loader.start()
        if busy:  # the signal comes with submissions arriving and mail being delivered
            wait_until(lambda: len(acknowledged) >= 10, 60, "ten acknowledged submissions")
        else:
            loader.join(60)
            wait_until(
                lambda: outbox_statuses(tmp_path).count("sent") == 10, 30, "the mail to go out"
            )
        started = time.monotonic()
        os.killpg(proc.pid, signum)
        try:
            proc.wait(15)  # a bound so the test never hangs; the figure is printed below
        finally:
            halt.set()
            loader.join(30)
        took = time.monotonic() - started
        assert proc.returncode is not None
        wait_until(lambda: not _in_session(proc.pid), 10, "every process of the group to end")
        assert not _alive(child)
    state = "delivering" if busy else "idle"
    print(
        f"\n{signum.name} to the group ({state}): server and delivery process gone in {took:.2f} s"
    )

    statuses = outbox_statuses(tmp_path)
    assert len(statuses) >= 2 * len(acknowledged)  # two messages a lead, none lost
    assert set(statuses) <= {"sent", "pending"}, statuses  # nothing left claimed mid-send
    delivered = len(sink.received) if sink is not None else len(_emails(tmp_path))
    assert delivered == statuses.count("sent")  # each sent message delivered once, none twice

    with _serve_in_own_group(tmp_path, settings) as (proc, _url, _log):
        wait_until(
            lambda: set(outbox_statuses(tmp_path)) == {"sent"}, 60, "every message to go out"
        )
        delivered = len(sink.received) if sink is not None else len(_emails(tmp_path))
        assert delivered == len(statuses)  # the rest went out once, after the restart
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)


# -- the worker itself ------------------------------------------------------------------------


@pytest.fixture
def process_worker(sqlite_core: Settings) -> Iterator[delivery.DeliveryWorker]:
    worker = delivery.DeliveryWorker(sqlite_core, make_sender, separate_process=True)
    worker.start()
    yield worker
    worker.stop()


def _child(worker: delivery.DeliveryWorker) -> int:
    pid = worker._runner.pid  # type: ignore[union-attr]
    assert pid is not None
    return pid


def test_waking_a_frozen_delivery_process_never_blocks(
    process_worker: delivery.DeliveryWorker,
) -> None:
    """A stopped child reads nothing: its pipe fills, and wake() goes on returning at once."""
    pid = _child(process_worker)
    os.kill(pid, signal.SIGSTOP)
    try:
        done = threading.Event()

        def ring() -> None:
            for _ in range(200_000):  # far more than a pipe's 64 KiB buffer holds
                process_worker.wake()
            done.set()

        threading.Thread(target=ring, daemon=True).start()
        assert done.wait(60), "wake() blocked on a full pipe"
    finally:
        os.kill(pid, signal.SIGCONT)


def test_a_frozen_delivery_process_is_killed_at_stop(sqlite_core: Settings) -> None:
    """stop() waits its timeout for the child, then kills it: shutdown never hangs."""
    worker = delivery.DeliveryWorker(sqlite_core, make_sender, separate_process=True)
    worker.start()
    pid = _child(worker)
    os.kill(pid, signal.SIGSTOP)
    stopper = threading.Thread(target=worker.stop, kwargs={"timeout": 1.0}, daemon=True)
    stopper.start()
    stopper.join(30)
    assert not stopper.is_alive(), "stop() hung on a frozen child"
    assert not worker.is_alive() and not _alive(pid)


def test_a_stop_between_messages_hands_the_rest_back(sqlite_core: Settings) -> None:
    """Messages claimed but not tried when the worker stops are due again at once, untried."""
    from leadctl import submissions
    from leadctl.resumes import check_resume
    from leadctl.validation import check_prospect
    from tests import samples

    for i in range(3):
        resume = check_resume("cv.pdf", samples.pdf(), sqlite_core.max_resume_bytes)
        submissions.submit(check_prospect("Zoë", "Ñúñez", f"p{i}@example.com"), resume, sqlite_core)
    sender = FileSender(sqlite_core.mail_dir)
    calls = iter([False, True])
    result = outbox.deliver_due(sender, sqlite_core, stop=lambda: next(calls, True))
    assert result.sent == 1
    rows = list(OutboxMessage.select().order_by(OutboxMessage.id))
    assert [(m.status, m.attempts) for m in rows] == [("sent", 1)] + [("pending", 0)] * 5
    assert all(m.lease_until is None for m in rows[1:])
    assert outbox.drain(sender, sqlite_core).sent == 5


# -- the chores the delivery process runs -------------------------------------------------------


def test_the_delivery_process_purges_by_retention_at_start_and_reminds(
    sqlite_core: Settings,
) -> None:
    """At start the worker erases what LEADS_RETENTION says is too old (and then daily), and
    reminds of what waited too long, in its own process."""
    from datetime import timedelta

    from leadctl import submissions
    from leadctl.models import Event, Lead
    from leadctl.resumes import check_resume
    from leadctl.timeutil import utcnow
    from leadctl.validation import check_prospect
    from tests import samples

    def lead(email: str, age: timedelta) -> int:
        resume = check_resume("cv.pdf", samples.pdf(), sqlite_core.max_resume_bytes)
        made = submissions.submit(check_prospect("Zoë", "Ñúñez", email), resume, sqlite_core)
        Lead.update(created_at=utcnow() - age).where(Lead.id == made.lead.id).execute()
        return made.lead.id

    old = lead("old@example.com", timedelta(days=400))
    waiting = lead("wait@example.com", timedelta(hours=30))
    s = sqlite_core.replace(retention="365d", remind_after="24h", escalate_after="off")
    worker = delivery.DeliveryWorker(s, make_sender, poll_seconds=0.2, separate_process=True)
    worker.start()
    try:
        wait_until(lambda: Lead.get_by_id(old).erased_at is not None, 20, "the purge")
        wait_until(lambda: Lead.get_by_id(waiting).reminded_at is not None, 20, "the reminder")
        assert Event.get((Event.lead == old) & (Event.kind == "purged"))
        wait_until(
            lambda: OutboxMessage.get(OutboxMessage.purpose == "reminder").status == "sent",
            20,
            "the reminder sent",
        )
    finally:
        worker.stop()
    assert Lead.get_by_id(waiting).erased_at is None
