"""Turning a stored message into RFC 5322 and handing it to a backend: `.eml` files or SMTP."""

from __future__ import annotations

import contextlib
import os
import re
import smtplib
import tempfile
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from leadctl.errors import LeadctlError
from leadctl.settings import Settings
from leadctl.timeutil import utcnow

if TYPE_CHECKING:
    from leadctl.messages import Composed


class DeliveryError(LeadctlError):
    """A message could not be handed over; the outbox will try again later."""


def build_message(composed: Composed, sender: str, message_id: str) -> EmailMessage:
    """The MIME message; headers go through the `email` package, which refuses CR/LF in them."""
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = sender
    msg["To"] = composed.recipient
    msg["Subject"] = composed.subject
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = message_id
    msg.set_content(composed.text, charset="utf-8")
    msg.add_alternative(composed.html, subtype="html", charset="utf-8")
    return msg


class Sender(Protocol):
    def send(self, msg: EmailMessage) -> None: ...

    def close(self) -> None: ...


class FileSender:
    """Writes one `.eml` per message; a retried message overwrites its own file, never doubles."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def send(self, msg: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9.-]+", "_", str(msg["Message-ID"]).strip("<>"))
        target = self.directory / f"{stem}.eml"
        try:
            # A crash mid-write leaves a hidden .part file, not one that looks like a message.
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
    """SMTP through yagmail, which opens the connection, does STARTTLS/SSL and logs in.

    One instance holds one connection and is not thread-safe: give each worker thread its own.
    The message is built here, so nothing a prospect typed reaches yagmail's `contents`
    (which would attach any string that happens to be a file path).
    """

    def __init__(self, settings: Settings, password: str | None) -> None:
        self.settings = settings
        self.password = password
        self._client: Any = None

    def _connect(self) -> Any:
        import yagmail  # heavy (lxml, premailer): only the SMTP path pays for it

        s = self.settings
        port = s.smtp_port or (465 if s.smtp_ssl else 587 if s.smtp_starttls else 25)
        client = yagmail.SMTP(
            # A {login: alias} dict: a plain login without "@" would get "@gmail.com" appended.
            user={s.smtp_user: s.smtp_user} if s.smtp_user else None,
            password=self.password if s.smtp_user else None,
            host=s.smtp_host,
            port=port,
            smtp_starttls=s.smtp_starttls and not s.smtp_ssl,
            smtp_ssl=s.smtp_ssl,
            smtp_skip_login=not s.smtp_user,
            soft_email_validation=False,
            timeout=s.smtp_timeout,
        )
        client.login()
        return client

    def send(self, msg: EmailMessage) -> None:
        recipients = [str(msg["To"])]
        for attempt in (1, 2):
            try:
                if self._client is None:
                    self._client = self._connect()
                refused = self._client.smtp.sendmail(
                    self.settings.from_email, recipients, msg.as_bytes()
                )
            except smtplib.SMTPServerDisconnected as exc:
                self.close()
                if attempt == 2:
                    raise DeliveryError(f"SMTP server disconnected: {exc}") from exc
                continue  # a kept-alive connection the server dropped: reconnect once
            except smtplib.SMTPRecipientsRefused as exc:
                codes = "; ".join(f"{code} {reason!r}" for code, reason in exc.recipients.values())
                raise DeliveryError(f"recipient refused: {codes}") from exc
            except smtplib.SMTPResponseException as exc:
                self.close()
                raise DeliveryError(f"SMTP error {exc.smtp_code}: {exc.smtp_error!r}") from exc
            except (smtplib.SMTPException, OSError) as exc:
                self.close()
                raise DeliveryError(f"SMTP delivery failed: {type(exc).__name__}: {exc}") from exc
            if refused:
                raise DeliveryError(f"recipient refused: {refused}")
            return

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):  # closing a broken connection must not fail
                self._client.close()
            self._client = None


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
