"""Resumes that carry active content (macros, embedded objects, scripts) are refused with a 422."""

from __future__ import annotations

import io
import sqlite3
import struct
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadctl import resumes
from leadctl.errors import InvalidInput
from tests import samples
from tests.conftest import make_settings, submit
from tests.samples import Tree, compound_file, fib, word_97

MACROS = "the resume contains macros; send it as PDF or as a document without macros"
EMBEDDED = (
    "the resume contains an embedded object; send it as PDF or as a document without "
    "embedded objects"
)
VBA: Tree = {"_VBA_PROJECT": b"\xcc\x61" + b"\0" * 5, "dir": b"\x01", "ThisDocument": b"x"}


def refusal(data: bytes, filename: str = "cv") -> str:
    with pytest.raises(InvalidInput) as caught:
        resumes.check_resume(filename, data, 10 * 1024 * 1024)
    [(field, message)] = caught.value.errors
    assert field == "resume"
    return message


def test_a_genuine_word_97_file_is_accepted() -> None:
    checked = resumes.check_resume("cv.doc", word_97(), 1_000_000)
    assert (checked.content_type, checked.filename) == (resumes.DOC, "cv.doc")
    assert resumes.check_resume("cv.doc", samples.doc(), 1_000_000).content_type == resumes.DOC


@pytest.mark.parametrize(
    "extra",
    [
        {"Macros": {"VBA": VBA, "PROJECT": b"ID=x"}},  # what Word writes
        {"mAcRoS": {"x": b"y"}},  # names are compared without case, as readers look them up
        {"Store": {"_VBA_PROJECT": b"\xcc\x61"}},
        {"VBA": {"dir": b"\x01"}},
        {"_VBA_PROJECT_CUR": {"VBA": VBA}},  # Excel's name, in a file with a Word stream
        {"Macro\u017f": {"x": b"y"}},  # LATIN SMALL LETTER LONG S upper-cases to S
    ],
)
def test_a_word_file_with_macros_is_refused(extra: Tree) -> None:
    assert refusal(word_97(**extra)) == MACROS


@pytest.mark.parametrize(
    "extra",
    [
        {"ObjectPool": {"_1234567890": {"\x01Ole": b"\x01", "\x01CompObj": b"\x01"}}},
        {"Objects": {"\x01Ole10Native": b"MZ" + b"\0" * 100}},  # a packaged executable
    ],
)
def test_a_word_file_with_embedded_objects_is_refused(extra: Tree) -> None:
    assert refusal(word_97(**extra)) == EMBEDDED


def attack_macro_doc() -> bytes:
    """The shape the attack review uploaded (/tmp/attack/macro.doc): no compound-file header
    beyond the signature, the names and the macro source as bare bytes."""
    names = b"".join(
        name.encode("utf-16-le").ljust(124, b"\0") for name in ("WordDocument", "Macros")
    )
    vba = "_VBA_PROJECT".encode("utf-16-le") + b'Sub AutoOpen()\r\nShell "calc"\r\nEnd Sub'
    return samples.OLE2 + b"\0" * 504 + names + vba


def test_the_attack_reviews_macro_doc_is_refused() -> None:
    """No Word file: without a compound file's header no reader follows a directory, so none
    is guessed at from the names in its bytes."""
    assert refusal(attack_macro_doc(), "cv.exe") == (
        "the resume is a damaged Word (DOC) file: its directory cannot be read; send it as PDF"
    )


def test_a_looping_directory_is_refused_not_followed_forever() -> None:
    looping = compound_file({"WordDocument": fib(), "1Table": b"\0" * 4096}, directory_loops=True)
    assert refusal(looping) == (
        "the resume is a damaged Word (DOC) file: its directory cannot be read; send it as PDF"
    )


def test_a_directory_beyond_the_end_of_the_file_is_refused() -> None:
    data = bytearray(word_97())
    struct.pack_into("<L", data, 0x30, 100_000)  # the first directory sector
    assert "damaged Word (DOC) file" in refusal(bytes(data))


def test_a_ten_mib_directory_is_refused_within_a_bounded_count_of_entries() -> None:
    """Every sector of a 6.5 MB file chained into the directory: 52,000 entries to look at,
    refused after the first 4,096."""
    sectors = 13_000  # as many as one header's 109 FAT sectors map
    data = bytearray(compound_file({"WordDocument": b"\0" * (sectors * 512)}))
    # Chain the stream's sectors into the directory, which comes right after them.
    struct.pack_into("<L", data, 0x30, 0)
    assert "more than 4,096 entries" in refusal(bytes(data))


# -- DOCX and ODT -------------------------------------------------------------------------------

CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    b'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/word/document.xml" ContentType="%s"/>%s</Types>'
)
DOCUMENT = b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"


def docx(main: bytes = DOCUMENT, extra_types: bytes = b"", **members: bytes) -> bytes:
    parts = {
        "[Content_Types].xml": CONTENT_TYPES % (main, extra_types),
        "_rels/.rels": b"<Relationships/>",
        "word/document.xml": b"<w:document/>",
    }
    parts.update({name.replace("__", "/"): data for name, data in members.items()})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def odt(**members: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", resumes.ODT)
        archive.writestr("content.xml", b"<office:document-content/>")
        for name, data in members.items():
            archive.writestr(name.replace("__", "/"), data)
    return buffer.getvalue()


def test_genuine_docx_and_odt_are_accepted() -> None:
    assert resumes.check_resume("cv.docx", docx(), 100_000).content_type == resumes.DOCX
    assert resumes.check_resume("cv.docx", samples.docx(), 100_000).content_type == resumes.DOCX
    chart = odt(**{"Object 1__content.xml": b"<chart/>", "ObjectReplacements__Object 1": b"x"})
    assert resumes.check_resume("cv.odt", chart, 100_000).content_type == resumes.ODT
    assert resumes.check_resume("cv.odt", samples.odt(), 100_000).content_type == resumes.ODT


MACRO_MAIN = b"application/vnd.ms-word.document.macroEnabled.main+xml"
VBA_TYPE = b'<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/>'


@pytest.mark.parametrize(
    "data",
    [
        docx(MACRO_MAIN, VBA_TYPE, word__vbaProject_bin=b"\xd0\xcf"),  # a .docm renamed
        docx(word__vbaProject_bin=b"\xd0\xcf"),
        docx(main=MACRO_MAIN),
        docx(main=b"application/vnd.ms-word.document.macroEn&#97;bled.main+xml"),
        docx(extra_types=VBA_TYPE, word__macros_bin=b"\xd0\xcf"),  # the project under any name
        docx(**{"word__VBAPROJECT.BIN": b"\xd0\xcf"}),
        docx(**{"word__vba%50roject.bin": b"\xd0\xcf"}),  # OPC part names are %-encoded
        odt(Basic__Standard__Module1_xml=b"<script:module/>"),
        odt(Scripts__python__cv_py=b"import os"),
    ],
)
def test_zip_documents_with_macros_are_refused(data: bytes) -> None:
    assert refusal(data) == MACROS


@pytest.mark.parametrize(
    "data",
    [
        docx(word__embeddings__oleObject1_bin=samples.OLE2),
        docx(word__embeddings__Microsoft_Excel_Worksheet_xlsm=b"PK"),
        docx(word__activeX__activeX1_xml=b"<ax/>"),
        docx(
            extra_types=b'<Default Extension="ole" ContentType="application/vnd.'
            b'openxmlformats-officedocument.oleObject"/>'
        ),
        odt(**{"Object 1": samples.OLE2}),  # an OLE object in ODF: a file, not a sub-document
    ],
)
def test_zip_documents_with_embedded_objects_are_refused(data: bytes) -> None:
    assert refusal(data) == EMBEDDED


def test_a_docx_whose_content_types_declare_a_dtd_is_refused() -> None:
    dtd = b'<?xml version="1.0"?><!DOCTYPE Types [<!ENTITY m "macroEnabled">]><Types/>'
    data = docx(**{"[Content_Types].xml": dtd})
    assert refusal(data) == (
        "the resume is a damaged DOCX file: its [Content_Types].xml cannot be read; send it as PDF"
    )


# -- RTF --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        rb"{\object\objemb{\*\objclass Package}{\*\objdata 01050000}}",
        rb"{\object\objocx{\*\objdata 0105}}",
        rb"{\*\objdata0105}",  # a control word may be followed by digits
        rb"{\object {\*\objdata 0105}}",
        rb"C:\\\objdata 0105",  # an escaped backslash, then a control word
    ],
)
def test_rtf_with_an_object_is_refused(body: bytes) -> None:
    assert refusal(b"{\\rtf1\\ansi Jane Doe\\par " + body + b"}") == EMBEDDED


def test_rtf_whose_text_only_speaks_of_objects_is_accepted() -> None:
    text = rb"{\rtf1\ansi Objects: objdata, object, see C:/objects\par\pard\b Jane\b0}"
    assert resumes.check_resume("cv.rtf", text, 10_000).content_type == resumes.RTF


@pytest.mark.parametrize(
    "body",
    [
        rb"{\bin1 \\objdata 0105}",  # \bin's raw byte is a backslash: Word reads \objdata
        rb"C:\\objects",  # a literal backslash before "obj": refused too, knowingly
    ],
)
def test_rtf_backslashes_are_not_counted_to_excuse_an_obj(body: bytes) -> None:
    r"""Counting backslashes (is this one escaped?) misleads after \bin, which lets raw bytes
    sit before a control word: any `\obj` in the bytes is refused."""
    assert refusal(b"{\\rtf1\\ansi " + body + b"}") == EMBEDDED


# -- PDF --------------------------------------------------------------------------------------


def pdf_with(fragment: bytes) -> bytes:
    return samples.pdf().replace(b"<< /Type /Catalog >>", b"<< /Type /Catalog " + fragment + b" >>")


@pytest.mark.parametrize(
    ("fragment", "what"),
    [
        (b"/OpenAction << /S /JavaScript /JS (app.alert(1)) >>", "JavaScript"),
        (b"/OpenAction<</S/JS(app.alert(1))>>", "JavaScript"),
        (b"/OpenAction << /S /Java#53cript /J#53 (x) >>", "JavaScript"),
        (b"/OpenAction << /S /#4a#61#76#61#53#63#72#69#70#74 >>", "JavaScript"),
        (b"/OpenAction << /S /Launch /F (cmd.exe) >>", "a launch action (/Launch)"),
        (b"/Names << /EmbeddedFiles 2 0 R >>", "an attached file (/EmbeddedFile)"),
        (b"/Type/EmbeddedFile", "an attached file (/EmbeddedFile)"),
        (b"/AA << /O 3 0 R >>", "automatic actions (/AA)"),
        (b"/RichMedia 4 0 R", "rich media (/RichMedia)"),
    ],
)
def test_pdf_with_active_content_is_refused(fragment: bytes, what: str) -> None:
    assert refusal(pdf_with(fragment)) == (
        f"the PDF resume contains {what}; send a PDF without scripts, actions or attached files"
    )


@pytest.mark.parametrize(
    "fragment",
    [
        b"/OpenAction [3 0 R /FitH 0]",  # opening at a page: no script
        b"/JSX 1 /AAB 2 /Java#53cripts 3 /Launcher 4",  # other names
        b"/BaseFont /Times#20New#20Roman",
    ],
)
def test_pdf_without_active_content_is_accepted(fragment: bytes) -> None:
    assert resumes.check_resume("cv.pdf", pdf_with(fragment), 10_000).content_type == resumes.PDF


def test_a_pdf_name_across_the_scan_windows_is_found() -> None:
    window = resumes.SCAN_WINDOW
    for shift in range(-20, 20, 3):
        head = b"%PDF-1.4\n%" + b"x" * (window - 12 + shift) + b"\n"
        assert "JavaScript" in refusal(head + b"<< /S /Java#53cript >>\n%%EOF\n")


# -- through the real server -------------------------------------------------------------------


@pytest.mark.e2e
def test_the_macro_doc_gets_422_and_nothing_is_stored(tmp_path: Path, make_server: Any) -> None:
    server = make_server(make_settings(tmp_path))
    with httpx.Client(base_url=server.url, timeout=30) as client:
        response = submit(
            client,
            resume=word_97(Macros={"VBA": VBA}),
            filename="cv.exe",
            content_type="application/msword",
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"] == [{"field": "resume", "message": MACROS}]
        assert submit(client, resume=word_97(), filename="cv.doc").status_code == 201
    with sqlite3.connect(tmp_path / "leads.db") as conn:
        counts = [
            conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("lead", "resume")
        ]
    assert counts == [1, 1]  # only the genuine DOC that followed it


def test_a_pdf_made_of_names_is_refused_before_its_names_cost_much() -> None:
    """Each `/` costs the name search a try: past a million (a PDF that compresses its content,
    as writers do, has a few thousand) the PDF is refused instead."""
    assert resumes.check_resume("cv.pdf", pdf_with(b"/N " * 999_000), 10**7).size > 2_997_000
    assert refusal(pdf_with(b"/N " * 1_000_001)) == (
        "the PDF resume has more than 1,000,000 names in its uncompressed bytes; "
        "save it again as PDF and send that"
    )


def test_a_pdf_with_thousands_of_escaped_names_is_refused() -> None:
    fonts = b"/BaseFont /Times#20New#20Roman " * 2000
    assert resumes.check_resume("cv.pdf", pdf_with(fonts), 10**7).content_type == resumes.PDF
    assert refusal(pdf_with(fonts + b"/A#20")) == (
        "the PDF resume spells more than 2,000 names with #-escapes; "
        "save it again as PDF and send that"
    )


def test_a_name_filling_its_whole_field_without_a_nul_is_read() -> None:
    """32 characters, no terminating NUL and a length field past the field: read to its end."""
    assert resumes.check_resume("cv.doc", word_97(**{"N" * 32: b"x"}), 10**6).size > 0
    assert refusal(word_97(**{"Macros" + "\0" * 2 + "N" * 24: {"x": b"y"}})) == MACROS
