"""`create_app(settings)`: the intake server's Litestar app, its lifespan and its logging."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from intake import errors, public
from intake.ratelimit import RateLimiter
from intake.security import security_headers
from intake.staff import STAFF_ROUTES
from intake.submission import Intake
from intake.writer import GroupCommitWriter
from leadctl import db, submissions
from leadctl.delivery import DeliveryWorker
from leadctl.errors import LeadctlError
from leadctl.mailer import make_sender
from leadctl.settings import Settings
from leadctl.text import visible

access_log = logging.getLogger("intake.access")
BODY_OVERHEAD = 256 * 1024  # room for the text fields and multipart framing beside the resume


def access_logging(app: ASGIApp) -> ASGIApp:
    """One line per request: method, path, status, duration, lead reference; never the body."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # websockets and lifespan pass through untouched
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            reference = scope.get("state", {}).get("lead_reference", "-")
            access_log.info(
                "%s %s %d %.1fms lead=%s",
                scope.get("method", "-"),
                visible(scope["path"]),  # a path may carry an escape sequence for a terminal
                status,
                (time.perf_counter() - started) * 1000,
                reference,
            )

    return middleware


def create_app(settings: Settings | None = None, *, run_worker: bool = True) -> Litestar:
    """The intake application; nothing connects until the server starts."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        db.bind(settings.database_url, settings.sqlite_busy_timeout_ms)
        db.ensure_schema()
        intake = Intake(
            settings,
            GroupCommitWriter(),
            limiter=RateLimiter(*settings.rate) if settings.rate else None,
            trusted_proxies=settings.proxy_networks,
            form_secret=submissions.shared_secret("form-token"),
        )
        worker = None
        if run_worker:
            worker = DeliveryWorker(
                settings,
                make_sender,
                chores=[submissions.forget_old_keys],
                separate_process=True,
            )
            intake.wake_worker = worker.wake
            worker.start()
        app.state.intake = intake
        try:
            yield
        finally:
            intake.writer.shutdown(wait=True)  # queued submissions commit before we go
            if worker is not None:
                worker.stop()

    return Litestar(
        route_handlers=[
            public.show_form,
            public.submit_form,
            public.health,
            public.stylesheet,
            # One router for /api/v1: the public POST and the staff GET share /api/v1/leads.
            Router(path="/api/v1", route_handlers=[public.create_lead, *STAFF_ROUTES]),
        ],
        lifespan=[lifespan],
        middleware=[access_logging, security_headers(settings), public.flood_gate],
        exception_handlers={
            LeadctlError: errors.handle_core_error,
            HTTPException: errors.handle_http_exception,
            Exception: errors.handle_unexpected,
        },
        request_max_body_size=settings.max_resume_bytes + BODY_OVERHEAD,
        openapi_config=OpenAPIConfig(
            title="leadctl intake",
            version="1",
            path="/schema",
            # The document itself, as JSON, at /schema and /schema/openapi.json. No HTML viewer:
            # those pull scripts from a CDN, which the pages' Content-Security-Policy forbids.
            render_plugins=[JsonRenderPlugin(path=["/", "/openapi.json"])],
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(
                        type="http", scheme="bearer", description="an API token (lct_…)"
                    )
                }
            ),
        ),
        debug=False,
    )
