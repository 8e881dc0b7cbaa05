"""Streaming multipart/form-data parsing with hard limits, so no upload can exhaust the server."""

from __future__ import annotations

import asyncio
import bisect
import io
from collections import deque
from collections.abc import Callable
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

from leadctl.resumes import too_large

MAX_TEXT_FIELD_BYTES = 16 * 1024
MAX_PARTS = 16
MAX_FILENAME_CHARS = 255  # what file systems allow; the stored name is cut to ~100 anyway
MAX_FIELD_NAME_CHARS = 100
MAX_PART_HEADER_BYTES = 16 * 1024  # room for a long file name, so the answer can name it
MAX_PART_HEADERS = 8  # RFC 7578 needs three
_HEADER_WINDOW = MAX_PART_HEADERS * (MAX_PART_HEADER_BYTES + 2) + 512

# Of an over-long part header, only this much is read to recover which field it belonged to:
# the answer names it, and nothing an attacker sends makes that cost more than a linear scan.
_EXAMINED = MAX_PART_HEADERS * (MAX_PART_HEADER_BYTES + 2)


class FormError(Exception):
    """The body is not a usable form; `status` is 400, 408, 413, 415 or 422 (or 503: too many
    uploads at once, `code` then says so)."""

    def __init__(
        self, status: int, message: str, field: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.code = code


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
    into: ParsedForm | None = None,
    max_body_bytes: int | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> ParsedForm:
    """Read the request body into text fields and at most one file (into `into`, if given: a
    caller that catches a refusal still has the fields read before it, to show them again).

    Stops reading as soon as a limit is passed: the file beyond `max_file_bytes` (413), a text
    field beyond 16 KiB (413), more than 16 parts or a second file (400), a file name over 255
    characters (422, naming the field), a part header over 16 KiB or a field name over 100
    characters (400), a body that takes longer than `timeout` seconds to arrive (408: a slow
    client cannot hold a worker), more than `max_body_bytes` in all (413, as the resume's
    limit: a route that reads past an announced Content-Length keeps the fields before it).
    `on_bytes` is told the size of each chunk as it arrives, and may refuse it by raising.
    """
    form = ParsedForm() if into is None else into
    try:
        async with asyncio.timeout(timeout):
            return await _read(request, form, max_file_bytes, file_field, max_body_bytes, on_bytes)
    except TimeoutError:
        raise FormError(408, f"the upload took longer than {timeout:.0f} s; try again") from None


async def _read(
    request: Request,
    form: ParsedForm,
    max_file_bytes: int,
    file_field: str,
    max_body_bytes: int | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> ParsedForm:
    segment: MultipartSegment | None = None
    streamed, most = 0, max_body_bytes or float("inf")
    buffer = io.BytesIO()  # getvalue() hands over its bytes without a copy
    received = limit = 0
    boundary = _boundary(request)
    # The last chunks read (no copies), enough to hold the whole header of a part the parser
    # refuses: its headers are at most MAX_PART_HEADERS lines of MAX_PART_HEADER_BYTES.
    recent: deque[bytes] = deque()
    kept = 0
    try:
        with PushMultipartParser(
            boundary,
            max_header_size=MAX_PART_HEADER_BYTES,
            max_header_count=MAX_PART_HEADERS,
            max_segment_count=MAX_PARTS,
        ) as parser:
            async for chunk in request.stream():
                streamed += len(chunk)
                if on_bytes is not None:
                    on_bytes(len(chunk))
                recent.append(chunk)
                kept += len(chunk)
                while kept - len(recent[0]) > _HEADER_WINDOW:
                    kept -= len(recent.popleft())
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        _check_headers(event, form, file_field)
                        segment, buffer, received = event, io.BytesIO(), 0
                        limit = (
                            max_file_bytes if event.filename is not None else MAX_TEXT_FIELD_BYTES
                        )
                    elif event:
                        received += len(event)
                        if received > limit:
                            assert segment is not None
                            if segment.filename is not None:
                                raise too_large(max_file_bytes)
                            raise FormError(
                                413, f"the field {segment.name!r} is too large", segment.name
                            )
                        buffer.write(event)
                    elif segment is not None:
                        _keep(form, segment, buffer.getvalue())
                        segment, buffer = None, io.BytesIO()
                if parser.closed:
                    break
                if streamed > most:  # after the chunk's fields are kept (a client's one chunk)
                    raise too_large(max_file_bytes)
    except RequestEntityTooLarge:
        raise too_large(max_file_bytes) from None
    except (ParserError, ClientException) as exc:
        raise FormError(400, f"the multipart/form-data body is malformed: {exc}") from None
    except ParserLimitReached as exc:
        raise _limit_error(str(exc), b"".join(recent), boundary, file_field) from None
    return form


def _check_headers(segment: MultipartSegment, form: ParsedForm, file_field: str) -> None:
    name = segment.name or ""
    if len(name) > MAX_FIELD_NAME_CHARS:
        raise FormError(
            400, f"a form field's name is too long (at most {MAX_FIELD_NAME_CHARS} characters)"
        )
    if segment.filename is None:
        return
    if name != file_field or form.files:
        raise FormError(400, f"send exactly one file, in the {file_field!r} field")
    if len(segment.filename) > MAX_FILENAME_CHARS:
        raise _long_filename(file_field)


def _long_filename(file_field: str) -> FormError:
    return FormError(
        422,
        f"the {file_field}'s file name is too long (at most {MAX_FILENAME_CHARS} characters)",
        file_field,
    )


def _limit_error(reason: str, recent: bytes, boundary: bytes, file_field: str) -> FormError:
    """The true reason the multipart parser stopped, naming the field where it can be known."""
    if "segment count" in reason:
        return FormError(400, f"the form has too many parts (at most {MAX_PARTS})")
    if "header count" in reason:
        return FormError(400, f"a part of the form has more than {MAX_PART_HEADERS} headers")
    if "header length" not in reason:
        return FormError(400, f"the form is beyond a limit: {reason}")
    header = _overlong_header(recent, boundary)[:_EXAMINED]
    name = disposition_name(header)
    if b"filename" in header.lower() and name in (None, file_field):
        return _long_filename(file_field)  # only that field takes a file
    return FormError(
        400,
        f"the header of the form's {name + ' field' if name else 'part'} is longer than "
        f"{MAX_PART_HEADER_BYTES:,} bytes",
        name,
    )


def disposition_name(header: bytes) -> str | None:
    """The `name` of a `Content-Disposition: form-data; …; name="…"` line among `header`'s
    lines (at most 100 characters), or None. Only used to word a refusal.

    Each line is split once, in linear time: a backtracking regex here took seconds, on the
    event loop, for one line of repeated `Content-Disposition: form-data` with no `;`.
    """
    for line in header.split(b"\r\n"):
        key, colon, value = line.partition(b":")
        if not colon or key.strip().lower() != b"content-disposition":
            continue
        kind, *params = value.split(b";")
        if kind.strip().lower() != b"form-data":
            continue
        for param in params:
            key, equals, quoted = param.partition(b"=")
            quoted = quoted.lstrip(b" \t")
            if not equals or key.strip(b" \t").lower() != b"name" or quoted[:1] != b'"':
                continue
            end = quoted.find(b'"', 1, MAX_FIELD_NAME_CHARS + 2)
            if end > 0:
                return quoted[1:end].decode("utf-8", "replace")
    return None


def _overlong_header(recent: bytes, boundary: bytes) -> bytes:
    """The header section, among the parts begun in `recent`, that has a line over the limit.

    Linear in `recent`: its lines are measured once, and each part's section end is found once
    (a body full of boundary-like lines made a search from every one of them quadratic).
    """
    long_lines, position = [], 0
    for line in recent.split(b"\r\n"):
        if len(line) > MAX_PART_HEADER_BYTES:
            long_lines.append(position)
        position += len(line) + 2
    marker = b"--" + boundary + b"\r\n"
    end, found = -1, recent.find(marker)
    while long_lines and found >= 0:
        start = found + len(marker)
        if end < start:  # else the section end found for an earlier part is this one's too
            end = recent.find(b"\r\n\r\n", start)
            end = len(recent) if end < 0 else end
        first = bisect.bisect_left(long_lines, start)
        if first < len(long_lines) and long_lines[first] < end:
            return recent[start:end]
        found = recent.find(marker, start)
    return b""


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
