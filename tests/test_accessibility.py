"""The form, its error page and the confirmation page in real Chromium: no WCAG 2.1 AA violation
under axe-core (from the npm registry), errors tied to their fields with the focus on the first,
and the whole form sent from the keyboard alone."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests import samples
from tests.conftest import IN_CI, make_settings

pytestmark = pytest.mark.e2e

AXE_VERSION = "4.14.1"
# Outside the working tree: ~/.cache/leadctl-tests/axe-core-<version>/node_modules/axe-core.
CACHE = Path(os.environ.get("LEADCTL_TEST_CACHE") or Path.home() / ".cache" / "leadctl-tests")
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture(scope="session")
def axe_script() -> str:
    """axe.min.js, installed once with npm into the cache (a lock keeps xdist workers from
    installing it twice at once)."""
    target = CACHE / f"axe-core-{AXE_VERSION}"
    script = target / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        npm = shutil.which("npm")
        if npm is None:
            if IN_CI:
                pytest.fail("npm is needed for the accessibility tests (apt-get install npm)")
            pytest.skip("no npm here to install axe-core")
        target.mkdir(parents=True, exist_ok=True)
        with (target / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not script.exists():
                package = f"axe-core@{AXE_VERSION}"
                subprocess.run(
                    [npm, "install", "--prefix", str(target), "--no-audit", "--no-fund", package],
                    check=True,
                    capture_output=True,
                    timeout=600,
                )
    return script.read_text()


def _violations(page: Any, axe_script: str) -> list[str]:
    """axe-core's WCAG 2.1 A and AA violations on the page, one line each."""
    page.evaluate(axe_script)  # through the DevTools protocol: the page's CSP still holds
    result = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})",
        WCAG_21_AA,
    )
    assert result["passes"], "axe-core ran no rule at all"
    return [
        f"{v['id']}: {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in result["violations"]
    ]


def _resume(tmp_path: Path) -> Path:
    resume = tmp_path / "cv.pdf"
    resume.write_bytes(samples.pdf(5_000))
    return resume


@pytest.mark.parametrize(
    "words",
    [{}, {"firm_name": "Lee & Roe LLP", "privacy_url": "https://firm.example/privacy"}],
    ids=["neutral", "firm"],
)
def test_the_three_pages_have_no_wcag_21_aa_violation(
    page: Any, axe_script: str, tmp_path: Path, make_server: Any, words: dict[str, str]
) -> None:
    server = make_server(make_settings(tmp_path, require_consent=True, **words))
    page.goto(server.url + "/")
    assert _violations(page, axe_script) == []
    # The error page: every field wrong at once.
    page.get_by_label("First name").fill("")
    page.get_by_label("Email").fill("jane-at-example")
    page.get_by_role("button", name="Send").click()
    page.wait_for_selector("#email-error")
    assert page.locator(".error-summary").count() == 1
    assert _violations(page, axe_script) == []
    # The confirmation page.
    page.get_by_label("First name").fill("Zoë")
    page.get_by_label("Last name").fill("Ñúñez")
    page.get_by_label("Email").fill("zoe@example.com")
    page.get_by_label("Resume").set_input_files(str(_resume(tmp_path)))
    page.get_by_label("I have read the notice above").check()
    page.get_by_role("button", name="Send").click()
    page.wait_for_selector(".reference")
    assert _violations(page, axe_script) == []


def test_each_error_is_tied_to_its_field_and_the_first_one_has_the_focus(
    page: Any, tmp_path: Path, make_server: Any
) -> None:
    server = make_server(make_settings(tmp_path, require_consent=True))
    page.goto(server.url + "/")
    page.get_by_label("First name").fill("Jane")
    page.get_by_label("Last name").fill("Doe")
    page.get_by_label("Email").fill("jane-at-example")
    page.get_by_role("button", name="Send").click()
    page.wait_for_selector("#email-error")
    # Focus moved to the first field in error (no script: `autofocus`), values kept.
    assert page.evaluate("document.activeElement.id") == "email"
    assert page.get_by_label("First name").input_value() == "Jane"
    for field in ("email", "resume", "consent"):
        described = page.locator(f"#{field}").get_attribute("aria-describedby") or ""
        assert f"{field}-error" in described.split(), field
        assert page.locator(f"#{field}").get_attribute("aria-invalid") == "true"
        assert page.locator(f"#{field}-error").inner_text()
    # The summary's links lead to the fields.
    assert page.locator('.error-summary a[href="#email"]').count() == 1


def _choose_with_space(page: Any) -> Any:
    """Space on the focused file field opens the file chooser, as for a person. On a loaded CI
    machine Chromium once let the key pass without a chooser; a person would press it again."""
    from playwright.sync_api import TimeoutError as NoChooser

    for attempt in range(3):
        try:
            with page.expect_file_chooser(timeout=10_000) as chooser:
                page.keyboard.press("Space")
            return chooser.value
        except NoChooser:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def test_the_whole_form_works_from_the_keyboard(
    page: Any, tmp_path: Path, make_server: Any
) -> None:
    server = make_server(
        make_settings(tmp_path, require_consent=True, privacy_url="https://firm.example/privacy")
    )
    resume = _resume(tmp_path)
    page.goto(server.url + "/")
    keys = page.keyboard
    order = []

    def tab() -> str:
        keys.press("Tab")
        focused: str = page.evaluate(
            "document.activeElement.id || document.activeElement.tagName.toLowerCase()"
        )
        order.append(focused)
        return focused

    assert tab() == "first_name"
    keys.type("Zoë")
    assert tab() == "last_name"
    keys.type("Ñúñez")
    assert tab() == "email"
    keys.type("zoe@example.com")
    assert tab() == "resume"
    _choose_with_space(page).set_files(str(resume))
    assert tab() == "a"  # the privacy notice's link
    assert tab() == "consent"
    keys.press("Space")
    assert page.locator("#consent").is_checked()
    focused = tab()
    assert page.evaluate("document.activeElement.textContent") == "Send", order
    assert focused == "button"
    keys.press("Enter")
    page.wait_for_selector(".reference")
    assert "Thank you, Zoë" in page.content()
    # The honeypot was never reached: it is out of the tab order.
    assert "website" not in order


def test_axe_core_does_catch_a_firm_form_without_a_label(
    page: Any, axe_script: str, tmp_path: Path, make_server: Any
) -> None:
    """The check is real: a firm's form that drops the email field's label is a violation."""
    from leadctl.rendering import SHIPPED

    folder = tmp_path / "firm" / "pages"
    folder.mkdir(parents=True)
    shipped = (SHIPPED / "pages" / "form.html").read_text()
    (folder / "form.html").write_text(
        shipped.replace('{{ fields.text("email", labels.email', '{{ fields.text("email", ""')
    )
    server = make_server(make_settings(tmp_path, templates_dir=str(tmp_path / "firm")))
    page.goto(server.url + "/")
    assert any(v.startswith("label:") for v in _violations(page, axe_script))
