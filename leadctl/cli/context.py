"""What every command is given: the streams, settings, the output, the actor, and the Backend."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from leadctl.cli.output import Output, Streams
from leadctl.settings import Settings

if TYPE_CHECKING:
    from leadctl.cli.backend import Backend


@dataclass
class Env:
    """Global options, resolved lazily: a command that needs no database never opens one."""

    db_url: str | None = None
    server: str | None = None
    actor_option: str | None = None
    env_file: str | None = None  # --env-file; None: LEADS_ENV_FILE, else ./.env when present
    streams: Streams = field(default_factory=Streams.from_system)
    _settings: Settings | None = field(default=None, repr=False)
    _db_open: bool = field(default=False, repr=False)
    _backend: Backend | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            overrides = {"database_url": self.db_url} if self.db_url else {}
            self._settings = Settings.from_env(env_file=self.env_file, **overrides)
        return self._settings

    @property
    def actor(self) -> str:
        """Who a local change is recorded as: `--as`, `LEADCTL_ACTOR`, else the OS user.

        Their rights are an attorney's of that email (leadctl.permissions.local)."""
        chosen = self.actor_option or os.environ.get("LEADCTL_ACTOR", "").strip()
        if chosen:
            return chosen.lower() if "@" in chosen else chosen
        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return "unknown"

    def open_database(self, *, create: bool = False, check_schema: bool = True) -> None:
        """Bind the models to the database. Only `create=True` may make a new one (`attorney
        add`, `db upgrade`; `serve` through the server): a command that would find nothing in
        a database it made fails naming where it looked instead."""
        if self._db_open:
            return
        from leadctl import db, events, schema
        from leadctl.errors import NoDatabase

        if self.server:
            raise UsageError(
                f"{self._on_the_database_only()}: run it where the database is, with --db URL "
                "or LEADS_DATABASE_URL instead of --server"
            )
        url = self.settings.database_url
        try:
            db.bind(url, self.settings.sqlite_busy_timeout_ms, create=create)
        except NoDatabase as exc:
            server = self.remote_server  # LEADCTL_SERVER or a saved login: a remote user
            if server is None:
                raise
            raise NoDatabase(
                f"{self._on_the_database_only()}, not through {server}: run it where the "
                f"database is ({exc})"
            ) from None
        events.configure(self.settings)  # local changes queue webhooks as the server's do
        try:
            if check_schema:
                version = schema.current_version()
                if not create and version is None:
                    raise db.no_database(url, "holds no leadctl tables")
                if version != schema.SCHEMA_VERSION:  # create it, or refuse an outdated one
                    schema.ensure_schema()
        except BaseException:
            db.close_connection()
            raise
        self._db_open = True

    @staticmethod
    def _on_the_database_only() -> str:
        # Typer runs commands in its own copy of Click (typer._click); the context is there.
        from typer._click.globals import get_current_context

        ctx = get_current_context(silent=True)
        command = ctx.command_path if ctx is not None else "this command"
        return f"{command} works on the database itself"

    def admin(self, command: str) -> str:
        """The acting admin's email: `--as` (or LEADCTL_ACTOR) must name an active admin
        attorney. For commands on the database itself, never through a server (`open_database`
        refuses --server)."""
        from leadctl.errors import Forbidden
        from leadctl.models import Attorney, email_key

        self.open_database()
        actor = self.actor
        found = Attorney.get_or_none(Attorney.email == email_key(actor)) if "@" in actor else None
        if found is None or found.role != "admin" or not found.active:
            raise Forbidden(
                f"leadctl {command} needs an admin, and {actor} is not an active admin attorney; "
                "pass --as ADMIN_EMAIL before the command (see: leadctl attorney list)"
            )
        return str(found.email)

    @property
    def remote_server(self) -> str | None:
        """The server for remote mode: `--server`, else local if `--db`, else `LEADCTL_SERVER`,
        else a saved login; None means local mode."""
        from leadctl.cli.remote import normalize_server, saved_server

        if self.server:
            return normalize_server(self.server)
        if self.db_url:
            return None
        chosen = os.environ.get("LEADCTL_SERVER", "").strip() or saved_server()
        return normalize_server(chosen) if chosen else None

    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = self._make_backend()
        return self._backend

    def close(self) -> None:
        """End of the command: close the remote connection pool or the database connection."""
        if self._backend is not None:
            self._backend.close()
            self._backend = None
        if self._db_open:
            from leadctl.db import close_connection

            close_connection()
            self._db_open = False

    def _make_backend(self) -> Backend:
        server = self.remote_server
        if server is not None:
            from leadctl.cli.remote import RemoteBackend, find_token

            if self.actor_option:
                raise UsageError(
                    "--as is for local mode; remotely you act as the owner of the token"
                )
            token, _source = find_token(server)
            return RemoteBackend(server, token)
        from leadctl.cli.backend import LocalBackend

        self.open_database()
        return LocalBackend(self.actor, self.settings)

    def identity(self, backend: Backend) -> str:
        """The email the caller acts as: the token's attorney remotely, else the local actor."""
        return str(backend.me()["email"])

    def confirm(self, question: str, *, yes: bool, destructive: bool) -> None:
        """The one rule for asking: `yes` (or nothing worth asking about) goes ahead; a person
        at a terminal is asked; without one, a destructive change needs --yes and any other
        goes ahead (so `list --ndjson | leadctl reach-out -` works in a pipe)."""
        import typer

        if yes:
            return
        if self.streams.interactive:
            if not typer.confirm(question, default=False, err=True):
                raise typer.Abort()
            return
        if destructive:
            raise UsageError(
                "this changes data for good; pass --yes to confirm when not at a terminal"
            )

    def output(self, fmt: str = "table") -> Output:
        return Output(fmt, self.streams)


def pick_format(json_: bool = False, csv_: bool = False, ndjson: bool = False) -> str:
    chosen = [name for name, on in (("json", json_), ("csv", csv_), ("ndjson", ndjson)) if on]
    if len(chosen) > 1:
        raise UsageError(f"choose one of --{', --'.join(chosen)}")
    return chosen[0] if chosen else "table"


class UsageError(Exception):
    """The command line is wrong (exit 2)."""
