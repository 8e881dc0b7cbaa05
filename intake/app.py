"""`create_app(settings)`: the intake server's Litestar app and its lifespan."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from intake import errors, pages, public
from intake.conflict_routes import ROUTES as CONFLICT_ROUTES
from intake.metrics import Metrics, metrics
from intake.observability import observe
from intake.ratelimit import RateLimiter, SharedRateLimiter
from intake.readiness import file_identity, ready
from intake.security import security_headers
from intake.staff import STAFF_ROUTES
from intake.submission import BODY_OVERHEAD, Intake
from intake.writer import GroupCommitWriter
from leadctl import db, events, fastpath, schema, submissions, template_check
from leadctl.delivery import DeliveryWorker
from leadctl.errors import LeadctlError
from leadctl.mailer import make_sender
from leadctl.settings import Settings


def create_app(settings: Settings | None = None, *, run_worker: bool = True) -> Litestar:
    """The intake application; nothing connects until the server starts.

    Every template is rendered with samples first: a firm's template that fails stops the
    server here, with one line naming its file and line (TemplateError), not at the first
    submission.
    """
    settings = settings or Settings.from_env()
    template_check.first_problem(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        db.bind(settings.database_url, settings.sqlite_busy_timeout_ms)
        schema.ensure_schema()
        events.configure(settings)  # lead events become webhooks when LEADS_WEBHOOK_URL is set
        app.state.database_file = file_identity(settings)  # /ready notices it removed or replaced
        limiter: RateLimiter | SharedRateLimiter | None = None
        chores: list[Callable[[], object]] = [submissions.forget_old_keys]
        if settings.rate and db.is_sqlite():
            limiter = RateLimiter(*settings.rate)  # SQLite means one server process
        elif settings.rate:  # PostgreSQL: every server behind the load balancer shares it
            limiter = SharedRateLimiter(*settings.rate)
            chores.append(functools.partial(fastpath.forget_rate_hits, settings.rate[1]))
        intake = Intake(
            settings,
            GroupCommitWriter(),
            limiter=limiter,
            form_secret=submissions.shared_secret("form-token"),
        )
        worker = None
        if run_worker:
            worker = DeliveryWorker(
                settings,
                make_sender,
                chores=chores,
                separate_process=True,
            )
            intake.wake_worker = worker.wake
            worker.start()
        app.state.delivery = worker  # /ready asks whether its process is alive
        app.state.intake = intake
        try:
            yield
        finally:
            intake.writer.shutdown(wait=True)  # queued submissions commit before we go
            if worker is not None:
                worker.stop()

    collected = Metrics() if settings.metrics else None
    app = Litestar(
        route_handlers=[
            public.show_form,
            public.submit_form,
            public.health,
            ready,
            *([metrics] if collected is not None else []),  # off: 404, as for any unknown path
            public.stylesheet,
            # One router for /api/v1: the public POST and the staff GET share /api/v1/leads.
            Router(
                path="/api/v1",
                route_handlers=[
                    public.create_lead,
                    public.disclaimer_text,
                    *STAFF_ROUTES,
                    *CONFLICT_ROUTES,
                ],
            ),
        ],
        lifespan=[lifespan],
        middleware=[security_headers(settings), public.flood_gate],
        exception_handlers={
            LeadctlError: errors.handle_core_error,
            HTTPException: errors.handle_http_exception,
            RecursionError: errors.handle_undecodable,  # a JSON body nested too deeply
            UnicodeDecodeError: errors.handle_undecodable,  # or not UTF-8 inside a string
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
        template_config=pages.template_config(settings),
        debug=False,
        state=State({"metrics": collected, "stylesheet": pages.stylesheet(settings)}),
    )
    # Around the whole app, as Litestar's own CORS middleware is: route middleware never sees a
    # 404 or 405, and those too get a request id, an access-log line and their latency.
    app.asgi_handler = observe(app.asgi_handler, settings.proxy_networks, collected)
    return app
