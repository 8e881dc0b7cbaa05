"""PDF resumes: the names that run, fetch or carry something when the PDF is opened
(JavaScript, launch actions, attached files, automatic actions, XFA…), looked for outside the
PDF's stream bodies, `#`-escaped spellings too, in bounded windows. Part of the first filter of
`leadctl.active_content`, not an antivirus."""

from __future__ import annotations

import re

from leadctl.resumes import SCAN_WINDOW, find, search


def pdf_active_content(data: bytes) -> str | None:
    """Why the PDF must be refused, else None."""
    return _names(_outside_streams(data))


# PDF names that run something, fetch something or carry a file, and what to call them.
_PDF_ACTIVE_NAMES = {
    b"JavaScript": "JavaScript",
    b"JS": "JavaScript",
    b"Launch": "a launch action (/Launch)",
    b"EmbeddedFiles": "an attached file (/EmbeddedFile)",
    b"EmbeddedFile": "an attached file (/EmbeddedFile)",
    b"AA": "automatic actions (/AA)",
    b"RichMedia": "rich media (/RichMedia)",
    b"XFA": "an XFA form (/XFA), which may carry scripts",
    b"GoToR": "a link that opens another file (/GoToR)",
    b"GoToE": "a link that opens an attached file (/GoToE)",
    b"SubmitForm": "a form that sends data away (/SubmitForm)",
    b"ImportData": "a form that imports data from a file (/ImportData)",
}
_PDF_CLASS = rb"[^\x00\t\n\x0c\r ()<>\[\]{}/%"  # a name's characters: not a delimiter
# One try at each `/`, of a fixed set of words: bounded, nothing to backtrack over.
_PDF_PLAIN_NAME = re.compile(
    rb"/(?:JavaScript|JS|Launch|EmbeddedFiles|EmbeddedFile|AA|RichMedia|XFA|GoToR|GoToE|"
    rb"SubmitForm|ImportData)(?!" + _PDF_CLASS + b"])"
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
# A stream's body: after the `stream` keyword that ends its dictionary and one CRLF or LF,
# up to `endstream`. Its bytes (an image, a font, an object stream, compressed or not) are not
# inspected: names turn up in them by chance (about one false `/AA` or `/JS` per 100 MB of
# JPEG), and a compressed object stream was never inflated anyway. What is skipped is what a
# writer could as well have compressed, so skipping it hides nothing an attacker could not.
_PDF_WS = rb"[\x00\t\n\x0c\r ]"
_PDF_STREAM = re.compile(b">>" + _PDF_WS + rb"{0,64}stream\r?\n")
_PDF_LENGTH = re.compile(rb"/Length" + _PDF_WS + rb"{1,8}(\d{1,10})" + _PDF_WS + rb"{0,8}(?=[/>])")
_PDF_ENDSTREAM = re.compile(_PDF_WS + rb"{0,8}endstream")
_PDF_DICT_TAIL = 1024  # where a stream's `/Length` is looked for, before its `stream`
# Past these many stream bodies the rest of the file is scanned whole, streams and all: a resume
# has a few dozen to a few hundred; each costs a few microseconds to skip.
_PDF_MAX_STREAMS = 20_000


def _outside_streams(data: bytes) -> bytes:
    """The PDF's bytes outside its stream bodies, a space (a delimiter: no name runs across it)
    where each body was. Linear: each search starts where the previous one ended."""
    view = memoryview(data)
    parts: list[memoryview] = []
    position = 0
    for _stream in range(_PDF_MAX_STREAMS):
        keyword = search(_PDF_STREAM, data, position, 80)
        if keyword is None:
            break
        body = keyword.end()
        end = _stream_end(data, keyword.start(), body, position)
        if end < 0:  # no `endstream` after this body, nor after any later one: the rest is read
            break
        parts.append(view[position:body])
        position = end
    if not parts:
        return data  # no stream: no copy
    parts.append(view[position:])
    return b" ".join(parts)


def _stream_end(data: bytes, keyword: int, body: int, floor: int) -> int:
    """Where the body that starts at `body` ends: its `/Length` later, when that is a plain
    number and `endstream` follows it, else the next `endstream`; -1 when there is none."""
    length_at = data.rfind(b"/Length", max(floor, keyword - _PDF_DICT_TAIL), keyword)
    length = _PDF_LENGTH.match(data, length_at, keyword + 1) if length_at >= 0 else None
    if length and _PDF_ENDSTREAM.match(data, body + int(length[1])):
        return body + int(length[1])
    return find(data, b"endstream", body)


def _names(data: bytes) -> str | None:
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
