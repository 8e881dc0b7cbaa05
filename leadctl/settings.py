"""Settings of the intake server and the core: one field per `LEADS_*` variable, with its default
and its one-line doc (the README's table is tested against them).

Where each value's text comes from (the environment, then an env file) is `setting_sources`;
how the text becomes a value, `setting_values`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any

from leadctl import setting_sources
from leadctl.envfile import ENV_FILE_DOC, ENV_FILE_VARIABLE
from leadctl.logs import LOG_FORMATS
from leadctl.setting_sources import Origin, Sources
from leadctl.setting_values import (
    Network,
    SettingsError,
    check_mail_concurrency,
    convert,
    parse_frame_ancestors,
    parse_period,
    parse_proxies,
    parse_rate,
    parse_url,
)

__all__ = [  # what the rest of leadctl, intake and the tests import from here
    "Network",
    "Origin",
    "Settings",
    "SettingsError",
    "Sources",
    "convert",
    "parse_proxies",
    "parse_rate",
    "read_sources",
    "setting_docs",
]


def _setting(env: str, default: Any, doc: str, **flags: Any) -> Any:
    """A setting: `path` (resolved against the env file's folder), `secret` (never shown),
    `choices` (the only values it takes)."""
    return field(default=default, metadata={"env": env, "doc": doc, **flags})


@dataclass(frozen=True)
class Settings:
    """Every setting, one field per environment variable; `Settings.from_env()` reads them."""

    database_url: str = _setting(
        "LEADS_DATABASE_URL",
        "sqlite:///leads.db",
        "Database: `sqlite:///path` (one file) or `postgresql://user@host/db`.",
    )
    max_resume_mb: float = _setting(
        "LEADS_MAX_RESUME_MB", 10.0, "Largest resume accepted, in MiB (1 MiB = 1,048,576 bytes)."
    )
    rate_limit: str = _setting(
        "LEADS_RATE_LIMIT",
        "10/minute",
        "Accepted submissions per client, e.g. `10/minute`, `100/hour`; `off` disables.",
    )
    refusal_delay_seconds: float = _setting(
        "LEADS_REFUSAL_DELAY_SECONDS",
        1.0,
        "How long a submission over the rate limit waits for its 429 (slows a flood; 0 = none).",
    )
    trusted_proxies: str = _setting(
        "LEADS_TRUSTED_PROXIES",
        "",
        "Comma-separated proxy addresses (or CIDRs) whose `X-Forwarded-For` names the client; "
        "the only source of the client address (uvicorn's own proxy handling is off).",
    )
    frame_ancestors: str = _setting(
        "LEADS_FRAME_ANCESTORS",
        "",
        "Sites allowed to embed the form in a frame, e.g. `https://www.firm.example`; "
        "empty refuses framing.",
    )
    header_timeout_seconds: float = _setting(
        "LEADS_HEADER_TIMEOUT_SECONDS",
        10.0,
        "Longest time a client may take to send a request line and headers (then cut off).",
    )
    confirmations_per_hour: int = _setting(
        "LEADS_CONFIRMATIONS_PER_HOUR",
        60,
        "Most prospect confirmations sent per hour in total (and one per address per hour).",
    )
    min_fill_seconds: float = _setting(
        "LEADS_MIN_FILL_SECONDS",
        3.0,
        "An HTML form sent back sooner than this after it was shown is treated as a bot.",
    )
    body_timeout_seconds: float = _setting(
        "LEADS_BODY_TIMEOUT_SECONDS",
        60.0,
        "Longest time a client may take to send a submission's body (slow clients get 408).",
    )
    upload_memory_mb: int = _setting(
        "LEADS_UPLOAD_MEMORY_MB",
        256,
        "Submission bytes one server process holds while bodies arrive; past it new bytes get "
        "503 (and each client sends at most 4 bodies at once, while LEADS_RATE_LIMIT is on).",
    )
    sqlite_busy_timeout_ms: int = _setting(
        "LEADS_SQLITE_BUSY_TIMEOUT_MS",
        5000,
        "How long a SQLite write waits for the lock before the request answers 503.",
    )
    mail_backend: str = _setting(
        "LEADS_MAIL_BACKEND",
        "file",
        "How mail leaves: `file` (`.eml` files) or `smtp`.",
        choices=("file", "smtp"),
    )
    mail_dir: str = _setting(
        "LEADS_MAIL_DIR",
        "mail",
        "Folder the `file` backend writes one `.eml` per message to.",
        path=True,
    )
    mail_max_attempts: int = _setting(
        "LEADS_MAIL_MAX_ATTEMPTS", 8, "Delivery attempts before a message is marked `dead`."
    )
    mail_retry_seconds: float = _setting(
        "LEADS_MAIL_RETRY_SECONDS",
        30.0,
        "First retry delay of a failed message; it doubles per attempt, capped at an hour.",
    )
    mail_concurrency: int = _setting(
        "LEADS_MAIL_CONCURRENCY",
        4,
        "SMTP connections mail is sent on at once (1 to 64), each kept open between messages.",
    )
    from_email: str = _setting(
        "LEADS_FROM_EMAIL", "leads@localhost", "Sender address of every message."
    )
    intake_email: str = _setting(
        "LEADS_INTAKE_EMAIL",
        "intake@localhost",
        "The firm's intake inbox: notified of leads no active attorney can take.",
    )
    smtp_host: str = _setting("LEADS_SMTP_HOST", "localhost", "SMTP server host name.")
    smtp_port: int = _setting(
        "LEADS_SMTP_PORT", 0, "SMTP server port; 0 means 465 with SSL, else 587 (25 with neither)."
    )
    smtp_user: str = _setting(
        "LEADS_SMTP_USER", "", "SMTP login name; empty means no login is attempted."
    )
    smtp_starttls: bool = _setting(
        "LEADS_SMTP_STARTTLS", True, "Upgrade the SMTP connection with STARTTLS (`true`/`false`)."
    )
    smtp_ssl: bool = _setting(
        "LEADS_SMTP_SSL", False, "Connect to SMTP over TLS from the start (`true`/`false`)."
    )
    smtp_password: str = _setting(
        "LEADS_SMTP_PASSWORD",
        "",
        "SMTP password where no OS keyring works; otherwise `leadctl mail setup` keeps it there.",
        secret=True,
    )
    smtp_timeout: float = _setting(
        "LEADS_SMTP_TIMEOUT", 15.0, "Seconds an SMTP connection may stay silent before it fails."
    )
    log_format: str = _setting(
        "LEADS_LOG_FORMAT",
        "text",
        "Server log lines: `text`, or `json` for one JSON object per line.",
        choices=LOG_FORMATS,
    )
    metrics: bool = _setting(
        "LEADS_METRICS",
        False,
        "Serve Prometheus metrics at `/metrics` (`on`/`off`); the proxy must keep it private.",
    )
    ready_outbox_lag_seconds: float = _setting(
        "LEADS_READY_OUTBOX_LAG_SECONDS",
        600.0,
        "`/ready` fails when a message has been due this long without being sent (0 = never).",
    )
    firm_name: str = _setting(
        "LEADS_FIRM_NAME",
        "",
        "The firm's name, as the form, its pages and the emails say it (empty: neutral wording).",
    )
    templates_dir: str = _setting(
        "LEADS_TEMPLATES_DIR",
        "",
        "Folder of the firm's own templates: a file there overrides the shipped one of the same "
        "name (`leadctl config check` renders them all).",
        path=True,
    )
    privacy_url: str = _setting(
        "LEADS_PRIVACY_URL",
        "",
        "The firm's privacy notice (https://…), linked beside the form's disclaimer.",
    )
    require_consent: bool = _setting(
        "LEADS_REQUIRE_CONSENT",
        True,
        "A submission must accept the disclaimer (the form's box; the API's `consent=true`).",
    )
    retention: str = _setting(
        "LEADS_RETENTION",
        "off",
        "Erase leads older than this (e.g. `730d`, `2y`), checked daily by the delivery worker; "
        "`off` keeps them.",
    )
    attorney_scope: str = _setting(
        "LEADS_ATTORNEY_SCOPE",
        "all",
        "Which leads an attorney may read: `all`, or `own` (their own and the intake inbox's).",
        choices=("all", "own"),
    )
    remind_after: str = _setting(
        "LEADS_REMIND_AFTER",
        "24h",
        "A lead still pending this long sends its attorney one reminder; `off` sends none.",
    )
    escalate_after: str = _setting(
        "LEADS_ESCALATE_AFTER",
        "48h",
        "A lead still pending this long sends the intake inbox one escalation; `off` sends none.",
    )
    quarantine_digest: str = _setting(
        "LEADS_QUARANTINE_DIGEST",
        "1h",
        "At most one digest of newly quarantined leads to the intake inbox per this period; "
        "`off` sends none.",
    )
    webhook_url: str = _setting(
        "LEADS_WEBHOOK_URL",
        "",
        "Where lead events are POSTed (https://…, or http:// to this machine); empty: none. "
        "Shown as `***`: a chat webhook's path is its password.",
        secret=True,
    )
    webhook_secret: str = _setting(
        "LEADS_WEBHOOK_SECRET",
        "",
        "Key of each webhook's `X-Leadctl-Signature` (HMAC-SHA256 of the body); needed with a "
        "webhook URL.",
        secret=True,
    )
    webhook_format: str = _setting(
        "LEADS_WEBHOOK_FORMAT",
        "json",
        'Webhook bodies: `json` (the event), or `slack` (a Slack- or Teams-ready `{"text": …}`).',
        choices=("json", "slack"),
    )
    attach_resume: bool = _setting(
        "LEADS_ATTACH_RESUME",
        False,
        "Attach the resume to the attorney's notification email (`on`/`off`).",
    )

    def __post_init__(self) -> None:
        # Every setting is parsed here, so a bad value fails at start, in one place, in one line.
        _ = self.rate, self.proxy_networks, self.frame_ancestor_sources
        if self.log_format not in LOG_FORMATS:
            raise SettingsError(
                f"LEADS_LOG_FORMAT must be {' or '.join(LOG_FORMATS)}, not {self.log_format!r}"
            )
        check_mail_concurrency(self.mail_concurrency)
        if self.upload_memory_mb < 1:
            raise SettingsError(
                f"LEADS_UPLOAD_MEMORY_MB must be at least 1, not {self.upload_memory_mb}"
            )
        _ = self.retention_period, self.remind_after_period, self.escalate_after_period
        _ = self.quarantine_digest_period
        parse_url("LEADS_PRIVACY_URL", self.privacy_url)
        parse_url("LEADS_WEBHOOK_URL", self.webhook_url, loopback_http=True)
        if self.webhook_url and not self.webhook_secret:
            raise SettingsError("LEADS_WEBHOOK_SECRET must be set when LEADS_WEBHOOK_URL is")

    @cached_property
    def rate(self) -> tuple[int, float] | None:
        """`LEADS_RATE_LIMIT` as (submissions, period in seconds); None when off."""
        return parse_rate(self.rate_limit)

    @cached_property
    def proxy_networks(self) -> list[Network]:
        """`LEADS_TRUSTED_PROXIES` as networks."""
        return parse_proxies(self.trusted_proxies)

    @cached_property
    def frame_ancestor_sources(self) -> list[str]:
        """`LEADS_FRAME_ANCESTORS` as CSP sources; empty means no site may frame the pages."""
        return parse_frame_ancestors(self.frame_ancestors)

    @cached_property
    def retention_period(self) -> timedelta | None:
        """`LEADS_RETENTION`; None when off."""
        return parse_period("LEADS_RETENTION", self.retention)

    @cached_property
    def remind_after_period(self) -> timedelta | None:
        return parse_period("LEADS_REMIND_AFTER", self.remind_after)

    @cached_property
    def escalate_after_period(self) -> timedelta | None:
        return parse_period("LEADS_ESCALATE_AFTER", self.escalate_after)

    @cached_property
    def quarantine_digest_period(self) -> timedelta | None:
        return parse_period("LEADS_QUARANTINE_DIGEST", self.quarantine_digest)

    @property
    def max_resume_bytes(self) -> int:
        return int(self.max_resume_mb * 1024 * 1024)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite:")

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        /,
        *,
        env_file: str | os.PathLike[str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Settings from the environment, then the env file (see `read_sources`); keyword
        arguments win over both. An explicit `environ` reads no `./.env` of its own accord."""
        sources = read_sources(environ, env_file=env_file)
        values = {
            f.name: convert(f, sources.raw[f.metadata["env"]])
            for f in dataclasses.fields(cls)
            if f.metadata["env"] in sources.raw
        }
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def setting_docs() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting, in declaration order, after the
    variable that names the env file."""
    rows = [(ENV_FILE_VARIABLE, "", ENV_FILE_DOC)]
    for f in dataclasses.fields(Settings):
        default = f.default
        shown = str(default).lower() if isinstance(default, bool) else str(default)
        rows.append((f.metadata["env"], shown, f.metadata["doc"]))
    return rows


def read_sources(
    environ: Mapping[str, str] | None = None,
    /,
    *,
    env_file: str | os.PathLike[str] | None = None,
) -> Sources:
    """Each setting's raw text and where it came from (`setting_sources.read`)."""
    return setting_sources.read(dataclasses.fields(Settings), environ, env_file=env_file)
