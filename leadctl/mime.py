"""The RFC 5322 / MIME bytes of one outgoing message, written directly from a few checked values.

`email.message.EmailMessage` and its header registry parse and fold every header several
times over; that took about 60 % of the delivery process's CPU under load (bench/RESULTS.md,
"Mail keeps up with intake"). The few headers we send are written here instead, each value
checked first: no CR/LF anywhere, addresses that are one plain `local@domain`, a Subject in
RFC 2047 encoded words wherever it is not plain printable ASCII. Bodies are 7bit/8bit when
their lines are short, else quoted-printable or base64, as the `email` package chose them; the
tests parse what this writes with `email.policy.default` and compare it with what the `email`
package itself built.
"""

from __future__ import annotations

import binascii
import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

CRLF = b"\r\n"
MAX_LINE = 78  # RFC 5322's SHOULD; the `email` package folds and encodes at the same length

# A dot-atom local part (RFC 5322 atext; RFC 6532 adds UTF-8, which email-validator checked
# before an address reaches here) at a domain of LDH labels (IDNA-encoded already).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+"
_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*")
_MESSAGE_ID = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>")  # printable ASCII but < and >
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+\-]*/[a-z0-9][a-z0-9!#$&^_.+\-]*")
# Bytes a 7bit or 8bit body must not carry (RFC 2045): NUL, the C0 controls but tab, and DEL.
# CR and LF are gone by then (the lines are split first).
_BARE_CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")
_B64_CHUNK = 42  # bytes per encoded word: 56 base64 characters, 68 with =?utf-8?b?...?=
_NAME_CHARS = 150  # an attachment's file name is cut to this many characters


class UnsafeHeader(ValueError):
    """A header value that would break out of its header or the message; never sent."""


@dataclass(frozen=True)
class Mail:
    """A message ready to go: its bytes, its envelope, and the header values code reads back.

    `mail["Message-ID"]` and `mail["To"]` work as they did on `EmailMessage` (None when absent).
    """

    sender: str  # as it travels: IDNA domain, UTF-8 local part only when it must be
    recipient: str
    smtputf8: bool  # an address needs the server's SMTPUTF8 (RFC 6532 headers)
    data: bytes = field(repr=False)
    headers: dict[str, str] = field(repr=False)

    def as_bytes(self) -> bytes:
        return self.data

    def __getitem__(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


def check_address(address: str, what: str) -> str:
    """`address` if it is one plain addr-spec (no display name, comment, list or line break)."""
    if not address.isprintable() or _ADDRESS.fullmatch(address) is None:
        raise UnsafeHeader(f"the {what} address {address!r} is not one plain local@domain")
    return address


def check_message_id(message_id: str) -> str:
    if len(message_id) > 900 or _MESSAGE_ID.fullmatch(message_id) is None:
        raise UnsafeHeader(f"the Message-ID {message_id[:100]!r} is not <printable ASCII@...>")
    return message_id


def encoded_subject(subject: str) -> bytes:
    """The Subject's value, folded to 78 columns: plain words as they are, and from the first
    word that is not plain printable ASCII (or holds `=?`, or is too long to fold) to the end,
    RFC 2047 encoded words. Unfolded and decoded, it gives `subject` back exactly."""
    if "\r" in subject or "\n" in subject:
        raise UnsafeHeader("the Subject holds a line break (CR or LF)")
    words = subject.split(" ")
    plain = 0
    for word in words:
        if not (word.isascii() and word.isprintable()) or "=?" in word or len(word) > 60:
            break
        if plain == 0 and not word and len(words) > 1:
            break  # a leading space: the parser would strip it, an encoded word keeps it
        plain += 1
    if words[-1] == "" and len(words) > 1:
        # A trailing space: servers may strip it. Encoded with the word before it, it stays.
        plain = max(0, min(plain, len(words) - 2))
    tokens = words[:plain]
    rest = " ".join(words[plain:])
    if plain < len(words):
        tokens += _encoded_words(rest)
    # Fold: "Subject: " takes 9 columns; a fold turns the space between two tokens into CRLF SP.
    out, column = [], 9
    for i, token in enumerate(tokens):
        if i and column + 1 + len(token) > MAX_LINE:
            out.append("\r\n ")
            column = 1
        elif i:
            out.append(" ")
            column += 1
        out.append(token)
        column += len(token)
    return "".join(out).encode("ascii")


def _encoded_words(text: str) -> list[str]:
    """`text` as base64 UTF-8 encoded words of at most 68 characters, none splitting a
    character. Between two encoded words white space is dropped when decoding (RFC 2047 6.2)."""
    data = text.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError, a ValueError
    words, start = [], 0
    while start < len(data):
        end = min(start + _B64_CHUNK, len(data))
        while end < len(data) and 0x80 <= data[end] < 0xC0:  # a continuation byte
            end -= 1
        chunk = binascii.b2a_base64(data[start:end], newline=False).decode("ascii")
        words.append(f"=?utf-8?b?{chunk}?=")
        start = end
    return words or ["=?utf-8?b??="]


def text_part(subtype: str, text: str) -> bytes:
    """A `text/<subtype>; charset="utf-8"` part: headers, blank line, body (ending in CRLF).

    7bit or 8bit when every line fits in 78 bytes and no control byte is in it; otherwise
    quoted-printable, or base64 when that is shorter (mostly non-Latin text)."""
    data = text.encode("utf-8")
    lines = data.splitlines()  # CR, LF and CRLF, as the `email` package splits a body
    if max(map(len, lines), default=0) <= MAX_LINE and _BARE_CONTROL.search(data) is None:
        cte = "7bit" if data.isascii() else "8bit"
        body = CRLF.join(lines) + CRLF
    else:
        normal = b"\n".join(lines) + b"\n"
        qp = binascii.b2a_qp(normal, istext=True)  # soft breaks at 76; a lone "." as =2E
        if len(qp) > len(normal) * 4 // 3 + len(normal) // 57 * 2 + 4:
            cte, body = "base64", base64_lines(normal)
        else:
            cte, body = "quoted-printable", qp.replace(b"\n", CRLF)
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n'
    return head.encode("ascii") + CRLF + body


def base64_lines(data: bytes) -> bytes:
    """Base64 in lines of 76 characters, each ending in CRLF."""
    encoded = binascii.b2a_base64(data, newline=False)
    return CRLF.join([encoded[i : i + 76] for i in range(0, len(encoded), 76)]) + CRLF


def attachment_part(filename: str, content_type: str, data: bytes) -> bytes:
    """One attachment, base64, its file name cleaned and quoted so that no name can end the
    header (RFC 2231 `filename*` for a name that is not plain ASCII). An unrecognised content
    type travels as application/octet-stream: the file still arrives."""
    kind = content_type.strip().lower()
    if _CONTENT_TYPE.fullmatch(kind) is None:
        kind = "application/octet-stream"
    head = (
        f"Content-Type: {kind}\r\n"
        f"Content-Disposition: attachment;{_filename_parameter(clean_filename(filename))}\r\n"
        "Content-Transfer-Encoding: base64\r\n"
    )
    return head.encode("ascii") + CRLF + base64_lines(data)


def clean_filename(name: str) -> str:
    """A base name a mail client can show and save: no path, no control, format (bidi),
    separator or unassigned character, at most 150 characters; `attachment` if nothing is left."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", name))[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] not in "CZ" or ch == " ")
    return base[:_NAME_CHARS].strip(" .") or "attachment"


def _filename_parameter(name: str) -> str:
    """` filename="..."` (or RFC 2231 `filename*`, continued over lines when long), with its
    leading folding white space."""
    quotable = name.isascii() and name.isprintable() and not set(name) & set('"\\')
    if quotable and len(name) < 60 and "=?" not in name:
        return f' filename="{name}"'
    encoded = quote(name, safe="")  # only A-Z a-z 0-9 _ . - ~ stay: every one an attribute-char
    if len(encoded) <= 50:
        return f"\r\n filename*=utf-8''{encoded}"
    # Continued (RFC 2231 section 3), each piece whole characters: some readers decode each alone.
    pieces = [""]
    for ch in name:
        quoted = quote(ch, safe="")
        if len(pieces[-1]) + len(quoted) > 50:
            pieces.append("")
        pieces[-1] += quoted
    pieces[0] = "utf-8''" + pieces[0]
    return ";".join(f"\r\n filename*{i}*={piece}" for i, piece in enumerate(pieces))


def boundary(parts: Sequence[bytes]) -> str:
    """A random boundary found in none of the parts (a text part could, in theory, hold one)."""
    while True:
        candidate = f"=_{secrets.token_hex(16)}"
        mark = candidate.encode("ascii")
        if not any(mark in part for part in parts):
            return candidate


def multipart(subtype: str, parts: Sequence[bytes]) -> tuple[bytes, bytes]:
    """(Content-Type header line, body) of a multipart of `parts` (each headers + body)."""
    mark = boundary(parts)
    head = f'Content-Type: multipart/{subtype};\r\n boundary="{mark}"\r\n'.encode("ascii")
    dash = f"--{mark}".encode("ascii")
    # Each part's body ends in CRLF, and the CRLF before the next "--boundary" belongs to it.
    body = b"".join(dash + CRLF + part + CRLF for part in parts) + dash + b"--" + CRLF
    return head, body


def compose(
    *,
    sender: str,
    recipient: str,
    smtputf8: bool,
    subject: str,
    date: str,
    message_id: str,
    text: str,
    html: str,
    attachments: Sequence[tuple[str, str, bytes]] = (),
) -> Mail:
    """The whole message: multipart/alternative (text, then HTML), inside multipart/mixed with
    the attachments after it when there are any."""
    check_address(sender, "sender")
    check_address(recipient, "recipient")
    check_message_id(message_id)
    if not date.isascii() or not date.isprintable():
        raise UnsafeHeader(f"the Date {date!r} is not printable ASCII")
    alternatives = [text_part("plain", text), text_part("html", html)]
    content_type, body = multipart("alternative", alternatives)
    if attachments:
        inner = content_type + CRLF + body
        parts = [inner, *(attachment_part(*attached) for attached in attachments)]
        content_type, body = multipart("mixed", parts)
    head = (
        b"From: "
        + sender.encode("utf-8")
        + b"\r\nTo: "
        + recipient.encode("utf-8")
        + b"\r\nSubject: "
        + encoded_subject(subject)
        + f"\r\nDate: {date}\r\nMessage-ID: {message_id}\r\nMIME-Version: 1.0\r\n".encode("ascii")
    )
    headers = {
        "from": sender,
        "to": recipient,
        "subject": subject,
        "date": date,
        "message-id": message_id,
    }
    return Mail(sender, recipient, smtputf8, head + content_type + CRLF + body, headers)
