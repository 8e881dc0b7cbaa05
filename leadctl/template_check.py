"""Every template rendered with a sample lead: what `leadctl config check` reports (one line per
error, naming the file and line) and what stops the server from starting.

Pages and the two intake emails are rendered with the values the code gives them. Another email
(`email/<name>.txt` + `.html`, found by listing) is rendered with its shipped template's own
variables standing in as blanks: a firm's version that uses a name the shipped one does not is
an error, as it would be when the email is sent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import jinja2
import jinja2.meta

from leadctl import page_context, rendering
from leadctl.rendering import TemplateError

if TYPE_CHECKING:
    from collections.abc import Callable

    from leadctl.settings import Settings

SUFFIXES = (".html", ".txt", ".css")
_NOW = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)
SAMPLE_RECIPIENT = "ann@firm.example"
# Values a prospect could send: each sample also proves that they stay text.
SAMPLE_NAME = ("Zoë {{ 7*7 }}", "Ñúñez <b>&amp;</b>")


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checked: int = 0


def check(settings: Settings) -> Findings:
    """Render every template of the shipped set and of the firm's folder; never raises."""
    found = Findings()
    if settings.templates_dir and not os.path.isdir(settings.templates_dir):
        found.problems.append(
            f"LEADS_TEMPLATES_DIR: {settings.templates_dir} is not a folder (the firm's templates "
            "would be silently ignored)"
        )
    env = rendering.environment(settings.templates_dir)
    names = sorted(n for n in _names(env) if n.endswith(SUFFIXES))
    for name in names:
        _attempt(found, partial(env.get_template, name))  # each parses
    renders: list[Callable[[], object]] = [partial(rendering.disclaimer, settings)]
    renders += [partial(_page, settings, kind) for kind in ("form", "errors", "done")]
    renders.append(partial(rendering.render, page_context.STYLESHEET, settings))
    for name in names:
        stem, suffix = name.removeprefix("email/"), ""
        if name.startswith("email/"):
            stem, _, suffix = stem.rpartition(".")
        if suffix == "txt":
            renders += [partial(make, settings) for make in _samples(stem)]
        elif suffix == "html" and f"email/{stem}.txt" not in names:
            found.warnings.append(f"template {name} has no email/{stem}.txt beside it: unused")
    if settings.templates_dir:
        shipped = set(_names(rendering.environment("")))
        for name in names:
            if name.startswith("email/") and name not in shipped:
                found.warnings.append(
                    f"template {name} is not one leadctl sends (a typo?); shipped emails: "
                    + ", ".join(sorted(n for n in shipped if n.startswith("email/")))
                )
    for render in renders:
        _attempt(found, render)
    found.checked = len(names)
    return found


def first_problem(settings: Settings) -> None:
    """Raise TemplateError (one line) when any template fails: the server does not start so."""
    problems = check(settings).problems
    if problems:
        more = f" (and {len(problems) - 1} more: run leadctl config check)" if problems[1:] else ""
        raise TemplateError(problems[0] + more)


def _names(env: jinja2.Environment) -> list[str]:
    return [n for n in env.list_templates() if not n.rpartition("/")[2].startswith(".")]


def _attempt(found: Findings, render: Callable[[], object]) -> None:
    try:
        with rendering.explained("template"):
            render()
    except TemplateError as exc:
        if str(exc) not in found.problems:
            found.problems.append(str(exc))


def _page(settings: Settings, kind: str) -> str:
    if kind == "done":
        context = page_context.confirmation(settings, SAMPLE_NAME[0], "K7QF-M2XD")
        return rendering.render(page_context.CONFIRMATION, settings, **context)
    values = {"first_name": SAMPLE_NAME[0], "last_name": SAMPLE_NAME[1], "consent": "true"}
    errors: dict[str | None, str] = {}
    if kind == "errors":
        errors = {f: f"{f} <is> wrong" for f in (*page_context.FIELDS, "form", "resume_url")}
    context = page_context.form(settings, "token", values, errors)
    page = rendering.render(page_context.FORM, settings, **context)
    if str(context["disclaimer"]) not in page:
        where = rendering.environment(settings.templates_dir).get_template(page_context.FORM)
        raise TemplateError(
            f"template {where.filename}: the form does not show the disclaimer: put "
            "{{ disclaimer }} in it (each consenting lead records its version)"
        )
    return page


def _samples(stem: str) -> list[Callable[[Settings], object]]:
    """Ways to compose email `stem` from samples (each branch of the shipped templates)."""
    if stem == "confirmation":
        from leadctl.messages import confirmation

        return [lambda settings: confirmation("K7QF-M2XD", SAMPLE_RECIPIENT, settings)]
    if stem == "notification":
        return [lambda s: _notification(s, True), lambda s: _notification(s, False)]
    return [lambda settings: _other_email(settings, stem)]


def _notification(settings: Settings, full: bool) -> object:
    from leadctl.messages import notification

    hit = {"id": 3, "role": None, "matter": None, "reference": "M2XD-K7QF", "score": 0.92}
    hits = [
        {**hit, "source": "lead", "name": "Zoe Nunez", "date": "2024-01-02T03:04:05Z"},
        {**hit, "source": "party", "name": "Acme <Holdings>", "role": "adverse", "matter": "A v B"},
        {**hit, "source": "erased", "name": "", "matched": "email", "date": "2023-05-06T00:00:00Z"},
        # Another attorney's lead under LEADS_ATTORNEY_SCOPE=own: only whose it is.
        {**hit, "source": "lead", "name": "", "id": None, "reference": None, "owner": "bob@f.com"},
    ]
    for one in hits:
        one.setdefault("matched", "name")
        one.setdefault("date", "2024-02-03T00:00:00Z")
    return notification(
        lead_id=12,
        reference="K7QF-M2XD",
        first_name=SAMPLE_NAME[0],
        last_name=SAMPLE_NAME[1],
        email="zoe@example.com",
        submitted_at=_NOW,
        recipient=SAMPLE_RECIPIENT,
        assigned=full,
        resume_name="Zoë CV.pdf" if full else None,
        resume_size=200_000 if full else None,
        resume_type="application/pdf" if full else None,
        resume_url=None if full else "https://example.com/cv.pdf",
        reason="returning prospect" if full else "no active attorney",
        attorney=("Ann Lee", SAMPLE_RECIPIENT) if full else None,
        consent=(_NOW, "0" * 64) if full else None,
        earlier=[(3, "M2XD-K7QF", _NOW - timedelta(days=40))] if full else [],
        conflicts=hits * 4 if full else [],  # more than the ten shown
        settings=settings,
    )


def _other_samples() -> dict[str, dict[str, Any]]:
    """Contexts of the emails other parts of leadctl send, as their templates document them.
    Used only while the shipped template renders with them (else blanks stand in)."""
    lead = {
        "id": 12,
        "reference": "K7QF-M2XD",
        "full_name": " ".join(SAMPLE_NAME),
        "name": " ".join(SAMPLE_NAME),
        "email": "zoe@example.com",
        "submitted_at": "2025-03-14T09:26:53Z",
        "created_at": "2025-03-14T09:26:53Z",
        "waited": "2 days",
        "attorney": SAMPLE_RECIPIENT,
        "attorney_active": False,
        "reason": "the hidden website field was filled",
        "held_at": "2025-03-14T09:26:53Z",
    }
    commands = ["leadctl show 12", "leadctl open 12"]
    return {
        "reminder": {"lead": lead, "commands": commands},
        "escalation": {"lead": lead, "commands": commands},
        "quarantine_digest": {
            "leads": [lead, {**lead, "id": 13}],
            "count": 3,
            "more": 1,
            "since": "2025-03-14T08:26:53Z",
        },
        "reassigned": {
            "leads": [lead, {**lead, "id": 13}],
            "count": 2,
            "more": 0,
            "by": SAMPLE_RECIPIENT,
            "previous": "bob@firm.example",
            "reason": "Bob left the firm",
        },
    }


def _other_email(settings: Settings, stem: str) -> object:
    """An email another part of leadctl sends: rendered with its documented sample when the
    shipped template takes it, else with blanks for the names the shipped template uses (what
    the code gives it)."""
    shipped_settings = settings.replace(templates_dir="")
    sample = _other_samples().get(stem)
    if sample is not None:
        try:
            rendering.compose(stem, SAMPLE_RECIPIENT, shipped_settings, **sample)
        except TemplateError:
            sample = None
        else:
            return rendering.compose(stem, SAMPLE_RECIPIENT, settings, **sample)
    shipped = rendering.environment("")
    context: dict[str, Any] = {}
    if f"email/{stem}.txt" in shipped.list_templates():
        names: set[str] = set()
        for suffix in ("txt", "html"):
            source = shipped.loader.get_source(shipped, f"email/{stem}.{suffix}")[0]  # type: ignore[union-attr]
            names |= jinja2.meta.find_undeclared_variables(shipped.parse(source))
        context = {
            name: jinja2.ChainableUndefined(name=name)
            for name in names - set(rendering.base_context(settings))
        }
        try:  # a shipped email that blanks cannot render is only checked for its syntax
            rendering.compose(stem, SAMPLE_RECIPIENT, shipped_settings, **context)
        except TemplateError:
            return None
    return rendering.compose(stem, SAMPLE_RECIPIENT, settings, **context)
