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
    with TestClient(create_app(settings, run_worker=False)) as c:
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
