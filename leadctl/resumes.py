"""Resume checks: the document type decided from the bytes, active content refused, a safe name."""

from __future__ import annotations

import codecs
import hashlib
import io
import re
import struct
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass

from leadctl.errors import InvalidInput, ResumeTooLarge, UnsupportedResume

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
# How people name each type (the form's hint, the attorney's notification).
TYPE_LABELS = {
    PDF: "PDF",
    DOCX: "Word (DOCX)",
    DOC: "Word (DOC)",
    ODT: "OpenDocument text",
    RTF: "RTF",
    TEXT: "plain text",
}
ACCEPTED_TYPES = "PDF, Word (DOCX or DOC), OpenDocument text, RTF or plain text"
MIN_BYTES = 16  # no real document is smaller; a 1-byte "resume" is refused as too small
# A kept file name's bytes in UTF-8: well under the 255 of a Linux file name, leaving room for
# what a writer puts before it (`person export` writes `ID-name`).
MAX_FILENAME_BYTES = 150

_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_WORD_STREAM = "WordDocument".encode("utf-16-le")
_UNSAFE_NAME_CHARS = re.compile(r"[^\w .()\-]+")

# Bounds of the type check: whatever the upload's shape, deciding reads a fixed budget of an
# archive and scans text in windows (see bench/upload_worst_case.py for what they cost).
SCAN_WINDOW = 256 * 1024
ZIP_READ_BUDGET = 192 * 1024  # a resume's directory takes a few KiB (1,000 members: ~110 KiB)
_MAX_EXPANDED_BYTES = 2**30
_MEMBER_HEAD_BYTES = 1024  # ODT's `mimetype` member is 39 bytes
_ENCRYPTED = 0x1
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    KeyError,
    OSError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    struct.error,
    OverflowError,
)
# Each byte's class, so one translate and two searches find a control: X is a C0 control other
# than tab, LF, FF and CR, or DEL; A is 0xC2 and B 0x80-0x9F, so in valid UTF-8 "AB" is exactly
# a C1 control (U+0080-U+009F).
_BYTE_CLASSES = bytes(
    ord("X")
    if (b < 0x20 and b not in b"\t\n\f\r") or b == 0x7F
    else ord("A")
    if b == 0xC2
    else ord("B")
    if 0x80 <= b <= 0x9F
    else ord(".")
    for b in range(256)
)


@dataclass(frozen=True)
class CheckedResume:
    filename: str
    content_type: str
    size: int
    sha256: str
    data: bytes


@dataclass(frozen=True)
class ResumeLink:
    """A resume given as a checked https link (validation.check_resume_url): stored on the lead,
    shown, never fetched."""

    url: str


def size_limit_text(max_bytes: int) -> str:
    """The limit as people read it: `10 MB` for 10 MiB (a little under what is accepted)."""
    megabytes = max_bytes / (1024 * 1024)
    if megabytes >= 1:
        return f"{megabytes:.1f}".removesuffix(".0") + " MB"
    return f"{max(1, max_bytes // 1024)} KB"


def detect_type(data: bytes) -> str | None:
    """The MIME type of an accepted document format, decided from content alone; else None.

    A polyglot — say a PDF that is also a ZIP archive — is refused: it is two files at once,
    and what it is depends on which program opens it. Deciding never inflates an archive member
    or holds more than a few MiB beyond `data`, whatever its shape (see `_zip_document_type`).
    """
    try:
        return _checked_type(data)
    except UnsupportedResume:
        return None


def _checked_type(data: bytes) -> str | None:
    """`detect_type`, but an archive refused for its shape raises UnsupportedResume saying why."""
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
        return DOC if contains(data, _WORD_STREAM) else None
    if data.startswith(b"PK\x03\x04"):
        return _zip_document_type(data)
    if _is_plain_text(data):
        return TEXT
    return None


def contains(data: bytes, needle: bytes) -> bool:
    # Window by window: one search through 10 MiB of zeros would hold the GIL, stalling every
    # other request of the process meanwhile.
    step = SCAN_WINDOW
    return any(
        needle in data[start : start + step + len(needle) - 1]
        for start in range(0, len(data), step)
    )


class Budgeted(io.BytesIO):
    """`data` as a file that hands out at most `budget` bytes in all, then refuses.

    zipfile reads an archive's whole central directory, and parses every entry of it in Python,
    before anything can be asked of it. Bounding zipfile's own reads (rather than parsing the end
    record first) leaves no room for the two to disagree about where the directory is.
    """

    def __init__(self, data: bytes, budget: int) -> None:
        super().__init__(data)  # shares `data`: no copy
        self._size = len(data)
        self._left = budget

    def read(self, size: int | None = -1, /) -> bytes:
        available = max(0, self._size - self.tell())
        wanted = available if size is None or size < 0 else min(size, available)
        self._left -= wanted
        if self._left < 0:
            raise UnsupportedResume(
                f"the resume is a ZIP archive whose directory is larger than "
                f"{ZIP_READ_BUDGET // 1024} KiB; a DOCX or ODT resume needs far less"
            )
        return super().read(size)


def _zip_document_type(data: bytes) -> str | None:
    """DOCX or ODT from the member names (and ODT's short `mimetype` member), else None.

    Work is bounded by size, not count: the directory read is budgeted (`Budgeted`), no member
    is inflated beyond 1 KiB, and an archive whose members declare more than 1 GiB in all is
    refused outright (opened later by Word or LibreOffice, it would be a decompression bomb).
    """
    try:
        with zipfile.ZipFile(Budgeted(data, ZIP_READ_BUDGET)) as archive:
            members = archive.infolist()
            if sum(member.file_size for member in members) > _MAX_EXPANDED_BYTES:
                raise UnsupportedResume(
                    f"the resume is a ZIP archive that would expand to more than "
                    f"{_MAX_EXPANDED_BYTES // 2**30} GiB"
                )
            names = {member.filename for member in members}
            if "[Content_Types].xml" in names and "word/document.xml" in names:
                return DOCX
            if "mimetype" in names and member_head(archive, "mimetype").strip() == ODT.encode():
                return ODT
    except ZIP_ERRORS:
        return None
    return None


def member_head(archive: zipfile.ZipFile, name: str, limit: int = _MEMBER_HEAD_BYTES) -> bytes:
    """The member's bytes when it is at most `limit` (1 KiB) long, plainly stored or deflated;
    else b"". Never inflates more than `limit` + 1 bytes."""
    info = archive.getinfo(name)
    if info.flag_bits & _ENCRYPTED or info.compress_type not in (
        zipfile.ZIP_STORED,
        zipfile.ZIP_DEFLATED,
    ):
        return b""
    with archive.open(info) as member:
        head = member.read(limit + 1)
    return b"" if len(head) > limit else head


def _is_plain_text(data: bytes) -> bool:
    """UTF-8 (a leading BOM allowed), not only white space, and no control character but tab,
    LF, FF and CR.

    Decided over the whole file, window by window, at C speed: one window's text is all that is
    ever decoded at once (a 10 MiB file of astral characters would be 40 MB as one `str`), and
    no single step holds the GIL for more than about a millisecond.
    """
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    visible = False
    for start in range(0, len(data), SCAN_WINDOW):
        end = start + SCAN_WINDOW
        try:
            text = decoder.decode(data[start:end], final=end >= len(data))
        except UnicodeDecodeError:
            return False
        visible = visible or (bool(text) and not text.isspace())
        # One byte more, so a C1 control split across two windows is still seen.
        classes = data[start : end + 1].translate(_BYTE_CLASSES)
        if b"X" in classes or b"AB" in classes:
            return False
    return visible


def safe_filename(name: str | None, content_type: str) -> str:
    """A display- and disk-safe base name: no path, no control or shell-special characters, at
    most 100 characters and `MAX_FILENAME_BYTES` bytes of UTF-8 with its extension."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", name or ""))[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = _UNSAFE_NAME_CHARS.sub("_", base).strip(" ._")
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    if content_type not in _NAMED_AS.get(ext.lower(), ()):
        stem, ext = base, EXTENSIONS[content_type]
    stem = stem[:100].strip(" ._") or "resume"
    return fit_filename(f"{stem}.{ext.lower()}")


def fit_filename(name: str, max_bytes: int = MAX_FILENAME_BYTES) -> str:
    """`name` cut to at most `max_bytes` bytes of UTF-8 on a character boundary, its extension
    (up to 16 characters) kept: Linux refuses a name of over 255 bytes, and a hundred
    characters can be 400. For a stored name too, before a file is written under it."""
    if len(name.encode()) <= max_bytes:
        return name
    stem, dot, ext = name.rpartition(".")
    tail = f".{ext}" if dot and stem and len(ext) <= 16 else ""
    if not tail:
        stem = name
    room = max_bytes - len(tail.encode())
    stem = stem.encode()[:room].decode("utf-8", "ignore").rstrip(" ._") or "resume"
    return stem + tail


def too_large(max_bytes: int) -> ResumeTooLarge:
    return ResumeTooLarge(
        f"the resume is larger than {size_limit_text(max_bytes)} ({max_bytes:,} bytes)"
    )


def check_resume(filename: str | None, data: bytes, max_bytes: int) -> CheckedResume:
    """Accept the resume or raise: ResumeTooLarge, InvalidInput (empty or too small to be a
    document), or UnsupportedResume naming what is wrong."""
    if len(data) > max_bytes:
        raise too_large(max_bytes)
    if len(data) < MIN_BYTES:
        what = (
            "is empty" if not data else f"is too small to be a document (under {MIN_BYTES} bytes)"
        )
        raise InvalidInput([("resume", f"the resume file {what}")])
    content_type = _checked_type(data)
    if content_type is None:
        raise UnsupportedResume(f"the resume must be a {ACCEPTED_TYPES} file")
    ext = (filename or "").rpartition(".")[2].lower() if "." in (filename or "") else ""
    if ext in _NAMED_AS and content_type not in _NAMED_AS[ext]:
        raise UnsupportedResume(
            f"the file is named .{ext} but its content is not a {ext.upper()} document"
        )
    from leadctl.active_content import active_content  # imports this module's constants

    refusal = active_content(data, content_type)
    if refusal:
        raise InvalidInput([("resume", refusal)])
    return CheckedResume(
        filename=safe_filename(filename, content_type),
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
    )


def search(
    pattern: re.Pattern[bytes], data: bytes, start: int, longest: int
) -> re.Match[bytes] | None:
    """The first match of `pattern` (at most `longest` bytes long) from `start`, window by
    window: one search through 10 MiB would hold the GIL, stalling every other request."""
    for at in range(start, len(data), SCAN_WINDOW):
        found = pattern.search(data, at, at + SCAN_WINDOW + longest)
        if found:
            return found
    return None


def find(data: bytes, needle: bytes, start: int) -> int:
    """`data.find(needle, start)`, window by window as `search`."""
    for at in range(start, len(data), SCAN_WINDOW):
        found = data.find(needle, at, at + SCAN_WINDOW + len(needle) - 1)
        if found >= 0:
            return found
    return -1
