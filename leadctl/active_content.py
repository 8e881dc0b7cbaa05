"""What would run, or be run, when an attorney opens a resume: macros, embedded objects, PDF
scripts and actions. A first filter of `resumes.check_resume`, not an antivirus: decided from
the bytes as they are, in bounded steps; a PDF's compressed streams are not inflated."""

from __future__ import annotations

import re
import struct
import urllib.parse
import zipfile
from xml.parsers import expat

from leadctl.resumes import (
    DOC,
    DOCX,
    ODT,
    PDF,
    RTF,
    SCAN_WINDOW,
    ZIP_ERRORS,
    ZIP_READ_BUDGET,
    Budgeted,
    contains,
    member_head,
)

MACROS = "the resume contains macros; send it as PDF or as a document without macros"
EMBEDDED = (
    "the resume contains an embedded object; send it as PDF or as a document without "
    "embedded objects"
)
_OLE_DAMAGED = (
    "the resume is a damaged Word (DOC) file: its directory cannot be read; send it as PDF"
)
_CONTENT_TYPES = "[Content_Types].xml"
_CONTENT_TYPES_MAX = 64 * 1024  # Word writes 1-3 KiB
_DOCX_DAMAGED = (
    f"the resume is a damaged DOCX file: its {_CONTENT_TYPES} cannot be read; send it as PDF"
)

# Compound files (MS-CFB): sector ids above this one are markers, not sectors.
_LAST_SECTOR = 0xFFFFFFFA
_END_OF_CHAIN = 0xFFFFFFFE
_NO_STREAM = 0xFFFFFFFF
_MAX_DIRECTORY_ENTRIES = 4096  # a Word document has a few dozen
# Where Word (and Excel) keep a VBA project; names compare without case, as readers look them up.
_MACRO_ENTRIES = frozenset({"MACROS", "VBA", "_VBA_PROJECT", "_VBA_PROJECT_CUR"})
_PACKAGE_ENTRY = "\x01OLE10NATIVE"  # an OLE "package": any file, run when double-clicked

# PDF names that run something, fetch something or carry a file, and what to call them.
_PDF_ACTIVE_NAMES = {
    b"JavaScript": "JavaScript",
    b"JS": "JavaScript",
    b"Launch": "a launch action (/Launch)",
    b"EmbeddedFiles": "an attached file (/EmbeddedFile)",
    b"EmbeddedFile": "an attached file (/EmbeddedFile)",
    b"AA": "automatic actions (/AA)",
    b"RichMedia": "rich media (/RichMedia)",
}
_PDF_CLASS = rb"[^\x00\t\n\x0c\r ()<>\[\]{}/%"  # a name's characters: not a delimiter
# One try at each `/`, of a fixed set of words: bounded, nothing to backtrack over.
_PDF_PLAIN_NAME = re.compile(
    rb"/(?:JavaScript|JS|Launch|EmbeddedFiles|EmbeddedFile|AA|RichMedia)(?!" + _PDF_CLASS + b"])"
)
# `#xx` spells any character of a name (`/Java#53cript` is `/JavaScript`): a name with a `#` is
# read whole and decoded. No class overlaps the next, so nothing backtracks; the lengths bound
# a match to what could still spell the longest name (13 characters, 3 bytes each).
_PDF_ESCAPED_NAME = re.compile(b"/" + _PDF_CLASS + b"#]{0,13}#" + _PDF_CLASS + b"]{0,40}")
_PDF_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
_PDF_NAME_MAX = 64  # a match's longest (55 bytes) and the delimiter after it, with room
_PDF_MAX_ESCAPED_NAMES = 2000  # a resume's fonts may have a few dozen (`/Times#20New#20Roman`)
# What one `/` costs the search above, bounded: 10 MiB of them would take a quarter second. A
# PDF whose content streams are compressed, as writers do, has a few thousand.
_PDF_MAX_SLASHES = 1_000_000


def active_content(data: bytes, content_type: str) -> str | None:
    """Why the resume must be refused for what would run when it is opened, else None.

    A first filter, not an antivirus: what is decided from the bytes as they are (macro storages,
    embedded objects, PDF actions in uncompressed objects). A PDF's compressed object streams are
    not inflated. Linear in the size, in bounded steps, as `detect_type` is.
    """
    if content_type == DOC:
        return _ole_active_content(data)
    if content_type in (DOCX, ODT):
        return _zip_active_content(data)
    if content_type == RTF:
        # Any `\obj…` control word (\object, \objdata, \objocx, \objemb, \objupdate…) is an
        # embedded object. Looked for as bytes, escaped or not: RTF's `\bin` lets raw bytes (a
        # backslash among them) sit before a control word, so counting backslashes misleads;
        # text with a literal `\obj` is refused too, a price worth paying.
        return EMBEDDED if contains(data, b"\\obj") else None
    if content_type == PDF:
        return _pdf_active_content(data)
    return None


def _pdf_active_content(data: bytes) -> str | None:
    slashes = escaped = 0
    for start in range(0, len(data), SCAN_WINDOW):
        end = min(len(data), start + SCAN_WINDOW + _PDF_NAME_MAX)
        window = data[start:end]
        slashes += window.count(b"/")
        if slashes > _PDF_MAX_SLASHES:
            return (
                f"the PDF resume has more than {_PDF_MAX_SLASHES:,} names in its uncompressed "
                "bytes; save it again as PDF and send that"
            )
        # A name at a window's end may go on: the next window, which overlaps, holds it whole.
        last = end == len(data)
        found = _PDF_PLAIN_NAME.search(window)
        name = found[0][1:] if found and (found.end() < len(window) or last) else None
        if name is None and b"#" in window:
            for match in _PDF_ESCAPED_NAME.finditer(window):
                if match.end() == len(window) and not last:
                    break
                escaped += 1
                if escaped > _PDF_MAX_ESCAPED_NAMES:
                    return (
                        f"the PDF resume spells more than {_PDF_MAX_ESCAPED_NAMES:,} names with "
                        "#-escapes; save it again as PDF and send that"
                    )
                decoded = _PDF_ESCAPE.sub(lambda hexed: bytes([int(hexed[1], 16)]), match[0][1:])
                if decoded in _PDF_ACTIVE_NAMES:
                    name = decoded
                    break
        if name is not None:
            return (
                f"the PDF resume contains {_PDF_ACTIVE_NAMES[name]}; "
                "send a PDF without scripts, actions or attached files"
            )
    return None


class _Damaged(Exception):
    """A compound file's structure cannot be followed; the message is for people."""


def _ole_active_content(data: bytes) -> str | None:
    try:
        entries = _ole_directory(data)
    except _Damaged as damaged:
        return str(damaged)
    if entries is None:  # a signature, then no compound file: nothing any reader could open
        return _OLE_DAMAGED
    if any(names & _MACRO_ENTRIES for names, _kind, _child in entries):
        return MACROS
    for names, kind, child in entries:
        # Word writes an empty ObjectPool into most documents; an object is a storage inside it.
        if _PACKAGE_ENTRY in names or ("OBJECTPOOL" in names and kind == 1 and child != _NO_STREAM):
            return EMBEDDED
    return None


def _ole_directory(data: bytes) -> list[tuple[set[str], int, int]] | None:
    """(names, type, child) of each live entry of a compound file's directory; None when the
    header is not a compound file's. Raises _Damaged where the structure breaks or loops.

    Work is bounded by the file: the allocation table and the directory are followed for at
    most as many steps as the file has sectors, and at most 4,096 entries are read.
    """
    if len(data) < 512:
        return None
    (shift,) = struct.unpack_from("<H", data, 0x1E)
    if not 9 <= shift <= 20:  # LibreOffice reads 9 to 20; Windows 9 (512 bytes) and 12 only
        return None
    size = 1 << shift
    sectors = (len(data) - 1) // size  # sector n starts at (n + 1) * size
    per_sector = size // 4
    fat_count, first_directory = struct.unpack_from("<2L", data, 0x2C)
    next_difat, _difat_count = struct.unpack_from("<2L", data, 0x44)
    if fat_count > sectors:
        raise _Damaged(_OLE_DAMAGED)
    fat = list(struct.unpack_from("<109L", data, 0x4C))
    steps = 0
    while len(fat) < fat_count:  # the rest of the table's sector list, chained from the header
        steps += 1
        if next_difat > _LAST_SECTOR or next_difat >= sectors or steps > sectors:
            raise _Damaged(_OLE_DAMAGED)
        offset = (next_difat + 1) * size
        block = struct.unpack_from(
            f"<{per_sector}L", data[offset : offset + size].ljust(size, b"\0")
        )
        fat.extend(block[:-1])
        next_difat = block[-1]
    del fat[fat_count:]

    def next_sector(sector: int) -> int:
        index, slot = divmod(sector, per_sector)
        table = fat[index] if index < len(fat) else _NO_STREAM
        offset = (table + 1) * size + slot * 4
        if table > _LAST_SECTOR or offset + 4 > len(data):
            raise _Damaged(_OLE_DAMAGED)
        return int(struct.unpack_from("<L", data, offset)[0])

    entries: list[tuple[set[str], int, int]] = []
    sector, steps = first_directory, 0
    while sector != _END_OF_CHAIN:
        steps += 1
        if sector > _LAST_SECTOR or sector >= sectors or steps > sectors:
            raise _Damaged(_OLE_DAMAGED)
        if steps * size // 128 > _MAX_DIRECTORY_ENTRIES:
            raise _Damaged(
                f"the resume's Word (DOC) directory has more than {_MAX_DIRECTORY_ENTRIES:,} "
                f"entries; send it as PDF"
            )
        start = (sector + 1) * size
        for offset in range(start, min(start + size, len(data)) - 127, 128):
            kind = data[offset + 66]
            if kind in (1, 2, 5):  # storage, stream, root; 0 is an unused slot
                (length,) = struct.unpack_from("<H", data, offset + 64)
                (child,) = struct.unpack_from("<L", data, offset + 76)
                entries.append((_entry_names(data[offset : offset + 64], length), kind, child))
        sector = next_sector(sector)
    if not entries:
        raise _Damaged(_OLE_DAMAGED)
    return entries


def _entry_names(raw: bytes, length: int) -> set[str]:
    """An entry's name, upper-cased, as its length field gives it and as read up to its first
    NUL: readers differ, so both are checked."""
    end = raw.find(b"\0\0")
    while end >= 0 and end % 2:  # a NUL character starts at an even offset
        end = raw.find(b"\0\0", end + 1)
    ends = {64 if end < 0 else end}
    if 2 <= length <= 64 and length % 2 == 0:
        ends.add(length - 2)
    return {raw[:end].decode("utf-16-le", "replace").upper() for end in ends}


def _zip_active_content(data: bytes) -> str | None:
    """Macros and embedded objects in a DOCX or ODT: by member name, and by the content types
    a DOCX declares (Word finds a VBA project by its type, whatever the part is called)."""
    try:
        with zipfile.ZipFile(Budgeted(data, ZIP_READ_BUDGET)) as archive:
            names = [info.filename for info in archive.infolist()]
            found = next(filter(None, map(_member_active_content, names)), None)
            if found or _CONTENT_TYPES not in names:
                return found
            return _content_types_active(member_head(archive, _CONTENT_TYPES, _CONTENT_TYPES_MAX))
    except ZIP_ERRORS:
        return _DOCX_DAMAGED


def _member_active_content(name: str) -> str | None:
    # OPC part names may be %-encoded and compare without case; some writers use backslashes.
    parts = [
        part for part in urllib.parse.unquote(name.replace("\\", "/")).lower().split("/") if part
    ]
    if not parts:
        return None
    if "vbaproject" in parts[-1] or (parts[0] in ("basic", "scripts") and len(parts) > 1):
        return MACROS  # Word's VBA project; LibreOffice's Basic and script libraries
    if {"embeddings", "activex"} & set(parts[:-1]):
        return EMBEDDED  # Word's OLE objects and packages (charts' data too), ActiveX controls
    if len(parts) == 1 and parts[0].startswith("object "):
        return EMBEDDED  # ODF keeps an OLE object as a top-level file; its own objects are folders
    return None


def _content_types_active(raw: bytes) -> str | None:
    """From [Content_Types].xml, read by expat (so `&#97;` is an `a`) with no DTD allowed."""
    declared: list[str] = []

    def element(_name: str, attributes: dict[str, str]) -> None:
        declared.append(attributes.get("ContentType", "").lower())

    def doctype(*_args: object) -> None:
        raise ValueError("a DTD")  # OPC forbids one; its entities could spell anything

    parser = expat.ParserCreate()
    parser.StartElementHandler = element
    parser.StartDoctypeDeclHandler = doctype
    try:
        parser.Parse(raw, True)
    except (expat.ExpatError, ValueError):
        return _DOCX_DAMAGED
    if any("macroenabled" in kind or "vbaproject" in kind for kind in declared):
        return MACROS
    if any("oleobject" in kind or "activex" in kind for kind in declared):
        return EMBEDDED
    return None
