"""Taking one submission: parse, validate, check the resume, then store it on the writer thread."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from litestar import Request

from intake.form_parser import ParsedForm, parse_form
from leadctl import leads
from leadctl.errors import InvalidInput, UnsupportedResume
from leadctl.resumes import check_resume
from leadctl.settings import Settings
from leadctl.validation import check_prospect

TEXT_FIELDS = ("first_name", "last_name", "email")


@dataclass
class Intake:
    """Per-app resources: one writer thread per process keeps SQLite's write lock uncontended."""

    settings: Settings
    writer: ThreadPoolExecutor
    wake_worker: object = None

    def notify(self) -> None:
        if callable(self.wake_worker):
            self.wake_worker()


async def read_submission(request: Request, intake: Intake) -> ParsedForm:
    return await parse_form(request, max_file_bytes=intake.settings.max_resume_bytes)


async def store_submission(form: ParsedForm, intake: Intake) -> leads.Submitted:
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
            resume = check_resume(upload.filename, upload.data, intake.settings.max_resume_bytes)
        except UnsupportedResume as exc:
            if not errors:
                raise
            errors.append(("resume", str(exc)))
    if errors or prospect is None or resume is None:
        raise InvalidInput(errors)
    loop = asyncio.get_running_loop()
    submitted = await loop.run_in_executor(
        intake.writer, leads.submit, prospect, resume, intake.settings
    )
    intake.notify()
    return submitted
