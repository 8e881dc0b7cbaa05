"""`GET /ready`: may a load balancer send this server traffic? Cheap checks, each named.

In order: the database answers a query (and, on SQLite, the file is still the one the server
opened), the schema is the version this code needs, the delivery process is alive, and no
message has waited for delivery longer than LEADS_READY_OUTBOX_LAG_SECONDS. Dead messages are
reported but never fail it: taking the server out of rotation does not deliver them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar import Response, get
from litestar.datastructures import State
from litestar.openapi import ResponseSpec

from leadctl.db import sqlite_path, unanswered
from leadctl.models import OutboxMessage
from leadctl.schema import SCHEMA_VERSION, current_version
from leadctl.settings import Settings
from leadctl.states import MessageStatus
from leadctl.timeutil import utcnow


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Readiness:
    """`ready`, or `unavailable` with the names of the failed checks in `failed`."""

    status: str
    failed: list[str]
    checks: list[Check]


def file_identity(settings: Settings) -> tuple[int, int] | None:
    """(device, inode) of the SQLite file, to notice one removed or replaced under the server."""
    if not settings.is_sqlite:
        return None
    try:
        stat = Path(sqlite_path(settings.database_url)).stat()
    except (OSError, ValueError):
        return None
    return (stat.st_dev, stat.st_ino)


def outbox_due_for() -> float:
    """Seconds the longest-due pending message has waited past its time (one index look-up)."""
    return _oldest_pending(OutboxMessage.next_attempt_at)


def oldest_pending_age() -> float:
    """Age in seconds of the oldest message not yet sent (0 when none waits)."""
    return _oldest_pending(OutboxMessage.created_at)


def _oldest_pending(stamp: Any) -> float:
    """Seconds since the earliest `stamp` among pending messages, 0 when none waits."""
    first = (
        OutboxMessage.select(stamp)
        .where(OutboxMessage.status == MessageStatus.PENDING.value)
        .order_by(stamp)
        .first()
    )
    if first is None:
        return 0.0
    return max((utcnow() - getattr(first, stamp.name)).total_seconds(), 0.0)


def _database(settings: Settings, opened: tuple[int, int] | None) -> Check:
    if opened is not None and file_identity(settings) != opened:
        return Check(
            "database",
            False,
            "the SQLite file the server opened was removed or replaced; restore it and restart",
        )
    failure = unanswered()
    if failure is not None:
        return Check("database", False, f"the database does not answer ({failure})")
    return Check("database", True, "answers")


def _schema() -> Check:
    try:
        version = current_version()
    except Exception as exc:  # noqa: BLE001
        return Check("schema", False, f"the schema cannot be read ({type(exc).__name__})")
    if version is None:
        return Check("schema", False, "no leadctl tables in the database")
    if version < SCHEMA_VERSION:
        return Check(
            "schema", False, f"version {version}, needs {SCHEMA_VERSION}: run leadctl db upgrade"
        )
    if version > SCHEMA_VERSION:
        return Check(
            "schema", False, f"version {version}, newer than this server's {SCHEMA_VERSION}"
        )
    return Check("schema", True, f"version {version}")


def _delivery(worker: Any) -> Check:
    if worker is None:
        return Check("delivery", True, "not run by this server")
    if worker.is_alive():
        return Check("delivery", True, "the delivery process is running")
    return Check(
        "delivery", False, "the delivery process is not running (it is restarted with a backoff)"
    )


def _outbox(lag_limit: float) -> Check:
    try:
        due_for = outbox_due_for()
        dead = (
            OutboxMessage.select().where(OutboxMessage.status == MessageStatus.DEAD.value).count()
        )
    except Exception as exc:  # noqa: BLE001
        return Check("outbox", False, f"the outbox cannot be read ({type(exc).__name__})")
    detail = f"oldest due message waiting {due_for:.0f} s; {dead} dead"
    if lag_limit and due_for > lag_limit:
        return Check("outbox", False, f"{detail} (limit {lag_limit:.0f} s): delivery is stuck")
    return Check("outbox", True, detail)


def readiness(
    settings: Settings, worker: Any = None, opened: tuple[int, int] | None = None
) -> Readiness:
    """Every check; those that need the database are skipped when it does not answer."""
    checks = [_database(settings, opened)]
    if checks[0].ok:
        checks.append(_schema())
    checks.append(_delivery(worker))
    if checks[0].ok and checks[1].ok:
        checks.append(_outbox(settings.ready_outbox_lag_seconds))
    failed = [check.name for check in checks if not check.ok]
    return Readiness("unavailable" if failed else "ready", failed, checks)


@get(
    "/ready",
    sync_to_thread=True,
    tags=["public"],
    summary="May a load balancer send this server traffic?",
    description=(
        "Checks the database, the schema version, the delivery process and the outbox; "
        "503 names the failed checks in `failed`."
    ),
    responses={
        503: ResponseSpec(data_container=Readiness, description="A check failed; see `failed`")
    },
)
def ready(state: State) -> Response[Readiness]:
    settings: Settings = state.intake.settings
    result = readiness(settings, state.get("delivery"), state.get("database_file"))
    if result.failed:
        return Response(result, status_code=503, headers={"Retry-After": "5"})
    return Response(result)
