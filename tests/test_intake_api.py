"""POST /api/v1/leads through the Litestar test client: every row of the validation table."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from intake import create_app
from leadctl.models import Event, Lead, OutboxMessage, Resume
from leadctl.settings import Settings
from tests import samples
from tests.conftest import submit


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:  # type: ignore[type-arg]
    # Consent has its own tests (test_consent.py): here it is not asked.
    with TestClient(create_app(settings.replace(require_consent=False), run_worker=False)) as c:
        yield c


def _nothing_stored() -> bool:
    return Lead.select().count() == Event.select().count() == OutboxMessage.select().count() == 0


def test_a_valid_submission_answers_201_without_the_internal_id(client: TestClient) -> None:  # type: ignore[type-arg]
    response = submit(client, first="Zoë", last="Ñúñez", email="Zoe@Example.COM")
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"reference", "state", "created_at"}
    assert body["state"] == "PENDING"
    assert body["created_at"].endswith("Z")
    lead = Lead.get(Lead.reference == body["reference"])
    assert (lead.first_name, lead.last_name, lead.email) == ("Zoë", "Ñúñez", "Zoe@example.com")
    assert OutboxMessage.select().where(OutboxMessage.lead == lead.id).count() == 2


def _fields(response) -> list[str | None]:  # type: ignore[no-untyped-def]
    return [e["field"] for e in response.json()["errors"]]


@pytest.mark.parametrize(
    ("kwargs", "fields"),
    [
        ({"first": ""}, ["first_name"]),
        ({"last": "   "}, ["last_name"]),
        ({"first": "x" * 101}, ["first_name"]),
        ({"first": "Jane\r\nBcc: victim@example.com"}, ["first_name"]),
        ({"last": "Doe\x00"}, ["last_name"]),
        ({"email": "not-an-email"}, ["email"]),
        ({"email": "Jane <jane@example.com>"}, ["email"]),
        ({"first": "", "last": "", "email": ""}, ["first_name", "last_name", "email"]),
        ({"resume": b""}, ["resume"]),
        ({"first": "", "resume": samples.text(), "filename": "cv.pdf"}, ["first_name", "resume"]),
    ],
)
def test_invalid_fields_answer_422_naming_each(
    client: TestClient, kwargs: dict, fields: list[str]
) -> None:  # type: ignore[type-arg]
    response = submit(client, **kwargs)
    assert response.status_code == 422, response.text
    assert _fields(response) == fields
    assert all(e["message"] for e in response.json()["errors"])
    assert _nothing_stored()


def test_missing_parts_answer_422(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.post("/api/v1/leads", files={"first_name": (None, "Jane")})
    assert response.status_code == 422
    assert _fields(response) == ["last_name", "email", "resume"]


def test_invalid_utf8_in_a_text_field_answers_422(client: TestClient) -> None:  # type: ignore[type-arg]
    files = {
        "first_name": (None, b"\xff\xfe\xfa"),
        "last_name": (None, "Doe"),
        "email": (None, "jane@example.com"),
        "resume": ("cv.pdf", samples.pdf(), "application/pdf"),
    }
    response = client.post("/api/v1/leads", files=files)
    assert response.status_code == 422
    assert _fields(response) == ["first_name"]


@pytest.mark.parametrize(
    ("data", "filename", "declared"),
    [
        (samples.text(), "cv.pdf", "application/pdf"),
        (
            samples.zip_not_docx(),
            "cv.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "photo.png", "image/png"),
        (b"\x00\xff" * 100, "cv", "application/octet-stream"),
    ],
)
def test_unaccepted_resume_content_answers_415(
    client: TestClient, data: bytes, filename: str, declared: str
) -> None:  # type: ignore[type-arg]
    response = submit(client, resume=data, filename=filename, content_type=declared)
    assert response.status_code == 415, response.text
    assert response.json()["code"] == "unsupported_resume"
    assert _fields(response) == ["resume"]
    assert _nothing_stored()


def test_a_real_pdf_sent_as_octet_stream_is_accepted(client: TestClient) -> None:  # type: ignore[type-arg]
    response = submit(client, filename="resume", content_type="application/octet-stream")
    assert response.status_code == 201
    resume = Resume.get()
    assert (resume.content_type, resume.filename) == ("application/pdf", "resume.pdf")


@pytest.mark.parametrize(
    "data", [samples.docx(), samples.odt(), samples.doc(), samples.rtf(), samples.text()]
)
def test_every_accepted_type(client: TestClient, data: bytes) -> None:  # type: ignore[type-arg]
    assert (
        submit(
            client, resume=data, filename="cv", content_type="application/octet-stream"
        ).status_code
        == 201
    )


def test_ten_mib_is_accepted_and_one_byte_more_is_413(client: TestClient) -> None:  # type: ignore[type-arg]
    limit = 10 * 1024 * 1024
    ok = submit(client, resume=samples.pdf(limit))
    assert ok.status_code == 201, ok.text
    assert Resume.get().size == limit
    too_big = submit(client, resume=samples.pdf(limit + 1), email="other@example.com")
    assert too_big.status_code == 413
    assert _fields(too_big) == ["resume"]
    assert Lead.select().count() == 1
    assert client.get("/health").json() == {"status": "ok"}


def test_an_announced_huge_body_is_refused_before_reading(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.post(
        "/api/v1/leads",
        content=b"x" * 10,
        headers={
            "Content-Type": "multipart/form-data; boundary=abc",
            "Content-Length": str(50 * 1024 * 1024),
        },
    )
    assert response.status_code in (400, 413)


def test_an_oversized_text_field_is_413(client: TestClient) -> None:  # type: ignore[type-arg]
    response = submit(client, first="x" * (64 * 1024))
    assert response.status_code == 413
    assert _fields(response) == ["first_name"]


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"first_name": "Jane"}', "application/json", 415),
        (b"first_name=Jane", "application/x-www-form-urlencoded", 415),
        (b"garbage", "multipart/form-data", 400),
        (b"garbage without boundary markers", "multipart/form-data; boundary=xyz", 400),
        (
            b'--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\nunterminated',
            "multipart/form-data; boundary=xyz",
            400,
        ),
        (b"\x00\x01\x02" * 100, "multipart/form-data; boundary=xyz", 400),
        (b"", "text/plain", 415),
    ],
)
def test_malformed_requests_are_4xx_never_500(
    client: TestClient, content: bytes, content_type: str, status: int
) -> None:  # type: ignore[type-arg]
    response = client.post("/api/v1/leads", content=content, headers={"Content-Type": content_type})
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["message"]
    # The body's own type is not the resume's: a client branching on the code learns which.
    code = {400: "bad_request", 415: "unsupported_media_type"}[status]
    assert response.json()["code"] == code
    assert _nothing_stored()


def test_many_files_or_parts_are_refused(client: TestClient) -> None:  # type: ignore[type-arg]
    files = [("resume", (f"cv{i}.pdf", samples.pdf(), "application/pdf")) for i in range(100)]
    response = client.post(
        "/api/v1/leads",
        data={"first_name": "J", "last_name": "D", "email": "j@example.com"},
        files=files,
    )
    assert response.status_code == 400
    body = (
        b"".join(
            b'--b\r\nContent-Disposition: form-data; name="p%d"\r\n\r\nx\r\n' % i
            for i in range(10_000)
        )
        + b"--b--\r\n"
    )
    response = client.post(
        "/api/v1/leads", content=body, headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 400
    assert "too many parts" in response.json()["errors"][0]["message"]
    assert _nothing_stored()


def test_health_and_openapi(client: TestClient) -> None:  # type: ignore[type-arg]
    assert client.get("/health").json() == {"status": "ok"}
    schema = client.get("/schema/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "post" in paths["/api/v1/leads"] and "get" in paths["/health"]


def test_health_is_503_when_the_database_does_not_answer(tmp_path, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    from leadctl import db

    with TestClient(create_app(settings, run_worker=False)) as c:
        db.bind(f"sqlite:///{tmp_path}/missing-dir/x.db")
        response = c.get("/health")
        assert response.status_code == 503
        assert response.headers["retry-after"]


def test_unknown_route_is_a_json_404(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("kwargs", "status", "field"),
    [
        ({"first": "x" * 10_000}, 422, "first_name"),
        ({"first": "Jane\r\nBcc: everyone@example.com"}, 422, "first_name"),
        ({"resume": b"a", "filename": "cv.txt", "content_type": "text/plain"}, 422, "resume"),
        ({"resume": samples.polyglot()}, 415, "resume"),
        ({"resume": samples.zip_not_docx(), "filename": "cv.docx"}, 415, "resume"),
    ],
)
def test_hostile_cases(client: TestClient, kwargs: dict, status: int, field: str) -> None:  # type: ignore[type-arg]
    response = submit(client, **kwargs)
    assert response.status_code == status
    assert _fields(response) == [field]
    assert _nothing_stored()


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "<script>alert(1)</script>.pdf", "..\\..\\boot.ini"]
)
def test_hostile_file_names_are_stored_safely_and_shown_escaped(
    client: TestClient, name: str
) -> None:  # type: ignore[type-arg]
    response = submit(client, filename=name, email="h@example.com")
    assert response.status_code == 201
    stored = Resume.get().filename
    assert "/" not in stored and "\\" not in stored and "<" not in stored and ".." not in stored
    notification = OutboxMessage.get(OutboxMessage.purpose == "notification")
    assert "<script>" not in notification.body_html and "<script>" not in notification.body_text
