"""Mail under attack, against real aiosmtpd servers: internationalized addresses, sessions that
must survive a failed message, the confirmation cap, prospect text, wrong passwords, file modes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_string, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from leadctl import outbox, submissions
from leadctl.mailer import (
    DeliveryError,
    FileSender,
    SmtpSender,
    build_message,
    mailbox_key,
    make_sender,
)
from leadctl.messages import Composed, new_message_id
from leadctl.models import Event, OutboxMessage
from leadctl.resumes import check_resume
from leadctl.settings import Settings
from leadctl.validation import check_prospect
from tests import samples
from tests.conftest import BIN, SmtpSink, free_port, smtp_settings

IDN = "user@exämple.com"
IDN_ASCII = "user@xn--exmple-cua.com"  # how it travels


def _lead(settings: Settings, email: str, first: str = "Zoë") -> submissions.Submitted:
    return submissions.submit(
        check_prospect(first, "Ñúñez", email),
        check_resume("cv.pdf", samples.pdf(3000), settings.max_resume_bytes),
        settings,
    )


def _message(to: str, subject: str = "hello") -> EmailMessage:
    composed = Composed(to, subject, "body", "<p>body</p>")
    return build_message(composed, "leads@firm.example", new_message_id("firm.example", "t"))


def _parse(raw: bytes) -> EmailMessage:
    """A message as a mail client reads it: UTF-8 throughout (RFC 6532), which must decode.

    (The stdlib's bytes parser would keep UTF-8 header bytes as surrogate escapes.)
    """
    parsed = message_from_string(raw.decode("utf-8"), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _defects(msg: EmailMessage) -> list[str]:
    """What the parser found wrong, in the message and its headers. Not NonASCIILocalPart: the
    stdlib's parser predates RFC 6532 and flags every UTF-8 local part, valid or not."""
    found = [*msg.defects, *(d for h in msg.values() for d in getattr(h, "defects", ()))]
    return [type(d).__name__ for d in found if type(d).__name__ != "NonASCIILocalPartDefect"]


def _body(msg: EmailMessage) -> str:
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    return plain.get_content() + "\n" + html.get_content()


@dataclass
class Received:
    rcpt_tos: list[str]
    mail_options: list[str]
    raw: bytes
    msg: EmailMessage


@dataclass
class Server:
    """An aiosmtpd server of our own, for what the shared sink does not do."""

    port: int
    received: list[Received] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.received) < count and time.monotonic() < deadline:
                self.cond.wait(max(deadline - time.monotonic(), 0.01))
            return list(self.received)


@contextlib.contextmanager
def smtp_server(
    *,
    smtputf8: bool = True,
    stall_rcpt: str | None = None,
    authenticator: Any = None,
    refuse_sender: str | None = None,
    refuse_data_to: str | None = None,
) -> Iterator[Server]:
    """aiosmtpd on 127.0.0.1: SMTPUTF8 offered or not; RCPT of `stall_rcpt` never answered (a
    server stuck mid-transaction); `authenticator` to require AUTH; MAIL FROM `refuse_sender`
    refused; the DATA of a message to `refuse_data_to` refused."""
    from aiosmtpd.controller import Controller

    server = Server(free_port())

    class Handler:
        async def handle_MAIL(self, smtp, session, envelope, address, mail_options):  # type: ignore[no-untyped-def]
            if address == refuse_sender:
                return "553 5.7.1 sender not allowed"
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
            return "250 OK"

        async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
            if address == stall_rcpt:
                await asyncio.sleep(5)  # well past the client's timeout
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, smtp, session, envelope):  # type: ignore[no-untyped-def]
            if refuse_data_to in envelope.rcpt_tos:
                return "554 5.6.0 message content rejected"
            raw = envelope.original_content or envelope.content
            msg = _parse(raw)
            with server.cond:
                server.received.append(
                    Received(list(envelope.rcpt_tos), list(envelope.mail_options), raw, msg)  # type: ignore[arg-type]
                )
                server.cond.notify_all()
            return "250 Message accepted"

    kwargs: dict[str, Any] = {"enable_SMTPUTF8": smtputf8}
    if authenticator is not None:
        kwargs |= {"authenticator": authenticator, "auth_require_tls": False}
    controller = Controller(Handler(), hostname="127.0.0.1", port=server.port, **kwargs)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


# -- internationalized addresses -----------------------------------------------------------------


@pytest.mark.postgres
def test_utf8_and_idn_addresses_are_delivered_with_headers_that_parse(core: Settings) -> None:
    zoe = _lead(core, "zoë@example.com")
    idn = _lead(core, IDN)
    assert (zoe.lead.email, idn.lead.email) == ("zoë@example.com", IDN)  # stored as normalized
    with smtp_server(smtputf8=True) as server:
        s = smtp_settings(core, server.port)
        sender = make_sender(s)
        result = outbox.drain(sender, s)
        sender.close()
        assert (result.sent, result.failed) == (4, 0), result.errors
        received = server.wait_for(4)
    confirmations = {r.rcpt_tos[0]: r for r in received if "We received" in str(r.msg["Subject"])}
    assert set(confirmations) == {"zoë@example.com", IDN_ASCII}
    utf8 = confirmations["zoë@example.com"]
    assert "SMTPUTF8" in [o.upper() for o in utf8.mail_options]
    assert b"To: zo\xc3\xab@example.com\r\n" in utf8.raw  # RFC 6532, not an encoded word
    assert utf8.msg["To"].addresses[0].username == "zoë"
    ascii_only = confirmations[IDN_ASCII]
    assert "SMTPUTF8" not in [o.upper() for o in ascii_only.mail_options]  # nothing special
    assert str(ascii_only.msg["To"]) == IDN_ASCII
    assert ascii_only.raw.split(b"\r\n\r\n")[0].isascii()
    for r in received:
        assert _defects(r.msg) == []
        if not r.raw.isascii():  # the notification names Zoë Ñúñez in 8-bit UTF-8 text parts
            assert "BODY=8BITMIME" in [o.upper() for o in r.mail_options]
        assert zoe.lead.reference in str(r.msg["Subject"]) or idn.lead.reference in str(
            r.msg["Subject"]
        )


def test_without_smtputf8_the_message_fails_clearly_and_the_next_still_goes(
    sqlite_core: Settings,
) -> None:
    with smtp_server(smtputf8=False) as server:
        sender = SmtpSender(smtp_settings(sqlite_core, server.port), None)
        try:
            sender.send(_message("first@example.com", "first"))
            kept = sender._client
            with pytest.raises(DeliveryError) as failed:
                sender.send(_message("zoë@example.com"))
            assert "zoë@example.com" in str(failed.value) and "SMTPUTF8" in str(failed.value)
            sender.send(_message("next@example.com", "next"))  # no 503 nested MAIL command
            sender.send(_message(IDN, "idn"))  # an IDN domain needs no SMTPUTF8
            assert sender._client is kept  # the same session went on, nothing left half-done
        finally:
            sender.close()
        received = server.wait_for(3)
    assert [r.rcpt_tos for r in received] == [
        ["first@example.com"],
        ["next@example.com"],
        [IDN_ASCII],
    ]


def test_through_the_outbox_the_utf8_confirmation_dies_visibly_and_the_rest_is_sent(
    sqlite_core: Settings, cli: Any
) -> None:
    zoe = _lead(sqlite_core, "zoë@example.com")
    _lead(sqlite_core, "paul@example.com", first="Paul")
    with smtp_server(smtputf8=False) as server:
        s = smtp_settings(sqlite_core, server.port, mail_max_attempts=1)
        sender = make_sender(s)
        result = outbox.drain(sender, s)
        sender.close()
        received = server.wait_for(3)
    assert (result.sent, result.failed, result.dead) == (3, 1, 1)
    dead = OutboxMessage.get(OutboxMessage.status == "dead")
    assert (dead.lead_id, dead.purpose) == (zoe.lead.id, "confirmation")
    assert "SMTPUTF8" in (dead.last_error or "") and "zoë@example.com" in (dead.last_error or "")
    assert sorted(r.rcpt_tos[0] for r in received) == [
        "intake@localhost",
        "intake@localhost",
        "paul@example.com",
    ]
    listed = cli("outbox", "--json", env={"LEADS_DATABASE_URL": sqlite_core.database_url})
    assert "SMTPUTF8" in listed.stdout


def test_a_server_stuck_mid_transaction_costs_one_message_not_the_session(
    sqlite_core: Settings,
) -> None:
    with smtp_server(stall_rcpt="stuck@example.com") as server:
        s = smtp_settings(sqlite_core, server.port).replace(smtp_timeout=1.0)
        sender = SmtpSender(s, None)
        try:
            with pytest.raises(DeliveryError, match="gave no answer within 1 s"):
                sender.send(_message("stuck@example.com"))
            sender.send(_message("next@example.com", "next"))  # no 503 nested MAIL command
        finally:
            sender.close()
        received = server.wait_for(1)
    assert [r.rcpt_tos for r in received] == [["next@example.com"]]


def test_refused_messages_leave_the_session_clean(
    sqlite_core: Settings, smtp_sink: SmtpSink
) -> None:
    smtp_sink.refuse.add("gone@example.com")
    s = smtp_settings(sqlite_core, smtp_sink.port)
    sender = SmtpSender(s, None)
    try:
        for _ in range(3):
            with pytest.raises(DeliveryError, match="550"):
                sender.send(_message("gone@example.com"))
            sender.send(_message("here@example.com"))
    finally:
        sender.close()
    assert [r for r, _ in smtp_sink.wait_for(3)] == [["here@example.com"]] * 3


def test_eml_files_of_utf8_and_idn_addresses_parse_back(sqlite_core: Settings) -> None:
    _lead(sqlite_core, "zoë@example.com", first="李")
    _lead(sqlite_core, IDN)
    assert outbox.drain(FileSender(sqlite_core.mail_dir), sqlite_core).sent == 4
    files = sorted(Path(sqlite_core.mail_dir).glob("*.eml"))
    raws = [f.read_bytes() for f in files]
    msgs = [_parse(raw) for raw in raws]
    assert sorted(str(m["To"]) for m in msgs) == sorted(
        ["zoë@example.com", IDN_ASCII, "intake@localhost", "intake@localhost"]
    )
    for raw, msg in zip(raws, msgs, strict=True):
        headers = raw.split(b"\r\n\r\n")[0]
        assert b"=?" not in headers.split(b"\r\nSubject:")[0]  # no encoded word in an address
        if str(msg["To"]) != "zoë@example.com":
            assert headers.isascii()  # UTF-8 headers only where an address needs them
        assert _defects(msg) == []


def test_an_address_that_cannot_be_sent_is_refused_before_any_smtp(sqlite_core: Settings) -> None:
    for bad in ("zo\udce9@example.com", "a@b@exämple.com", "ünicode@"):
        with pytest.raises(DeliveryError, match="cannot send to"):
            _message(bad)


# -- the confirmation cap ------------------------------------------------------------------------


@pytest.mark.postgres
def test_the_cap_counts_a_mailbox_not_a_spelling(core: Settings) -> None:
    for email in ("Jane@Example.com", "jane+x@example.com", "JANE+y@EXAMPLE.COM"):
        _lead(core, email, first="Jane")
    confirmations = OutboxMessage.select().where(OutboxMessage.purpose == "confirmation")
    assert [m.recipient for m in confirmations.clone()] == ["Jane@example.com"]
    skipped = Event.select().where(Event.kind == "confirmation_skipped")
    assert skipped.count() == 2
    assert all("this address" in e.details["reason"] for e in skipped)
    notifications = OutboxMessage.select().where(OutboxMessage.purpose == "notification")
    assert notifications.count() == 3  # the attorneys hear of every lead
    # Other mailboxes are other people; an IDN domain spelt either way is one mailbox.
    for email in ("janet@example.com", "jane@example.org", IDN, "USER+z@xn--exmple-cua.com"):
        _lead(core, email, first="Jane")
    assert sorted(m.mailbox for m in confirmations.clone()) == [
        "jane@example.com",
        "jane@example.org",
        "janet@example.com",
        IDN_ASCII,
    ]
    assert skipped.count() == 3


def test_mailbox_keys() -> None:
    key = mailbox_key
    assert key("Jane+a+b@Example.COM") == "jane@example.com"
    gmail = (
        "victim@gmail.com",
        "v.ictim@gmail.com",
        "Vi.Ctim+x@GoogleMail.com",
        "victim@googlemail.com",
    )
    assert {key(a) for a in gmail} == {"victim@gmail.com"}
    assert key("v.ictim@example.com") == "v.ictim@example.com"  # other providers keep their dots
    assert key("Zoë+news@Exämple.com") == "zoë@xn--exmple-cua.com"
    assert key("+only-tag@example.com") == "@example.com"
    assert key("not an address") == "@not an address"  # never raises: it only counts


# -- no prospect-written text to the prospect's address ------------------------------------------

HOSTILE_NAMES = [
    "Visit evil.example/win",
    "https://evil.example/login",
    '<a href="https://evil.example">Claim</a>',
    "[Claim your refund](https://evil.example)",
]


@pytest.mark.parametrize("first", HOSTILE_NAMES)
def test_the_confirmation_never_echoes_the_name_the_notification_keeps_it(
    sqlite_core: Settings, first: str
) -> None:
    _lead(sqlite_core, "victim@example.com", first=first)
    assert outbox.drain(FileSender(sqlite_core.mail_dir), sqlite_core).sent == 2
    by_to = {
        str(m["To"]): m
        for m in (_parse(f.read_bytes()) for f in Path(sqlite_core.mail_dir).glob("*.eml"))
    }
    confirmation, notification = by_to["victim@example.com"], by_to["intake@localhost"]
    shown = _body(confirmation) + str(confirmation["Subject"])
    assert "evil" not in shown and "Claim" not in shown
    assert shown.startswith("Hello,")
    assert "<p>Hello,</p>" in shown
    assert first in notification.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert first in str(notification["Subject"])


# -- a wrong SMTP password -----------------------------------------------------------------------


def _run_leadctl(
    args: list[str], env: dict[str, str], **kw: Any
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("LEADS_", "LEADCTL_"))}
    return subprocess.run(
        [str(BIN / "leadctl"), *args],
        env={**full, **env},
        capture_output=True,
        text=True,
        timeout=15,  # "never hangs", not a speed figure
        **kw,
    )


def test_a_wrong_password_is_an_authentication_failure_naming_the_user(tmp_path: Path) -> None:
    sink = SmtpSink(free_port(), login=("mailer", "right-pass"))
    sink.start()
    try:
        done = _run_leadctl(
            ["mail", "test", "someone@example.com"],
            {
                "LEADS_DATABASE_URL": f"sqlite:///{tmp_path}/leads.db",
                "LEADS_MAIL_BACKEND": "smtp",
                "LEADS_SMTP_HOST": "127.0.0.1",
                "LEADS_SMTP_PORT": str(sink.port),
                "LEADS_SMTP_USER": "mailer",
                "LEADS_SMTP_PASSWORD": "Wr0ng-S3cret",
                "LEADS_SMTP_STARTTLS": "false",
                "LEADS_SMTP_TIMEOUT": "10",
            },
        )
    finally:
        sink.stop()
    assert done.returncode == 1
    error = done.stderr.strip()
    assert "authentication as 'mailer' failed" in error and "535" in error
    assert "LEADS_SMTP_PASSWORD" in error  # what to do about it
    assert "time" not in error.lower()  # not reported as a timeout
    assert "Wr0ng-S3cret" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr and sink.received == []


def test_a_server_that_stalls_a_wrong_password_is_still_an_authentication_failure(
    sqlite_core: Settings,
) -> None:
    from aiosmtpd.smtp import AuthResult

    def tarpit(*_: Any) -> Any:
        return AuthResult(success=False, handled=True)  # and no answer at all

    with smtp_server(authenticator=tarpit) as server:
        s = smtp_settings(sqlite_core, server.port).replace(smtp_user="mailer", smtp_timeout=1.0)
        sender = SmtpSender(s, "Wr0ng-S3cret")
        try:
            with pytest.raises(DeliveryError) as failed:
                sender.send(_message("someone@example.com"))
        finally:
            sender.close()
    text = str(failed.value)
    assert "authentication as 'mailer' failed" in text and "no answer within 1 s" in text
    assert "Wr0ng-S3cret" not in text


# -- private files -------------------------------------------------------------------------------


def test_mail_folder_is_0700_and_each_eml_0600_under_umask_000(
    sqlite_core: Settings, tmp_path: Path
) -> None:
    _lead(sqlite_core, "zoe@example.com")
    mail_dir = tmp_path / "spool" / "mail"
    done = _run_leadctl(
        ["outbox", "send"],
        {"LEADS_DATABASE_URL": sqlite_core.database_url, "LEADS_MAIL_DIR": str(mail_dir)},
        umask=0,
    )
    assert done.returncode == 0, done.stderr
    files = list(mail_dir.glob("*.eml"))
    assert len(files) == 2
    for path in (mail_dir, mail_dir.parent):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert not list(mail_dir.glob(".*"))  # no .part file left behind


# -- the SMTP transaction (MAIL, RCPT, DATA written by leadctl, not smtplib's sendmail) ------------


def test_a_refused_sender_or_message_is_reported_and_the_session_goes_on(
    sqlite_core: Settings,
) -> None:
    s = smtp_settings(sqlite_core, 0)
    with smtp_server(refuse_data_to="spam@example.com") as server:
        sender = SmtpSender(s.replace(smtp_port=server.port), None)
        try:
            with pytest.raises(DeliveryError, match=r"^SMTP error 554: 5.6.0 message content"):
                sender.send(_message("spam@example.com"))
            kept = sender._client
            sender.send(_message("next@example.com", "next"))
            assert sender._client is kept  # RSET, not a new connection
        finally:
            sender.close()
        assert [r.rcpt_tos for r in server.wait_for(1)] == [["next@example.com"]]
    with smtp_server(refuse_sender=s.from_email) as server:
        sender = SmtpSender(s.replace(smtp_port=server.port), None)
        try:
            for _ in range(2):  # the same clear failure each time, never a 503 out of sequence
                with pytest.raises(DeliveryError) as refused:
                    sender.send(_message("p@example.com"))
                assert str(refused.value) == (
                    f"sender {s.from_email!r} refused: 553 5.7.1 sender not allowed"
                )
        finally:
            sender.close()
        assert server.received == []


def test_one_session_carries_utf8_ascii_and_idn_messages_with_the_right_parameters(
    sqlite_core: Settings,
) -> None:
    with smtp_server(smtputf8=True) as server:
        sender = SmtpSender(smtp_settings(sqlite_core, server.port), None)
        sent = [_message(to, "Zoë") for to in ("zoë@example.com", "plain@example.com", IDN)]
        try:
            for mail in sent:
                sender.send(mail)
        finally:
            sender.close()
        received = server.wait_for(3)
    assert [r.rcpt_tos for r in received] == [
        ["zoë@example.com"],
        ["plain@example.com"],
        [IDN_ASCII],
    ]
    options = [[o.upper() for o in r.mail_options] for r in received]
    assert "SMTPUTF8" in options[0] and "SMTPUTF8" not in options[1] + options[2]
    for mail, r, opts in zip(sent, received, options, strict=True):
        assert f"SIZE={len(mail.as_bytes())}" in opts  # as smtplib's sendmail declares it
        assert r.raw == mail.as_bytes()  # byte for byte, dot-stuffing undone by the server
        assert r.msg["Subject"] == "Zoë" and _defects(r.msg) == []


def test_a_dropped_kept_alive_connection_is_reopened_once(
    sqlite_core: Settings, smtp_sink: SmtpSink
) -> None:
    sender = SmtpSender(smtp_settings(sqlite_core, smtp_sink.port), None)
    try:
        sender.send(_message("first@example.com"))
        sender._client.smtp.sock.close()  # the server (or a NAT) dropped the idle session
        sender.send(_message("second@example.com"))
    finally:
        sender.close()
    assert [r for r, _ in smtp_sink.wait_for(2)] == [["first@example.com"], ["second@example.com"]]
