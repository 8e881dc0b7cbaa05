"""The writer on PostgreSQL: its transactions take one lock first, so two servers' batches never
deadlock; a write that still meets a deadlock runs again, alone, and is stored once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from intake.writer import ATTEMPTS, GroupCommitWriter, retryable
from leadctl import db, fastpath, submissions
from leadctl.errors import StorageUnavailable
from leadctl.models import IdempotencyKey, Lead, database
from leadctl.resumes import check_resume
from leadctl.schema import ensure_schema
from leadctl.settings import Settings
from leadctl.validation import check_prospect
from tests import samples
from tests.conftest import make_settings, postgres_schema, wait_until

pytestmark = pytest.mark.postgres

RAISE_DEADLOCK = (
    "DO $$ BEGIN RAISE EXCEPTION 'a test deadlock' USING ERRCODE = 'deadlock_detected'; END $$"
)


@pytest.fixture
def pg(tmp_path: Any) -> Iterator[tuple[Settings, str]]:
    """The core bound to a fresh PostgreSQL schema: (settings, url)."""
    with postgres_schema() as url:
        settings = make_settings(tmp_path, url)
        db.bind(url)
        ensure_schema()
        yield settings, url
        database.obj.close()


def hold(writer: GroupCommitWriter) -> threading.Event:
    """Keep `writer` busy until the returned event is set: the writes submitted meanwhile run as
    one batch after it."""
    running, release = threading.Event(), threading.Event()

    def wait() -> None:
        running.set()
        assert release.wait(10)

    writer.submit(wait)
    assert running.wait(10)
    return release


def lock_waiters(url: str, purpose: str, value: str = "") -> int:
    """How many sessions wait for leadctl's advisory lock `purpose`:`value` in this schema."""
    with psycopg.connect(url) as conn:
        (key,) = conn.execute(  # type: ignore[misc]
            "SELECT hashtextextended(current_schema() || %s, 0)", (f":leadctl:{purpose}:{value}",)
        ).fetchone()
        key &= 0xFFFFFFFFFFFFFFFF
        (waiting,) = conn.execute(  # type: ignore[misc]
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1",
            (key >> 32, key & 0xFFFFFFFF),
        ).fetchone()
    return int(waiting)


def submission(settings: Settings, n: int, key: str | None = None) -> submissions.Submitted:
    resume = check_resume("cv.pdf", samples.pdf(3000 + n), settings.max_resume_bytes)
    prospect = check_prospect("Pat", f"N{n}", f"p{n}@example.com")
    return submissions.submit(prospect, resume, settings, idempotency_key=key)


def test_a_deadlock_is_recognised_however_it_is_wrapped(pg: tuple[Settings, str]) -> None:
    with pytest.raises(Exception) as raised, database.obj.atomic():
        fastpath.run_sql(RAISE_DEADLOCK)
    assert retryable(raised.value)
    wrapped = StorageUnavailable("the database cannot take writes right now")
    wrapped.__cause__ = raised.value
    assert retryable(wrapped)
    assert not retryable(StorageUnavailable("the disk is full"))


def test_two_writers_batches_with_crossed_locks_take_turns_instead_of_deadlocking(
    pg: tuple[Settings, str],
) -> None:
    """Writer A's batch takes round robin, then a key; writer B's write takes the key, then round
    robin: the order that deadlocked two servers. B now waits for its turn before taking anything."""
    settings, url = pg
    a, b = GroupCommitWriter(), GroupCommitWriter()
    a_has_turn = threading.Event()
    try:
        gate = hold(a)  # the next two run as one batch

        def first() -> int:
            fastpath.serialize("round-robin")
            a_has_turn.set()
            return submission(settings, 1).lead.id

        def second() -> int:
            # B is waiting on round robin (held by A) before A goes on to take the key.
            wait_until(lambda: lock_waiters(url, "round-robin") >= 1, 10, "B to wait for its turn")
            fastpath.serialize("idempotency", "api:crossed")
            return submission(settings, 2, key="api:crossed").lead.id

        def crossed() -> int:  # another server's submission: the key first, then round robin
            fastpath.serialize("idempotency", "api:crossed")
            fastpath.serialize("round-robin")
            return submission(settings, 3).lead.id

        batch = [a.submit(first), a.submit(second)]
        gate.set()
        assert a_has_turn.wait(10)
        other = b.submit(crossed)
        ids = [f.result(30) for f in (*batch, other)]
    finally:
        a.shutdown()
        b.shutdown()
    assert len(set(ids)) == 3 and Lead.select().count() == 3
    assert a.retried == b.retried == 0  # no deadlock: nothing had to run again


def test_a_write_chosen_as_a_deadlocks_victim_runs_again_and_is_stored_once(
    pg: tuple[Settings, str],
) -> None:
    """A transaction that is not a writer's (a local command) takes the key, then round robin,
    while the writer's batch holds round robin and waits for the key: PostgreSQL aborts the
    writer's submission (its check comes first); it runs again after the batch and is stored."""
    settings, url = pg
    outside_has_key, victim_running = threading.Event(), threading.Event()
    outside_done = threading.Event()
    failures: list[BaseException] = []

    def outside() -> None:
        try:
            with psycopg.connect(url) as conn:
                conn.execute("SET deadlock_timeout = '60s'")  # so the writer is the victim
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || %s, 0))",
                    (":leadctl:idempotency:api:victim",),
                )
                outside_has_key.set()
                assert victim_running.wait(10)
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || %s, 0))",
                    (":leadctl:round-robin:",),
                )
            outside_done.set()
        except BaseException as exc:  # reported by the test
            failures.append(exc)

    writer = GroupCommitWriter()
    runs: list[int] = []
    try:
        gate = hold(writer)

        def victim() -> int:
            runs.append(1)
            if len(runs) == 1:  # the first run: meet the outside transaction head on
                victim_running.set()
                wait_until(lambda: lock_waiters(url, "round-robin") >= 1, 10, "the outside wait")
            return submission(settings, 7, key="api:victim").lead.id

        jobs = [writer.submit(submission, settings, 6), writer.submit(victim)]
        thread = threading.Thread(target=outside)
        thread.start()
        assert outside_has_key.wait(10)
        gate.set()
        ids = [job.result(30) for job in jobs]
        thread.join(30)
    finally:
        writer.shutdown()
    assert failures == [] and outside_done.is_set()
    assert len(runs) == 2 and writer.retried == 1
    assert Lead.select().count() == 2 and len(set(ids)) == 2
    assert IdempotencyKey.select().where(IdempotencyKey.key == "api:victim").count() == 1


def test_a_write_that_keeps_deadlocking_fails_after_its_attempts_and_stores_nothing(
    pg: tuple[Settings, str],
) -> None:
    settings, _url = pg
    runs: list[int] = []

    def doomed() -> int:
        runs.append(1)
        lead_id = submission(settings, 9).lead.id
        fastpath.run_sql(RAISE_DEADLOCK)
        return lead_id

    writer = GroupCommitWriter()
    try:
        gate = hold(writer)
        jobs = [writer.submit(submission, settings, 8), writer.submit(doomed)]
        gate.set()
        assert jobs[0].result(30)
        with pytest.raises(StorageUnavailable):  # the 503 with Retry-After
            jobs[1].result(30)
    finally:
        writer.shutdown()
    assert len(runs) == ATTEMPTS and writer.retried == ATTEMPTS - 1
    assert Lead.select().count() == 1  # the batch's other write, never the doomed one


def test_a_whole_batch_rolled_back_by_a_deadlock_at_its_commit_runs_again_write_by_write(
    pg: tuple[Settings, str],
) -> None:
    """A deferred check that deadlocks at COMMIT aborts every write of the batch: each runs again
    alone, and each is stored once."""
    settings, url = pg
    with psycopg.connect(url, autocommit=True) as conn:  # a check at commit that fails once
        conn.execute("CREATE SEQUENCE commits")  # (a sequence is not rolled back)
        conn.execute(
            "CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF nextval('commits') = 1 THEN "
            "RAISE EXCEPTION 'a test deadlock at commit' USING ERRCODE = 'deadlock_detected'; "
            "END IF; RETURN NULL; END $$"
        )
        conn.execute(
            "CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON lead "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fail_once()"
        )
    writer = GroupCommitWriter()
    try:
        gate = hold(writer)
        jobs = [writer.submit(submission, settings, n) for n in (10, 11, 12)]
        gate.set()
        submitted = [job.result(30) for job in jobs]
    finally:
        writer.shutdown()
    assert writer.retried == 3
    assert sorted(s.lead.id for s in submitted) == sorted(r.id for r in Lead.select())
    assert Lead.select().count() == 3
