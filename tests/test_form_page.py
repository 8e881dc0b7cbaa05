"""The public HTML form: works without JavaScript, labelled, errors beside fields, values kept."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from intake import create_app
from leadctl.models import Lead
from leadctl.settings import Settings
from tests import samples


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:  # type: ignore[type-arg]
    # Consent has its own tests (test_consent.py): here it is not asked.
    with TestClient(create_app(settings.replace(require_consent=False), run_worker=False)) as c:
        yield c


def test_the_form_is_plain_accessible_html(client: TestClient) -> None:  # type: ignore[type-arg]
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "<script" not in html
    assert 'enctype="multipart/form-data"' in html
    for field in ("first_name", "last_name", "email", "resume"):
        assert f'<label for="{field}">' in html
        assert f'id="{field}" name="{field}"' in html
    assert re.search(r'type="file" accept="[^"]*\.pdf[^"]*\.docx', html)


def _post(client: TestClient, **fields: str) -> object:  # type: ignore[type-arg]
    data = {"first_name": "Jane", "last_name": "Doe", "email": "jane@example.com", **fields}
    return client.post(
        "/", data=data, files={"resume": ("cv.pdf", samples.pdf(), "application/pdf")}
    )


def test_submitting_shows_the_reference(client: TestClient) -> None:  # type: ignore[type-arg]
    response = _post(client, first_name="Zoë")
    assert response.status_code == 201  # type: ignore[attr-defined]
    reference = Lead.get().reference
    assert reference in response.text  # type: ignore[attr-defined]
    assert "Thank you, Zoë" in response.text  # type: ignore[attr-defined]


def test_errors_sit_next_to_their_fields_and_values_are_kept(client: TestClient) -> None:  # type: ignore[type-arg]
    response = _post(client, email="jane-at-example", last_name="<script>alert(1)</script>")
    assert response.status_code == 422  # type: ignore[attr-defined]
    html = response.text  # type: ignore[attr-defined]
    assert 'id="email-error"' in html and "email is not valid" in html
    assert 'value="jane-at-example"' in html
    assert 'value="Jane"' in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'aria-invalid="true"' in html
    assert "choose the file again" in html
    assert Lead.select().count() == 0


def test_a_wrong_file_is_reported_beside_the_file_field(client: TestClient) -> None:  # type: ignore[type-arg]
    data = {"first_name": "Jane", "last_name": "Doe", "email": "jane@example.com"}
    response = client.post(
        "/", data=data, files={"resume": ("cv.pdf", samples.text(), "application/pdf")}
    )
    assert response.status_code == 415
    assert 'id="resume-error"' in response.text


def _client_with(settings: Settings) -> TestClient:  # type: ignore[type-arg]
    return TestClient(create_app(settings.replace(require_consent=False), run_worker=False))


def test_the_form_states_the_size_limit_and_the_accepted_types(settings: Settings) -> None:
    with _client_with(settings.replace(max_resume_mb=2.5)) as client:
        hint = re.search(r'<p class="hint" id="resume-hint">(.*?)</p>', client.get("/").text)
    assert hint is not None
    assert hint.group(1) == (
        "PDF, Word (DOCX or DOC), OpenDocument text, RTF or plain text; at most 2.5 MB."
    )


def test_each_text_field_stops_where_the_server_would_refuse(client: TestClient) -> None:  # type: ignore[type-arg]
    page = client.get("/").text
    lengths = dict(
        re.findall(
            r'<input id="(\w+)" name="\w+" type="\w+" autocomplete="[\w-]+" maxlength="(\d+)"', page
        )
    )
    assert lengths == {"first_name": "100", "last_name": "100", "email": "320"}


@pytest.mark.parametrize("size", [60_000, 400_000], ids=["over the limit", "announced too big"])
def test_a_413_page_keeps_the_values_typed(settings: Settings, size: int) -> None:
    """The fields come before the file: a resume over the limit (whether its Content-Length
    said so up front or not) is refused with the form again, the typed values in it."""
    with _client_with(settings.replace(max_resume_mb=0.05)) as client:
        response = client.post(
            "/",
            data={"first_name": "Zoë", "last_name": "{{ 7*7 }}", "email": "zoe@example.com"},
            files={"resume": ("cv.pdf", samples.pdf(size), "application/pdf")},
        )
    assert response.status_code == 413
    html = response.text
    assert 'value="Zoë"' in html and 'value="{{ 7*7 }}"' in html
    assert 'value="zoe@example.com"' in html
    assert 'id="resume-error"' in html and "larger than 51 KB" in html
    assert Lead.select().count() == 0


def test_a_resume_under_16_bytes_is_too_small_not_the_wrong_type(client: TestClient) -> None:  # type: ignore[type-arg]
    data = {"first_name": "Jane", "last_name": "Doe", "email": "jane@example.com"}
    page = client.post("/", data=data, files={"resume": ("cv.txt", b"hello", "text/plain")})
    assert page.status_code == 422
    assert "too small to be a document" in page.text and "must be a PDF" not in page.text
    api = client.post(
        "/api/v1/leads", data=data, files={"resume": ("cv.txt", b"hello", "text/plain")}
    )
    assert api.status_code == 422
    assert api.json()["errors"] == [
        {
            "field": "resume",
            "message": "the resume file is too small to be a document (under 16 bytes)",
        }
    ]


def test_what_a_person_types_stays_text_on_every_page(client: TestClient) -> None:  # type: ignore[type-arg]
    response = _post(client, first_name="{{ 7*7 }}", last_name="{% raw %}<b>x</b>")
    assert response.status_code == 201  # type: ignore[attr-defined]
    assert "Thank you, {{ 7*7 }}" in response.text  # type: ignore[attr-defined]
    assert "49" not in response.text  # type: ignore[attr-defined]


def test_an_error_that_belongs_to_no_field_of_the_page_is_shown_at_the_top(
    client: TestClient,
) -> None:  # type: ignore[type-arg]
    response = _post(client, resume_url="https://example.com/cv.pdf")
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert 'id="form-error"' in response.text  # type: ignore[attr-defined]
    assert "resume_url: send either a resume file or a resume_url" in response.text  # type: ignore[attr-defined]
