"""Sample resumes built in memory: real PDF, DOCX, ODT, DOC, RTF and text files, and impostors."""

from __future__ import annotations

import io
import itertools
import struct
import zipfile
from typing import Any

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
    return word_97()


def rtf() -> bytes:
    return b"{\\rtf1\\ansi Resume of Jane Doe\\par}"


def text() -> bytes:
    return "Jane Doe\nExperience: 10 years of contract law. Zoë\n".encode()


def zip_not_docx() -> bytes:
    return _zip({"notes.txt": b"hello"})


def polyglot() -> bytes:
    """A PDF with a ZIP archive appended: both readers accept it."""
    return pdf() + _zip({"payload.html": b"<script>alert(1)</script>"})


NO_STREAM, END_OF_CHAIN, FAT_SECTOR, FREE = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF

# -- a compound file (OLE2) written to MS-CFB, version 3 -------------------------------------------

Tree = dict[str, "bytes | Tree"]


def compound_file(root: Tree, *, directory_loops: bool = False) -> bytes:
    """A compound file holding `root` (a storage: name -> stream bytes or storage dict).

    Every stream lives in regular 512-byte sectors (the directory, all this check reads, is the
    same either way); the siblings of a storage are chained to the right, all black.
    """
    entries: list[list[Any]] = []  # name, type, child, right sibling, data

    def add(name: str, node: bytes | Tree) -> int:
        index = len(entries)
        is_stream = isinstance(node, bytes)
        entries.append(
            [name, 2 if is_stream else 1, NO_STREAM, NO_STREAM, node if is_stream else b""]
        )
        if isinstance(node, dict):
            kids = [add(kid, value) for kid, value in node.items()]
            if kids:
                entries[index][2] = kids[0]
            for left, right in itertools.pairwise(kids):
                entries[left][3] = right
        return index

    add("Root Entry", root)
    entries[0][1] = 5
    sectors: list[bytes] = []
    fat: list[int] = []

    def place(blob: bytes) -> int:
        if not blob:
            return END_OF_CHAIN
        start = len(sectors)
        chunks = [blob[i : i + 512].ljust(512, b"\0") for i in range(0, len(blob), 512)]
        for n, chunk in enumerate(chunks):
            sectors.append(chunk)
            fat.append(start + n + 1 if n + 1 < len(chunks) else END_OF_CHAIN)
        return start

    starts = [place(entry[4]) for entry in entries]
    directory = b""
    for (name, kind, child, right, data), start in zip(entries, starts, strict=True):
        encoded = name.encode("utf-16-le")
        directory += struct.pack(
            "<64sHBB3L16sL16sLQ",
            encoded + b"\0\0",
            len(encoded) + 2,
            kind,
            1,  # black
            NO_STREAM,
            right,
            child,
            b"",
            0,
            b"",
            start,
            len(data),
        )
    directory += b"\0" * (-len(directory) % 512)  # unused entries: type 0
    first_directory = place(directory)
    if directory_loops:
        fat[first_directory + len(directory) // 512 - 1] = first_directory
    count = len(sectors)
    fat_sectors = 1
    while count + fat_sectors > 128 * fat_sectors:
        fat_sectors += 1
    fat += [FAT_SECTOR] * fat_sectors
    fat += [FREE] * (128 * fat_sectors - len(fat))
    header = struct.pack(
        "<8s16s5H6s9L",
        OLE2,
        b"",
        0x3E,
        3,
        0xFFFE,
        9,
        6,
        b"",
        0,
        fat_sectors,
        first_directory,
        0,
        4096,
        END_OF_CHAIN,
        0,
        END_OF_CHAIN,
        0,
    )
    difat = [count + i for i in range(fat_sectors)] + [FREE] * (109 - fat_sectors)
    header += struct.pack("<109L", *difat)
    return header + b"".join(sectors) + struct.pack(f"<{len(fat)}L", *fat)


def fib() -> bytes:
    """The start of a Word 97 WordDocument stream: its FIB (wIdent 0xA5EC, nFib 193)."""
    return struct.pack("<HHH", 0xA5EC, 0xC1, 0).ljust(4608, b"\0")


def word_97(**extra: bytes | Tree) -> bytes:
    """A minimal Word 97 file: WordDocument, 1Table, summary information and the empty
    ObjectPool Word writes into every document."""
    root: Tree = {
        "WordDocument": fib(),
        "1Table": b"\0" * 4096,
        "\x05SummaryInformation": b"\xfe\xff" + b"\0" * 510,
        "ObjectPool": {},
    }
    root.update(extra)
    return compound_file(root)
