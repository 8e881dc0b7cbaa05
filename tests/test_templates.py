"""The firm's own words: shipped templates, overrides from LEADS_TEMPLATES_DIR, errors that name
the file and line (in `leadctl config check` and when the server starts), and what a prospect
types staying text in every page and email."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from intake import create_app
from leadctl import messages, rendering, template_check
from leadctl.models import OutboxMessage
from leadctl.rendering import TemplateError
from leadctl.settings import Settings
from tests import samples
from tests.conftest import BIN, make_settings, server_env, submit

NOW = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)


def _firm(tmp_path: Path, files: dict[str, str]) -> Path:
    """A firm's templates folder holding `files` (relative name → text)."""
    folder = tmp_path / "firm-templates"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def _settings(tmp_path: Path, files: dict[str, str] | None = None, **kw: Any) -> Settings:
    folder = _firm(tmp_path, files or {})
    return make_settings(tmp_path, templates_dir=str(folder), require_consent=False, **kw)


def test_every_shipped_template_renders_with_a_sample_lead() -> None:
    found = template_check.check(Settings())
    assert found.problems == [] and found.warnings == []
    assert found.checked >= 10  # pages, partials, and every email's text and HTML


def test_the_firm_name_where_a_firm_expects_it_and_neutral_wording_without(
    tmp_path: Path,
) -> None:
    neutral = make_settings(tmp_path)
    firm = make_settings(tmp_path, firm_name="Lee & Roe LLP")
    plain = messages.confirmation("K7QF-M2XD", "zoe@example.com", neutral)
    assert plain.subject == "We received your details (reference K7QF-M2XD)"
    assert "Thank you for contacting us." in plain.text
    assert plain.text.rstrip().endswith("The intake team")
    named = messages.confirmation("K7QF-M2XD", "zoe@example.com", firm)
    assert named.subject == "Lee & Roe LLP: we received your details (reference K7QF-M2XD)"
    assert "Thank you for contacting Lee & Roe LLP." in named.text
    assert named.text.rstrip().endswith("The intake team, Lee & Roe LLP")
    assert "Lee &amp; Roe LLP" in named.html and "Lee & Roe" not in named.html
    for settings, expected in (
        (neutral, "an attorney will contact you"),
        (firm, "an attorney of Lee &amp; Roe LLP will contact you"),
    ):
        with TestClient(create_app(settings, run_worker=False)) as client:
            page = client.get("/").text
        assert expected in page
        assert "two business days" not in page  # that promise is the confirmation's


def test_a_firm_file_overrides_the_shipped_one_of_the_same_name(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        {
            "email/confirmation.txt": (
                '{% set subject = "Lee & Roe: file " ~ reference %}\n'
                "Dear prospective client,\nyour file is {{ reference }}.\nLee & Roe\n"
            ),
            "pages/confirmation.html": (
                '{% extends "pages/base.html" %}{% block title %}Received{% endblock %}'
                "{% block content %}<h1>Received, {{ first_name }}</h1>"
                '<p class="reference">{{ reference }}</p>{% endblock %}'
            ),
        },
    )
    with TestClient(create_app(settings, run_worker=False)) as client:
        token = re.search(r'name="form_token" value="([^"]+)"', client.get("/").text)
        assert token is not None
        page = client.post(
            "/",
            data={
                "first_name": "Zoë",
                "last_name": "Doe",
                "email": "zoe@example.com",
                "form_token": token.group(1),
            },
            files={"resume": ("cv.pdf", samples.pdf(), "application/pdf")},
        )
        assert page.status_code == 201
        assert "<h1>Received, Zoë</h1>" in page.text
        confirmation = OutboxMessage.get(OutboxMessage.purpose == "confirmation")
    assert confirmation.subject.startswith("Lee & Roe: file ")
    assert confirmation.body_text.startswith("Dear prospective client,")
    assert "<p>Hello,</p>" in confirmation.body_html  # the HTML part was not overridden


def test_what_a_prospect_types_is_never_template_code_nor_markup(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    note = messages.notification(
        lead_id=7,
        reference="K7QF-M2XD",
        first_name="{{ 7*7 }}",
        last_name="<img src=x onerror=alert(1)>{% raw %}",
        email="zoe@example.com",
        submitted_at=NOW,
        recipient="ann@firm.example",
        assigned=True,
        resume_name="cv.pdf",
        resume_size=4000,
        resume_type="application/pdf",
        settings=settings,
    )
    assert "{{ 7*7 }}" in note.text and "49" not in note.text
    assert "<img" not in note.html and "&lt;img src=x onerror=alert(1)&gt;" in note.html
    assert note.subject == "New lead K7QF-M2XD: {{ 7*7 }} <img src=x onerror=alert(1)>{% raw %}"


def test_a_subject_is_one_line_whatever_a_template_makes_of_it(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        {
            "email/confirmation.txt": '{% set subject = "Ref\\r\\nBcc: all@example.com\\n" ~ reference %}Hi\n'
        },
    )
    composed = messages.confirmation("K7QF-M2XD", "zoe@example.com", settings)
    assert composed.subject == "Ref Bcc: all@example.com K7QF-M2XD"
    assert "\n" not in composed.subject and "\r" not in composed.subject


def test_the_confirmation_can_echo_nothing_the_prospect_typed(tmp_path: Path) -> None:
    """The confirmation's template is given the reference only: a firm's template that tries
    to greet the prospect by name fails the check instead of mailing a stranger's words."""
    settings = _settings(
        tmp_path, {"email/confirmation.txt": '{% set subject = "Hi" %}\nHello {{ first_name }}\n'}
    )
    problems = template_check.check(settings).problems
    assert len(problems) == 1
    assert problems[0] == (
        f"template {tmp_path}/firm-templates/email/confirmation.txt, line 2: "
        "'first_name' is undefined"
    )


def test_a_render_error_names_the_file_and_the_line(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        {
            "partials/extra.html": "one\ntwo\n{{ missing.value }}\n",
            "pages/page.html": '{% include "partials/extra.html" %}',
            "email/notification.html": "<p>{{ lead.reference }}</p>\n\n\n<p>{{ 1 / 0 }}</p>\n",
        },
    )
    with pytest.raises(TemplateError) as caught:
        rendering.render("pages/page.html", settings)
    assert str(caught.value) == (
        f"template {tmp_path}/firm-templates/partials/extra.html, line 3: 'missing' is undefined"
    )
    problems = template_check.check(settings).problems
    assert (
        f"template {tmp_path}/firm-templates/email/notification.html, line 4: "
        "ZeroDivisionError: division by zero"
    ) in problems


BROKEN_FORM = '{% extends "pages/base.html" %}\n{% block content %}\n{% if %}\n{% endblock %}\n'


def test_config_check_reports_each_template_error_in_one_line_and_fails(tmp_path: Path) -> None:
    folder = _firm(
        tmp_path,
        {
            "pages/form.html": BROKEN_FORM,
            "email/notification.txt": '{% set subject = "x" %}\n{{ lead.nickname }}\n',
            "email/welcome.txt": '{% set subject = "x" %}hi\n',
            "email/welcome.html": "<p>hi</p>\n",
        },
    )
    env = {
        **server_env(make_settings(tmp_path)),
        "LEADS_TEMPLATES_DIR": str(folder),
        "LEADS_FROM_EMAIL": "leads@firm.example",
        "LEADS_INTAKE_EMAIL": "intake@firm.example",
    }
    out = subprocess.run(
        [str(BIN / "leadctl"), "db", "upgrade"], env=env, cwd=tmp_path, capture_output=True
    )
    assert out.returncode == 0, out.stderr
    out = subprocess.run(
        [str(BIN / "leadctl"), "config", "check"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert (
        f"problem: template {folder}/pages/form.html, line 3: Expected an expression, got 'end of statement block'"
        in lines
    )
    assert (
        f"problem: template {folder}/email/notification.txt, line 2: "
        "'dict object' has no attribute 'nickname'"
    ) in lines
    assert any(
        line.startswith("warning: template email/welcome.txt is not one leadctl sends")
        for line in lines
    )
    assert "Traceback" not in out.stdout + out.stderr
    assert "templates" in out.stderr  # the summary names what was checked


def test_the_server_refuses_to_start_with_a_broken_firm_template(tmp_path: Path) -> None:
    folder = _firm(tmp_path, {"pages/form.html": BROKEN_FORM})
    env = server_env(make_settings(tmp_path), LEADS_TEMPLATES_DIR=str(folder))
    out = subprocess.run(
        [str(BIN / "leadctl"), "serve", "--port", "1"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith(f"leadctl: error: template {folder}/pages/form.html, line 3: ")
    assert "Traceback" not in out.stderr
    with pytest.raises(TemplateError, match=r"form\.html, line 3"):
        create_app(make_settings(tmp_path, templates_dir=str(folder)))


def test_a_firm_form_that_drops_the_disclaimer_fails_the_check(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        {
            "pages/form.html": '{% extends "pages/base.html" %}{% block content %}'
            '<form method="post"><input type="hidden" name="form_token" value="{{ token }}">'
            "</form>{% endblock %}"
        },
    )
    (problem,) = template_check.check(settings).problems
    assert problem.endswith(
        "the form does not show the disclaimer: put {{ disclaimer }} in it (each consenting lead records its version)"
    )


def test_a_firm_stylesheet_is_served_as_form_css(tmp_path: Path) -> None:
    settings = _settings(tmp_path, {"pages/form.css": "body { color: #000; }\n"})
    with TestClient(create_app(settings, run_worker=False)) as client:
        css = client.get("/form.css")
    assert css.text == "body { color: #000; }\n"
    assert css.headers["content-type"].startswith("text/css")


def test_the_api_submission_and_its_emails_use_the_templates(tmp_path: Path) -> None:
    settings = _settings(tmp_path, firm_name="Lee & Roe LLP")
    with TestClient(create_app(settings, run_worker=False)) as client:
        assert submit(client).status_code == 201
        confirmation = OutboxMessage.get(OutboxMessage.purpose == "confirmation")
        notification = OutboxMessage.get(OutboxMessage.purpose == "notification")
    assert confirmation.subject.startswith("Lee & Roe LLP: we received your details")
    assert "Jane" not in confirmation.body_text + confirmation.body_html
    assert "No active attorney could take this new lead" in notification.body_text


def test_a_templates_folder_that_is_not_there_is_a_problem_not_silence(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, templates_dir=str(tmp_path / "missing"))
    assert template_check.check(settings).problems == [
        f"LEADS_TEMPLATES_DIR: {tmp_path}/missing is not a folder (the firm's templates would "
        "be silently ignored)"
    ]
    with pytest.raises(TemplateError, match="is not a folder"):
        create_app(settings)


def test_one_signature_signs_every_email_to_the_firm(tmp_path: Path) -> None:
    """The layout's `signature` block: a firm that overrides it signs the reminder, the
    escalation, the reassignment and the digest at once; the prospect's confirmation keeps its
    own closing and the notification none."""
    layout = (
        '<html><body>{% block body %}{% endblock %}{% block signature %}<p class="sig">'
        "{{ firm_name }}: intake desk</p>{% endblock %}</body></html>"
    )
    settings = _settings(tmp_path, {"partials/email_layout.html": layout}, firm_name="Lee & Roe")
    signed = {}
    for stem in ("reminder", "escalation", "reassigned", "quarantine_digest", "confirmation"):
        (message,) = template_check._samples(stem)
        signed[stem] = '<p class="sig">Lee &amp; Roe: intake desk</p>' in message(settings).html  # type: ignore[attr-defined]
    notifications = [make(settings).html for make in template_check._samples("notification")]  # type: ignore[attr-defined]
    assert signed == {
        "reminder": True,
        "escalation": True,
        "reassigned": True,
        "quarantine_digest": True,
        "confirmation": False,
    }
    assert not any('class="sig"' in html for html in notifications)
