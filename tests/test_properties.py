"""Property-based: any text in any field, any bytes as the resume — never a 500, never half a lead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from litestar.testing import TestClient

from intake import create_app
from leadctl.models import Event, Lead, OutboxMessage, Resume
from leadctl.timeutil import iso
from tests import samples
from tests.conftest import make_settings

ALLOWED = {201, 400, 413, 415, 422}
EXAMPLES = 200

text = st.text(max_size=120) | st.sampled_from(
    ["", " ", "Zoë", "李雷", "a\r\nBcc: x@y.z", "\x00", "x" * 101]
)
raw = st.binary(max_size=200)
resume = st.sampled_from(
    [samples.pdf(), samples.docx(), samples.text(), samples.polyglot()]
) | st.binary(max_size=4000)
field_value = text.map(lambda t: t.encode("utf-8", "surrogatepass")) | raw
# Valid values often enough that stored leads are exercised too, not only refusals.
name = st.sampled_from([b"Jane", "Zoë".encode(), "李雷".encode(), b"O'Brien-Smith"]) | field_value
email = (
    st.sampled_from([b"jane@example.com", "zoë@exämple.com".encode()])
    | st.emails().map(str.encode)
    | field_value
)


def _consistent() -> tuple[int, int]:
    """Every lead has its resume, its first event, one notification, and a confirmation or the
    event saying why none was sent (one per address per hour)."""
    leads = Lead.select().count()
    assert Resume.select().count() == leads
    assert Event.select().where(Event.kind == "submitted").count() == leads
    assert OutboxMessage.select().where(OutboxMessage.purpose == "notification").count() == leads
    confirmations = OutboxMessage.select().where(OutboxMessage.purpose == "confirmation").count()
    skipped = Event.select().where(Event.kind == "confirmation_skipped").count()
    assert confirmations + skipped == leads
    return leads, OutboxMessage.select().count()


def test_any_input_is_answered_without_a_500_and_never_half_stored(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with TestClient(create_app(settings, run_worker=False)) as client:
        seen: dict[int, int] = {}

        @hsettings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(
            first=name,
            last=name,
            email=email,
            data=resume,
            filename=st.text(max_size=40),
            declared=st.sampled_from(
                ["application/pdf", "text/plain", "application/octet-stream", "image/png"]
            ),
        )
        def check(
            first: bytes, last: bytes, email: bytes, data: bytes, filename: str, declared: str
        ) -> None:
            before, _ = _consistent()
            files = {
                "first_name": (None, first),
                "last_name": (None, last),
                "email": (None, email),
                "resume": (filename or "cv", data, declared),
            }
            response = client.post("/api/v1/leads", files=files)
            assert response.status_code in ALLOWED, (response.status_code, response.text)
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            after, _ = _consistent()
            if response.status_code == 201:
                assert after in (before, before + 1)  # a replayed double click adds nothing
                assert Lead.get(Lead.reference == response.json()["reference"])
            else:
                assert response.json()["errors"] and after == before

        check()
    assert sum(seen.values()) == EXAMPLES
    print(f"\nhypothesis: {EXAMPLES} examples, answers {dict(sorted(seen.items()))}")


def test_any_bytes_in_the_body_are_answered_without_a_500(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with TestClient(create_app(settings, run_worker=False)) as client:

        @hsettings(max_examples=EXAMPLES, deadline=None, database=None)
        @given(
            body=st.binary(max_size=2000),
            boundary=st.text(alphabet="abcxyz-_=0123456789", min_size=0, max_size=80),
            kind=st.sampled_from(
                [
                    "multipart/form-data",
                    "application/json",
                    "text/plain",
                    "application/x-www-form-urlencoded",
                ]
            ),
        )
        def check(body: bytes, boundary: str, kind: str) -> None:
            content_type = f"{kind}; boundary={boundary}" if boundary else kind
            response = client.post(
                "/api/v1/leads", content=body, headers={"Content-Type": content_type}
            )
            assert response.status_code in ALLOWED, (response.status_code, response.text)
            assert Lead.select().count() == 0

        check()


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 1),
        max_value=datetime(9999, 12, 31),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5, minutes=-30))]),
    )
)
def test_a_stored_timestamp_renders_as_the_datetime_would(moment: datetime) -> None:
    field = Lead.created_at
    assert field.iso(field.db_value(moment)) == iso(moment)  # SQLite's text
    assert field.iso(moment.astimezone(UTC).replace(tzinfo=None)) == iso(moment)  # PostgreSQL's
    assert field.iso(None) is None
