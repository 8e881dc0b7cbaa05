"""Resume type is decided by content, never by name or declared type; names are made safe."""

from __future__ import annotations

import pytest

from leadctl import resumes
from leadctl.errors import ResumeTooLarge, UnsupportedResume
from tests import samples


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (samples.pdf(), resumes.PDF),
        (samples.docx(), resumes.DOCX),
        (samples.odt(), resumes.ODT),
        (samples.doc(), resumes.DOC),
        (samples.rtf(), resumes.RTF),
        (samples.text(), resumes.TEXT),
    ],
)
def test_accepted_types_are_recognised_from_bytes(data: bytes, expected: str) -> None:
    assert resumes.detect_type(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        samples.zip_not_docx(),
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 100,
        b"MZ\x90\x00" + b"\x00" * 100,
        samples.OLE2 + b"\x00" * 100,  # an OLE2 file that is not a Word document
        b"\x00\x01\x02binary",
        b"",
        b"   \n",
    ],
)
def test_other_content_is_refused(data: bytes) -> None:
    assert resumes.detect_type(data) is None


def test_a_text_file_renamed_pdf_is_refused() -> None:
    with pytest.raises(UnsupportedResume, match=r"named \.pdf but its content is not a PDF"):
        resumes.check_resume("cv.pdf", samples.text(), 10_000)


def test_a_real_pdf_is_accepted_whatever_it_is_called() -> None:
    checked = resumes.check_resume("upload.bin", samples.pdf(), 10_000)
    assert checked.content_type == resumes.PDF
    assert checked.filename == "upload.bin.pdf"


def test_rtf_saved_as_doc_is_accepted_and_keeps_its_name() -> None:
    checked = resumes.check_resume("cv.doc", samples.rtf(), 10_000)
    assert (checked.content_type, checked.filename) == (resumes.RTF, "cv.doc")


def test_size_limit_is_exact() -> None:
    data = samples.pdf(4096)
    assert resumes.check_resume("cv.pdf", data, 4096).size == 4096
    with pytest.raises(ResumeTooLarge):
        resumes.check_resume("cv.pdf", data + b"\n", 4096)


def test_sha256_is_of_the_bytes() -> None:
    import hashlib

    data = samples.pdf()
    assert resumes.check_resume("cv.pdf", data, 10_000).sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd.txt"),
        ("C:\\Users\\jane\\cv.txt", "cv.txt"),
        ("<script>alert(1)</script>.txt", "script.txt"),
        ("<b>cv</b>.txt", "b.txt"),
        ("<img onerror=x>.txt", "img onerror_x.txt"),
        ("cv\r\nX-Evil: 1.txt", "cvX-Evil_ 1.txt"),
        ("...", "resume.txt"),
        ("", "resume.txt"),
        (None, "resume.txt"),
        ("Zoë Ñúñez CV.txt", "Zoë Ñúñez CV.txt"),
    ],
)
def test_file_names_are_made_safe(name: str | None, expected: str) -> None:
    assert resumes.safe_filename(name, resumes.TEXT) == expected


def test_a_polyglot_and_a_one_byte_file_are_refused() -> None:
    assert resumes.detect_type(samples.polyglot()) is None
    assert resumes.detect_type(b"a") is None
    with pytest.raises(UnsupportedResume):
        resumes.check_resume("cv.pdf", samples.polyglot(), 1_000_000)
