"""The firm's own words: Jinja2 templates, shipped in the package, overridden file by file.

A file in `LEADS_TEMPLATES_DIR` replaces the shipped template of the same name (`email/
confirmation.txt`, `pages/form.html`, ...). HTML is autoescaped; an email's text template sets
its subject with `{% set subject = ... %}`. Every error names the template's file and line,
whether the file does not parse or fails while it renders (an undefined variable).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import jinja2
from markupsafe import Markup

from leadctl.errors import LeadctlError
from leadctl.text import visible

if TYPE_CHECKING:
    from leadctl.messages import Composed
    from leadctl.settings import Settings

SHIPPED = Path(__file__).parent / "templates"
MAX_SUBJECT = 250  # characters: a subject is one line, whatever a template makes of it
DISCLAIMER = "partials/disclaimer.html"
MAX_DISCLAIMER = 20_000  # characters rendered: every form page carries it


class TemplateError(LeadctlError):
    """A template cannot be loaded or rendered; the message names its file and line."""


@functools.lru_cache(maxsize=8)
def environment(templates_dir: str = "") -> jinja2.Environment:
    """The environment for one templates folder ('' = the shipped templates only).

    Templates are read once per process (no reload): the disclaimer a form shows and the
    version a submission records are the same text for the life of the server.
    """
    search = [templates_dir, str(SHIPPED)] if templates_dir else [str(SHIPPED)]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        autoescape=jinja2.select_autoescape(["html"], default_for_string=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    # For text emails: control and bidi characters of outside text (a party's name) shown as
    # `\x1b`, never acted on by the attorney's terminal mail reader.
    env.filters["visible"] = visible
    return env


def base_context(settings: Settings) -> dict[str, Any]:
    """What every template may use, whatever it renders."""
    return {"firm_name": settings.firm_name, "privacy_url": settings.privacy_url}


def render(name: str, settings: Settings, **context: Any) -> str:
    """Template `name` rendered with the base context and `context`."""
    with explained(name):
        template = environment(settings.templates_dir).get_template(name)
        return template.render({**base_context(settings), **context})


def compose(name: str, recipient: str, settings: Settings, **context: Any) -> Composed:
    """Email `name` from `email/<name>.txt` (which sets `subject`) and `email/<name>.html`."""
    from leadctl.messages import Composed

    env = environment(settings.templates_dir)
    values = {**base_context(settings), **context}
    with explained(f"email/{name}.txt"):
        template = env.get_template(f"email/{name}.txt")
        try:
            module = template.make_module(values)
        except Exception:  # noqa: BLE001 - re-raised with the template's own lines
            env.handle_exception()
        text = str(module)
        subject = str(getattr(module, "subject", "")).strip()
    with explained(f"email/{name}.html"):
        page = env.get_template(f"email/{name}.html").render(values)
    if not subject:
        raise TemplateError(f"email/{name}.txt sets no subject: {{% set subject = '...' %}}")
    # One line however the template or the values in it break it: CR/LF never reach a header.
    subject = " ".join(subject.split())[:MAX_SUBJECT]
    return Composed(recipient, subject, text, page)


@dataclass(frozen=True)
class Disclaimer:
    """The disclaimer the form shows, and its version: the SHA-256 (hex) of that exact text with
    its white space normalized (`" ".join(html.split())`), which each consenting lead records."""

    html: Markup
    version: str


def disclaimer(settings: Settings) -> Disclaimer:
    """`partials/disclaimer.html` rendered with the base context, and its version."""
    return _disclaimer(settings.templates_dir, settings.firm_name, settings.privacy_url)


@functools.lru_cache(maxsize=8)
def _disclaimer(templates_dir: str, firm_name: str, privacy_url: str) -> Disclaimer:
    with explained(DISCLAIMER):
        template = environment(templates_dir).get_template(DISCLAIMER)
        text = template.render(firm_name=firm_name, privacy_url=privacy_url)
    if len(text) > MAX_DISCLAIMER:
        where = template.filename or DISCLAIMER
        raise TemplateError(
            f"template {where}: the disclaimer is {len(text):,} characters long; at most "
            f"{MAX_DISCLAIMER:,} (every form page carries it)"
        )
    # Markup: this is the output of an autoescaped template, not outside text.
    return Disclaimer(Markup(text), disclaimer_version(text))  # noqa: S704


def disclaimer_version(text: str) -> str:
    """SHA-256 (hex) of the text with every run of white space made one space, trimmed."""
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()


class explained:
    """Turns any error of loading or rendering template `name` into a TemplateError of one line
    naming the file and line (for a render error: the innermost template line that failed)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None or isinstance(exc, TemplateError) or not isinstance(exc, Exception):
            return
        if isinstance(exc, jinja2.TemplateSyntaxError):
            where = f"{exc.filename or exc.name or self.name}, line {exc.lineno}"
            raise TemplateError(f"template {where}: {_one_line(exc.message or '')}") from None
        if isinstance(exc, jinja2.TemplateNotFound):
            raise TemplateError(f"template {exc.name} is not found") from None
        found = _template_line(tb)
        where = f"{found[0]}, line {found[1]}" if found else self.name
        message = str(exc) if isinstance(exc, jinja2.TemplateError) else f"{kind.__name__}: {exc}"  # type: ignore[union-attr]
        raise TemplateError(f"template {where}: {_one_line(message)}") from None


def _template_line(tb: TracebackType | None) -> tuple[str, int] | None:
    """(file, line) of the innermost template frame: Jinja2 rewrites a render's traceback so that
    each template frame carries the template's own file name and line number."""
    found = None
    while tb is not None:
        if "__jinja_exception__" in tb.tb_frame.f_globals:
            found = (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _one_line(text: str) -> str:
    return visible(" ".join(str(text).split()))[:500]
