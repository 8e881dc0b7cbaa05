"""Hostile uploads against a real server: bombs, huge directories, long names — bounded answers.

Each attack runs against `leadctl serve` under uvicorn while another client polls `/health`;
the server process's peak memory (VmHWM) is read before and after. `bench/upload_worst_case.py`
sends the same shapes (built here) and records their CPU, memory and `/health` latency.
"""

from __future__ import annotations

import contextlib
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadctl import resumes
from tests import samples
from tests.conftest import make_settings

MiB = 1024 * 1024
UPLOAD_LIMIT = 10 * MiB  # the default LEADS_MAX_RESUME_MB
EXTRA_MEMORY_LIMIT = 32 * MiB
ODT_MIMETYPE = resumes.ODT.encode()

# -- the malicious files --------------------------------------------------------------------------


def raw_zip(members: list[tuple[str, bytes, int, int]]) -> bytes:
    """A ZIP written by hand, so a member can declare the size its (deflated) data inflates to
    without anyone inflating it: (name, data, method, declared size) per member. CRCs are 0:
    nothing that respects the size budget ever reads to a member's end."""
    local, central = bytearray(), bytearray()
    for name, data, method, size in members:
        encoded = name.encode()
        offset = len(local)
        local += struct.pack(
            "<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, 0, len(data), size, len(encoded), 0
        )
        local += encoded + data
        central += struct.pack(
            "<4s6H3L5H2L",
            b"PK\x01\x02",
            20,
            20,
            0,
            method,
            0,
            0x21,
            0,
            len(data),
            size,
            len(encoded),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        central += encoded
    count = min(len(members), 0xFFFF)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(central), len(local), 0)
    return bytes(local + central + end)


def deflated_zeros(prefix: bytes, mib: int) -> bytes:
    """Raw deflate of `prefix` followed by `mib` MiB of zeros, in milliseconds: after a full
    flush the compressor starts afresh, so every MiB of zeros compresses to the same block."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(bytes(MiB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return head + block * mib + compressor.flush()


GIGABYTES = 4000  # MiB of zeros: about 4 MB deflated, under the 32-bit size fields


@cache
def mimetype_bomb() -> bytes:
    """An ODT whose `mimetype` member is the right text followed by 3.9 GiB of zeros."""
    data = deflated_zeros(ODT_MIMETYPE, GIGABYTES)
    size = len(ODT_MIMETYPE) + GIGABYTES * MiB
    return raw_zip([("mimetype", data, 8, size), ("content.xml", b"<x/>", 0, 4)])


@cache
def lying_mimetype_bomb() -> bytes:
    """The same bomb, its `mimetype` member declaring 39 bytes: only a bounded read is safe."""
    data = deflated_zeros(ODT_MIMETYPE, GIGABYTES)
    return raw_zip([("mimetype", data, 8, len(ODT_MIMETYPE)), ("content.xml", b"<x/>", 0, 4)])


@cache
def docx_with_huge_member() -> bytes:
    """A DOCX whose `word/document.xml` inflates to 3.9 GiB."""
    xml = b"<?xml version='1.0'?><Types/>"
    document = deflated_zeros(b"<?xml version='1.0'?><w:document>", GIGABYTES)
    return raw_zip(
        [
            ("[Content_Types].xml", xml, 0, len(xml)),
            ("word/document.xml", document, 8, 33 + GIGABYTES * MiB),
        ]
    )


@cache
def many_entries() -> bytes:
    """A DOCX whose central directory lists ~118,000 empty members in under 10 MiB."""
    names = ["[Content_Types].xml", "word/document.xml"] + [f"{i:x}" for i in range(118_000)]
    return raw_zip([(name, b"", 0, 0) for name in names])


@cache
def text_with_control_at_the_end() -> bytes:
    line = "Experience: ten years of contract law, Zoë Ñúñez, 履歴書.\n".encode()
    body = line * ((UPLOAD_LIMIT - 64) // len(line))
    return body + b"Signed\x1b[2J\n"


@cache
def non_latin_text() -> bytes:
    """10 MiB of valid UTF-8: CJK, Cyrillic, and astral characters (4 bytes each)."""
    line = "履歴書 経験十年 Юрист 𝒜𝒷𝒸 😀 ٱلْعَرَبِيَّة\n".encode()
    return line * ((UPLOAD_LIMIT - 1024) // len(line))


@cache
def c2_dense_text() -> bytes:
    """10 MiB where every other character is U+00A0 or U+00A9 (0xC2 0xA0, 0xC2 0xA9): the
    densest near miss for the C1 control search."""
    line = "a\u00a0b\u00a9 履\u00a0\n".encode()
    return line * ((UPLOAD_LIMIT - 1024) // len(line))


@cache
def ole2_zeros() -> bytes:
    """An OLE2 header and 10 MiB of zeros: the slowest haystack for the WordDocument search."""
    return samples.OLE2 + bytes(UPLOAD_LIMIT - 1024)


@dataclass(frozen=True)
class Shape:
    """One hostile upload and the answer it must get."""

    name: str
    build: Callable[[], bytes]
    filename: str
    status: int
    message: str  # a part of the resume field's message ("" for a 201)


SHAPES = [
    Shape("mimetype bomb", mimetype_bomb, "cv.odt", 415, "expand to more than 1 GiB"),
    Shape("lying mimetype bomb", lying_mimetype_bomb, "cv.odt", 415, "must be a PDF"),
    Shape("DOCX, huge member", docx_with_huge_member, "cv.docx", 415, "expand to more than 1 GiB"),
    Shape("118k-entry directory", many_entries, "cv.docx", 415, "directory is larger than"),
    Shape(
        "10 MiB text, control byte at end",
        text_with_control_at_the_end,
        "cv.txt",
        415,
        "must be a PDF",
    ),
    Shape("10 MiB OLE2 of zeros", ole2_zeros, "cv.doc", 415, "must be a PDF"),
    Shape("10 MiB non-Latin text", non_latin_text, "cv.txt", 201, ""),
    Shape("10 MiB text dense in 0xC2", c2_dense_text, "cv.txt", 201, ""),
]

# -- measuring the server -------------------------------------------------------------------------


def proc_status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {key} in /proc/{pid}/status")


def start_peak_window(pid: int) -> int:
    """Reset the process's peak RSS to its current RSS where Linux lets us; the RSS in bytes.

    Peak minus this is an upper bound on what happened since, reset or not."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    return proc_status_kib(pid, "VmRSS") * 1024


def peak_bytes(pid: int) -> int:
    return proc_status_kib(pid, "VmHWM") * 1024


@dataclass
class HealthPoller:
    """Another client asking `/health` over and over while an attack runs."""

    url: str
    answers: list[tuple[int, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=15) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                status = client.get("/health").status_code
                self.answers.append((status, time.perf_counter() - started))

    @contextlib.contextmanager
    def polling(self) -> Iterator[HealthPoller]:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not self.answers and time.monotonic() < deadline:
            time.sleep(0.005)  # the first answer shows the poller is up
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(20)

    @property
    def worst_ms(self) -> float:
        return max(latency for _, latency in self.answers) * 1000


def post_resume(url: str, data: bytes, filename: str, **fields: str) -> httpx.Response:
    form = {
        "first_name": "Mallory",
        "last_name": "Attacker",
        "email": "m@example.com",
        "consent": "true",
        **fields,
    }
    with httpx.Client(base_url=url, timeout=60) as client:
        return client.post(
            "/api/v1/leads",
            data=form,
            files={"resume": (filename, data, "application/octet-stream")},
        )


def warm_up(url: str) -> None:
    """Imports and caches the first requests fill, so they are not counted as the attack's."""
    assert post_resume(url, samples.pdf(200_000), "cv.pdf").status_code == 201
    assert post_resume(url, samples.docx(), "cv.docx", email="w@example.com").status_code == 201
    assert post_resume(url, b"PK\x03\x04" + bytes(64), "cv.docx").status_code == 415


def resume_error(response: httpx.Response) -> str:
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == ["resume"], errors
    return str(errors[0]["message"])


# -- the attacks ----------------------------------------------------------------------------------


def attack(url: str, pid: int, data: bytes, filename: str) -> tuple[httpx.Response, int]:
    """Send one upload while another client polls `/health`; the answer and the extra peak."""
    rss_before = start_peak_window(pid)
    with HealthPoller(url).polling() as health:
        response = post_resume(url, data, filename)
    extra = peak_bytes(pid) - rss_before
    assert health.answers and all(status == 200 for status, _ in health.answers)
    return response, extra


REFUSED = [s for s in SHAPES if s.status != 201]


@pytest.mark.e2e
@pytest.mark.parametrize("shape", REFUSED, ids=[s.name for s in REFUSED])
def test_a_hostile_upload_is_refused_within_bounded_memory(
    shape: Shape, tmp_path: Path, make_server: Any
) -> None:
    data = shape.build()
    assert len(data) <= UPLOAD_LIMIT
    server = make_server(make_settings(tmp_path))
    warm_up(server.url)
    response, extra = attack(server.url, server.proc.pid, data, shape.filename)
    assert response.status_code == shape.status, response.text
    assert shape.message in resume_error(response)
    assert extra < EXTRA_MEMORY_LIMIT, f"{extra / MiB:.1f} MiB more at peak"


@pytest.mark.e2e
def test_checking_10_mib_of_non_latin_text_costs_no_more_memory_than_a_pdf(
    tmp_path: Path, make_server: Any
) -> None:
    """Accepted, and the text check (which reads every byte) adds little to what storing any
    10 MiB resume costs: the PDF's type is decided from its first bytes."""
    text = non_latin_text()
    server = make_server(make_settings(tmp_path))
    warm_up(server.url)
    stored_pdf, pdf_extra = attack(server.url, server.proc.pid, samples.pdf(len(text)), "cv.pdf")
    stored_text, text_extra = attack(server.url, server.proc.pid, text, "cv.txt")
    assert (stored_pdf.status_code, stored_text.status_code) == (201, 201), stored_text.text
    assert text_extra - pdf_extra < 4 * MiB, (text_extra / MiB, pdf_extra / MiB)


@pytest.mark.e2e
def test_an_accepted_10_mib_upload_stays_within_32_mib(tmp_path: Path, make_server: Any) -> None:
    server = make_server(make_settings(tmp_path))
    warm_up(server.url)
    response, extra = attack(server.url, server.proc.pid, non_latin_text(), "cv.txt")
    assert response.status_code == 201, response.text
    assert extra < EXTRA_MEMORY_LIMIT, f"{extra / MiB:.1f} MiB more at peak"


def _long_name_attacks() -> list[tuple[str, dict[str, Any], int, str | None, str]]:
    """(what, httpx files/data, status, field, part of the message)."""
    pdf = samples.pdf()
    return [
        (
            "5,000-character file name",
            {"files": {"resume": ("a" * 4996 + ".pdf", pdf)}},
            422,
            "resume",
            "the resume's file name is too long (at most 255 characters)",
        ),
        (
            "5,000 CJK characters",
            {"files": {"resume": ("履" * 4996 + ".pdf", pdf)}},
            422,
            "resume",
            "file name is too long",
        ),
        (
            "100,000-character file name",
            {"files": {"resume": ("a" * 100_000, pdf)}},
            422,
            "resume",
            "the resume's file name is too long (at most 255 characters)",
        ),
        (
            "256 characters",
            {"files": {"resume": ("a" * 252 + ".pdf", pdf)}},
            422,
            "resume",
            "at most 255 characters",
        ),
        (
            "5,000-character field name",
            {"data": {"x" * 5000: "1"}, "files": {"resume": ("cv.pdf", pdf)}},
            400,
            None,
            "a form field's name is too long (at most 100 characters)",
        ),
        (
            "a file in another field",
            {"files": {"photo": ("a" * 5000, pdf)}},
            400,
            None,
            "send exactly one file, in the 'resume' field",
        ),
    ]


@pytest.mark.e2e
def test_long_names_get_a_true_answer_naming_the_field(tmp_path: Path, make_server: Any) -> None:
    server = make_server(make_settings(tmp_path))
    fields = {
        "first_name": "Mallory",
        "last_name": "Attacker",
        "email": "m@example.com",
        "consent": "true",
    }
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for what, parts, status, field_name, message in _long_name_attacks():
            response = client.post(
                "/api/v1/leads", data={**fields, **parts.get("data", {})}, files=parts["files"]
            )
            assert response.status_code == status, (what, response.text)
            errors = response.json()["errors"]
            assert [(e["field"], message in e["message"]) for e in errors] == [
                (field_name, True)
            ], (what, errors)
        # The longest accepted name is kept, cut to the stored length.
        ok = client.post(
            "/api/v1/leads", data=fields, files={"resume": ("b" * 251 + ".pdf", samples.pdf())}
        )
        assert ok.status_code == 201, ok.text


def _raw_form(boundary: str, header: bytes) -> bytes:
    return (
        f"--{boundary}\r\n".encode()
        + header
        + b"\r\n\r\nvalue\r\n"
        + f"--{boundary}--\r\n".encode()
    )


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("header", "status", "field_name", "message"),
    [
        (
            b'Content-Disposition: form-data; name="resume"; filename="' + b"a" * 40_000 + b'.pdf"',
            422,
            "resume",
            "the resume's file name is too long (at most 255 characters)",
        ),
        (
            b'Content-Disposition: form-data; filename="' + b"a" * 40_000 + b'"; name="resume"',
            422,
            "resume",
            "the resume's file name is too long (at most 255 characters)",
        ),
        (
            b'Content-Disposition: form-data; name="first_name"; x="' + b"a" * 40_000 + b'"',
            400,
            "first_name",
            "the header of the form's first_name field is longer than 16,384 bytes",
        ),
        (
            b"X-Padding: " + b"a" * 40_000,
            400,
            None,
            "the header of the form's part is longer than 16,384 bytes",
        ),
        (
            b'Content-Disposition: form-data; name="first_name"'
            + b"".join(b"\r\nX-%d: 1" % i for i in range(9)),
            400,
            None,
            "a part of the form has more than 8 headers",
        ),
    ],
    ids=["long filename", "filename before name", "long text field header", "no name", "9 headers"],
)
def test_oversized_part_headers_get_a_true_answer(
    header: bytes,
    status: int,
    field_name: str | None,
    message: str,
    tmp_path: Path,
    make_server: Any,
) -> None:
    server = make_server(make_settings(tmp_path))
    boundary = "attackboundary"
    response = httpx.post(
        f"{server.url}/api/v1/leads",
        content=_raw_form(boundary, header),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        timeout=30,
    )
    assert response.status_code == status, response.text
    errors = response.json()["errors"]
    assert [(e["field"], e["message"]) for e in errors] == [(field_name, message)]


@pytest.mark.e2e
def test_the_html_form_names_the_resume_for_a_long_file_name(
    tmp_path: Path, make_server: Any
) -> None:
    server = make_server(make_settings(tmp_path))
    response = httpx.post(
        f"{server.url}/",
        data={"first_name": "Mallory"},
        files={"resume": ("<b>" * 2000 + ".pdf", samples.pdf())},
        timeout=30,
    )
    assert response.status_code == 422
    assert "file name is too long (at most 255 characters)" in response.text
    assert "<b><b>" not in response.text  # the name itself is not echoed into the page
