"""The message bytes `leadctl.mime` writes, read back by the `email` package's own parser
(`BytesParser(policy=email.policy.default)`): hostile subjects, addresses, bodies and
attachment names give back exactly what was meant, or are refused, and never add a header.

Bodies are also compared with what the `email` package builds itself (`EmailMessage`, as
`build_message` did before), so the rewrite changes the bytes, not what a reader sees.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import SMTP, SMTPUTF8
from email.policy import default as default_policy
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import pytest

from leadctl.mailer import (
    DeliveryError,
    FileSender,
    InvalidMessage,
    SmtpSender,
    build_message,
    transport_address,
)
from leadctl.messages import Composed, new_message_id
from leadctl.mime import Mail, clean_filename
from leadctl.settings import Settings
from leadctl.timeutil import utcnow
from tests.conftest import SmtpSink, smtp_settings

SENDER = "leads@firm.example"
IDN = "user@exämple.com"
IDN_ASCII = "user@xn--exmple-cua.com"


def _parse(raw: bytes) -> EmailMessage:
    parsed = BytesParser(policy=default_policy).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _parse_utf8(raw: bytes) -> EmailMessage:
    """A message with UTF-8 headers (RFC 6532) as a mail client reads it: the bytes parser
    would keep those header bytes as surrogate escapes and flag them."""
    from email import message_from_string

    parsed = message_from_string(raw.decode("utf-8"), policy=default_policy)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _email_package(composed: Composed, sender: str, message_id: str) -> EmailMessage:
    """The message as the `email` package builds it (HEAD's build_message): the reference."""
    sender, sender_utf8 = transport_address(sender)
    recipient, recipient_utf8 = transport_address(composed.recipient)
    msg = EmailMessage(policy=SMTPUTF8 if sender_utf8 or recipient_utf8 else SMTP)
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = composed.subject
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = message_id
    msg.set_content(composed.text, charset="utf-8")
    msg.add_alternative(composed.html, subtype="html", charset="utf-8")
    return msg


def _bodies(msg: EmailMessage) -> tuple[str, str]:
    """The text and HTML as a reader gets them. (The bytes parser keeps CRLF line ends in a
    7bit or 8bit body and not in a decoded one: line ends are compared as LF.)"""
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    return tuple(p.get_content().replace("\r\n", "\n") for p in (plain, html))  # type: ignore[return-value]


def _defects(msg: EmailMessage) -> list[str]:
    found = [*msg.defects, *(d for h in msg.values() for d in getattr(h, "defects", ()))]
    for part in msg.walk():
        found.extend(part.defects)
    return [type(d).__name__ for d in found if type(d).__name__ != "NonASCIILocalPartDefect"]


def _longest_line(raw: bytes) -> int:
    return max(len(line) for line in raw.split(b"\r\n"))


SUBJECTS = [
    "We received your details (reference K7QF-M2XD)",
    "New lead K7QF-M2XD: 李 雷",
    "New lead K7QF-M2XD: Zoë Ñúñez",
    "x" * 300,  # one word too long to fold
    " ".join(["word"] * 60),  # folds at spaces
    "Zoë " * 40 + "end",  # long and non-ASCII: several encoded words
    "李" * 200,
    "=?utf-8?b?QmNjOiBldmls?= looks encoded",  # the email package decoded this to "Bcc: evil"
    "a =?utf-8?q?x?= b",
    "  leading spaces",
    "trailing spaces  ",
    "a  b   c",
    "tab\there",
    "\x1b[31mred\x1b[0m",
    "\u202eevil\u202c bidi",
    "line\u2028separator",
    "emoji 🎉🎉 and e\u0301 combining",
    "",
    " ",
    "?=" * 50,
    "a" * 59 + " " + "é" * 70,
]


@pytest.mark.parametrize("subject", SUBJECTS)
def test_a_subject_reads_back_exactly_in_lines_of_78(subject: str) -> None:
    mail = build_message(Composed("p@example.com", subject, "t", "<p>t</p>"), SENDER, "<a@b>")
    raw = mail.as_bytes()
    head = raw.split(b"\r\n\r\n")[0]
    assert head.isascii()  # no address needs UTF-8 here: a non-ASCII subject is encoded
    assert _longest_line(head) <= 78
    parsed = _parse(raw)
    assert parsed["Subject"] == subject
    assert set(parsed.keys()) == {
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
        "Content-Type",
    }
    assert _defects(parsed) == []
    assert mail["Subject"] == subject


BODIES = [
    "Hello,\n\nplain ASCII\n",
    "Zoë Ñúñez\n李 雷\n",  # 8bit
    "a" * 2000 + "\n",  # one long line: quoted-printable, soft breaks
    "李" * 500 + "\n",  # long and non-Latin: base64
    ".\n..\n.hidden\n. \nend\n",  # lone dots at line starts: SMTP's end of data
    "a" * 100 + "\n.\n",  # a lone dot in a quoted-printable body
    "windows\r\nlines\r\nand a lone\rcarriage return\n",
    "trailing white space   \n\t\n",
    "--=_0123456789abcdef0123456789abcdef\nlooks like a boundary\n",
    "\nFrom: evil@example.com\nBcc: all@example.com\n\nheader-like text in the body\n",
    "a NUL \x00 and an ESC \x1b in the text\n",
    "no final newline",
    "",
    "=?utf-8?b?QmNj?= = =3D ==\n",
]


@pytest.mark.parametrize("text", BODIES)
def test_bodies_read_back_as_the_email_package_builds_them(text: str) -> None:
    html = f"<p>{text}</p>"
    composed = Composed("p@example.com", "s", text, html)
    mail = build_message(composed, SENDER, "<a@b>")
    ours, theirs = (
        _parse(mail.as_bytes()),
        _parse(_email_package(composed, SENDER, "<a@b>").as_bytes()),
    )
    assert _bodies(ours) == _bodies(theirs)
    assert _bodies(ours)[0].rstrip("\n") == "\n".join(
        text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    ).rstrip("\n")
    assert ours.get_content_type() == "multipart/alternative"
    for part in ours.iter_parts():
        assert part.get_content_charset() == "utf-8"
    assert _longest_line(mail.as_bytes()) <= 998  # RFC 5322's hard limit
    assert _defects(ours) == []
    assert set(ours.keys()) == set(theirs.keys())


def test_headers_match_the_email_package_and_keep_message_id_and_date() -> None:
    message_id = new_message_id(SENDER, "K7QF-M2XD.notification")
    composed = Composed("ann@firm.example", "New lead K7QF-M2XD: 李 雷", "t\n", "<p>t</p>\n")
    ours = _parse(build_message(composed, SENDER, message_id).as_bytes())
    theirs = _parse(_email_package(composed, SENDER, message_id).as_bytes())
    for name in ("From", "To", "Subject", "Message-ID", "MIME-Version"):
        assert ours[name] == theirs[name], name
    assert abs((parsedate_to_datetime(ours["Date"]) - utcnow()).total_seconds()) < 60
    mail = build_message(composed, SENDER, message_id)
    assert (mail["Message-ID"], mail["To"], mail["message-id"]) == (
        message_id,
        "ann@firm.example",
        message_id,
    )
    assert mail["Bcc"] is None and mail.get("Cc", "none") == "none"


def test_utf8_headers_only_where_an_address_needs_them() -> None:
    zoe = build_message(Composed("zoë@example.com", "Zoë", "t", "h"), SENDER, "<a@b>")
    assert zoe.smtputf8 and zoe.recipient == "zoë@example.com"
    assert b"To: zo\xc3\xab@example.com\r\n" in zoe.as_bytes()  # RFC 6532, not an encoded word
    parsed = _parse_utf8(zoe.as_bytes())
    assert parsed["Subject"] == "Zoë" and _defects(parsed) == []
    assert parsed["To"].addresses[0].username == "zoë"  # type: ignore[union-attr]
    idn = build_message(Composed(IDN, "Zoë", "t", "h"), SENDER, "<a@b>")
    assert not idn.smtputf8 and idn.recipient == IDN_ASCII
    assert idn.as_bytes().split(b"\r\n\r\n")[0].isascii()
    assert _parse(idn.as_bytes())["To"] == IDN_ASCII


INJECTIONS = [
    ("recipient", "victim@example.com\r\nBcc: everyone@example.com"),
    ("recipient", "victim@example.com\nBcc: everyone@example.com"),
    ("recipient", "a@example.com, b@example.com"),
    ("recipient", "Evil <a@example.com>"),
    ("recipient", "a@example.com (comment)"),
    ("recipient", "a b@example.com"),
    ("recipient", "a@example.com\x00"),
    ("recipient", "a..b@example.com"),
    ("recipient", "a@[127.0.0.1]"),
    ("subject", "Hello\r\nBcc: everyone@example.com"),
    ("subject", "Hello\nBcc: everyone@example.com"),
    ("subject", "Hello\rBcc: everyone@example.com"),
    ("subject", "lone \udce9 surrogate"),
    ("message_id", "<a@b>\r\nBcc: everyone@example.com"),
    ("message_id", "<a b@c>"),
    ("message_id", "no-brackets@example.com"),
    ("text", "lone \udce9 surrogate"),
    ("sender", "leads@firm.example\r\nBcc: x@example.com"),
]


@pytest.mark.parametrize(("field", "value"), INJECTIONS)
def test_a_value_that_would_break_out_is_refused_before_anything_is_sent(
    field: str, value: str
) -> None:
    composed = {"recipient": "p@example.com", "subject": "s", "text": "t", "html": "h"}
    sender, message_id = SENDER, "<a@b>"
    if field in composed:
        composed[field] = value
    elif field == "sender":
        sender = value
    else:
        message_id = value
    with pytest.raises(ValueError) as refused:  # as the email package's own refusal was
        build_message(Composed(**composed), sender, message_id)
    assert isinstance(refused.value, DeliveryError)  # and the outbox records it as one
    assert "\n" not in str(refused.value) and "\r" not in str(refused.value)


# -- attachments ---------------------------------------------------------------------------------

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"

NAMES = [
    ("cv.pdf", "cv.pdf"),
    ("Zoë CV.pdf", "Zoë CV.pdf"),  # RFC 2231
    (
        'evil".pdf\r\nBcc: everyone@example.com\r\n\r\nbody',
        'evil".pdfBcc: everyone@example.combody',
    ),
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\x\\cv.pdf", "cv.pdf"),
    ("=?utf-8?b?QmNjOiBldmls?=.pdf", "=?utf-8?b?QmNjOiBldmls?=.pdf"),  # not decoded
    ("\u202eexe.pdf", "exe.pdf"),  # no bidi override
    ("a;b=c; filename=other.exe", "a;b=c; filename=other.exe"),
    ('quote"and\\backslash.pdf', "backslash.pdf"),  # a backslash is a Windows path
    ('quote"and=?.pdf', 'quote"and=?.pdf'),
    ("x" * 10_000 + ".pdf", "x" * 150),
    ("名前" * 100 + ".pdf", "名前" * 75),  # long and non-ASCII: RFC 2231 continuations
    ("", "attachment"),
    ("\x00\x1b", "attachment"),
    (" ..", "attachment"),
]


@pytest.mark.parametrize(("name", "shown"), NAMES)
def test_an_attachment_name_cannot_add_a_header_and_reads_back_cleaned(
    name: str, shown: str
) -> None:
    composed = Composed("p@example.com", "New lead", "text\n", "<p>html</p>\n")
    mail = build_message(composed, SENDER, "<a@b>", attachments=[(name, "application/pdf", PDF)])
    raw = mail.as_bytes()
    assert _longest_line(raw) <= 998
    parsed = _parse(raw)
    assert parsed.get_content_type() == "multipart/mixed"
    assert "Bcc" not in parsed and parsed["Subject"] == "New lead"
    first, *files = list(parsed.iter_parts())
    assert first.get_content_type() == "multipart/alternative"
    assert _bodies(parsed) == ("text\n", "<p>html</p>\n")
    assert len(files) == 1 and files[0].get_content_disposition() == "attachment"
    assert files[0].get_filename() == shown == clean_filename(name)
    assert files[0].get_content_type() == "application/pdf"
    assert files[0].get_content() == PDF
    assert list(files[0].keys()) == [
        "Content-Type",
        "Content-Disposition",
        "Content-Transfer-Encoding",
    ]
    assert _defects(parsed) == []


def test_several_attachments_in_order_and_a_hostile_content_type_is_neutral() -> None:
    files = [
        ("a.txt", "text/plain", b"plain text\n"),
        ("b.bin", "application/pdf\r\nBcc: everyone@example.com", b"\x00\x01"),
        (
            "c.docx",
            "Application/VND.openxmlformats-officedocument.wordprocessingml.document",
            b"PK",
        ),
        ("empty", "application/octet-stream", b""),
    ]
    composed = Composed("zoë@example.com", "Zoë", "t\n", "<p>t</p>\n")
    mail = build_message(composed, SENDER, "<a@b>", attachments=files)
    assert mail.smtputf8
    parsed = _parse_utf8(mail.as_bytes())
    attached = list(parsed.iter_attachments())
    assert [a.get_filename() for a in attached] == ["a.txt", "b.bin", "c.docx", "empty"]
    assert [a.get_content_type() for a in attached] == [
        "text/plain",
        "application/octet-stream",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/octet-stream",
    ]
    assert [a.get_payload(decode=True) for a in attached] == [f[2] for f in files]
    assert "Bcc" not in mail.as_bytes().decode("utf-8").split("\r\n\r\n")[0]
    assert _defects(parsed) == []


def test_without_attachments_the_message_is_multipart_alternative_only() -> None:
    mail = build_message(Composed("p@example.com", "s", "t", "h"), SENDER, "<a@b>")
    assert isinstance(mail, Mail)
    assert b"multipart/mixed" not in mail.as_bytes()
    assert not any(part.get_filename() for part in _parse(mail.as_bytes()).walk())


def test_an_attachment_travels_through_a_real_smtp_server_with_dots_and_utf8(
    sqlite_core: Settings, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    body = ".\n..\n.hidden\nZoë\n" + "long " * 100 + "\n.\n"
    resume = b".\r\n" + PDF + b"\r\n.\r\n"  # dots and CRLF inside the file: base64 carries them
    sender = SmtpSender(smtp_settings(sqlite_core, smtp_sink.port), None)
    sent = []
    try:
        for to in ("p@example.com", IDN):
            composed = Composed(to, "New lead K7QF-M2XD: Zoë Ñúñez", body, f"<pre>{body}</pre>")
            mail = build_message(
                composed,
                sqlite_core.from_email,
                new_message_id(sqlite_core.from_email, "x"),
                attachments=[("Zoë CV.pdf", "application/pdf", resume)],
            )
            sender.send(mail)
            sent.append(mail)
    finally:
        sender.close()
    received = smtp_sink.wait_for(2)
    assert [rcpts for rcpts, _ in received] == [["p@example.com"], [IDN_ASCII]]
    for mail, (_, msg) in zip(sent, received, strict=True):
        assert msg["Message-ID"] == mail["Message-ID"]
        assert msg["Subject"] == "New lead K7QF-M2XD: Zoë Ñúñez"
        assert _bodies(msg) == (body, f"<pre>{body}</pre>\n")
        (attached,) = list(msg.iter_attachments())
        assert attached.get_filename() == "Zoë CV.pdf"
        assert attached.get_content() == resume
    # The .eml file holds the same bytes, and reads back the same.
    FileSender(tmp_path).send(sent[0])
    (eml,) = tmp_path.glob("*.eml")
    assert eml.read_bytes() == sent[0].as_bytes()


def test_a_refused_message_is_a_delivery_error_the_outbox_records(sqlite_core: Settings) -> None:
    with pytest.raises(InvalidMessage, match="line break"):
        build_message(Composed("p@example.com", "a\nb", "t", "h"), SENDER, "<a@b>")
