"""Taking one submission: parse, validate, check the resume, then store it on the writer thread."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from litestar import Request
from litestar.types import Scope

from intake.form_parser import FormError, ParsedForm, parse_form
from intake.ratelimit import RateLimiter, SharedRateLimiter, client_address, client_key
from leadctl import rendering, submissions
from leadctl.errors import InvalidInput, UnsupportedResume
from leadctl.resumes import CheckedResume, ResumeLink, check_resume
from leadctl.settings import Settings
from leadctl.validation import Prospect, check_consent, check_prospect, check_resume_url

log = logging.getLogger(__name__)
TEXT_FIELDS = ("first_name", "last_name", "email")
HONEYPOT = "website"
BODY_OVERHEAD = 256 * 1024  # room for the text fields and multipart framing beside the resume
UPLOADS_PER_CLIENT = 4  # bodies one client may send at once, while LEADS_RATE_LIMIT is on
TOO_MANY_UPLOADS = "too_many_uploads"  # the error code of a 503 from UploadSlots
CONSENT_NEEDED = {
    True: "please tick this box to confirm you have read the notice above",
    False: "must be true: the prospect must accept the firm's disclaimer "
    "(GET /api/v1/disclaimer shows it)",
}


@dataclass
class UploadSlots:
    """Submission bodies being received now: the bytes they hold in memory until their last
    byte (or the body timeout), capped in all, and how many bodies each client sends at once.

    A cap on the number of bodies would not do: idle connections from a few addresses filled
    it at no cost and kept every prospect out. Bytes must be sent to be held. Touched only on
    the event loop: no lock."""

    most_bytes: int
    per_client: int | None
    total: int = 0  # bodies in flight
    held_bytes: int = 0  # what they have sent so far
    clients: dict[str, int] = field(default_factory=dict)

    @contextmanager
    def hold(self, client: str) -> Iterator[Callable[[int], None]]:
        """A place for the body about to be read, given back however its reading ends; yields
        what counts its bytes as they arrive. FormError 503 (code `too_many_uploads`) when the
        client already sends `per_client` bodies, or when a chunk would pass the byte cap."""
        held = self.clients.get(client, 0)
        if self.per_client is not None and held >= self.per_client:
            raise FormError(
                503,
                f"too many uploads at once from your address (at most {self.per_client}); "
                "try again when one has finished",
                code=TOO_MANY_UPLOADS,
            )
        self.total += 1
        self.clients[client] = held + 1
        taken = 0

        def take(size: int) -> None:
            nonlocal taken
            if self.held_bytes + size > self.most_bytes:
                raise FormError(
                    503,
                    "the server is receiving too much at once "
                    f"(over {self.most_bytes // (1024 * 1024)} MB); try again shortly",
                    code=TOO_MANY_UPLOADS,
                )
            taken += size
            self.held_bytes += size

        try:
            yield take
        finally:
            self.total -= 1
            self.held_bytes -= taken
            left = self.clients.pop(client) - 1
            if left:
                self.clients[client] = left


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
    uploads: UploadSlots = field(init=False)
    # One staff conflict check at a time (intake/conflict_routes.py): the others wait for it.
    conflict_gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))

    def __post_init__(self) -> None:
        # The per-client cap keeps to the rate limit: both off for a load test from one address.
        per_client = UPLOADS_PER_CLIENT if self.settings.rate else None
        self.uploads = UploadSlots(self.settings.upload_memory_mb * 1024 * 1024, per_client)

    def notify(self) -> None:
        if callable(self.wake_worker):
            self.wake_worker()

    def client(self, scope: Scope) -> str:
        """Who is asking, by the one rule (`LEADS_TRUSTED_PROXIES`), as the rate limit and the
        upload slots count them (`client_key`: an IPv6 /64 is one client)."""
        return client_key(client_address(scope, self.settings.proxy_networks))

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


async def read_submission(
    request: Request, intake: Intake, into: ParsedForm | None = None
) -> ParsedForm:
    """The submission's form, read within the limits (see `parse_form`). With `into` (the
    HTML form's route, which takes any Content-Length), the fields read before a refusal stay
    in it, and the body is cut off at the resume's limit plus BODY_OVERHEAD. Refused with
    FormError 503 before a byte is read when too many bodies are being received (UploadSlots)."""
    limit = intake.settings.max_resume_bytes
    with intake.uploads.hold(intake.client(request.scope)) as take:
        return await parse_form(
            request,
            on_bytes=take,
            max_file_bytes=limit,
            timeout=intake.settings.body_timeout_seconds,
            into=into,
            max_body_bytes=None if into is None else limit + BODY_OVERHEAD,
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
    page: bool = False,
) -> submissions.Submitted:
    """Validate everything, then commit lead + resume + events + outbox in one transaction.

    Raises InvalidInput (422) listing every failing field, or UnsupportedResume (415) when the
    resume type is the only problem; ResumeTooLarge (413) was raised while reading. `page`:
    the form sent this (its messages speak to a person, not to an API client).
    """
    settings = intake.settings
    errors: list[tuple[str, str]] = [
        (f, "is not valid UTF-8 text")
        for f in (*TEXT_FIELDS, "resume_url", "consent")
        if f in form.not_utf8
    ]
    prospect = None
    try:
        prospect = check_prospect(*(form.fields.get(f) for f in TEXT_FIELDS))
    except InvalidInput as exc:
        errors.extend((f, m) for f, m in exc.errors if f not in form.not_utf8)
    resume, unsupported = await _resume(form, settings, errors, page)
    if unsupported is not None:
        errors.append(("resume", str(unsupported)))
    version = _consent(form, settings, errors, page)
    if unsupported is not None and len(errors) == 1:
        raise unsupported  # the type is the only problem: 415
    if errors or prospect is None or resume is None:
        raise InvalidInput(errors)
    if quarantine_reason is None and form.fields.get(HONEYPOT, "").strip():
        quarantine_reason = "the hidden website field was filled"
    hits = None if quarantine_reason is not None else await _conflicts(prospect)
    loop = asyncio.get_running_loop()
    submitted = await loop.run_in_executor(
        intake.writer,
        lambda: submissions.submit(
            prospect,
            resume,
            settings,
            idempotency_key=key,
            quarantine_reason=quarantine_reason,
            disclaimer_version=version,
            conflict_hits=hits,
        ),
    )
    if not submitted.replayed and quarantine_reason is None:
        intake.notify()
    return submitted


async def _conflicts(prospect: Prospect) -> list[dict[str, Any]] | None:
    """The conflict check, made on a worker thread before the lead is stored: its look-ups
    (most of a submission's work) stay off the one writer. None when it fails: the writer then
    makes it, and the database's state decides the answer."""
    try:
        return await anyio.to_thread.run_sync(
            submissions.check_conflicts, prospect.first_name, prospect.last_name, prospect.email
        )
    except Exception:  # retried on the writer, where a failure is the answer's
        log.warning(
            "the conflict check failed before the write; the writer makes it", exc_info=True
        )
        return None


async def _resume(
    form: ParsedForm, settings: Settings, errors: list[tuple[str, str]], page: bool
) -> tuple[CheckedResume | ResumeLink | None, UnsupportedResume | None]:
    """Exactly one of the `resume` file and the `resume_url` link, checked; a problem is added
    to `errors`, except a type the file cannot be (returned: 415 when it is the only problem)."""
    upload = form.files.get("resume")
    link = form.fields.get("resume_url", "").strip()
    if upload is not None and link:
        errors.append(("resume_url", "send either a resume file or a resume_url, not both"))
        return None, None
    if link:
        try:
            return ResumeLink(check_resume_url(link)), None
        except ValueError as exc:
            errors.append(("resume_url", str(exc)))
            return None, None
    if upload is None or not upload.data:
        if upload is not None:
            errors.append(("resume", "the resume file is empty"))
        elif "resume_url" not in form.not_utf8:
            required = "a resume file is required"
            errors.append(("resume", required if page else f"{required} (or a resume_url)"))
        return None, None
    try:
        # Off the event loop: deciding the type of 10 MiB takes tens of ms of CPU, in steps
        # that each hold the GIL for about a millisecond (leadctl.resumes).
        checked = await asyncio.to_thread(
            check_resume, upload.filename, upload.data, settings.max_resume_bytes
        )
    except UnsupportedResume as exc:
        return None, exc
    except InvalidInput as exc:  # too small to be a document
        errors.extend(exc.errors)
        return None, None
    return checked, None


def _consent(
    form: ParsedForm, settings: Settings, errors: list[tuple[str, str]], page: bool
) -> str | None:
    """The version of the disclaimer accepted, or None; a missing consent is an error while
    `LEADS_REQUIRE_CONSENT` is on, and a value that is neither yes nor no always is."""
    if "consent" in form.not_utf8:
        return None
    try:
        agreed = check_consent(form.fields.get("consent"))
    except ValueError as exc:
        errors.append(("consent", str(exc)))
        return None
    if not agreed:
        if settings.require_consent:
            errors.append(("consent", CONSENT_NEEDED[page]))
        return None
    return rendering.disclaimer(settings).version
