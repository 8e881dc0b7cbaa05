"""End to end: a real `leadctl serve` under uvicorn, real multipart uploads with httpx and curl."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import samples
from tests.conftest import make_settings

pytestmark = pytest.mark.e2e


def _count(db_file: Path, table: str) -> int:
    with sqlite3.connect(db_file) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_upload_with_curl_and_read_it_back(tmp_path: Path, make_server: Any) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    server = make_server(make_settings(tmp_path))
    resume = tmp_path / "Zoë CV.pdf"
    resume.write_bytes(samples.pdf(200_000))
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "-w",
            "\n%{http_code}",
            "-F",
            "first_name=Zoë",
            "-F",
            "last_name=Ñúñez",
            "-F",
            "email=zoe@example.com",
            "-F",
            "consent=true",
            "-F",
            f"resume=@{resume}",
            f"{server.url}/api/v1/leads",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    body, status = out.stdout.rsplit("\n", 1)
    assert status == "201", body
    with sqlite3.connect(tmp_path / "leads.db") as conn:
        name, size = conn.execute(
            "SELECT l.first_name, r.size FROM lead l JOIN resume r ON r.lead_id = l.id"
        ).fetchone()
    assert (name, size) == ("Zoë", 200_000)
    log = server.wait_log("POST /api/v1/leads 201")
    assert "POST /api/v1/leads 201" in log
    assert '"reference"' not in log and "%PDF" not in log


def test_fifty_simultaneous_submissions(tmp_path: Path, make_server: Any) -> None:
    server = make_server(make_settings(tmp_path))
    pdf = samples.pdf(20_000)

    async def one(client: httpx.AsyncClient, i: int) -> httpx.Response:
        return await client.post(
            f"{server.url}/api/v1/leads",
            data={
                "first_name": f"P{i}",
                "last_name": "Load",
                "email": f"p{i}@example.com",
                "consent": "true",
            },
            files={"resume": ("cv.pdf", pdf, "application/pdf")},
        )

    async def all_of_them() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            return await asyncio.gather(*(one(client, i) for i in range(50)))

    responses = asyncio.run(all_of_them())
    assert [r.status_code for r in responses] == [201] * 50, [
        r.text for r in responses if r.status_code != 201
    ]
    references = {r.json()["reference"] for r in responses}
    assert len(references) == 50
    db_file = tmp_path / "leads.db"
    assert _count(db_file, "lead") == 50
    assert _count(db_file, "resume") == 50
    assert _count(db_file, "outbox_message") == 100
    assert "database is locked" not in server.log.read_text()


def test_limit_edges_leave_the_server_healthy(tmp_path: Path, make_server: Any) -> None:
    server = make_server(make_settings(tmp_path))
    limit = 10 * 1024 * 1024
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for size, status in ((limit, 201), (limit + 1, 413), (limit * 3, 413)):
            response = client.post(
                "/api/v1/leads",
                data={
                    "first_name": "Big",
                    "last_name": "File",
                    "email": f"s{size}@example.com",
                    "consent": "true",
                },
                files={"resume": ("cv.pdf", samples.pdf(size), "application/pdf")},
            )
            assert response.status_code == status
        assert client.get("/health").json() == {"status": "ok"}
    assert _count(tmp_path / "leads.db", "lead") == 1


def test_the_server_delivers_mail_as_eml_files_by_default(tmp_path: Path, make_server: Any) -> None:
    import time
    from email import message_from_bytes, policy

    server = make_server(make_settings(tmp_path))
    response = httpx.post(
        f"{server.url}/api/v1/leads",
        data={"first_name": "李", "last_name": "雷", "email": "li@example.com", "consent": "true"},
        files={"resume": ("cv.pdf", samples.pdf(), "application/pdf")},
    )
    reference = response.json()["reference"]
    deadline = time.monotonic() + 5
    files: list[Path] = []
    while time.monotonic() < deadline and len(files) < 2:
        files = sorted((tmp_path / "mail").glob("*.eml"))
        time.sleep(0.05)
    assert len(files) == 2
    parsed = [message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
    assert {m["To"] for m in parsed} == {"li@example.com", "intake@localhost"}
    assert all(reference in m["Subject"] for m in parsed)


def test_the_attorneys_notification_has_what_they_need_to_act(
    tmp_path: Path, make_server: Any, db_url: str
) -> None:
    """A returning prospect (another case of the address) goes to the same attorney; the
    notification says who, when, the resume, the consent, the earlier leads and the possible
    conflicts (recorded as a `conflicts_found` event), and never tells the prospect of them."""
    from leadctl import attorneys, db, parties
    from leadctl.models import Event, Lead, OutboxMessage, database

    settings = make_settings(tmp_path, db_url, require_consent=True)
    server = make_server(settings)
    db.bind(settings.database_url)
    try:
        attorneys.add("Ann Lee", "ann@firm.example")
        attorneys.add("Bob Roe", "bob@firm.example")
        parties.import_rows(parties.parse(b"name,role,matter\nAcme Holdings LLC,adverse,A v B\n"))
        database.obj.close()

        def send(first: str, last: str, email: str, size: int) -> str:
            answer = httpx.post(
                f"{server.url}/api/v1/leads",
                data={"first_name": first, "last_name": last, "email": email, "consent": "true"},
                files={"resume": ("Zoë CV.pdf", samples.pdf(size), "application/pdf")},
                timeout=30,
            )
            assert answer.status_code == 201, answer.text
            return str(answer.json()["reference"])

        first = send("Zoë", "Ñúñez", "zoe@example.com", 3000)
        second = send("Zoe", "Nunez", "ZOE@Example.com", 4000)
        third = send("Acme", "Holdings", "legal@acme.example", 5000)
        earlier, lead, acme = (Lead.get(Lead.reference == r) for r in (first, second, third))
        assert earlier.attorney_id == lead.attorney_id  # returning, whatever the case
        note = OutboxMessage.get(
            (OutboxMessage.lead == lead.id) & (OutboxMessage.purpose == "notification")
        )
        assert note.recipient == "ann@firm.example"
        text = note.body_text
        for expected in (
            "You have been assigned a new lead.",
            "Name:       Zoe Nunez",
            "Email:      ZOE@example.com",
            f"Reference:  {second}",
            f"Submitted:  {lead.created_at.isoformat().replace('+00:00', 'Z')}",
            "Resume:     Zoë CV.pdf (PDF, 4,000 bytes)",
            "Consent:    given ",
            f"Returning:  yes, earlier leads {first} (lead {earlier.id}, ",
            "Possible conflicts found at intake: check them before you reply.",
            f"  - Zoë Ñúñez: lead {earlier.id} ({first}, ",
            f"  leadctl show {lead.id}",
            f"  leadctl open {lead.id}",
            f"  leadctl conflicts --lead {lead.id}",
            f"  leadctl reach-out {lead.id}",
        ):
            assert expected in text, expected
        found = Event.get((Event.lead == lead.id) & (Event.kind == "conflicts_found"))
        hits = found.details["hits"]
        assert {(h["source"], h["id"]) for h in hits} == {("lead", earlier.id)}
        assert {h["matched"] for h in hits} <= {"name", "email"}
        # The prospect hears nothing of them (the second lead's confirmation was capped: one
        # an hour per mailbox; the third's is checked below).
        assert (
            not OutboxMessage.select()
            .where((OutboxMessage.lead == lead.id) & (OutboxMessage.purpose == "confirmation"))
            .exists()
        )
        # A party of the firm's list is found too; the first lead had nothing to find.
        acme_note = OutboxMessage.get(
            (OutboxMessage.lead == acme.id) & (OutboxMessage.purpose == "notification")
        )
        assert (
            "  - Acme Holdings LLC: adverse, matter A v B; matched by name" in acme_note.body_text
        )
        assert (
            not Event.select()
            .where((Event.lead == earlier.id) & (Event.kind == "conflicts_found"))
            .exists()
        )
        first_note = OutboxMessage.get(
            (OutboxMessage.lead == earlier.id) & (OutboxMessage.purpose == "notification")
        )
        assert "Returning:  no earlier lead from this address" in first_note.body_text
        assert "No possible conflict was found at intake." in first_note.body_text
    finally:
        database.obj.close()


def test_the_form_keeps_the_values_when_the_server_refuses_a_large_resume(
    tmp_path: Path, make_server: Any
) -> None:
    server = make_server(make_settings(tmp_path, max_resume_mb=1))
    page = httpx.post(
        f"{server.url}/",
        data={"first_name": "Zoë", "last_name": "Ñúñez", "email": "zoe@example.com"},
        files={"resume": ("cv.pdf", samples.pdf(5 * 1024 * 1024), "application/pdf")},
        timeout=30,
    )
    assert page.status_code == 413
    assert 'value="Zoë"' in page.text and 'value="zoe@example.com"' in page.text
    assert "larger than 1 MB" in page.text
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
