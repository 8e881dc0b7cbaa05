"""Public routes: the HTML intake form, `POST /api/v1/leads`, the disclaimer, and `GET /health`
(liveness)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from litestar import MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)
from litestar.openapi.spec import Parameter as OpenAPIParameter
from litestar.response import Template
from litestar.types import ASGIApp, Receive, Scope, Send

from intake import formtoken
from intake.errors import core_error_pairs, documented, error_response
from intake.form_parser import FormError, ParsedForm
from intake.pages import confirmation_page, form_page
from intake.submission import (
    TOO_MANY_UPLOADS,
    Intake,
    idempotency_key,
    read_submission,
    store_submission,
)
from leadctl import rendering
from leadctl.db import ping
from leadctl.errors import LeadctlError
from leadctl.submissions import Submitted
from leadctl.timeutil import iso
from leadctl.validation import MAX_RESUME_URL


@dataclass
class LeadAccepted:
    """The public answer to a submission; the internal id is deliberately absent."""

    reference: str
    state: str
    created_at: str


RATE_LIMITED = "rate_limited"  # a handler's `opt` key: its submissions count against the limit
SUBMISSION_OUTCOME = "submission_outcome"  # scope state: accepted, quarantined or replayed


def _note_outcome(request: Request, submitted: Submitted) -> None:
    """What the access log and the metrics say of a stored submission."""
    lead = submitted.lead
    request.scope["state"]["lead_reference"] = lead.reference
    outcome = "replayed" if submitted.replayed else "accepted"
    request.scope["state"][SUBMISSION_OUTCOME] = "quarantined" if lead.quarantined else outcome


def flood_gate(app: ASGIApp) -> ASGIApp:
    """Refuse a client over the rate limit before anything else reads its request.

    The answer (429, Retry-After) is made here, ahead of the handler's signature parsing and
    dependency injection, after `LEADS_REFUSAL_DELAY_SECONDS`, and closes the connection: the
    (large) body is never read, and a flooding client pays for a new connection.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["route_handler"].opt.get(RATE_LIMITED) if scope["type"] == "http" else None
        intake: Intake | None = scope["litestar_app"].state.get("intake") if kind else None
        wait = await intake.retry_after(scope) if intake is not None else None
        if intake is None or wait is None:
            await app(scope, receive, send)
            return
        refusal: Response[Any] | Template
        if kind == "api":
            refusal = error_response(429, [(None, f"too many submissions; try again in {wait} s")])
        else:
            message = f"Too many submissions from here; please try again in {wait} s."
            refusal = _form_again(intake, ParsedForm(), 429, [("form", message)])
        refusal.headers.update({"Retry-After": str(wait), "Connection": "close"})
        # A client that waits for each answer (as floods do, per connection) now sends at most
        # one request a second per connection; waiting costs the event loop nothing.
        await asyncio.sleep(intake.settings.refusal_delay_seconds)
        request: Request[Any, Any, Any] = Request(scope, receive)
        await refusal.to_asgi_response(app=None, request=request)(scope, receive, send)

    return middleware


@dataclass
class CreateLeadOperation(Operation):
    """Documents the multipart body, which the handler parses itself (with hard limits)."""

    def __post_init__(self) -> None:
        text = Schema(type=OpenAPIType.STRING, max_length=100)
        self.request_body = RequestBody(
            required=True,
            content={
                "multipart/form-data": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        properties={
                            "first_name": text,
                            "last_name": text,
                            "email": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.EMAIL),
                            "resume": Schema(
                                type=OpenAPIType.STRING,
                                format=OpenAPIFormat.BINARY,
                                description="the resume file; or send `resume_url` instead",
                            ),
                            "resume_url": Schema(
                                type=OpenAPIType.STRING,
                                format=OpenAPIFormat.URI,
                                max_length=MAX_RESUME_URL,
                                description=(
                                    "instead of a file: an https link to the resume (a public "
                                    "host name, no user name or password), stored and never "
                                    "fetched"
                                ),
                            ),
                            "consent": Schema(
                                type=OpenAPIType.STRING,
                                enum=["true", "false"],
                                description=(
                                    "`true` when the prospect accepted the firm's disclaimer "
                                    "(GET /api/v1/disclaimer); required while "
                                    "LEADS_REQUIRE_CONSENT is on (the default). `yes`, `on` "
                                    "and `1` count as true too, in any case."
                                ),
                            ),
                        },
                        required=["first_name", "last_name", "email"],
                    )
                )
            },
        )
        self.parameters = [
            *(self.parameters or []),
            OpenAPIParameter(
                name="Idempotency-Key",
                param_in="header",
                required=False,
                description="a retried submission with the same key gets the first answer",
                schema=Schema(type=OpenAPIType.STRING, max_length=150),
            ),
        ]


@post(
    "/leads",
    status_code=201,
    operation_class=CreateLeadOperation,
    responses=documented(400, 408, 409, 413, 415, 422, 429, 503),
    summary="Submit a lead",
    description=(
        "multipart/form-data with `first_name`, `last_name`, `email`, `consent=true` (while "
        "LEADS_REQUIRE_CONSENT is on: the lead records the time and the version of the "
        "disclaimer accepted, see GET /api/v1/disclaimer) and exactly one of the `resume` file "
        "or `resume_url` (https, at most 2,048 characters, never fetched). 422 names every "
        "failing field (`consent`, `resume`, `resume_url` included); 413 resume too large; 415 "
        "resume type not accepted; 429 too many submissions (see Retry-After). An "
        "`Idempotency-Key` header makes a retried submission return the first answer."
    ),
    tags=["public"],
    opt={RATE_LIMITED: "api"},
)
async def create_lead(request: Request, state: State) -> Response[LeadAccepted]:
    intake: Intake = state.intake  # a client over the rate limit never gets here: flood_gate
    try:
        key = idempotency_key(request)
        form = await read_submission(request, intake)
        submitted = await store_submission(form, intake, key=key)
    except FormError as exc:
        refusal = error_response(exc.status, [(exc.field, str(exc))], exc.code)
        _close_if_unread(refusal, exc)
        return refusal  # type: ignore[return-value]
    await intake.accepted(request, submitted)
    _note_outcome(request, submitted)
    lead = submitted.lead
    return Response(
        LeadAccepted(lead.reference, lead.state, iso(lead.created_at) or ""), status_code=201
    )


@dataclass
class DisclaimerText:
    """The disclaimer the form shows, as HTML, and its version (what a consenting lead records:
    the SHA-256 of that HTML with its white space normalized)."""

    version: str
    html: str
    required: bool
    privacy_url: str


@get(
    "/disclaimer",
    tags=["public"],
    summary="The disclaimer a submission's consent accepts",
    description=(
        "Show this text beside your own form before you send `consent=true`: the lead records "
        "its `version`."
    ),
)
async def disclaimer_text(state: State) -> DisclaimerText:
    settings = state.intake.settings
    shown = rendering.disclaimer(settings)
    return DisclaimerText(
        shown.version, str(shown.html), settings.require_consent, settings.privacy_url
    )


@get("/", media_type=MediaType.HTML, include_in_schema=False)
async def show_form(state: State) -> Template:
    intake: Intake = state.intake
    return form_page(intake.settings, formtoken.issue(intake.form_secret))


@post(
    "/",
    media_type=MediaType.HTML,
    include_in_schema=False,
    status_code=201,
    opt={RATE_LIMITED: "form"},
    # No refusal on the announced Content-Length: the fields come before the file, and a 413
    # page shows them again. read_submission cuts the body off at the same limit.
    request_max_body_size=None,
)
async def submit_form(request: Request, state: State) -> Template:
    intake: Intake = state.intake  # a client over the rate limit never gets here: flood_gate
    form = ParsedForm()  # filled as it is read: a refusal midway still shows what was typed
    try:
        form = await read_submission(request, intake, into=form)
        check = formtoken.check(
            intake.form_secret, form.fields.get("form_token"), intake.settings.min_fill_seconds
        )
        submitted = await store_submission(
            form, intake, key=check.key, quarantine_reason=check.bot_reason, page=True
        )
    except FormError as exc:
        page = _form_again(intake, form, exc.status, [(exc.field or "form", str(exc))])
        _close_if_unread(page, exc)
        return page
    except LeadctlError as exc:
        status, pairs = core_error_pairs(exc)
        return _form_again(
            intake, form, status, [(field or "form", message) for field, message in pairs]
        )
    await intake.accepted(request, submitted)
    _note_outcome(request, submitted)
    return confirmation_page(intake.settings, submitted.lead.first_name, submitted.lead.reference)


def _close_if_unread(answer: Response[Any] | Template, exc: FormError) -> None:
    """Too many uploads at once: the body was never read, so the connection closes after the
    answer (and the client is told when to try again)."""
    if exc.code == TOO_MANY_UPLOADS:
        answer.headers.update({"Retry-After": "2", "Connection": "close"})


def _form_again(
    intake: Intake, form: ParsedForm, status: int, pairs: list[tuple[str, str]]
) -> Template:
    errors: dict[str | None, str] = {}
    for field, message in pairs:
        errors.setdefault(field, message)
    token = formtoken.issue(intake.form_secret, previous=form.fields.get("form_token"))
    return form_page(intake.settings, token, form.fields, errors, status_code=status)


@get("/form.css", media_type="text/css", include_in_schema=False)
async def stylesheet(state: State) -> Response[str]:
    """The pages' styles (`pages/form.css`, rendered once at start), served rather than inline:
    their Content-Security-Policy allows no inline code."""
    return Response(
        state.stylesheet, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"}
    )


@dataclass
class Health:
    status: str


@get(
    "/health",
    sync_to_thread=True,
    tags=["public"],
    summary="Is the database answering?",
    responses={
        503: ResponseSpec(data_container=Health, description="The database does not answer")
    },
)
def health() -> Response[Health]:
    if ping():
        return Response(Health("ok"))
    return Response(Health("unavailable"), status_code=503, headers={"Retry-After": "5"})
