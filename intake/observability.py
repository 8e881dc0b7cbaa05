"""Every request observed once: its request id, one access-log line, and its metrics."""

from __future__ import annotations

import logging
import re
import time
import uuid

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from intake.metrics import Metrics
from intake.public import RATE_LIMITED, SUBMISSION_OUTCOME
from intake.ratelimit import client_address
from leadctl.settings import Network
from leadctl.text import visible

access_log = logging.getLogger("intake.access")

REQUEST_ID_HEADER = b"x-request-id"
# What a client's own request id may be: one short token a log reader can trust on sight.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Why a submission was refused, by the status of its answer (a metrics label: a closed set).
_REFUSALS = {
    400: "malformed",
    408: "too_slow",
    409: "conflict",
    413: "too_large",
    415: "unsupported_type",
    422: "invalid",
    429: "rate_limited",
    503: "unavailable",
}


def request_id(scope: Scope) -> str:
    """The client's `X-Request-ID` when it is one sane token; otherwise a new one.

    Anything else (control characters, a second header, 10 KB) is replaced, never repeated: the
    id goes into log lines that are read in terminals, and back into the response's headers.
    """
    given = [value for name, value in scope.get("headers", []) if name == REQUEST_ID_HEADER]
    if len(given) == 1:
        text = given[0].decode("latin-1")
        if _SANE_REQUEST_ID.fullmatch(text):
            return text
    return uuid.uuid4().hex


def submission_outcome(scope: Scope, status: int) -> tuple[str, str, str] | None:
    """(channel, outcome, reason) when this request was a submission, else None."""
    handler = scope.get("route_handler")
    channel = handler.opt.get(RATE_LIMITED) if handler is not None else None
    if not channel or scope.get("method") != "POST":
        return None
    outcome = scope.get("state", {}).get(SUBMISSION_OUTCOME)
    if outcome is not None:
        return channel, outcome, ""
    reason = _REFUSALS.get(status, "error" if status >= 500 or status == 0 else "other")
    return channel, "refused", reason


def observe(app: ASGIApp, trusted: list[Network], metrics: Metrics | None) -> ASGIApp:
    """Wrap the whole app (404s and 405s included, which route middleware never sees): a request
    id echoed in `X-Request-ID`, one access-log line, and the request's metrics."""

    async def observed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # websockets and lifespan pass through untouched
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = request_id(scope)
        scope.setdefault("state", {})["request_id"] = rid
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != REQUEST_ID_HEADER
                ]
                headers.append((REQUEST_ID_HEADER, rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            _log_access(scope, status, seconds, rid, client_address(scope, trusted))
            if metrics is not None:
                method = scope.get("method", "")
                # Labels from a closed set only: a hostile path or method adds no series.
                route = scope.get("path_template") if scope.get("route_handler") else None
                metrics.request(
                    route or "unmatched", method if method in _METHODS else "other", seconds
                )
                outcome = submission_outcome(scope, status)
                if outcome is not None:
                    metrics.submission(*outcome)

    return observed


def _log_access(scope: Scope, status: int, seconds: float, rid: str, client: str) -> None:
    method = visible(scope.get("method", "-"))
    path = visible(scope["path"])  # a path may carry an escape sequence for a terminal
    client = visible(client)  # a trusted proxy's X-Forwarded-For may carry one too
    reference = scope.get("state", {}).get("lead_reference")
    millis = round(seconds * 1000, 1)
    access_log.info(
        "%s %s %d %.1fms lead=%s client=%s request_id=%s",
        method,
        path,
        status,
        millis,
        reference or "-",
        client,
        rid,
        # The same facts as fields, for LEADS_LOG_FORMAT=json.
        extra={
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": millis,
            "client": client,
            "request_id": rid,
            "lead": reference,
        },
    )
