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
            data={"first_name": f"P{i}", "last_name": "Load", "email": f"p{i}@example.com"},
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
                data={"first_name": "Big", "last_name": "File", "email": f"s{size}@example.com"},
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
        data={"first_name": "李", "last_name": "雷", "email": "li@example.com"},
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
