"""The one writer of a server process: writes queue up and share a transaction and its fsync.

SQLite has one write lock; threads that each write in their own transaction only queue for it
(and pay one fsync each). Here one thread takes every write that is waiting, runs each in its own
savepoint of a single transaction, and commits once: under load, N submissions cost one fsync.
A write that fails rolls back to its savepoint and fails alone; if the commit itself fails, every
write of the batch fails and nothing of it is stored.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

from leadctl.db import close_connection
from leadctl.models import database
from leadctl.transactions import write_transaction

Job = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class GroupCommitWriter(Executor):
    def __init__(self, max_batch: int = 32) -> None:
        self.max_batch = max_batch
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
        if len(batch) == 1:  # nothing to share: the write runs in its own transaction
            future, fn, args, kwargs = batch[0]
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting request
                future.set_exception(exc)
            return
        outcomes: list[tuple[bool, Any]] = []
        try:
            with write_transaction():
                for _future, fn, args, kwargs in batch:
                    try:
                        with database.obj.atomic():  # a savepoint: a failure is this write's alone
                            outcomes.append((True, fn(*args, **kwargs)))
                    except Exception as exc:  # noqa: BLE001 - handed to the waiting request
                        outcomes.append((False, exc))
        except Exception as exc:  # noqa: BLE001 - the commit failed: nothing of the batch is stored
            for future, *_ in batch:
                future.set_exception(exc)
            return
        for (future, *_), (ok, value) in zip(batch, outcomes, strict=True):
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
