"""Sample resumes built in memory: real PDF, DOCX, ODT, DOC, RTF and text files, and impostors."""

from __future__ import annotations

import io
import zipfile

OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def pdf(size: int = 2048) -> bytes:
    """A structurally plausible PDF of exactly `size` bytes."""
    head = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
    tail = b"\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    filler = size - len(head) - len(tail)
    assert filler >= 2, "size too small for a PDF"
    body = b"%" + b"x" * (filler - 2) + b"\n"
    data = head + body + tail
    assert len(data) == size
    return data


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def docx() -> bytes:
    return _zip(
        {
            "[Content_Types].xml": b"<?xml version='1.0'?><Types/>",
            "word/document.xml": b"<?xml version='1.0'?><w:document/>",
        }
    )


def odt() -> bytes:
    return _zip(
        {
            "mimetype": b"application/vnd.oasis.opendocument.text",
            "content.xml": b"<?xml version='1.0'?><office:document-content/>",
        }
    )


def doc() -> bytes:
    return OLE2 + b"\x00" * 56 + "WordDocument".encode("utf-16-le") + b"\x00" * 64


def rtf() -> bytes:
    return b"{\\rtf1\\ansi Resume of Jane Doe\\par}"


def text() -> bytes:
    return "Jane Doe\nExperience: 10 years of contract law. Zoë\n".encode()


def zip_not_docx() -> bytes:
    return _zip({"notes.txt": b"hello"})


def polyglot() -> bytes:
    """A PDF with a ZIP archive appended: both readers accept it."""
    return pdf() + _zip({"payload.html": b"<script>alert(1)</script>"})
