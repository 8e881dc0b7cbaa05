"""A resume given as a link (`resume_url`): https only, at most 2,048 characters, exactly one of
file and link, stored on the lead and never fetched; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from intake import create_app
from leadctl import db
from leadctl.models import Event, Lead, OutboxMessage, Resume, database
from leadctl.settings import Settings
from leadctl.validation import check_resume_url
from tests import samples
from tests.conftest import make_settings

FIELDS = {"first_name": "Zoë", "last_name": "Ñúñez", "email": "zoe@example.com"}
LINK = "https://drive.example.com/file/d/1a2B3c/view?usp=sharing#page=2"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:  # type: ignore[type-arg]
    with TestClient(
        create_app(make_settings(tmp_path, require_consent=False), run_worker=False)
    ) as c:
        yield c


def _multipart(data: dict[str, str]) -> dict[str, Any]:
    boundary = "leadctl-test-boundary"
    body = (
        b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode("utf-8", "surrogateescape")
            + b"\r\n"
            for name, value in data.items()
        )
        + f"--{boundary}--\r\n".encode()
    )
    return {
        "content": body,
        "headers": {"Content-Type": f"multipart/form-data; boundary={boundary}"},
    }


def _post_fields(client: Any, data: dict[str, str]) -> Any:
    return client.post("/api/v1/leads", **_multipart(data))


def test_a_link_instead_of_a_file_is_stored_on_the_lead(
    tmp_path: Path, make_server: Any, db_url: str
) -> None:
    """Through the real server: no resume row, the link on the lead and in the notification, a
    double click with the same link makes one lead. (Nothing in leadctl opens the link.)"""
    settings = make_settings(tmp_path, db_url, require_consent=True)
    server = make_server(settings)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            answer = _post_fields(http, {**FIELDS, "resume_url": LINK, "consent": "true"})
            assert answer.status_code == 201, answer.text
            again = _post_fields(
                http, {**FIELDS, "email": "ZOE@example.com", "resume_url": LINK, "consent": "1"}
            )
            assert again.json()["reference"] == answer.json()["reference"]  # a double click
        db.bind(settings.database_url)
        lead = Lead.get()
        assert lead.resume_url == LINK and lead.consent_at is not None
        assert Resume.select().count() == 0
        submitted = Event.get((Event.lead == lead.id) & (Event.kind == "submitted"))
        assert submitted.details == {"resume_url": LINK}
        note = OutboxMessage.get(OutboxMessage.purpose == "notification")
        assert f"a link, not fetched by the server: {LINK}" in note.body_text
        assert LINK.replace("&", "&amp;") in note.body_html
    finally:
        database.obj.close()


@pytest.mark.parametrize(
    ("link", "message"),
    [
        ("javascript:alert(1)", "must start with https://"),
        ("http://example.com/cv.pdf", "must start with https://"),
        ("https://example.com/" + "a" * 2029, "at most 2,048 characters (got 2,049)"),
        ("https://example.com/cv\x00.pdf", "no spaces, quotes"),
        ("https://example.com/cv\r\nX: y", "no spaces, quotes"),
        ('https://x.example"onmouseover=alert(1)', "no spaces, quotes"),
        ("https://example.com/<script>", "no spaces, quotes"),
        ("https://exämple.com/cv.pdf", "non-ASCII"),
        ("https://example.com/\u202efdp.exe", "non-ASCII"),
        ("https://user:pw@example.com/cv.pdf", "user name or password"),
        ("https://example.com@evil.example/cv.pdf", "user name or password"),
        ("https://127.0.0.1/cv.pdf", "public host"),
        ("https://[::1]/cv.pdf", "public host"),
        ("https://localhost/cv.pdf", "public host"),
        ("https://example.com:99999/cv.pdf", "not a valid link"),
        ("https:///cv.pdf", "public host"),
    ],
)
def test_a_hostile_link_is_422_naming_resume_url(
    client: TestClient,  # type: ignore[type-arg]
    link: str,
    message: str,
) -> None:
    answer = _post_fields(client, {**FIELDS, "resume_url": link})
    assert answer.status_code == 422
    (error,) = answer.json()["errors"]
    assert error["field"] == "resume_url" and message in error["message"]
    assert Lead.select().count() == 0


def test_exactly_2048_characters_is_accepted() -> None:
    link = "https://example.com/" + "a" * 2028
    assert len(link) == 2048 and check_resume_url(link) == link


def test_a_file_and_a_link_together_or_neither_is_422(client: TestClient) -> None:  # type: ignore[type-arg]
    both = client.post(
        "/api/v1/leads",
        data={**FIELDS, "resume_url": LINK},
        files={"resume": ("cv.pdf", samples.pdf(), "application/pdf")},
    )
    assert both.status_code == 422
    assert [e["field"] for e in both.json()["errors"]] == ["resume_url"]
    neither = _post_fields(client, FIELDS)
    assert neither.status_code == 422
    assert neither.json()["errors"] == [
        {"field": "resume", "message": "a resume file is required (or a resume_url)"}
    ]
    empty = _post_fields(client, {**FIELDS, "resume_url": "  "})  # an empty field is no link
    assert [e["field"] for e in empty.json()["errors"]] == ["resume"]
    assert Lead.select().count() == 0


def test_the_same_link_with_an_idempotency_key_replays_and_another_body_conflicts(
    client: TestClient,  # type: ignore[type-arg]
) -> None:
    headers = {"Idempotency-Key": "link-1"}
    first = client.post(
        "/api/v1/leads", **_with_headers(_multipart({**FIELDS, "resume_url": LINK}), headers)
    )
    again = client.post(
        "/api/v1/leads", **_with_headers(_multipart({**FIELDS, "resume_url": LINK}), headers)
    )
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    other = client.post(
        "/api/v1/leads",
        **_with_headers(_multipart({**FIELDS, "resume_url": LINK + "x"}), headers),
    )
    assert other.status_code == 409
    assert Lead.select().count() == 1


def _with_headers(request: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    return {**request, "headers": {**request["headers"], **headers}}


def test_a_released_link_lead_is_notified_with_its_link(tmp_path: Path) -> None:
    from leadctl import submissions
    from leadctl.resumes import ResumeLink
    from leadctl.schema import ensure_schema
    from leadctl.validation import check_prospect

    settings: Settings = make_settings(tmp_path)
    db.bind(settings.database_url)
    ensure_schema()
    try:
        held = submissions.submit(
            check_prospect("Zoë", "Ñúñez", "zoe@example.com"),
            ResumeLink(LINK),
            settings,
            quarantine_reason="test",
        )
        assert OutboxMessage.select().count() == 0
        submissions.release(held.lead.id, "ann@firm.example", settings)
        note = OutboxMessage.get(OutboxMessage.purpose == "notification")
        assert LINK in note.body_text
    finally:
        database.obj.close()
