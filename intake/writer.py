"""The one writer of a server process: writes queue up and share a transaction and its fsync.

SQLite has one write lock; threads that each write in their own transaction only queue for it
(and pay one fsync each). Here one thread takes every write that is waiting, runs each in its own
savepoint of a single transaction, and commits once: under load, N submissions cost one fsync.
A write that fails rolls back to its savepoint and fails alone; if the commit itself fails, every
write of the batch fails and nothing of it is stored.

On PostgreSQL several servers' writers share one database, and a submission takes advisory locks
(its idempotency key or its address, then round robin; leadctl.fastpath.serialize) and the row of
the attorney it assigns. Two batches holding those in opposite orders deadlocked: 5–8 of 200
interleaved requests, each stalled one `deadlock_timeout` (1 s) and answered 503
(tests/test_many_servers_load.py). So every writer transaction on PostgreSQL first takes the
round-robin lock, before any other lock or row: writers on all servers then take turns, which
almost every new lead made them do already (its assignment holds that lock until the commit).
A write that still meets a deadlock or a serialization failure (with a transaction that is not a
writer's: a local command, the delivery worker) was rolled back whole by PostgreSQL; it runs
again alone once its batch has committed, and only after `ATTEMPTS` runs does it fail (503).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

from peewee import SqliteDatabase

from leadctl import fastpath
from leadctl.db import close_connection
from leadctl.models import database
from leadctl.transactions import write_transaction

Job = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]

log = logging.getLogger(__name__)

# PostgreSQL's "deadlock detected" and "could not serialize access": the transaction (or the
# savepoint) was rolled back, nothing of it stored, and running it again is the documented remedy.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
ATTEMPTS = 3  # runs of one write, the first included, before its error is the answer
TURN_LOCK = "round-robin"  # the lock every writer transaction takes first (see the docstring)


def retryable(exc: BaseException) -> bool:
    """True when `exc` (or an error it wraps) is a deadlock or a serialization failure."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        err = todo.pop()
        if id(err) in seen:
            continue
        seen.add(id(err))
        if getattr(err, "sqlstate", None) in RETRYABLE_SQLSTATES:
            return True
        todo += [e for e in (err.__cause__, err.__context__) if e is not None]
        todo += [a for a in err.args[:1] if isinstance(a, BaseException)]  # peewee wraps so
    return False


class GroupCommitWriter(Executor):
    def __init__(self, max_batch: int = 32) -> None:
        self.max_batch = max_batch
        self.retried = 0  # writes run again after a deadlock or serialization failure
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="writer", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if self._closed:
            raise RuntimeError("the writer is shut down")
        future: Future[Any] = Future()
        self._queue.put((future, fn, args, kwargs))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Finish every queued write, then stop (new ones are refused)."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
        if wait:
            self._thread.join()

    def _run(self) -> None:
        try:
            stopping = False
            while not stopping:
                job = self._queue.get()
                if job is None:
                    break
                batch = [job]
                while len(batch) < self.max_batch:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stopping = True
                        break
                    batch.append(more)
                self._write([j for j in batch if j[0].set_running_or_notify_cancel()])
        finally:
            close_connection()

    def _write(self, batch: list[Job]) -> None:
        if len(batch) == 1:
            self._alone(batch[0], ATTEMPTS)
            return
        outcomes: list[tuple[bool, Any]] = []
        try:
            with write_transaction():
                _take_turn()
                for _future, fn, args, kwargs in batch:
                    try:
                        with database.obj.atomic():  # a savepoint: a failure is this write's alone
                            outcomes.append((True, fn(*args, **kwargs)))
                    except Exception as exc:  # noqa: BLE001 - handed to the waiting request
                        outcomes.append((False, exc))
        except Exception as exc:  # noqa: BLE001 - the commit failed: nothing of the batch is stored
            if retryable(exc):  # PostgreSQL rolled it all back: each write again, alone
                self._note_retry(exc, len(batch))
                for job in batch:
                    self._alone(job, ATTEMPTS - 1)
                return
            for future, *_ in batch:
                future.set_exception(exc)
            return
        for job, (ok, value) in zip(batch, outcomes, strict=True):
            if ok:
                job[0].set_result(value)
            elif retryable(value):  # its savepoint was rolled back; the batch's locks are gone now
                self._note_retry(value, 1)
                self._alone(job, ATTEMPTS - 1)
            else:
                job[0].set_exception(value)

    def _alone(self, job: Job, attempts: int) -> None:
        """Run one write in its own transaction, again while it fails retryably (at most
        `attempts` runs); its future gets the result or the last error."""
        future, fn, args, kwargs = job
        for attempt in range(1, attempts + 1):
            try:
                if isinstance(database.obj, SqliteDatabase):
                    result = fn(*args, **kwargs)  # SQLite's one write lock orders everything
                else:
                    with write_transaction():
                        _take_turn()
                        result = fn(*args, **kwargs)  # its own transaction is a savepoint here
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting request
                if attempt < attempts and retryable(exc):
                    self._note_retry(exc, 1)
                    continue
                future.set_exception(exc)
                return
            future.set_result(result)
            return

    def _note_retry(self, exc: BaseException, writes: int) -> None:
        self.retried += writes
        kind = "deadlock" if "deadlock" in str(exc) else "serialization failure"
        # The SQLSTATE's name only: PostgreSQL's detail names processes and lock keys.
        log.warning("database %s: %d write(s) rolled back, running again", kind, writes)


def _take_turn() -> None:
    """PostgreSQL: wait for, then hold until the commit, the lock every writer takes first."""
    fastpath.serialize(TURN_LOCK)
