"""The public HTML pages as Litestar template responses: the intake form (with its errors and
the values typed) and the confirmation, from `leadctl/templates/pages/` or the firm's own."""

from __future__ import annotations

from collections.abc import Mapping

from litestar import MediaType
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template.config import TemplateConfig

from leadctl import page_context, rendering
from leadctl.settings import Settings


def template_config(settings: Settings) -> TemplateConfig[JinjaTemplateEngine]:
    """Litestar's template engine over the one environment the emails use too (the shipped
    templates behind the firm's `LEADS_TEMPLATES_DIR`)."""
    engine = JinjaTemplateEngine.from_environment(rendering.environment(settings.templates_dir))
    return TemplateConfig(instance=engine)


def form_page(
    settings: Settings,
    token: str,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str | None, str] | None = None,
    status_code: int = 200,
) -> Template:
    """The intake form; after a failed submission, each error sits under its field, tied to it
    by `aria-describedby`, the first one focused, and the typed values kept.

    `token` is the signed render time (intake.formtoken); the `website` field is a honeypot:
    off-screen for people, hidden from screen readers, labelled to be left empty.
    """
    return Template(
        page_context.FORM,
        context=page_context.form(settings, token, values, errors),
        status_code=status_code,
        media_type=MediaType.HTML,
    )


def confirmation_page(settings: Settings, first_name: str, reference: str) -> Template:
    return Template(
        page_context.CONFIRMATION,
        context=page_context.confirmation(settings, first_name, reference),
        status_code=201,
        media_type=MediaType.HTML,
    )


def stylesheet(settings: Settings) -> str:
    """The pages' styles (`pages/form.css`), served as /form.css: the pages'
    Content-Security-Policy allows no inline style."""
    return rendering.render(page_context.STYLESHEET, settings)
