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


# -- bounded checks (the end-to-end attacks are in test_upload_attacks.py) ------------------------

WINDOW = resumes.SCAN_WINDOW


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("Jane\u0085Doe resume text".encode(), None),  # C1 NEXT LINE
        ("Jane\u00a0Doe\u00a9 2024 résumé".encode(), resumes.TEXT),  # 0xC2 0xA0: not a control
        (b"Jane\x0bDoe resume text", None),  # vertical tab
        (b"Jane\tDoe\r\n\x0cpage two of the resume\n", resumes.TEXT),
        (b"\xef\xbb\xbf   \n\t  \r\n   \xc2\xa0   ", None),  # a BOM and white space only
        (b"a" * (WINDOW - 1) + "\u0085".encode() + b"tail", None),  # C1 across two windows
        (b"a" * (WINDOW - 1) + "履".encode() + b"tail", resumes.TEXT),  # a character split
        (b"a" * (WINDOW - 1) + b"\xe5\x00" + b"tail", None),  # broken UTF-8 at the seam
        (b" " * (3 * WINDOW) + b"x", resumes.TEXT),  # the visible text comes late
        (b"a" * (3 * WINDOW) + b"\x7f", None),
    ],
)
def test_text_is_judged_window_by_window_as_a_whole(data: bytes, expected: str | None) -> None:
    assert resumes.detect_type(data) == expected


def test_a_word_stream_name_across_windows_is_found() -> None:
    data = samples.OLE2 + b"\x00" * (WINDOW - 20) + "WordDocument".encode("utf-16-le") + b"\x00"
    assert resumes.detect_type(data) == resumes.DOC


def _zip_declaring(size: int) -> bytes:
    from tests.test_upload_attacks import deflated_zeros, raw_zip

    document = deflated_zeros(b"<w:document>", 1)
    return raw_zip(
        [("[Content_Types].xml", b"<Types/>", 0, 8), ("word/document.xml", document, 8, size)]
    )


def test_an_archive_declaring_more_than_a_gibibyte_is_refused_and_says_so() -> None:
    assert resumes.detect_type(_zip_declaring(2**20 + 12)) == resumes.DOCX
    assert resumes.detect_type(_zip_declaring(2**30 + 1)) is None
    with pytest.raises(UnsupportedResume, match="would expand to more than 1 GiB"):
        resumes.check_resume("cv.docx", _zip_declaring(2**30 + 1), 10_000_000)


def test_a_huge_central_directory_is_refused_before_it_is_parsed() -> None:
    from tests.test_upload_attacks import raw_zip

    names = ["[Content_Types].xml", "word/document.xml"] + [f"n{i}" for i in range(4000)]
    data = raw_zip([(name, b"", 0, 0) for name in names])
    with pytest.raises(UnsupportedResume, match="directory is larger than 192 KiB"):
        resumes.check_resume("cv.docx", data, 10_000_000)
    few = raw_zip([(name, b"", 0, 0) for name in names[:1000]])  # a big but real-sized DOCX
    assert resumes.detect_type(few) == resumes.DOCX


@pytest.mark.parametrize(
    "mimetype",
    [
        (resumes.ODT.encode() + b"\x00" * 2000, 0),  # longer than any real mimetype member
        (resumes.ODT.encode(), 12),  # bzip2: refused without being decompressed
        (b"\x00garbage that is not deflate", 8),
    ],
)
def test_odd_mimetype_members_are_refused(mimetype: tuple[bytes, int]) -> None:
    from tests.test_upload_attacks import raw_zip

    data, method = mimetype
    archive = raw_zip([("mimetype", data, method, len(data)), ("content.xml", b"<x/>", 0, 4)])
    assert resumes.detect_type(archive) is None


def test_an_encrypted_mimetype_member_is_refused_without_an_error() -> None:
    data = bytearray(samples.odt())
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    data[local + 6] |= 1  # the "encrypted" flag, in both headers
    data[central + 8] |= 1
    assert resumes.detect_type(bytes(data)) is None


def _zip64(directory_size: int | None) -> bytes:
    """A two-member DOCX whose end record defers to a zip64 record (as big archives do)."""
    import struct

    from tests.test_upload_attacks import raw_zip

    archive = raw_zip([("[Content_Types].xml", b"<T/>", 0, 4), ("word/document.xml", b"", 0, 0)])
    body, end = archive[:-22], bytearray(archive[-22:])
    true_size = struct.unpack("<L", end[12:16])[0]
    end[8:20] = b"\xff" * 12  # entries, directory size and offset: "see the zip64 record"
    size = true_size if directory_size is None else directory_size
    zip64 = struct.pack(
        "<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, 2, 2, size, len(body) - true_size
    )
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, len(body), 1)
    return body + zip64 + locator + bytes(end)


def test_zip64_archives_are_read_and_their_claims_bounded() -> None:
    assert resumes.detect_type(_zip64(None)) == resumes.DOCX
    assert resumes.detect_type(_zip64(2**62)) is None
    assert resumes.detect_type(_zip64(2**32)) is None


@pytest.mark.parametrize("size", [1, 15])
def test_a_resume_under_16_bytes_is_too_small_whatever_its_type(size: int) -> None:
    from leadctl.errors import InvalidInput

    with pytest.raises(InvalidInput) as caught:
        resumes.check_resume("cv.txt", b"x" * size, 10_000)
    assert caught.value.errors == [
        ("resume", "the resume file is too small to be a document (under 16 bytes)")
    ]
    assert resumes.check_resume("cv.txt", b"Jane Doe, lawyer", 10_000).size == 16


@pytest.mark.parametrize(
    ("max_bytes", "shown"),
    [(10 * 1024 * 1024, "10 MB"), (2_621_440, "2.5 MB"), (52_428, "51 KB"), (100, "1 KB")],
)
def test_the_size_limit_as_people_read_it(max_bytes: int, shown: str) -> None:
    assert resumes.size_limit_text(max_bytes) == shown
    with pytest.raises(ResumeTooLarge, match=f"larger than {shown} "):
        resumes.check_resume("cv.pdf", b"%PDF-" + b"x" * max_bytes, max_bytes)


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("𝐀" * 100 + ".pdf", "𝐀" * 36 + ".pdf"),  # 4 bytes each: 144 + 4
        ("é" * 100 + ".pdf", "é" * 73 + ".pdf"),  # 2 bytes each: 146 + 4
        ("a" * 100 + ".pdf", "a" * 100 + ".pdf"),  # 104 bytes: as it was
    ],
)
def test_file_names_are_bounded_in_bytes_on_a_character_boundary(name: str, kept: str) -> None:
    """Linux refuses a file name of over 255 bytes: a kept name has at most 150, its type's
    extension kept, cut between characters."""
    assert resumes.safe_filename(name, "application/pdf") == kept
    assert len(kept.encode()) <= resumes.MAX_FILENAME_BYTES


def test_a_stored_name_is_fitted_before_a_file_is_written_under_it() -> None:
    assert resumes.fit_filename("cv.pdf") == "cv.pdf"
    assert resumes.fit_filename("𝐀" * 300) == "𝐀" * 37
    assert resumes.fit_filename("𝐀" * 100 + "." + "x" * 40).endswith("𝐀")  # no such extension
