"""Turning a stored message into RFC 5322 and handing it to a backend: `.eml` files or SMTP."""

from __future__ import annotations

import contextlib
import os
import re
import smtplib
import tempfile
from collections.abc import Sequence
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from leadctl.errors import LeadctlError
from leadctl.mime import Mail, compose
from leadctl.private import private_folder
from leadctl.settings import Settings
from leadctl.timeutil import utcnow

if TYPE_CHECKING:
    from leadctl.messages import Composed


class DeliveryError(LeadctlError):
    """A message could not be handed over; the outbox will try again later."""


def transport_address(address: str) -> tuple[str, bool]:
    """The address as it travels, and whether it needs SMTPUTF8.

    An internationalized domain travels in its IDNA (`xn--`) form, which every server takes; only
    a non-ASCII local part (`zoë@…`) needs the server's SMTPUTF8 and RFC 6532 (UTF-8) headers.
    """
    if address.isascii():
        return address, False
    from email_validator import EmailNotValidError, validate_email

    try:
        checked = validate_email(address, check_deliverability=False, globally_deliverable=False)
    except EmailNotValidError as exc:
        raise DeliveryError(f"cannot send to {address!r}: {exc}") from None
    if checked.ascii_email is not None:
        return checked.ascii_email, False
    return f"{checked.local_part}@{checked.ascii_domain}", True


GMAIL = ("gmail.com", "googlemail.com")  # Gmail ignores dots in the local part


def mailbox_key(email: str) -> str:
    """The mailbox an address reaches, however it is spelt: the local part lowercased and without
    its `+tag`, the domain lowercased in IDNA form (`Jane+x@Exämple.com` becomes
    `jane@xn--exmple-cua.com`); Gmail's dots dropped and googlemail.com read as gmail.com.

    Only for counting (the confirmation cap): two keys that merge distinct mailboxes would merely
    send one confirmation fewer.
    """
    try:
        address, _ = transport_address(email)
    except DeliveryError:  # not an address we could send to: count it as spelt
        address = email
    local, _, domain = address.rpartition("@")
    local, domain = local.partition("+")[0].lower(), domain.lower()
    if domain in GMAIL:  # one mailbox, however many dots: `j.a.n.e@` is `jane@`
        local, domain = local.replace(".", ""), GMAIL[0]
    return f"{local}@{domain}"


class InvalidMessage(DeliveryError, ValueError):
    """A message that must not be sent as it stands (a header that would break out of its line,
    an address that is not one plain local@domain); a ValueError as the `email` package's were."""


def build_message(
    composed: Composed,
    sender: str,
    message_id: str,
    attachments: Sequence[tuple[str, str, bytes]] = (),
) -> Mail:
    """The MIME message, written by `leadctl.mime` from checked values: CR/LF is refused in
    every header, a non-ASCII subject is encoded (RFC 2047), and UTF-8 headers (RFC 6532) appear
    only where an address needs them, so the message suits any server. The `.eml` file gets the
    same bytes.

    `attachments` are (file name, content type, bytes): the message becomes multipart/mixed,
    the text and HTML first, each file after it in base64.
    """
    sender, sender_utf8 = transport_address(sender)
    recipient, recipient_utf8 = transport_address(composed.recipient)
    try:
        return compose(
            sender=sender,
            recipient=recipient,
            smtputf8=sender_utf8 or recipient_utf8,
            subject=composed.subject,
            date=format_datetime(utcnow()),
            message_id=message_id,
            text=composed.text,
            html=composed.html,
            attachments=attachments,
        )
    except ValueError as exc:  # UnsafeHeader, or a lone surrogate that UTF-8 cannot carry
        raise InvalidMessage(f"cannot build the message to {recipient!r}: {exc}") from exc


class Sender(Protocol):
    def send(self, msg: Mail) -> None: ...

    def close(self) -> None: ...


class FileSender:
    """Writes one `.eml` per message; a retried message overwrites its own file, never doubles.

    The folder is made 0700 and each file 0600 whatever the umask: they hold prospects' details.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def send(self, msg: Mail) -> None:
        stem = re.sub(r"[^A-Za-z0-9.-]+", "_", str(msg["Message-ID"]).strip("<>"))
        target = self.directory / f"{stem}.eml"
        try:
            private_folder(self.directory)
            # A crash mid-write leaves a hidden .part file, not one that looks like a message.
            # mkstemp makes it 0600 whatever the umask, and os.replace keeps that mode.
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".eml.part")
            with os.fdopen(fd, "wb") as handle:
                handle.write(msg.as_bytes())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            raise DeliveryError(f"cannot write {target}: {exc.strerror}") from exc

    def close(self) -> None:
        pass


class SmtpSender:
    """SMTP through yagmail, which opens the connection and does STARTTLS/SSL; the login is ours,
    so that a refused one is reported as such, naming the user.

    One instance holds one connection and is not thread-safe: give each worker thread its own.
    Whatever happens to one message, the connection is reset (RSET) or dropped before the next,
    so one failure never poisons the session. The message is built here, so nothing a prospect
    typed reaches yagmail's `contents` (which would attach any string that is a file path).
    """

    def __init__(self, settings: Settings, password: str | None) -> None:
        self.settings = settings
        self.password = password
        self._client: Any = None
        self._sender: tuple[str, bool] | None = None

    @property
    def _where(self) -> str:
        s = self.settings
        return f"{s.smtp_host}:{self._port}"

    @property
    def _port(self) -> int:
        s = self.settings
        return s.smtp_port or (465 if s.smtp_ssl else 587 if s.smtp_starttls else 25)

    def _connect(self) -> Any:
        import yagmail  # heavy (lxml, premailer): only the SMTP path pays for it

        s = self.settings
        try:
            client = yagmail.SMTP(
                # A {login: alias} dict: a plain login without "@" would get "@gmail.com" added.
                user={s.smtp_user: s.smtp_user} if s.smtp_user else None,
                host=s.smtp_host,
                port=self._port,
                smtp_starttls=s.smtp_starttls and not s.smtp_ssl,
                smtp_ssl=s.smtp_ssl,
                smtp_skip_login=True,
                soft_email_validation=False,
                timeout=s.smtp_timeout,
            )
            client.login()  # with smtp_skip_login: connect and STARTTLS only
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"cannot connect to the SMTP server {self._where}: {_describe(exc)}"
            ) from exc
        if s.smtp_user:
            try:
                self._login(client.smtp)
            except BaseException:
                _quietly_close(client)
                raise
        return client

    def _login(self, smtp: smtplib.SMTP) -> None:
        user = self.settings.smtp_user
        fix = "check the password (leadctl mail setup, or LEADS_SMTP_PASSWORD)"
        try:
            smtp.login(user, self.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"SMTP authentication as {user!r} failed at {self._where} "
                f"({exc.smtp_code} {_text(exc.smtp_error)}): {fix}"
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(
                f"SMTP authentication as {user!r} is impossible: {self._where} offers no AUTH "
                "(many servers offer it only after STARTTLS: LEADS_SMTP_STARTTLS=true)"
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            # Servers stall or hang up on a wrong password rather than answer it quickly.
            if _timed_out(exc):
                what = f"gave no answer within {self.settings.smtp_timeout:g} s"
            else:
                what = f"dropped the connection ({_describe(exc)})"
            raise DeliveryError(
                f"SMTP authentication as {user!r} failed at {self._where}: the server {what}; {fix}"
            ) from exc

    def send(self, msg: Mail) -> None:
        # Everything that can fail on our side fails here, before a transaction is begun.
        sender, sender_utf8 = self._envelope_sender()
        recipient = msg.recipient  # in its transport form already (IDNA domain)
        international = sender_utf8 or msg.smtputf8
        data = msg.as_bytes()
        for attempt in (1, 2):
            reused = self._client is not None
            if self._client is None:
                self._client = self._connect()
            smtp: smtplib.SMTP = self._client.smtp
            try:
                smtp.ehlo_or_helo_if_needed()
                options = []
                if international:
                    if not smtp.has_extn("smtputf8"):
                        raise DeliveryError(
                            f"cannot send to {recipient!r}: a non-ASCII address needs the "
                            f"SMTPUTF8 extension, which {self._where} does not offer"
                        )
                    options.append("SMTPUTF8")
                if not data.isascii() and smtp.has_extn("8bitmime"):
                    options.append("BODY=8BITMIME")  # the UTF-8 text parts are sent as 8bit
                _transaction(smtp, sender, recipient, data, options)
            except DeliveryError:
                raise  # nothing was begun on the connection
            except smtplib.SMTPServerDisconnected as exc:
                self.close()
                if reused and attempt == 1 and not _timed_out(exc):
                    continue  # a kept-alive connection the server dropped: reconnect once
                if _timed_out(exc):
                    raise DeliveryError(
                        f"SMTP server {self._where} gave no answer within "
                        f"{self.settings.smtp_timeout:g} s"
                    ) from exc
                raise DeliveryError(f"SMTP server {self._where} disconnected: {exc}") from exc
            except Exception as exc:
                self._recover(exc)
                raise DeliveryError(_failure(exc)) from exc
            except BaseException:
                self.close()  # interrupted mid-transaction: the connection's state is unknown
                raise
            return

    def _envelope_sender(self) -> tuple[str, bool]:
        """LEADS_FROM_EMAIL as it travels, worked out once per sender rather than per message."""
        if self._sender is None:
            self._sender = transport_address(self.settings.from_email)
        return self._sender

    def _recover(self, exc: Exception) -> None:
        """Leave the connection ready for the next message: RSET, or drop it when that fails
        or when the failure leaves its state unknown (a timeout, a broken socket)."""
        # smtplib's exceptions are OSErrors too: a refusal with a reply code is answered by RSET.
        refusal = isinstance(exc, smtplib.SMTPResponseException)
        if (isinstance(exc, OSError) and not refusal) or self._client is None:
            self.close()
            return
        try:
            code, _ = self._client.smtp.rset()
        except Exception:  # noqa: BLE001 - any trouble here means: start afresh
            code = 0
        if code != 250:
            self.close()

    def verify(self) -> None:
        """Connect, STARTTLS or TLS as set, log in, and hang up: the path of every message, without
        one (`leadctl config check --smtp`). DeliveryError says what failed."""
        try:
            self._client = self._connect()
        finally:
            self.close()

    def close(self) -> None:
        if self._client is not None:
            _quietly_close(self._client)
            self._client = None


def _transaction(
    smtp: smtplib.SMTP, sender: str, recipient: str, data: bytes, options: list[str]
) -> None:
    """MAIL, RCPT, DATA for one recipient: `smtplib.SMTP.sendmail`, less its `quoteaddr`, which
    parses both addresses with `email.utils.parseaddr` again for each message (7 % of the
    delivery process's CPU). Ours are checked plain addr-specs already (`leadctl.mime`).

    Raises what sendmail raises (SMTPSenderRefused, SMTPRecipientsRefused, SMTPDataError);
    the caller resets or drops the connection after any of them.
    """
    if not smtp.does_esmtp:
        options = []  # as sendmail: a HELO-only server takes no MAIL parameters
    elif smtp.has_extn("size"):
        options = [*options, f"SIZE={len(data)}"]
    if "SMTPUTF8" in options:
        smtp.command_encoding = "utf-8"  # as SMTP.mail does; RSET sets it back to ASCII
    code, reply = smtp.docmd("mail", f"FROM:<{sender}>{''.join(' ' + o for o in options)}")
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    code, reply = smtp.docmd("rcpt", f"TO:<{recipient}>")
    if code not in (250, 251):
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
    code, reply = smtp.data(data)
    if code != 250:
        raise smtplib.SMTPDataError(code, reply)


def _quietly_close(client: Any) -> None:
    with contextlib.suppress(Exception):  # closing a broken connection must not fail
        client.close()
    with contextlib.suppress(Exception):
        client.smtp.close()  # yagmail's close() only QUITs; a failed QUIT leaves the socket


def _timed_out(exc: BaseException) -> bool:
    """smtplib reports a silent server as "Connection unexpectedly closed: timed out"."""
    return isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError)


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _failure(exc: Exception) -> str:
    """One line for a failed send (kept as the outbox message's last error)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "recipient refused: " + "; ".join(
            f"{code} {_text(reason)}" for code, reason in exc.recipients.values()
        )
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return f"sender {exc.sender!r} refused: {exc.smtp_code} {_text(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"SMTP error {exc.smtp_code}: {_text(exc.smtp_error)}"
    if isinstance(exc, UnicodeError):
        return f"an address or header could not be encoded for SMTP: {exc}"
    return f"SMTP delivery failed: {_describe(exc)}"


def make_sender(settings: Settings) -> Sender:
    """The backend `LEADS_MAIL_BACKEND` names, with its secret looked up now."""
    if settings.mail_backend == "file":
        return FileSender(settings.mail_dir)
    if settings.mail_backend == "smtp":
        password = None
        if settings.smtp_user:
            from leadctl.secrets import smtp_password

            password, _ = smtp_password(
                settings.smtp_user, settings.smtp_host, settings.smtp_password
            )
        return SmtpSender(settings, password)
    raise LeadctlError(f"LEADS_MAIL_BACKEND must be file or smtp, not {settings.mail_backend!r}")
