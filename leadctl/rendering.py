"""The firm's own words: Jinja2 templates, shipped in the package, overridden file by file.

A file in `LEADS_TEMPLATES_DIR` replaces the shipped template of the same name (`email/
confirmation.txt`, `pages/form.html`, ...). HTML is autoescaped; an email's text template sets
its subject with `{% set subject = ... %}`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from leadctl.errors import LeadctlError

if TYPE_CHECKING:
    from leadctl.messages import Composed
    from leadctl.settings import Settings

SHIPPED = Path(__file__).parent / "templates"
MAX_SUBJECT = 250  # characters: a subject is one line, whatever a template makes of it


class TemplateError(LeadctlError):
    """A template cannot be loaded or rendered; the message names its file and line."""


@functools.lru_cache(maxsize=8)
def environment(templates_dir: str = "") -> jinja2.Environment:
    """The environment for one templates folder ('' = the shipped templates only)."""
    search = [templates_dir, str(SHIPPED)] if templates_dir else [str(SHIPPED)]
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        autoescape=jinja2.select_autoescape(["html"], default_for_string=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )


def base_context(settings: Settings) -> dict[str, Any]:
    """What every template may use, whatever it renders."""
    return {"firm_name": settings.firm_name, "privacy_url": settings.privacy_url}


def render(name: str, settings: Settings, **context: Any) -> str:
    """Template `name` rendered with the base context and `context`."""
    with _explained(name):
        template = environment(settings.templates_dir).get_template(name)
        return template.render({**base_context(settings), **context})


def compose(name: str, recipient: str, settings: Settings, **context: Any) -> Composed:
    """Email `name` from `email/<name>.txt` (which sets `subject`) and `email/<name>.html`."""
    from leadctl.messages import Composed

    env = environment(settings.templates_dir)
    values = {**base_context(settings), **context}
    with _explained(f"email/{name}.txt"):
        module = env.get_template(f"email/{name}.txt").make_module(values)
        text = str(module)
        subject = str(getattr(module, "subject", "")).strip()
    with _explained(f"email/{name}.html"):
        page = env.get_template(f"email/{name}.html").render(values)
    if not subject:
        raise TemplateError(f"email/{name}.txt sets no subject: {{% set subject = '...' %}}")
    # One line however the template or the values in it break it: CR/LF never reach a header.
    subject = " ".join(subject.split())[:MAX_SUBJECT]
    return Composed(recipient, subject, text, page)


class _explained:
    """Turns Jinja2's errors into one line naming the file and line."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _: Any) -> None:
        if isinstance(exc, jinja2.TemplateSyntaxError):
            where = f"{exc.filename or exc.name or self.name}, line {exc.lineno}"
            raise TemplateError(f"template {where}: {exc.message}") from None
        if isinstance(exc, jinja2.TemplateNotFound):
            raise TemplateError(f"template {exc.name} is not found") from None
        if isinstance(exc, jinja2.TemplateError):
            raise TemplateError(f"template {self.name}: {exc}") from None
