"""Taking one submission: parse, validate, check the resume, then store it on the writer thread."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from litestar import Request
from litestar.types import Scope

from intake.form_parser import ParsedForm, parse_form
from intake.ratelimit import RateLimiter, SharedRateLimiter, client_address
from leadctl import submissions
from leadctl.errors import InvalidInput, UnsupportedResume
from leadctl.resumes import check_resume
from leadctl.settings import Settings
from leadctl.validation import check_prospect

log = logging.getLogger(__name__)
TEXT_FIELDS = ("first_name", "last_name", "email")
HONEYPOT = "website"


@dataclass
class Intake:
    """Per-app resources. One writer thread per process: the process's writes queue in one place
    and share a commit (see intake/writer.py). Several processes still wait for SQLite's one
    write lock (bench/RESULTS.md, "Intake throughput")."""

    settings: Settings
    writer: Executor
    limiter: RateLimiter | SharedRateLimiter | None = None
    form_secret: bytes = b""
    wake_worker: Any = None

    def notify(self) -> None:
        if callable(self.wake_worker):
            self.wake_worker()

    def client(self, scope: Scope) -> str:
        """Who is asking, by the one rule (`LEADS_TRUSTED_PROXIES`)."""
        return client_address(scope, self.settings.proxy_networks)

    async def retry_after(self, scope: Scope) -> int | None:
        """Seconds the client of this request must wait before another submission, or None."""
        if self.limiter is None:
            return None
        if isinstance(self.limiter, SharedRateLimiter):
            try:  # the database: off the event loop
                return await anyio.to_thread.run_sync(self.limiter.retry_after, self.client(scope))
            except Exception:  # the submission itself then reports the database's state
                log.warning("the shared rate limit could not be read", exc_info=True)
                return None
        return self.limiter.retry_after(self.client(scope))

    async def accepted(self, request: Request, submitted: submissions.Submitted) -> None:
        """Count an accepted submission against its client (a replayed answer is free), before
        its answer leaves: a client that waits for its 201 is counted when it sends again."""
        if self.limiter is None or submitted.replayed:
            return
        if isinstance(self.limiter, SharedRateLimiter):
            try:
                await anyio.to_thread.run_sync(self.limiter.record, self.client(request.scope))
            except Exception:  # the lead is stored: its answer must go out
                log.warning("the shared rate limit could not count a submission", exc_info=True)
            return
        self.limiter.record(self.client(request.scope))


async def read_submission(request: Request, intake: Intake) -> ParsedForm:
    return await parse_form(
        request,
        max_file_bytes=intake.settings.max_resume_bytes,
        timeout=intake.settings.body_timeout_seconds,
    )


def idempotency_key(request: Request) -> str | None:
    """The `Idempotency-Key` header, if any; 422 when it is not a short printable token."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    key = key.strip()
    if not (1 <= len(key) <= 150) or not key.isprintable():
        raise InvalidInput([("Idempotency-Key", "must be 1–150 printable characters")])
    return f"api:{key}"


async def store_submission(
    form: ParsedForm,
    intake: Intake,
    *,
    key: str | None = None,
    quarantine_reason: str | None = None,
) -> submissions.Submitted:
    """Validate everything, then commit lead + resume + events + outbox in one transaction.

    Raises InvalidInput (422) listing every failing field, or UnsupportedResume (415) when the
    resume type is the only problem; ResumeTooLarge (413) was raised while reading.
    """
    errors: list[tuple[str, str]] = [
        (f, "is not valid UTF-8 text") for f in TEXT_FIELDS if f in form.not_utf8
    ]
    prospect = None
    try:
        prospect = check_prospect(*(form.fields.get(f) for f in TEXT_FIELDS))
    except InvalidInput as exc:
        errors.extend((f, m) for f, m in exc.errors if f not in form.not_utf8)
    upload = form.files.get("resume")
    resume = None
    if upload is None or not upload.data:
        errors.append(
            (
                "resume",
                "a resume file is required" if upload is None else "the resume file is empty",
            )
        )
    else:
        try:
            # Off the event loop: deciding the type of 10 MiB takes tens of ms of CPU, in steps
            # that each hold the GIL for about a millisecond (leadctl.resumes).
            resume = await asyncio.to_thread(
                check_resume, upload.filename, upload.data, intake.settings.max_resume_bytes
            )
        except UnsupportedResume as exc:
            if not errors:
                raise
            errors.append(("resume", str(exc)))
    if errors or prospect is None or resume is None:
        raise InvalidInput(errors)
    if quarantine_reason is None and form.fields.get(HONEYPOT, "").strip():
        quarantine_reason = "the hidden website field was filled"
    loop = asyncio.get_running_loop()
    submitted = await loop.run_in_executor(
        intake.writer,
        lambda: submissions.submit(
            prospect,
            resume,
            intake.settings,
            idempotency_key=key,
            quarantine_reason=quarantine_reason,
        ),
    )
    if not submitted.replayed and quarantine_reason is None:
        intake.notify()
    return submitted
