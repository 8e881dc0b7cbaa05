"""What would run, or be run, when an attorney opens a resume: macros, embedded objects, PDF
scripts and actions, remote templates, DDE fields. A first filter of `resumes.check_resume`, not
an antivirus: decided from the bytes as they are, in bounded steps; a PDF's stream bodies are not
looked into (compressed or not)."""

from __future__ import annotations

import io
import re
import struct
import urllib.parse
import zipfile
from xml.parsers import expat

from leadctl.pdf_content import pdf_active_content
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
    search,
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
# All .rels parts together: Word writes about 200 bytes a link or image, a resume's take a few
# KiB; expat with a handler reads 256 KiB of the smallest elements in about 30 ms.
_RELS_MAX = 256 * 1024
_RELS_MAX_PARTS = 100  # Word writes 5 to 20
_RELS_DAMAGED = (
    "the resume is a damaged DOCX file: a relationships part (.rels) cannot be read, or the "
    "parts are over 256 KiB in all; send it as PDF"
)
_DOCX_DAMAGED = (
    f"the resume is a damaged DOCX file: its {_CONTENT_TYPES} cannot be read; send it as PDF"
)

# Relationships Word follows when it opens the document, by the end of their type: to a target
# outside the file (TargetMode="External": Follina's mhtml: object, a remote template), and an
# altChunk's part, a foreign document (RTF, HTML, MHT) Word converts, objects and all.
_EXTERNAL_RELATIONSHIPS = {
    "/oleobject": "an object (oleObject)",
    "/attachedtemplate": "a template (attachedTemplate)",
    "/subdocument": "a sub-document (subDocument)",
    "/frame": "a frame (frame)",
}
_ALT_CHUNK = (
    "the resume contains an embedded foreign document (altChunk) that Word converts when it "
    "is opened; send it as PDF or as a document without embedded documents"
)
# ODF: a script bound to an event (`<script:event-listener`, under any prefix or none) or a link
# to a macro (`vnd.sun.star.script:`), in the first 4 MiB of content.xml and styles.xml
# together. In text a `<` is escaped, so `<event-listener` is markup; `:event-listener` in text
# is refused too.
_ODF_LISTENER = re.compile(rb"[<:]event-listener[\s/>]")
_ODF_MACRO_LINK = b"vnd.sun.star.script:"
_ODF_SCANNED = ("content.xml", "styles.xml")
_ODF_SCAN_BYTES = 4 * 1024 * 1024  # a resume's content.xml: tens of KiB
_ODF_SCRIPTS = (
    "the resume contains a script bound to an event or a link to a macro; send it as PDF or "
    "as a document without macros"
)
# RTF: `\template` names the template Word loads. Word writes a local one (`C:\\…\\CV.dotx`)
# into documents made from a template, which are ordinary resumes; one fetched from elsewhere
# (http:, ftp:, file:, or a `\\host` share, written `\\\\host` or `\'5c\'5chost`) is refused.
_RTF_TEMPLATE = re.compile(
    rb"\\template(?![A-Za-z]) ?(?:(?i:https?|ftp|file):|\\\\\\\\|(?i:\\'5c\\'5c))"
)
# A field whose instruction starts with DDE or DDEAUTO runs a program. Word reads the instruction
# across groups and control words (`{\*\fldinst {\f1 D}{DE}AUTO …}`) and hex escapes (\'44):
# those are skipped. Atomic, bounded tokens that cannot start as a letter does: no backtracking;
# a match is at most about 3 KiB. A `\fldinst` is not skipped but starts its own try, so each
# byte is looked at by one try only (`\fldinst` a million times would be 64 million steps).
_RTF_SKIP = rb"(?>[\s{}]|\\\*|\\(?!fldinst)[A-Za-z]{1,32}(?:-?\d{1,10})? ?)"
_RTF_DDE = re.compile(
    rb"\\fldinst"
    + _RTF_SKIP
    + rb"{0,64}+(?:[dD]|\\'[46]4)"
    + _RTF_SKIP
    + rb"{0,8}+(?:[dD]|\\'[46]4)"
    + _RTF_SKIP
    + rb"{0,8}+(?:[eE]|\\'[46]5)"
)
_RTF_MATCH_MAX = 4096
# Each `\fldinst` costs the search above a try (a tenth of a microsecond): 10 MiB of them would
# take 150 ms. A resume has a few dozen fields (links, page numbers).
_RTF_MAX_FIELDS = 10_000
RTF_TEMPLATE = (
    "the resume contains a template link (\\template) that Word would fetch when it is opened; "
    "send it as PDF or as a document without an attached template"
)
RTF_DDE = (
    "the resume contains a DDE field, which runs a program when the document is opened; "
    "send it as PDF or as a document without DDE fields"
)

# Compound files (MS-CFB): sector ids above this one are markers, not sectors.
_LAST_SECTOR = 0xFFFFFFFA
_END_OF_CHAIN = 0xFFFFFFFE
_NO_STREAM = 0xFFFFFFFF
_MAX_DIRECTORY_ENTRIES = 4096  # a Word document has a few dozen
# Where Word (and Excel) keep a VBA project; names compare without case, as readers look them up.
_MACRO_ENTRIES = frozenset({"MACROS", "VBA", "_VBA_PROJECT", "_VBA_PROJECT_CUR"})
_PACKAGE_ENTRY = "\x01OLE10NATIVE"  # an OLE "package": any file, run when double-clicked


def active_content(data: bytes, content_type: str) -> str | None:
    """Why the resume must be refused for what would run when it is opened, else None.

    A first filter, not an antivirus: what is decided from the bytes as they are (macro storages,
    embedded objects, relationships and fields fetched on opening, PDF actions outside stream
    bodies). A PDF's stream bodies, object streams among them, are not looked into, compressed
    or not. Linear in the size, in bounded steps, as `detect_type` is.
    """
    if content_type == DOC:
        return _ole_active_content(data)
    if content_type in (DOCX, ODT):
        return _zip_active_content(data, content_type)
    if content_type == RTF:
        # Any `\obj…` control word (\object, \objdata, \objocx, \objemb, \objupdate…) is an
        # embedded object. Looked for as bytes, escaped or not: RTF's `\bin` lets raw bytes (a
        # backslash among them) sit before a control word, so counting backslashes misleads;
        # text with a literal `\obj` (or `\template`) is refused too, a price worth paying.
        if contains(data, b"\\obj"):
            return EMBEDDED
        if search(_RTF_TEMPLATE, data, 0, 16):
            return RTF_TEMPLATE
        fields = sum(
            data.count(b"\\fldinst", at, at + SCAN_WINDOW + 7)
            for at in range(0, len(data), SCAN_WINDOW)
        )
        if fields > _RTF_MAX_FIELDS:
            return (
                f"the RTF resume has more than {_RTF_MAX_FIELDS:,} fields; save it again as PDF "
                "and send that"
            )
        return RTF_DDE if fields and search(_RTF_DDE, data, 0, _RTF_MATCH_MAX) else None
    if content_type == PDF:
        return pdf_active_content(data)
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


def _zip_active_content(data: bytes, content_type: str) -> str | None:
    """Macros and embedded objects in a DOCX or ODT: by member name, by the content types a
    DOCX declares (Word finds a VBA project by its type, whatever the part is called) and by
    the relationships it follows on opening; an ODT's scripts bound to events."""
    try:
        with zipfile.ZipFile(Budgeted(data, ZIP_READ_BUDGET)) as archive:
            names = [info.filename for info in archive.infolist()]
            found = next(filter(None, map(_member_active_content, names)), None)
            if not found and _CONTENT_TYPES in names:
                raw = member_head(archive, _CONTENT_TYPES, _CONTENT_TYPES_MAX)
                found = _content_types_active(raw)
        if found:
            return found
        # The directory was read within its budget above; the parts below are read in bounded
        # amounts of their own, which the directory's budget is not sized for.
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if content_type == ODT:
                return _odf_scripts(archive, names)
            return _relationships_active(archive, names)
    except ZIP_ERRORS:
        return _DOCX_DAMAGED


def _odf_scripts(archive: zipfile.ZipFile, names: list[str]) -> str | None:
    """Event listeners and macro links in the first 4 MiB of content.xml and styles.xml together
    (an ODT's are seldom past a few hundred KiB; what lies beyond is not read)."""
    reads = _ODF_SCAN_BYTES // SCAN_WINDOW  # for both parts together
    for name in _ODF_SCANNED:
        if name not in names:
            continue
        info = archive.getinfo(name)
        if info.flag_bits & 0x1 or info.compress_type not in (
            zipfile.ZIP_STORED,
            zipfile.ZIP_DEFLATED,
        ):
            continue  # LibreOffice cannot read it either
        carried = b""  # a match may span two reads: the end of the last one goes on
        with archive.open(info) as member:
            while reads > 0:
                reads -= 1
                chunk = member.read(SCAN_WINDOW)
                if not chunk:
                    break
                text = carried + chunk
                if _ODF_MACRO_LINK in text.lower() or (
                    b"event-listener" in text and _ODF_LISTENER.search(text)
                ):
                    return _ODF_SCRIPTS
                carried = chunk[-32:]
    return None


def _relationships_active(archive: zipfile.ZipFile, names: list[str]) -> str | None:
    """Relationships Word follows on opening, from every `.rels` part, read by expat with no DTD
    allowed; the parts are bounded in number and size (refused past the bounds)."""
    parts = [name for name in names if name.lower().endswith(".rels")]
    if len(parts) > _RELS_MAX_PARTS:
        return (
            f"the DOCX resume has more than {_RELS_MAX_PARTS} relationship parts (.rels); "
            "send it as PDF"
        )
    left = _RELS_MAX
    for name in parts:
        raw = member_head(archive, name, left)
        left -= len(raw)
        if not raw:
            return _RELS_DAMAGED
        elements = _xml_attributes(raw)
        if elements is None:
            return _RELS_DAMAGED
        for attributes in elements:
            kind = attributes.get("Type", "").strip().lower()
            mode = attributes.get("TargetMode", "").strip().lower()
            if kind.endswith("/afchunk"):
                return _ALT_CHUNK
            what = next(
                (what for end, what in _EXTERNAL_RELATIONSHIPS.items() if kind.endswith(end)), None
            )
            if what and mode == "external":
                return (
                    f"the resume contains a link to {what} that Word would fetch when it is "
                    "opened; send it as PDF or as a document without linked templates or objects"
                )
            if kind.endswith("/oleobject"):
                return EMBEDDED  # an object inside the file, under whatever name
    return None


def _xml_attributes(raw: bytes) -> list[dict[str, str]] | None:
    """Each element's attributes, read by expat (so `&#97;` is an `a`) with no DTD allowed (OPC
    forbids one; its entities could spell anything); None when the XML cannot be read."""
    elements: list[dict[str, str]] = []

    def doctype(*_args: object) -> None:
        raise ValueError("a DTD")

    parser = expat.ParserCreate()
    parser.StartElementHandler = lambda _name, attributes: elements.append(attributes)
    parser.StartDoctypeDeclHandler = doctype
    try:
        parser.Parse(raw, True)
    except (expat.ExpatError, ValueError):
        return None
    return elements


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
    """From [Content_Types].xml."""
    elements = _xml_attributes(raw)
    if elements is None:
        return _DOCX_DAMAGED
    declared = [attributes.get("ContentType", "").lower() for attributes in elements]
    if any("macroenabled" in kind or "vbaproject" in kind for kind in declared):
        return MACROS
    if any("oleobject" in kind or "activex" in kind for kind in declared):
        return EMBEDDED
    return None
