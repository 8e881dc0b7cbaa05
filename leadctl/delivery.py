"""The delivery worker: a thread, or the server's child process that it watches and restarts."""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from leadctl import events
from leadctl.chores import Routine
from leadctl.db import close_connection
from leadctl.mailer import Sender
from leadctl.outbox import deliver_due
from leadctl.settings import Settings
from leadctl.webhooks import Lane

log = logging.getLogger("leadctl.outbox")


class _ThreadBell:
    """Wake-ups and the stop order for a worker in a thread of the server."""

    def __init__(self) -> None:
        self.rung, self.stop = threading.Event(), threading.Event()

    def begin_pass(self) -> None:
        self.rung.clear()

    def stopped(self) -> bool:
        return self.stop.is_set()

    def wait(self, timeout: float) -> None:
        self.rung.wait(timeout)


class _PipeBell:
    """The child's end of its one-way pipe from the server: a byte is a wake-up, end of file is
    the order to stop (the server closed its end, or is gone). Nothing here can block the server:
    it only ever writes to a non-blocking pipe, and nothing is shared that the child could hold."""

    def __init__(self, reader: Connection) -> None:
        self._reader = reader
        self._rung = self._closed = False

    def _drain(self, timeout: float) -> None:
        while not self._closed and self._reader.poll(timeout):
            if os.read(self._reader.fileno(), 4096):
                self._rung = True
            else:
                self._closed = True
            timeout = 0

    def begin_pass(self) -> None:
        self._rung = False  # wake-ups already read are served by the pass about to run

    def stopped(self) -> bool:
        self._drain(0)
        return self._closed

    def wait(self, timeout: float) -> None:
        if not self._rung:
            self._drain(timeout)


@dataclass
class _DeliveryLoop:
    """What a delivery worker does, in whichever thread or process runs it."""

    settings: Settings
    sender_factory: Callable[[Settings], Sender]
    poll_seconds: float
    chores: Sequence[Callable[[], object]]
    chore_seconds: float

    def run(self, bell: _ThreadBell | _PipeBell, parent: int | None = None) -> None:
        """Deliver until stopped; in a child process, also when its parent `parent` is gone.

        Emails here; webhooks in a lane (thread) of their own, so that a receiver that hangs
        never holds up the mail; when idle, the timed chores (reminders, escalations, the
        quarantine digest, retention) and the hourly housekeeping.
        """
        events.configure(self.settings)  # what the chores record may become webhooks too
        senders: list[Sender] = []
        lane = Lane(self.settings, self.poll_seconds).start() if self.settings.webhook_url else None
        routine = Routine(self.settings)
        next_chores = 0.0
        # The sending threads, one per SMTP connection, for the life of the loop: starting a
        # pool per batch took 13 % of this process's time under load (bench/RESULTS.md).
        pool = (
            ThreadPoolExecutor(self.width, thread_name_prefix="outbox-send")
            if self.width > 1
            else None
        )
        try:
            while not bell.stopped() and (parent is None or os.getppid() == parent):
                bell.begin_pass()
                if lane is not None:
                    lane.wake()
                busy = False
                try:
                    if not senders:
                        # Each sender keeps its own SMTP connection open between messages.
                        senders = [self.sender_factory(self.settings) for _ in range(self.width)]
                    result = deliver_due(senders, self.settings, stop=bell.stopped, pool=pool)
                    busy = result.sent + result.failed > 0 and not result.failed
                    if not busy:
                        busy = routine.run() > 0  # what it queued goes out at once
                    if not busy and time.monotonic() >= next_chores:
                        next_chores = time.monotonic() + self.chore_seconds
                        for chore in self.chores:
                            chore()
                except Exception:
                    log.exception(
                        "outbox worker pass failed; retrying in %.0f s", self.poll_seconds
                    )
                    _close_all(senders)
                    senders = []
                if not busy:
                    bell.wait(self.poll_seconds)
        finally:
            if lane is not None:
                lane.stop()
            if pool is not None:
                pool.shutdown()  # idle by now: deliver_due returns once its sends are done
            _close_all(senders)
            close_connection()

    @property
    def width(self) -> int:
        """How many messages go out at once: `LEADS_MAIL_CONCURRENCY` for SMTP, whose time is
        mostly waiting on the server; one for `.eml` files, whose time is the disk's fsync."""
        if self.settings.mail_backend != "smtp":
            return 1
        return self.settings.mail_concurrency  # 1 to 64, checked by Settings


def _close_all(senders: Sequence[Sender]) -> None:
    for sender in senders:
        sender.close()


def _run_in_child(loop: _DeliveryLoop, reader: Connection, parent: int) -> None:
    """A delivery process: its own database connection and log lines. It ignores SIGINT and
    SIGTERM, which a terminal or systemd sends to the whole group: the server decides when it
    stops, and tells it so after the message in hand by closing the pipe."""
    from leadctl import db, logs

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if not logging.getLogger("leadctl").handlers:
        logs.configure(loop.settings.log_format)  # the server's own format: text or JSON
    db.bind(loop.settings.database_url, loop.settings.sqlite_busy_timeout_ms)
    loop.run(_PipeBell(reader), parent)


RESTART_FIRST, RESTART_CAP = 0.5, 30.0  # seconds before a dead delivery process is replaced
RESTART_STABLE = 60.0  # a process that ran this long died of something new: restart quickly


def _has_ended(process: BaseProcess, timeout: float) -> bool:
    """Whether `process` ends within `timeout` seconds, told by its sentinel (readable once it
    has exited), never by waitpid(): it leaves the exit status to the one thread that reaps."""
    return bool(multiprocessing.connection.wait([process.sentinel], timeout))


def _how_it_ended(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit code {exitcode}"


class DeliveryWorker:
    """Delivers the outbox in the background; `wake()` after a commit sends at once.

    In a thread by default. With `separate_process=True` (the server) in a child process of its
    own: building and writing a message is CPU work in the `email` package, which in a thread
    held the server's GIL while the next submission waited (figures in bench/RESULTS.md,
    "Single-client latency"). The server alone starts, watches, restarts and stops that process
    (as gunicorn's arbiter does its workers); all they share is a one-way pipe the server writes
    to without ever waiting.
    """

    def __init__(
        self,
        settings: Settings,
        sender_factory: Callable[[Settings], Sender],
        poll_seconds: float = 2.0,
        chores: Sequence[Callable[[], object]] = (),
        chore_seconds: float = 3600.0,
        *,
        separate_process: bool = False,
    ) -> None:
        # Chores are housekeeping done when idle (e.g. forgetting old idempotency keys).
        self._loop = _DeliveryLoop(settings, sender_factory, poll_seconds, chores, chore_seconds)
        self._runner: threading.Thread | BaseProcess
        self._stopped = False  # a stopped process is closed (its resources released)
        self._thread_bell: _ThreadBell | None = None
        self._spawn = multiprocessing.get_context("spawn") if separate_process else None
        self._stopping = threading.Event()
        self._lifecycle = threading.Lock()  # starting a process vs. stopping; never held by wake()
        self._pipe = threading.Lock()  # held only around one non-blocking write or a close
        self._writer: Connection | None = None
        self._watcher: threading.Thread | None = None
        self._started_at = 0.0
        if self._spawn is None:
            self._thread_bell = _ThreadBell()
            self._runner = threading.Thread(
                target=self._loop.run, args=(self._thread_bell,), name="outbox-worker", daemon=True
            )

    def start(self) -> None:
        if self._spawn is None:
            self._runner.start()
            return
        with self._lifecycle:
            self._start_process()
        # At interpreter exit, multiprocessing would SIGTERM (ignored) and join the child forever.
        atexit.register(self.stop)
        self._watcher = threading.Thread(target=self._watch, name="outbox-watcher", daemon=True)
        self._watcher.start()

    def _start_process(self) -> None:
        assert self._spawn is not None
        reader, writer = self._spawn.Pipe(duplex=False)
        process = self._spawn.Process(
            target=_run_in_child,
            args=(self._loop, reader, os.getpid()),
            name="outbox-worker",
            daemon=True,
        )
        process.start()
        reader.close()  # the child holds its own copy; a write to a dead child now fails at once
        os.set_blocking(writer.fileno(), False)
        with self._pipe:
            old, self._writer = self._writer, writer
        if old is not None:
            old.close()
        self._runner, self._started_at = process, time.monotonic()
        log.info("delivery process started (pid %d)", process.pid)

    def _watch(self) -> None:
        """Reap each delivery process, and replace one that dies (kill -9, the OOM killer) with a
        growing delay.

        This thread alone waits for (reaps) the child: a second waiter, as stop() was, races it
        for one exit status. The loser's waitpid() fails with ECHILD, which multiprocessing takes
        for "still running", so a child that had stopped at once was reported stuck and killed.
        """
        delay = RESTART_FIRST
        while True:
            process = self._runner
            assert isinstance(process, BaseProcess)
            multiprocessing.connection.wait([process.sentinel])
            process.join(5)  # the sentinel fires as it exits; collect its exit code
            if self._stopping.is_set():
                return  # stop() waits for this thread: the exit code is collected
            if time.monotonic() - self._started_at > RESTART_STABLE:
                delay = RESTART_FIRST
            log.error(
                "delivery process %d ended (%s); starting another in %.1f s",
                process.pid,
                _how_it_ended(process.exitcode),
                delay,
            )
            while True:  # until a new process runs, or the server stops
                if self._stopping.wait(delay):
                    return
                delay = min(delay * 2, RESTART_CAP)
                with self._lifecycle:
                    if self._stopping.is_set():
                        return
                    try:
                        self._start_process()
                    except Exception:  # out of processes or file descriptors: try again later
                        log.exception("could not start a delivery process; again in %.1f s", delay)
                        continue
                process.close()
                break

    def wake(self) -> None:
        """Deliver now. Never blocks nor raises, whatever became of the delivery process."""
        if self._thread_bell is not None:
            self._thread_bell.rung.set()
            return
        with self._pipe:
            if self._writer is None:
                return
            # A full pipe already holds wake-ups enough; a dead reader is the watcher's business.
            with contextlib.suppress(OSError):
                os.write(self._writer.fileno(), b"w")

    def is_alive(self) -> bool:
        runner = getattr(self, "_runner", None)  # a process is made at start()
        if self._stopped or runner is None:
            return False
        if isinstance(runner, threading.Thread):
            return runner.is_alive()
        # Its sentinel, not Process.is_alive(), which reaps: the watcher alone collects exit codes.
        try:
            return not _has_ended(runner, 0)
        except ValueError:  # closed by the watcher as it was replaced, an instant ago
            return False

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the messages in hand (one per SMTP connection) and give back the rest of the
        batch, then stop.

        A process that has not ended after `timeout` seconds (an SMTP server gone silent) is
        killed; the message it held goes out again once its lease ends.
        """
        if self._stopped:
            return
        if self._thread_bell is not None:
            self._thread_bell.stop.set()
            self._thread_bell.rung.set()
            self._runner.join(timeout)
            return
        with self._lifecycle:  # no process starts after this
            self._stopping.set()
            process = getattr(self, "_runner", None)
        if process is None:  # never started
            self._stopped = True
            return
        with self._pipe:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()  # end of file: the child's order to stop
        assert isinstance(process, BaseProcess)
        # Wait for its end without reaping it: the watcher does that (see _watch).
        if not _has_ended(process, timeout):
            log.warning(
                "delivery process %d did not stop in %.0f s; killing it", process.pid, timeout
            )
            process.kill()  # it ignores SIGTERM
        watcher = self._watcher
        if watcher is not None and watcher.is_alive():
            watcher.join(5)  # it collects the exit code, then sees _stopping and returns
        else:  # no watcher (start() was cut short), or it is done: none but us waits for it
            process.join(5)
        self._stopped = True  # before close(): is_alive() no longer looks at the process
        # Let go of the process now, not at interpreter exit.
        with contextlib.suppress(ValueError):  # still running: unkillable, left to the OS
            process.close()
        atexit.unregister(self.stop)
