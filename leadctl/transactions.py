"""Write transactions: the lock taken up front, and storage failures as StorageUnavailable."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from peewee import InterfaceError, OperationalError, SqliteDatabase

from leadctl.errors import StorageUnavailable
from leadctl.models import database


@contextlib.contextmanager
def write_transaction() -> Iterator[None]:
    """A transaction that takes the write lock up front (SQLite `BEGIN IMMEDIATE`).

    A deferred SQLite transaction that reads first and writes later can fail with `database is
    locked` without waiting; taking the lock at BEGIN makes writers queue on the busy timeout.
    Lock and connection failures become StorageUnavailable, which both faces report as "try again".
    """
    db = database.obj
    ctx = db.atomic("IMMEDIATE") if isinstance(db, SqliteDatabase) else db.atomic()
    try:
        with ctx:
            yield
    except (OperationalError, InterfaceError) as exc:
        raise StorageUnavailable(f"the database cannot take writes right now ({exc})") from exc
