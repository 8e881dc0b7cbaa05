"""Resume checks: the document type decided from the bytes, and a safe file name to keep."""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass

from leadctl.errors import ResumeTooLarge, UnsupportedResume

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
DOC = "application/msword"
ODT = "application/vnd.oasis.opendocument.text"
RTF = "application/rtf"
TEXT = "text/plain"

# The extension a detected type is saved under, and the extensions a name may carry for it.
EXTENSIONS = {PDF: "pdf", DOCX: "docx", DOC: "doc", ODT: "odt", RTF: "rtf", TEXT: "txt"}
_NAMED_AS = {
    "pdf": {PDF},
    "docx": {DOCX},
    "doc": {DOC, RTF},  # Word has long saved RTF under .doc
    "odt": {ODT},
    "rtf": {RTF},
    "txt": {TEXT},
    "text": {TEXT},
}
ACCEPT_HINT = ".pdf,.docx,.doc,.odt,.rtf,.txt"
MIN_BYTES = 16  # no real document is smaller; a 1-byte "resume" is refused

_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_WORD_STREAM = "WordDocument".encode("utf-16-le")
_UNSAFE_NAME_CHARS = re.compile(r"[^\w .()\-]+")


@dataclass(frozen=True)
class CheckedResume:
    filename: str
    content_type: str
    size: int
    sha256: str
    data: bytes


def detect_type(data: bytes) -> str | None:
    """The MIME type of an accepted document format, decided from content alone; else None.

    A polyglot — say a PDF that is also a ZIP archive — is refused: it is two files at once,
    and what it is depends on which program opens it.
    """
    if len(data) < MIN_BYTES:
        return None
    detected = _detect(data)
    if detected in (PDF, DOC, RTF, TEXT) and zipfile.is_zipfile(io.BytesIO(data)):
        return None
    return detected


def _detect(data: bytes) -> str | None:
    head = data[:8]
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"{\\rtf"):
        return RTF
    if head == _OLE2:
        return DOC if _WORD_STREAM in data else None
    if data.startswith(b"PK\x03\x04"):
        return _zip_document_type(data)
    if _is_plain_text(data):
        return TEXT
    return None


def _zip_document_type(data: bytes) -> str | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if "[Content_Types].xml" in names and "word/document.xml" in names:
                return DOCX
            if "mimetype" in names and archive.read("mimetype").strip() == ODT.encode():
                return ODT
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, NotImplementedError):
        return None
    return None


def _is_plain_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    allowed_controls = {"\t", "\n", "\r", "\f"}
    return bool(text.strip()) and not any(
        unicodedata.category(ch) == "Cc" and ch not in allowed_controls for ch in text
    )


def safe_filename(name: str | None, content_type: str) -> str:
    """A display- and disk-safe base name: no path, no control or shell-special characters."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", name or ""))[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = _UNSAFE_NAME_CHARS.sub("_", base).strip(" ._")
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    if content_type not in _NAMED_AS.get(ext.lower(), ()):
        stem, ext = base, EXTENSIONS[content_type]
    stem = stem[:100].strip(" ._") or "resume"
    return f"{stem}.{ext.lower()}"


def check_resume(filename: str | None, data: bytes, max_bytes: int) -> CheckedResume:
    """Accept the resume or raise: ResumeTooLarge, or UnsupportedResume naming what is wrong."""
    if len(data) > max_bytes:
        raise ResumeTooLarge(f"the resume is larger than {max_bytes:,} bytes")
    content_type = detect_type(data)
    if content_type is None:
        raise UnsupportedResume(
            "the resume must be a PDF, Word (DOCX or DOC), OpenDocument text, RTF "
            "or plain text file"
        )
    ext = (filename or "").rpartition(".")[2].lower() if "." in (filename or "") else ""
    if ext in _NAMED_AS and content_type not in _NAMED_AS[ext]:
        raise UnsupportedResume(
            f"the file is named .{ext} but its content is not a {ext.upper()} document"
        )
    return CheckedResume(
        filename=safe_filename(filename, content_type),
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
    )
