"""What `leadctl config` shows (each setting, its source, secrets masked) and what
`leadctl config check` finds: every problem in the settings, the database, the templates and
the SMTP login."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from leadctl.db import location, mask_url
from leadctl.envfile import ENV_FILE_VARIABLE, quoted
from leadctl.errors import LeadctlError
from leadctl.settings import Origin, Settings, SettingsError, Sources, convert

MASK = "***"
_FIELDS = {f.metadata["env"]: f for f in dataclasses.fields(Settings)}
_HOST = re.compile(
    r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*"
)


@dataclass(frozen=True)
class Entry:
    """One setting as in effect: its typed value (raw text when it does not parse), where it
    came from, and why it does not parse."""

    name: str
    value: Any
    origin: Origin
    error: str | None = None


@dataclass
class Report:
    """`config check`'s findings: problems fail the check, warnings do not."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)


def entries(sources: Sources, overrides: Mapping[str, str]) -> list[Entry]:
    """Every setting in declaration order; `overrides` (field name → raw text) come from
    command-line options such as `--db`."""
    found = []
    for f in dataclasses.fields(Settings):
        env = f.metadata["env"]
        origin, raw = sources.origins[env], sources.raw.get(env)
        if f.name in overrides:
            origin, raw = Origin("option"), overrides[f.name]
        if raw is None:
            found.append(Entry(env, f.default, origin))
            continue
        try:
            found.append(Entry(env, convert(f, raw), origin))
        except SettingsError as exc:
            found.append(Entry(env, raw, origin, str(exc)))
    return found


def settings_of(found: list[Entry]) -> tuple[Settings, str | None]:
    """The Settings of the entries that parse (the others keep their defaults), and why the
    values that parse one by one do not make Settings together, if they do not."""
    values = {_FIELDS[e.name].name: e.value for e in found if e.error is None}
    try:
        return Settings(**values), None
    except SettingsError as exc:
        return Settings(), str(exc)


def shown(entry: Entry) -> Any:
    """The value as it may be printed: secrets masked, a URL's password too."""
    f = _FIELDS[entry.name]
    if f.metadata.get("secret") and entry.value:
        return MASK
    if entry.name == "LEADS_DATABASE_URL" and isinstance(entry.value, str):
        return mask_url(entry.value)
    return entry.value


def view(sources: Sources, overrides: Mapping[str, str]) -> dict[str, Any]:
    """`leadctl config --json`: the env file, the database's location, and every setting."""
    found = entries(sources, overrides)
    url = next(e.value for e in found if e.name == "LEADS_DATABASE_URL")
    try:
        database = location(url)
    except LeadctlError:
        database = mask_url(url)
    env_file = sources.env_file
    return {
        "env_file": str(env_file.path) if env_file else None,
        "env_file_from": env_file.chosen_by if env_file else None,
        "database": database,
        "settings": {
            e.name: {"value": shown(e), "source": e.origin.source, "line": e.origin.line}
            for e in found
        },
        "problems": [e.error for e in found if e.error],
    }


def check(sources: Sources, overrides: Mapping[str, str], *, smtp: bool = False) -> Report:
    """Every problem `leadctl config check` looks for; it creates nothing (no database, no
    mail folder) and sends nothing."""
    report = Report()
    found = entries(sources, overrides)
    report.problems += [e.error for e in found if e.error]
    _check_env_file(sources, report)
    settings, error = settings_of(found)
    if error:
        report.problems.append(error)
    report.checked.append("settings")
    _check_numbers(settings, report)
    _check_addresses(settings, report)
    url_ok = _check_database_url(settings, sources, report)
    if url_ok:
        _check_database(settings, report)
    if settings.mail_backend == "file":
        _check_mail_dir(settings.mail_dir, report)
    _check_templates(settings, report)
    if smtp:
        _check_smtp(settings, report)
    return report


def _check_env_file(sources: Sources, report: Report) -> None:
    env_file = sources.env_file
    if env_file is None:
        return
    report.checked.append(f"env file {env_file.path}")
    for key, lines in env_file.lines.items():
        where = f"{env_file.path}, line {lines[-1]}"
        if key == ENV_FILE_VARIABLE:
            report.warnings.append(f"{where}: {key} is not read in an env file")
        elif key.startswith("LEADS_") and key not in _FIELDS:
            report.problems.append(f"{where}: {key} is not a setting (a typo?)")
        elif key.startswith("LEADCTL_"):
            # LEADCTL_* belong to one person (their token, their server): never to a file that
            # the server and every user share.
            report.warnings.append(
                f"{where}: {key} is not read from an env file; set it in your own environment"
            )
        if len(lines) > 1 and key in _FIELDS:
            shown_lines = ", ".join(map(str, lines))
            report.warnings.append(
                f"{env_file.path}: {key} is set on lines {shown_lines}; the last one counts"
            )
        if key in _FIELDS and sources.origins[key].source == "environment":
            report.warnings.append(f"{key} is set in the environment, which wins over {where}")


def _check_numbers(s: Settings, report: Report) -> None:
    if s.mail_max_attempts < 1:
        report.problems.append("LEADS_MAIL_MAX_ATTEMPTS must be at least 1")
    if s.smtp_port > 65535:
        report.problems.append(f"LEADS_SMTP_PORT must be a port (1-65535), not {s.smtp_port}")
    if s.smtp_timeout <= 0:
        report.problems.append("LEADS_SMTP_TIMEOUT must be more than 0 seconds")
    if s.max_resume_mb <= 0:
        report.problems.append("LEADS_MAX_RESUME_MB must be more than 0")


def _check_addresses(s: Settings, report: Report) -> None:
    from email_validator import EmailNotValidError, validate_email

    report.checked.append("addresses")
    for env, address in (
        ("LEADS_FROM_EMAIL", s.from_email),
        ("LEADS_INTAKE_EMAIL", s.intake_email),
    ):
        try:
            validate_email(address, check_deliverability=False)
        except EmailNotValidError as exc:
            message = f"{env}: {quoted(address)} is not a deliverable address: {exc}"
            if s.mail_backend == "smtp" or not re.fullmatch(r"[^@\s]+@[^@\s]+", address):
                report.problems.append(message)
            else:
                # leads@localhost is the laptop default: the file backend writes it as is.
                report.warnings.append(f"{message} (fine for the file backend, not for smtp)")
    if s.mail_backend == "smtp" and not _is_host(s.smtp_host):
        report.problems.append(f"LEADS_SMTP_HOST: {quoted(s.smtp_host)} is not a host name")


def _is_host(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
        return True
    except ValueError:
        return bool(_HOST.fullmatch(text)) and len(text) <= 253


def _check_database_url(s: Settings, sources: Sources, report: Report) -> bool:
    url = s.database_url
    if url.startswith("sqlite:"):
        if not url.startswith("sqlite:///") or url == "sqlite:///":
            report.problems.append(
                f"LEADS_DATABASE_URL: {quoted(mask_url(url))} is not a SQLite URL: "
                "sqlite:///leads.db (relative) or sqlite:////srv/leads/leads.db (absolute)"
            )
            return False
        path = url[len("sqlite:///") :]
        env_file = sources.env_file
        origin = sources.origins["LEADS_DATABASE_URL"].source
        elsewhere = env_file is not None and str(env_file.path.parent) != os.getcwd()
        if env_file is not None and elsewhere and not os.path.isabs(path) and origin != "file":
            report.warnings.append(
                f"LEADS_DATABASE_URL ({origin}) is relative to the working folder: set it in "
                f"{env_file.path} so that every folder finds the same database"
            )
        return True
    if url.startswith(("postgresql://", "postgres://")):
        try:
            parts = urlsplit(url)
            _ = parts.port
        except ValueError as exc:
            report.problems.append(f"LEADS_DATABASE_URL: {quoted(mask_url(url))}: {exc}")
            return False
        if not parts.path.strip("/"):
            report.problems.append(
                "LEADS_DATABASE_URL names no database: postgresql://user@host/DATABASE"
            )
            return False
        return True
    report.problems.append(
        f"LEADS_DATABASE_URL must start with sqlite:/// or postgresql://, "
        f"not {quoted(mask_url(url).partition(':')[0])}"
    )
    return False


def _check_database(s: Settings, report: Report) -> None:
    """Reachable and at this leadctl's schema, without creating anything."""
    from leadctl import db, schema

    where = location(s.database_url)
    report.checked.append(f"database {where}")
    try:
        database = db.bind(s.database_url, s.sqlite_busy_timeout_ms, create=False)
    except LeadctlError as exc:
        report.problems.append(str(exc))
        return
    try:
        version = schema.current_version()
    except Exception as exc:  # noqa: BLE001 - any driver's failure means: cannot be used
        report.problems.append(f"the database {where} cannot be used: {_one_line(exc)}")
        return
    finally:
        database.close()
    if version is None:
        report.problems.append(str(db.no_database(s.database_url, "holds no leadctl tables")))
    elif version < schema.SCHEMA_VERSION:
        report.problems.append(
            f"the database {where} is at schema version {version}, this leadctl needs "
            f"{schema.SCHEMA_VERSION}: back it up, then run leadctl db upgrade"
        )
    elif version > schema.SCHEMA_VERSION:
        report.problems.append(
            f"the database {where} is at schema version {version}, newer than this leadctl "
            f"knows ({schema.SCHEMA_VERSION}): upgrade leadctl"
        )


def _check_mail_dir(path: str, report: Report) -> None:
    """The `file` backend's folder can be written, or made (it is made at the first message)."""
    report.checked.append(f"mail folder {os.path.abspath(path)}")
    target = os.path.abspath(path)
    if os.path.exists(target):
        if not os.path.isdir(target):
            report.problems.append(f"LEADS_MAIL_DIR: {target} is not a folder")
        elif not os.access(target, os.W_OK | os.X_OK):
            report.problems.append(f"LEADS_MAIL_DIR: {target} cannot be written")
        return
    parent = os.path.dirname(target)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        report.problems.append(f"LEADS_MAIL_DIR: {target} cannot be made: {parent} is not writable")


def _check_templates(s: Settings, report: Report) -> None:
    """Every template (shipped, and the firm's LEADS_TEMPLATES_DIR) rendered with a sample lead;
    each error in one line with its file and line."""
    from leadctl import template_check

    found = template_check.check(s)
    where = f", {s.templates_dir}" if s.templates_dir else ""
    report.checked.append(f"templates ({found.checked}{where})")
    report.problems += found.problems
    report.warnings += found.warnings


def _check_smtp(s: Settings, report: Report) -> None:
    """Connect, STARTTLS or TLS as set, log in, hang up: the message path without a message."""
    from leadctl.mailer import DeliveryError, SmtpSender
    from leadctl.secrets import smtp_password

    report.checked.append(f"SMTP {s.smtp_host}")
    if s.mail_backend != "smtp":
        report.warnings.append("LEADS_MAIL_BACKEND is file: the server does not use SMTP")
    password = None
    if s.smtp_user:
        try:
            password, _ = smtp_password(s.smtp_user, s.smtp_host, s.smtp_password)
        except LeadctlError as exc:
            report.problems.append(str(exc))
            return
    else:
        report.warnings.append("LEADS_SMTP_USER is empty: the SMTP check connected without a login")
    try:
        SmtpSender(s, password).verify()
    except DeliveryError as exc:
        report.problems.append(str(exc))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__
