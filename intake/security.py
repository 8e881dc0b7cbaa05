"""Security headers on every answer: no sniffing, no referrer, a strict policy for HTML pages."""

from __future__ import annotations

from collections.abc import Callable

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from leadctl.settings import Settings


def page_policy(frame_ancestors: list[str]) -> str:
    """The Content-Security-Policy of the HTML pages: no script at all, styles and the form's
    target from this server only, and framing only by the sites the firm names."""
    ancestors = " ".join(frame_ancestors) or "'none'"
    return "; ".join(
        (
            "default-src 'none'",
            "style-src 'self'",
            "img-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            f"frame-ancestors {ancestors}",
        )
    )


def security_headers(settings: Settings) -> Callable[[ASGIApp], ASGIApp]:
    """Middleware factory: headers a handler did not set itself are added to each response."""
    every_answer = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
    html_pages = [
        (b"content-security-policy", page_policy(settings.frame_ancestor_sources).encode())
    ]
    if not settings.frame_ancestor_sources:
        html_pages.append((b"x-frame-options", b"DENY"))  # for browsers without frame-ancestors

    def middleware(app: ASGIApp) -> ASGIApp:
        async def with_headers(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return

            async def send_wrapper(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = list(message.get("headers", []))
                    present = {name.lower() for name, _ in headers}
                    content_type = next(
                        (value for name, value in headers if name.lower() == b"content-type"), b""
                    )
                    extra = every_answer + (html_pages if b"text/html" in content_type else [])
                    headers += [(n, v) for n, v in extra if n not in present]
                    message = {**message, "headers": headers}
                await send(message)

            await app(scope, receive, send_wrapper)

        return with_headers

    return middleware
