"""The group-committing writer, on SQLite and PostgreSQL: shared commits, failures kept apart."""

from __future__ import annotations

import threading

import pytest

from intake.writer import GroupCommitWriter
from leadctl import submissions
from leadctl.errors import InvalidInput
from leadctl.models import Event, Lead, Resume
from leadctl.resumes import check_resume
from leadctl.settings import Settings
from leadctl.validation import check_prospect
from tests import samples

pytestmark = pytest.mark.postgres


def test_waiting_writes_commit_together_and_a_failure_stays_alone(core: Settings) -> None:
    gate = threading.Event()
    writer = GroupCommitWriter()
    try:
        writer.submit(gate.wait, 5)  # holds the writer so the next jobs queue up as one batch

        def job(i: int) -> int:
            if i == 3:
                raise InvalidInput([("email", "refused on purpose")])
            resume = check_resume("cv.pdf", samples.pdf(3000 + i), core.max_resume_bytes)
            return submissions.submit(
                check_prospect("P", f"N{i}", f"p{i}@example.com"), resume, core
            ).lead.id

        futures = [writer.submit(job, i) for i in range(6)]
        gate.set()
        results = []
        for i, future in enumerate(futures):
            if i == 3:
                with pytest.raises(InvalidInput):
                    future.result(10)
            else:
                results.append(future.result(10))
    finally:
        writer.shutdown()
    assert len(set(results)) == 5
    assert Lead.select().count() == Resume.select().count() == 5
    assert Event.select().where(Event.kind == "submitted").count() == 5


def test_shutdown_finishes_queued_writes_then_refuses_new_ones(core: Settings) -> None:
    writer = GroupCommitWriter()
    resume = check_resume("cv.pdf", samples.pdf(), core.max_resume_bytes)
    futures = [
        writer.submit(
            submissions.submit, check_prospect("P", f"N{i}", f"q{i}@example.com"), resume, core
        )
        for i in range(4)
    ]
    writer.shutdown(wait=True)
    assert all(f.done() and f.exception() is None for f in futures)
    assert Lead.select().count() == 4
    with pytest.raises(RuntimeError):
        writer.submit(lambda: None)
