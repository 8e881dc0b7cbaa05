"""Errors as HTTP answers: `{"code", "errors": [{"field", "message"}]}` everywhere.

The status and code of a core error come from `leadctl.errors` (its `KINDS` table), the same
table the remote CLI reads them back with.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import ResponseSpec

from leadctl import errors as core

log = logging.getLogger("intake")

RESUME_FIELD = {core.ResumeTooLarge, core.UnsupportedResume}


@dataclass
class ErrorItem:
    field: str | None
    message: str


@dataclass
class ErrorBody:
    """Every error answer: a stable `code` naming the kind of error (branch on it, not on the
    message), and the failing fields (or null) with what is wrong with each.

    Codes: invalid_input, resume_too_large, unsupported_resume, not_found, invalid_transition,
    conflict, auth_required, forbidden, storage_unavailable, and for answers the core did not
    give, bad_request, method_not_allowed, timeout, too_large, unsupported_media_type (a body
    that is not multipart/form-data), rate_limited, too_many_uploads (503: bodies being
    received at once, see Retry-After), internal_error.
    """

    code: str
    errors: list[ErrorItem]


# The code of an answer that no core error gave (Litestar's own, the rate limit, a crash).
_HTTP_CODES = {
    400: "bad_request",
    401: core.AuthError.code,
    403: core.Forbidden.code,
    404: core.NotFound.code,
    405: "method_not_allowed",
    408: "timeout",
    413: "too_large",
    415: "unsupported_media_type",  # the body's own type; a resume's is UnsupportedResume's
    422: core.InvalidInput.code,
    429: "rate_limited",
    431: "headers_too_large",
    503: core.StorageUnavailable.code,
}


_DESCRIPTIONS = {
    400: "Malformed request",
    401: "No valid token",
    403: "Not allowed for this attorney",
    404: "No such lead",
    408: "The body took too long to arrive",
    409: "Conflicts with the stored state",
    413: "Too large",
    415: "Unsupported content type or resume type",
    422: "Invalid fields, each named",
    429: "Too many submissions; see Retry-After",
    503: "Storage unavailable; see Retry-After",
}


def documented(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error answers a route can give, all in the ErrorBody shape."""
    return {
        code: ResponseSpec(data_container=ErrorBody, description=_DESCRIPTIONS[code])
        for code in codes
    }


def error_body(pairs: list[tuple[str | None, str]], code: str) -> dict[str, Any]:
    return {
        "code": code,
        "errors": [{"field": field, "message": message} for field, message in pairs],
    }


def status_code_name(status: int) -> str:
    return _HTTP_CODES.get(status, "internal_error" if status >= 500 else "bad_request")


def error_response(
    status: int, pairs: list[tuple[str | None, str]], code: str | None = None
) -> Response[dict]:
    headers = {"Retry-After": "2"} if status == 503 else {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="leadctl"'
    return Response(
        error_body(pairs, code or status_code_name(status)),
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers,
    )


def core_error_pairs(exc: core.LeadctlError) -> tuple[int, list[tuple[str | None, str]]]:
    if isinstance(exc, core.InvalidInput):
        return exc.http_status, [(field or None, message) for field, message in exc.errors]
    field = "resume" if type(exc) in RESUME_FIELD else None
    return exc.http_status, [(field, str(exc))]


STORAGE_UNAVAILABLE = "the database cannot take writes right now; try again shortly"


def handle_core_error(_: Request, exc: core.LeadctlError) -> Response[dict]:
    if isinstance(exc, core.StorageUnavailable):
        # The database's own words (a PostgreSQL deadlock names process ids and lock keys) go to
        # the log, not to a stranger.
        log.warning("storage unavailable: %s", exc)
        return error_response(503, [(None, STORAGE_UNAVAILABLE)], exc.code)
    status, pairs = core_error_pairs(exc)
    return error_response(status, pairs, exc.code)


def handle_http_exception(_: Request, exc: HTTPException) -> Response[dict]:
    # Litestar's own parameter and body validation: same shape and status as intake's.
    status = 422 if isinstance(exc, ValidationException) else exc.status_code
    if status >= 500 and "client disconnected" in str(exc.detail):
        # The client went away mid-body: nobody reads the answer, and it is not our error (an
        # outsider could fill the error log with them).
        log.info("request ended early: %s", exc.detail)
        return error_response(400, [(None, "the client disconnected before the body was sent")])
    if status >= 500:
        log.error("internal error: %s", exc.detail)
        return error_response(500, [(None, "internal error; the request was not processed")])
    pairs: list[tuple[str | None, str]] = []
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if isinstance(item, dict):
            pairs.append((item.get("key"), str(item.get("message", exc.detail))))
    if status == 413 and not pairs:  # Litestar's own "Request Entity Too Large"
        pairs = [(None, "the request body is larger than this route accepts")]
    response = error_response(status, pairs or [(None, str(exc.detail))])
    response.headers.update(exc.headers or {})  # e.g. Allow on a 405
    return response


TOO_DEEP = "the JSON body is nested too deeply"
NOT_UTF8 = "the JSON body is not valid UTF-8"


def handle_undecodable(
    request: Request, exc: RecursionError | UnicodeDecodeError
) -> Response[dict]:
    """A JSON body nested past what the decoder follows, or with bytes that are not UTF-8 inside
    a string: msgspec raises RecursionError or UnicodeDecodeError, which Litestar does not turn
    into a 400 as it does other decoding errors. The client's fault; raised anywhere else, ours."""
    if _in_body_decoding(exc):
        return error_response(
            400, [(None, TOO_DEEP if isinstance(exc, RecursionError) else NOT_UTF8)]
        )
    return handle_unexpected(request, exc)


def _in_body_decoding(exc: BaseException) -> bool:
    """Whether `exc` came out of Litestar's decoding of a request's JSON body."""
    if isinstance(exc, RecursionError) and "deserializ" in str(exc):
        return True
    frame = exc.__traceback__
    while frame is not None:
        if frame.tb_frame.f_code.co_name == "decode_json":
            return True
        frame = frame.tb_next
    return False


def handle_unexpected(_: Request, exc: Exception) -> Response[dict]:
    log.exception("unexpected error", exc_info=exc)
    return error_response(500, [(None, "internal error; the request was not processed")])
