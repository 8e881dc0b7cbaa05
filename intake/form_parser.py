"""Streaming multipart/form-data parsing with hard limits, so no upload can exhaust the server."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from litestar import Request
from litestar.exceptions import ClientException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from multipart import (
    MultipartSegment,
    ParserError,
    ParserLimitReached,
    PushMultipartParser,
)

from leadctl.errors import ResumeTooLarge

MAX_TEXT_FIELD_BYTES = 16 * 1024
MAX_PARTS = 16


class FormError(Exception):
    """The body is not a usable form; `status` is 400, 413 or 415."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


@dataclass
class UploadedFile:
    filename: str
    content_type: str | None
    data: bytes


@dataclass
class ParsedForm:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)
    not_utf8: set[str] = field(default_factory=set)


def _boundary(request: Request) -> bytes:
    content_type, options = request.content_type
    if content_type != "multipart/form-data":
        raise FormError(415, "send the form as multipart/form-data")
    boundary = options.get("boundary", "")
    if not boundary or len(boundary) > 200:
        raise FormError(400, "the multipart/form-data Content-Type has no valid boundary")
    return boundary.encode("latin-1", "replace")


async def parse_form(
    request: Request,
    *,
    max_file_bytes: int,
    timeout: float = 60.0,
    file_field: str = "resume",
) -> ParsedForm:
    """Read the request body into text fields and at most one file.

    Stops reading as soon as a limit is passed: the file beyond `max_file_bytes` (413), a text
    field beyond 16 KiB (413), more than 16 parts or a second file (400), a body that takes
    longer than `timeout` seconds to arrive (408: a slow client cannot hold a worker).
    """
    form = ParsedForm()
    try:
        async with asyncio.timeout(timeout):
            return await _read(request, form, max_file_bytes, file_field)
    except TimeoutError:
        raise FormError(408, f"the upload took longer than {timeout:.0f} s; try again") from None


async def _read(
    request: Request,
    form: ParsedForm,
    max_file_bytes: int,
    file_field: str,
) -> ParsedForm:
    segment: MultipartSegment | None = None
    buffer = bytearray()
    limit = 0
    try:
        with PushMultipartParser(_boundary(request), max_segment_count=MAX_PARTS) as parser:
            async for chunk in request.stream():
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        segment, buffer = event, bytearray()
                        is_file = event.filename is not None
                        if is_file and (event.name != file_field or form.files):
                            raise FormError(
                                400, f"send exactly one file, in the {file_field!r} field"
                            )
                        limit = max_file_bytes if is_file else MAX_TEXT_FIELD_BYTES
                    elif event:
                        buffer.extend(event)
                        if len(buffer) > limit:
                            assert segment is not None
                            if segment.filename is not None:
                                raise ResumeTooLarge(
                                    f"the resume is larger than {max_file_bytes:,} bytes"
                                )
                            raise FormError(
                                413, f"the field {segment.name!r} is too large", segment.name
                            )
                    elif segment is not None:
                        _keep(form, segment, bytes(buffer))
                        segment = None
                if parser.closed:
                    break
    except RequestEntityTooLarge:
        raise ResumeTooLarge(f"the upload is larger than {max_file_bytes:,} bytes") from None
    except (ParserError, ClientException) as exc:
        raise FormError(400, f"the multipart/form-data body is malformed: {exc}") from None
    except ParserLimitReached:
        raise FormError(400, f"the form has too many parts (at most {MAX_PARTS})") from None
    return form


def _keep(form: ParsedForm, segment: MultipartSegment, data: bytes) -> None:
    name = segment.name or ""
    if segment.filename is not None:
        if data or segment.filename:
            form.files[name] = UploadedFile(segment.filename, segment.content_type, data)
        return
    if name in form.fields or name in form.not_utf8:
        return  # the first value of a repeated field wins
    try:
        form.fields[name] = data.decode("utf-8")
    except UnicodeDecodeError:
        form.not_utf8.add(name)
