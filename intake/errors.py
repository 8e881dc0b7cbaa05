"""One mapping from errors to HTTP answers: `{"errors": [{"field", "message"}]}` everywhere."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import ResponseSpec

from leadctl import errors as core

log = logging.getLogger("intake")

STATUS = {
    core.InvalidInput: 422,
    core.ResumeTooLarge: 413,
    core.UnsupportedResume: 415,
    core.NotFound: 404,
    core.InvalidTransition: 409,
    core.Conflict: 409,
    core.AuthError: 401,
    core.Forbidden: 403,
    core.StorageUnavailable: 503,
}
RESUME_FIELD = {core.ResumeTooLarge, core.UnsupportedResume}


@dataclass
class ErrorItem:
    field: str | None
    message: str


@dataclass
class ErrorBody:
    """Every error answer: the failing fields (or null) and what is wrong with each."""

    errors: list[ErrorItem]


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


def error_body(pairs: list[tuple[str | None, str]]) -> dict[str, list[dict[str, str | None]]]:
    return {"errors": [{"field": field, "message": message} for field, message in pairs]}


def error_response(status: int, pairs: list[tuple[str | None, str]]) -> Response[dict]:
    headers = {"Retry-After": "2"} if status == 503 else {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="leadctl"'
    return Response(
        error_body(pairs), status_code=status, media_type=MediaType.JSON, headers=headers
    )


def core_error_pairs(exc: core.LeadctlError) -> tuple[int, list[tuple[str | None, str]]]:
    if isinstance(exc, core.InvalidInput):
        return 422, list(exc.errors)
    status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)
    field = "resume" if type(exc) in RESUME_FIELD else None
    return status, [(field, str(exc))]


def handle_core_error(_: Request, exc: core.LeadctlError) -> Response[dict]:
    status, pairs = core_error_pairs(exc)
    return error_response(status, pairs)


def handle_http_exception(_: Request, exc: HTTPException) -> Response[dict]:
    # Litestar's own parameter and body validation: same shape and status as intake's.
    status = 422 if isinstance(exc, ValidationException) else exc.status_code
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


def handle_unexpected(_: Request, exc: Exception) -> Response[dict]:
    log.exception("unexpected error", exc_info=exc)
    return error_response(500, [(None, "internal error; the request was not processed")])
