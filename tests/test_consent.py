"""Disclaimer and consent: the form's box, the API's `consent=true`, and what each lead records
(the time and the SHA-256 of the exact disclaimer shown), on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from intake import create_app
from leadctl import db, rendering
from leadctl.models import Lead, OutboxMessage, database
from leadctl.settings import Settings
from tests import samples
from tests.conftest import make_settings

DISCLAIMER_BLOCK = re.compile(
    r'<section class="disclaimer" id="disclaimer">\n(.*?)</section>', re.S
)


@contextlib.contextmanager
def _client(settings: Settings) -> Iterator[TestClient]:  # type: ignore[type-arg]
    """A test client of the app (SQLite: the app and the test share the one file)."""
    with TestClient(create_app(settings, run_worker=False)) as client:
        yield client


@pytest.fixture
def consenting(tmp_path: Path) -> Iterator[tuple[TestClient, Settings]]:  # type: ignore[type-arg]
    """A test client with consent required (the default)."""
    settings = make_settings(
        tmp_path, require_consent=True, privacy_url="https://firm.example/privacy"
    )
    with _client(settings) as client:
        yield client, settings


@pytest.fixture
def live(db_url: str, tmp_path: Path, make_server: Any) -> Iterator[tuple[Any, Settings]]:
    """A real server with consent required, on SQLite and on PostgreSQL; the test reads the
    database through its own connection (closed after it)."""
    settings = make_settings(
        tmp_path, db_url, require_consent=True, privacy_url="https://firm.example/privacy"
    )
    server = make_server(settings)
    db.bind(settings.database_url)
    try:
        yield server, settings
    finally:
        database.obj.close()


def _post(client: Any, path: str = "/api/v1/leads", **fields: Any) -> Any:
    data = {"first_name": "Jane", "last_name": "Doe", "email": "jane@example.com"}
    data.update({k: v for k, v in fields.items() if v is not None})
    return client.post(
        path, data=data, files={"resume": ("cv.pdf", samples.pdf(), "application/pdf")}
    )


def _version_on_the_page(html: str) -> str:
    block = DISCLAIMER_BLOCK.search(html)
    assert block is not None, html
    return hashlib.sha256(" ".join(block.group(1).split()).encode()).hexdigest()


def test_the_api_needs_consent_and_the_lead_records_what_was_agreed(
    live: tuple[Any, Settings],
) -> None:
    server, settings = live
    client = httpx.Client(base_url=server.url, timeout=30)
    refused = _post(client)
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["consent"]
    assert refused.json()["errors"][0]["message"].startswith("must be true")
    assert Lead.select().count() == 0 and OutboxMessage.select().count() == 0
    accepted = _post(client, consent="true")
    assert accepted.status_code == 201, accepted.text
    lead = Lead.get()
    assert lead.consent_at is not None
    assert lead.consent_at == lead.created_at
    # The API's version is the form's: both hash the disclaimer the form shows.
    page = client.get("/").text
    assert lead.disclaimer_version == _version_on_the_page(page)
    assert lead.disclaimer_version == rendering.disclaimer(settings).version
    shown = client.get("/api/v1/disclaimer").json()
    assert shown["version"] == lead.disclaimer_version and shown["required"] is True
    assert rendering.disclaimer_version(shown["html"]) == shown["version"]
    assert 'href="https://firm.example/privacy"' in shown["html"]
    client.close()


@pytest.mark.parametrize("value", ["true", "TRUE", " yes ", "on", "1"])
def test_the_words_that_count_as_consent(
    consenting: tuple[TestClient, Settings],
    value: str,  # type: ignore[type-arg]
) -> None:
    client, _ = consenting
    assert _post(client, consent=value).status_code == 201


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("false", "accept the firm's disclaimer"),
        ("no", "accept the firm's disclaimer"),
        ("", "accept the firm's disclaimer"),
        ("maybe", "consent must be true or false, not 'maybe'"),
        ("true\r\nX-Injected: 1", "consent must be true or false"),
        ("\x1b[31mtrue", "consent must be true or false, not '…'"),
        ("t" * 10_000, "consent must be true or false, not '…'"),
    ],
)
def test_no_consent_or_an_unclear_one_is_422_naming_consent(
    consenting: tuple[TestClient, Settings],  # type: ignore[type-arg]
    value: str,
    message: str,
) -> None:
    client, _ = consenting
    answer = _post(client, consent=value)
    assert answer.status_code == 422
    (error,) = answer.json()["errors"]
    assert error["field"] == "consent" and message in error["message"]
    assert "\x1b" not in answer.text
    assert Lead.select().count() == 0


def test_consent_is_listed_with_the_other_failing_fields(
    consenting: tuple[TestClient, Settings],  # type: ignore[type-arg]
) -> None:
    client, _ = consenting
    answer = _post(client, first_name="", email="nope")
    assert [e["field"] for e in answer.json()["errors"]] == ["first_name", "email", "consent"]


def test_when_consent_is_not_required_a_lead_without_it_records_none(
    tmp_path: Path, make_server: Any, db_url: str
) -> None:
    settings = make_settings(tmp_path, db_url, require_consent=False)
    server = make_server(settings)
    db.bind(settings.database_url)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert _post(client).status_code == 201
            lead = Lead.get()
            assert (lead.consent_at, lead.disclaimer_version) == (None, None)
            # Given anyway, it is recorded; an unclear value is still refused.
            assert _post(client, email="two@example.com", consent="yes").status_code == 201
            assert Lead.get(Lead.email == "two@example.com").disclaimer_version is not None
            assert _post(client, email="three@example.com", consent="perhaps").status_code == 422
            # The form shows the disclaimer, without a box to tick.
            page = client.get("/").text
            assert 'id="disclaimer"' in page and 'name="consent"' not in page
    finally:
        database.obj.close()


def test_the_form_shows_the_disclaimer_and_a_required_box(
    consenting: tuple[TestClient, Settings],  # type: ignore[type-arg]
) -> None:
    client, _ = consenting
    page = client.get("/").text
    assert "no attorney–client relationship is formed" in page
    assert "do not send confidential information" in page
    assert '<a href="https://firm.example/privacy">' in page
    box = re.search(r'<input id="consent"[^>]*>', page)
    assert box is not None
    assert 'type="checkbox"' in box.group() and " required" in box.group()
    assert 'aria-describedby="disclaimer"' in box.group()
    assert '<label for="consent">' in page


def test_the_form_without_the_box_ticked_says_so_beside_it_and_keeps_the_values(
    consenting: tuple[TestClient, Settings],  # type: ignore[type-arg]
) -> None:
    client, _ = consenting
    answer = _post(client, path="/", first_name="Zoë")
    assert answer.status_code == 422
    assert 'id="consent-error"' in answer.text and "tick this box" in answer.text
    assert 'value="Zoë"' in answer.text
    box = re.search(r'<input id="consent"[^>]*>', answer.text)
    assert box is not None and "autofocus" in box.group() and 'aria-invalid="true"' in box.group()
    ticked = _post(client, path="/", consent="true")
    assert ticked.status_code == 201
    assert Lead.get().disclaimer_version == _version_on_the_page(client.get("/").text)


def test_a_ticked_box_stays_ticked_when_another_field_fails(
    consenting: tuple[TestClient, Settings],  # type: ignore[type-arg]
) -> None:
    client, _ = consenting
    answer = _post(client, path="/", email="nope", consent="true")
    assert answer.status_code == 422
    box = re.search(r'<input id="consent"[^>]*>', answer.text)
    assert box is not None and " checked" in box.group()


def test_changing_the_disclaimer_changes_the_version(tmp_path: Path) -> None:
    base = make_settings(tmp_path, require_consent=True)
    firm = tmp_path / "templates" / "partials"
    firm.mkdir(parents=True)
    (firm / "disclaimer.html").write_text(
        "<h2>Notice</h2>\n<p>Nothing you send makes you our client.</p>\n"
    )
    custom = base.replace(templates_dir=str(tmp_path / "templates"))
    assert rendering.disclaimer(custom).version != rendering.disclaimer(base).version
    # White space alone does not change it: the version is of the normalized text.
    assert rendering.disclaimer_version("<p>a  b</p>\n") == rendering.disclaimer_version(
        " <p>a b</p>"
    )
    with _client(custom) as client:
        assert "Nothing you send makes you our client." in client.get("/").text
        assert _post(client, consent="true").status_code == 201
        assert Lead.get().disclaimer_version == rendering.disclaimer(custom).version


def test_a_huge_disclaimer_stops_the_server_and_fails_the_check(tmp_path: Path) -> None:
    from leadctl import template_check
    from leadctl.rendering import TemplateError

    firm = tmp_path / "templates" / "partials"
    firm.mkdir(parents=True)
    (firm / "disclaimer.html").write_text("<p>" + "words " * 10_000 + "</p>\n")
    settings = make_settings(tmp_path, templates_dir=str(tmp_path / "templates"))
    with pytest.raises(TemplateError, match=r"disclaimer\.html: the disclaimer is 60,00\d"):
        create_app(settings, run_worker=False)
    assert any("at most 20,000" in p for p in template_check.check(settings).problems)


def test_the_openapi_document_describes_consent_and_resume_url(
    consenting: tuple[TestClient, Settings],  # type: ignore[type-arg]
) -> None:
    client, _ = consenting
    operation = client.get("/schema/openapi.json").json()["paths"]["/api/v1/leads"]["post"]
    body = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert {"consent", "resume_url", "resume"} <= set(body["properties"])
    assert body["properties"]["resume_url"]["maxLength"] == 2048
    assert "consent=true" in operation["description"]
