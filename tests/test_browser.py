"""The HTML form in real headless Chromium (Debian's package, driven by Playwright)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests import samples
from tests.conftest import make_settings

pytestmark = pytest.mark.e2e


def test_a_person_submits_the_form_and_sees_the_reference(
    page: Any, tmp_path: Path, make_server: Any
) -> None:
    server = make_server(make_settings(tmp_path, min_fill_seconds=1.0, require_consent=True))
    resume = tmp_path / "Zoë CV.pdf"
    resume.write_bytes(samples.pdf(50_000))
    page.goto(server.url + "/")
    page.get_by_label("First name").fill("Zoë")
    page.get_by_label("Last name").fill("Ñúñez")
    page.get_by_label("Email").fill("zoe@example.com")
    page.get_by_label("Resume").set_input_files(str(resume))
    page.get_by_label("I have read the notice above").check()
    time.sleep(1.1)  # people take a moment; a form sent back faster is taken for a bot
    page.get_by_role("button", name="Send").click()
    page.wait_for_selector(".reference")
    reference = page.locator(".reference").inner_text()
    assert len(reference) == 9 and reference[4] == "-"
    assert "Thank you, Zoë" in page.content()
    page.screenshot(path=str(tmp_path / "confirmation.png"))
    import sqlite3

    with sqlite3.connect(tmp_path / "leads.db") as conn:
        row = conn.execute(
            "SELECT first_name, quarantined FROM lead WHERE reference = ?", (reference,)
        ).fetchone()
    assert row == ("Zoë", 0)


def test_the_form_states_its_limits_and_shows_the_disclaimer(
    page: Any, tmp_path: Path, make_server: Any
) -> None:
    server = make_server(make_settings(tmp_path, require_consent=True, max_resume_mb=5))
    page.goto(server.url + "/")
    hint = page.locator("#resume-hint").inner_text()
    assert hint == "PDF, Word (DOCX or DOC), OpenDocument text, RTF or plain text; at most 5 MB."
    assert "no attorney–client relationship" in page.locator("#disclaimer").inner_text()
    assert page.get_by_label("I have read the notice above").is_visible()


def test_a_bad_email_is_shown_beside_the_field_with_values_kept(
    page: Any, tmp_path: Path, make_server: Any
) -> None:
    server = make_server(make_settings(tmp_path))
    resume = tmp_path / "cv.pdf"
    resume.write_bytes(samples.pdf())
    page.goto(server.url + "/")
    page.get_by_label("First name").fill("Jane")
    page.get_by_label("Last name").fill("Doe")
    page.get_by_label("Email").fill("jane-at-example")
    page.get_by_label("Resume").set_input_files(str(resume))
    page.get_by_role("button", name="Send").click()
    page.wait_for_selector("#email-error")
    assert "email is not valid" in page.locator("#email-error").inner_text()
    assert page.get_by_label("First name").input_value() == "Jane"
    assert page.get_by_label("Email").input_value() == "jane-at-example"
    assert page.get_by_label("Email").get_attribute("aria-invalid") == "true"
    page.screenshot(path=str(tmp_path / "errors.png"))
    import os

    if os.environ.get("LEADS_TEST_SCREENSHOTS"):
        page.screenshot(path=os.environ["LEADS_TEST_SCREENSHOTS"] + "/errors.png", full_page=True)
