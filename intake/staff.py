"""The staff API under /api/v1: bearer-token routes for attorneys working from their machines."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

import anyio
from litestar import Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import State as AppState
from litestar.handlers import BaseRouteHandler
from litestar.openapi.spec import OpenAPIType, Operation, Schema
from litestar.openapi.spec import Parameter as OpenAPIParameter
from litestar.params import JSONBody, PathParameter, QueryParameter

from intake.errors import documented
from intake.submission import Intake
from leadctl import attorneys, lead_detail, leads, permissions, stats
from leadctl.errors import AuthError, InvalidInput
from leadctl.models import Attorney
from leadctl.states import Action, parse_state
from leadctl.states import State as LeadState
from leadctl.timeutil import parse_duration, parse_when

SECURITY: list[dict[str, list[str]]] = [{"BearerToken": []}]
MAX_PAGE = 1000
MAX_BODY_BYTES = 64 * 1024  # a note is at most 4,000 characters: no staff body needs more


async def require_token(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
    """Every staff route: a valid, unrevoked token of an active attorney (401 / 403)."""
    header = connection.headers.get("authorization", "")
    scheme, _sep, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("send Authorization: Bearer <token>")
    attorney = await anyio.to_thread.run_sync(attorneys.authenticate, token.strip())
    connection.scope["state"]["attorney"] = attorney


LeadId = Annotated[str, PathParameter(description="the lead's id or its reference")]

# Every staff route: the token guard, the security scheme in OpenAPI, the tag.
STAFF: dict[str, Any] = {
    "guards": [require_token],
    "security": SECURITY,
    "tags": ["staff"],
    "responses": documented(400, 401, 403, 404, 409, 413, 422, 503),
    "request_max_body_size": MAX_BODY_BYTES,
}


def _me(request: Request) -> Attorney:
    attorney: Attorney = request.scope["state"]["attorney"]
    return attorney


def _caller(request: Request) -> permissions.Caller:
    """The token's attorney with their rights (leadctl.permissions decides what they may do)."""
    return permissions.of_attorney(_me(request))


def _intake(request: Request) -> Intake:
    state: AppState = request.app.state
    intake: Intake = state.intake
    return intake


def _readable(request: Request, lead: Any) -> Any:
    """The lead, once the caller may read it (LEADS_ATTORNEY_SCOPE); 403 naming its owner."""
    permissions.check_read(_caller(request), lead, _intake(request).settings.attorney_scope)
    return lead


def _parse(field: str, value: str | None, parse: Any) -> Any:
    if value is None or value == "":
        return None
    try:
        return parse(value)
    except ValueError as exc:
        raise InvalidInput([(field, str(exc))]) from None


@dataclass
class ListLeadsOperation(Operation):
    """Documents `state`, a name Litestar reserves for handler arguments, so it is read by hand."""

    def __post_init__(self) -> None:
        self.parameters = [
            *(self.parameters or []),
            OpenAPIParameter(
                name="state",
                param_in="query",
                required=False,
                description="only leads in this state",
                schema=Schema(type=OpenAPIType.STRING, enum=[s.value for s in LeadState]),
            ),
        ]


@get(
    "/leads",
    **STAFF,
    sync_to_thread=True,
    summary="List leads, newest first, by cursor",
    operation_class=ListLeadsOperation,
)
def list_leads(
    request: Request,
    attorney: Annotated[str | None, QueryParameter(description="attorney email")] = None,
    q: Annotated[
        str | None, QueryParameter(max_length=200, description="name or email contains")
    ] = None,
    since: Annotated[
        str | None, QueryParameter(description="date, timestamp or duration ago")
    ] = None,
    until: Annotated[
        str | None, QueryParameter(description="date, timestamp or duration ago")
    ] = None,
    overdue: Annotated[
        str | None, QueryParameter(description="pending longer than, e.g. 24h")
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 50,
    total: Annotated[
        bool, QueryParameter(description="also count every match (a scan on a big database)")
    ] = False,
    quarantined: Annotated[
        bool, QueryParameter(description="only suspected spam (admins only)")
    ] = False,
    cursor: Annotated[
        int | None,
        QueryParameter(ge=1, le=2**53, description="next_cursor of the previous page"),
    ] = None,
) -> dict[str, Any]:
    if quarantined:
        permissions.check_admin(_caller(request), "listing quarantined leads")
    scope = _intake(request).settings.attorney_scope
    query = leads.LeadQuery(
        visible_to=permissions.reads_only(_caller(request), scope),
        quarantined=quarantined,
        state=_parse("state", request.query_params.get("state"), parse_state),
        attorney=attorney or None,
        search=q or None,
        since=_parse("since", since, parse_when),
        until=_parse("until", until, parse_when),
        overdue=_parse("overdue", overdue, parse_duration),
        before_id=cursor,
        limit=limit + 1,  # one more than asked tells whether there is a next page
    )
    rows = list(leads.iter_lead_dicts(query))
    more = len(rows) > limit
    items = rows[:limit]
    return {
        "items": items,
        "next_cursor": str(items[-1]["id"]) if more else None,
        "total": leads.count(query) if total else None,
    }


@get(
    "/leads/{lead_id:str}",
    **STAFF,
    sync_to_thread=True,
    summary="One lead with resume metadata and history",
)
def show_lead(request: Request, lead_id: LeadId) -> dict[str, Any]:
    # A quarantined lead is hidden by id exactly as in lists: only admins see suspected spam.
    lead = leads.find(lead_id, include_quarantined=_me(request).role == "admin")
    _log_reference(request, lead.reference)
    scope = _intake(request).settings.attorney_scope
    visible_to = permissions.reads_only(_caller(request), scope)
    return lead_detail.detail_dict(_readable(request, lead), visible_to=visible_to)


def content_disposition(filename: str) -> str:
    """An attachment header safe for any name: ASCII fallback plus RFC 5987 UTF-8 form."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\;' else "_" for ch in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@get(
    "/leads/{lead_id:str}/resume",
    **STAFF,
    sync_to_thread=True,
    summary="The resume file",
    media_type="application/octet-stream",
)
def get_resume(request: Request, lead_id: LeadId) -> Response[bytes]:
    lead = leads.find(lead_id)
    _log_reference(request, lead.reference)
    resume = leads.resume_of(_readable(request, lead))
    return Response(
        bytes(resume.data),
        media_type=resume.content_type,
        headers={
            "Content-Disposition": content_disposition(resume.filename),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


@dataclass
class ChangeBody:
    note: str | None = None
    dry_run: bool = False


@dataclass
class NoteBody:
    text: str


@dataclass
class AssignBody:
    attorney: str


def _log_reference(request: Request, reference: str) -> None:
    """The access log line names the lead a request was about."""
    request.scope["state"]["lead_reference"] = reference


def _outcome(request: Request, outcome: leads.Outcome) -> dict[str, Any]:
    _log_reference(request, outcome.lead["reference"])
    return {"lead": outcome.lead, "changed": outcome.changed, "message": outcome.message}


async def _write(request: Request, call: Any, *args: Any) -> Any:
    """Run a change on the process's one writer thread (see intake.submission.Intake)."""
    intake = _intake(request)
    return await asyncio.get_running_loop().run_in_executor(intake.writer, call, *args)


async def _change(
    request: Request, lead_id: LeadId, action: Action, data: ChangeBody | None
) -> dict[str, Any]:
    body = data or ChangeBody()
    if body.dry_run:
        preview = await anyio.to_thread.run_sync(
            leads.preview_state, lead_id, action, _caller(request)
        )
        return _outcome(request, preview)
    caller = _caller(request)
    outcome = await _write(request, leads.change_state, lead_id, action, caller, body.note)
    return _outcome(request, outcome)


@post("/leads/{lead_id:str}/reach-out", **STAFF, status_code=200, summary="PENDING → REACHED_OUT")
async def reach_out(
    request: Request, lead_id: LeadId, data: JSONBody[ChangeBody | None] = None
) -> dict[str, Any]:
    return await _change(request, lead_id, Action.REACH_OUT, data)


@post("/leads/{lead_id:str}/reopen", **STAFF, status_code=200, summary="REACHED_OUT → PENDING")
async def reopen(
    request: Request, lead_id: LeadId, data: JSONBody[ChangeBody | None] = None
) -> dict[str, Any]:
    return await _change(request, lead_id, Action.REOPEN, data)


@post("/leads/{lead_id:str}/notes", **STAFF, status_code=200, summary="Add a note to the history")
async def add_note(request: Request, lead_id: LeadId, data: JSONBody[NoteBody]) -> dict[str, Any]:
    return _outcome(
        request, await _write(request, leads.add_note, lead_id, data.text, _caller(request))
    )


@post(
    "/leads/{lead_id:str}/assign",
    **STAFF,
    status_code=200,
    summary="Assign the lead to an attorney",
)
async def assign(request: Request, lead_id: LeadId, data: JSONBody[AssignBody]) -> dict[str, Any]:
    intake = _intake(request)
    outcome = await _write(
        request, leads.assign, lead_id, data.attorney, _caller(request), intake.settings
    )
    if outcome.changed:
        intake.notify()  # the new attorney's email is in the outbox: the worker need not wait
    return _outcome(request, outcome)


@get("/me", **STAFF, summary="Who this token belongs to")
async def me(request: Request) -> dict[str, Any]:
    return attorneys.attorney_dict(_me(request))


@get("/stats", **STAFF, sync_to_thread=True, summary="Counts, time to first contact, per attorney")
def get_stats(
    since: Annotated[
        str | None, QueryParameter(description="date, timestamp or duration ago")
    ] = None,
) -> dict[str, Any]:
    return stats.compute(_parse("since", since, parse_when))


STAFF_ROUTES = [
    list_leads,
    show_lead,
    get_resume,
    reach_out,
    reopen,
    add_note,
    assign,
    me,
    get_stats,
]
