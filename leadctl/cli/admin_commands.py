"""Admin commands (local mode): serve, attorney, token, outbox, mail, db."""

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from leadctl.cli.context import Env, UsageError, pick_format
from leadctl.cli.exitcodes import ExitCode
from leadctl.cli.lead_commands import JsonOpt, YesOpt
from leadctl.cli.output import Column, age
from leadctl.errors import LeadctlError

attorney_app = typer.Typer(help="Manage attorneys (local mode).", no_args_is_help=True)
token_app = typer.Typer(help="Manage API tokens (local mode).", no_args_is_help=True)
db_app = typer.Typer(help="Back up and upgrade the database (local mode).", no_args_is_help=True)
mail_app = typer.Typer(help="Configure and test outgoing mail.", no_args_is_help=True)
outbox_app = typer.Typer(
    help="See and drive the email outbox (local mode).", invoke_without_command=True
)


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 1,
) -> None:
    """Run the intake server (public form, intake API, staff API, mail worker) under uvicorn."""
    import os

    import uvicorn

    env: Env = ctx.obj
    if env.db_url:
        os.environ["LEADS_DATABASE_URL"] = env.db_url  # worker processes read the environment
    env.settings  # noqa: B018 - a bad setting fails now, in one line, not in the server's log
    uvicorn.run(
        "intake.asgi:app",
        host=host,
        port=port,
        workers=workers,
        access_log=False,  # intake logs one line per request itself, with the lead reference
        log_config=_log_config(),
        timeout_graceful_shutdown=20,
        timeout_keep_alive=5,
        # The request head bounded in size and time (httptools has no limit of its own).
        http="intake.httpd:BoundedHttpToolsProtocol",
        # LEADS_TRUSTED_PROXIES alone says who the client is: uvicorn's own X-Forwarded-For
        # handling would trust any local client's header.
        proxy_headers=False,
    )


def _log_config() -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "intake": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "leadctl": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
    }


# -- attorneys -----------------------------------------------------------------------------------

ATTORNEY_COLUMNS = [
    Column("ID", lambda r: r["id"]),
    Column("NAME", lambda r: r["name"]),
    Column("EMAIL", lambda r: r["email"]),
    Column("ROLE", lambda r: r["role"]),
    Column("ACTIVE", lambda r: r["active"], on_terminal=lambda r: "yes" if r["active"] else "no"),
]


@attorney_app.command("add")
def attorney_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Full name.")],
    email: Annotated[str, typer.Argument(help="Email address (unique).")],
    admin: Annotated[bool, typer.Option("--admin", help="Give the admin role.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Add an attorney and print their API token (shown this once only)."""
    from leadctl import attorneys

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    env.open_database()
    attorney, issued = attorneys.add(name, email, "admin" if admin else "attorney")
    data = {
        **attorneys.attorney_dict(attorney),
        "token": issued.secret,
        "token_id": issued.token.id,
    }
    out.obj(data, lambda d: d["token"])
    if not out.machine:
        out.say(
            f"Added {attorney.email}. The token above is shown only now: "
            "give it to them for leadctl login."
        )


@attorney_app.command("list")
def attorney_list(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """List attorneys."""
    from leadctl import attorneys

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    env.open_database()
    out.rows([attorneys.attorney_dict(a) for a in attorneys.all_attorneys()], ATTORNEY_COLUMNS)


@attorney_app.command("deactivate")
def attorney_deactivate(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The attorney's email.")],
    yes: YesOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Deactivate an attorney: their tokens stop working and new leads go to others."""
    from leadctl import attorneys

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    env.open_database()
    _confirm(out, f"Deactivate {email}?", yes)
    attorney, changed = attorneys.deactivate(email)
    data = {**attorneys.attorney_dict(attorney), "changed": changed}
    out.obj(data, lambda d: f"{d['email']} is {'now' if changed else 'already'} inactive")


def _confirm(out: Any, question: str, yes: bool) -> None:
    """Destructive commands: ask on a terminal; elsewhere demand --yes."""
    if yes:
        return
    if not (sys.stdin.isatty() and out.stderr_tty):
        raise UsageError("this changes data; pass --yes to confirm when not at a terminal")
    if not typer.confirm(question, default=False, err=True):
        raise typer.Abort()


# -- tokens --------------------------------------------------------------------------------------

TOKEN_COLUMNS = [
    Column("ID", lambda r: r["id"]),
    Column("ATTORNEY", lambda r: r["attorney"]),
    Column("NAME", lambda r: r["name"]),
    Column("HINT", lambda r: r["hint"]),
    Column("CREATED", lambda r: r["created_at"], on_terminal=lambda r: age(r["created_at"])),
    Column(
        "LAST USED",
        lambda r: r["last_used_at"],
        on_terminal=lambda r: age(r["last_used_at"]) or "never",
    ),
    Column(
        "REVOKED",
        lambda r: r["revoked_at"],
        on_terminal=lambda r: "revoked" if r["revoked_at"] else "",
    ),
]


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The attorney's email.")],
    name: Annotated[str, typer.Option("--name", help="A label, e.g. the laptop it is for.")] = "",
    json_: JsonOpt = False,
) -> None:
    """Create an API token for an attorney (printed once)."""
    from leadctl import attorneys

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    env.open_database()
    issued = attorneys.create_token(email, name)
    data = {**attorneys.token_dict(issued.token, email.strip().lower()), "token": issued.secret}
    out.obj(data, lambda d: d["token"])
    if not out.machine:
        out.say("The token above is shown only now.")


@token_app.command("list")
def token_list(
    ctx: typer.Context,
    attorney: Annotated[
        str | None, typer.Option("--attorney", help="Only this attorney's tokens.")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """List API tokens (never the secrets)."""
    from leadctl import attorneys

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    env.open_database()
    out.rows(
        [attorneys.token_dict(t, email) for t, email in attorneys.tokens(attorney)], TOKEN_COLUMNS
    )


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context,
    token_id: Annotated[int, typer.Argument(help="Token id (see: leadctl token list).")],
    yes: YesOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Revoke an API token; it stops working at once."""
    from leadctl import attorneys

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    env.open_database()
    _confirm(out, f"Revoke token {token_id}?", yes)
    token, changed = attorneys.revoke_token(token_id)
    data = {**attorneys.token_dict(token, token.attorney.email), "changed": changed}
    out.obj(data, lambda d: f"token {d['id']} is {'now' if changed else 'already'} revoked")


# -- outbox and mail ------------------------------------------------------------------------------

OUTBOX_COLUMNS = [
    Column("ID", lambda r: r["id"]),
    Column("LEAD", lambda r: r["lead_id"]),
    Column("PURPOSE", lambda r: r["purpose"]),
    Column("TO", lambda r: r["recipient"]),
    Column("STATUS", lambda r: r["status"]),
    Column("ATTEMPTS", lambda r: r["attempts"]),
    Column("NEXT ATTEMPT", lambda r: r["next_attempt_at"]),
    Column("LAST ERROR", lambda r: r["last_error"]),
]


@outbox_app.callback()
def outbox_list(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", help="pending, sending, sent or dead.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="Show at most this many messages.")
    ] = 50,
    json_: JsonOpt = False,
) -> None:
    """List outbox messages, newest first; subcommands retry and send."""
    if ctx.invoked_subcommand is not None:
        return
    from leadctl.models import OutboxMessage
    from leadctl.outbox import STATUSES
    from leadctl.timeutil import iso

    if status is not None and status not in STATUSES:
        raise UsageError(f"--status must be one of {', '.join(STATUSES)}")
    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    env.open_database()
    query = OutboxMessage.select().order_by(OutboxMessage.id.desc()).limit(limit)
    if status:
        query = query.where(OutboxMessage.status == status)
    rows = [
        {
            "id": m.id,
            "lead_id": m.lead_id,
            "purpose": m.purpose,
            "recipient": m.recipient,
            "subject": m.subject,
            "message_id": m.message_id,
            "status": m.status,
            "attempts": m.attempts,
            "next_attempt_at": iso(m.next_attempt_at),
            "last_error": m.last_error,
            "created_at": iso(m.created_at),
            "sent_at": iso(m.sent_at),
        }
        for m in query
    ]
    out.rows(rows, OUTBOX_COLUMNS)


@outbox_app.command("retry")
def outbox_retry(
    ctx: typer.Context,
    ids: Annotated[list[int] | None, typer.Argument(help="Message ids to send again.")] = None,
    dead: Annotated[bool, typer.Option("--dead", help="Retry every dead message.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Make dead (or named) messages due again now."""
    from leadctl import outbox

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    if not ids and not dead:
        raise UsageError("name message ids, or pass --dead")
    env.open_database()
    count = outbox.retry(ids, dead=dead)
    out.obj({"requeued": count}, lambda d: f"{d['requeued']} message(s) will be sent again")


@outbox_app.command("send")
def outbox_send(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Deliver every message that is due now, without a server (cron, a stopped server)."""
    from leadctl import outbox
    from leadctl.mailer import make_sender

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    env.open_database()
    sender = make_sender(env.settings)
    try:
        result = outbox.drain(sender, env.settings)
    finally:
        sender.close()
    data = {
        "sent": result.sent,
        "failed": result.failed,
        "dead": result.dead,
        "errors": result.errors,
    }
    out.obj(data, lambda d: f"sent {d['sent']}, failed {d['failed']} (dead {d['dead']})")
    for error in result.errors if not out.machine else []:
        out.error(error)
    if result.failed:
        raise typer.Exit(ExitCode.FAILURE)


@mail_app.command("test")
def mail_test(
    ctx: typer.Context,
    to: Annotated[str, typer.Argument(help="Address to send the test message to.")],
    json_: JsonOpt = False,
) -> None:
    """Send one test message with the configured backend and say whether it worked."""
    from leadctl.mailer import DeliveryError, build_message, make_sender
    from leadctl.messages import new_message_id, test_message
    from leadctl.validation import normalize_email

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    s = env.settings
    try:
        recipient = normalize_email(to)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    sender = make_sender(s)
    target = (
        s.mail_dir if s.mail_backend == "file" else f"{s.smtp_host}:{s.smtp_port or 'default port'}"
    )
    try:
        sender.send(
            build_message(
                test_message(recipient), s.from_email, new_message_id(s.from_email, "test")
            )
        )
    except DeliveryError as exc:
        raise LeadctlError(
            f"the test message was NOT sent via {s.mail_backend} ({target}): {exc}"
        ) from None
    finally:
        sender.close()
    data = {"sent": True, "backend": s.mail_backend, "to": recipient, "via": target}
    out.obj(data, lambda d: f"Test message sent to {d['to']} via {d['backend']} ({d['via']}).")


@mail_app.command("setup")
def mail_setup(ctx: typer.Context) -> None:
    """Store the SMTP password (for LEADS_SMTP_USER at LEADS_SMTP_HOST) in the OS keyring."""
    from leadctl.secrets import KeyringUnavailable, set_secret, smtp_key

    env: Env = ctx.obj
    s = env.settings
    if not s.smtp_user:
        raise UsageError(
            "set LEADS_SMTP_USER (and LEADS_SMTP_HOST) first; with no user no password is needed"
        )
    if not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt(
            f"SMTP password for {s.smtp_user} at {s.smtp_host}", hide_input=True, err=True
        )
    if not password:
        raise UsageError("the password is empty")
    try:
        set_secret(smtp_key(s.smtp_user, s.smtp_host), password)
    except KeyringUnavailable as exc:
        raise LeadctlError(
            f"the SMTP password was not stored: {exc.advice('LEADS_SMTP_PASSWORD')}"
        ) from None
    env.output().say(
        f"Stored the SMTP password for {s.smtp_user} at {s.smtp_host} in the OS keyring."
    )


# -- quarantine ----------------------------------------------------------------------------------


def release(
    ctx: typer.Context,
    lead: Annotated[str, typer.Argument(help="Id or reference of a quarantined lead.")],
    json_: JsonOpt = False,
) -> None:
    """Turn a quarantined lead into a real one: assigned, its two emails queued."""
    from leadctl import submissions

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    env.open_database()
    data = submissions.release(lead, env.actor, env.settings)
    out.obj(
        data,
        lambda d: f"lead {d['id']} released and assigned to {d['attorney'] or 'the intake inbox'}",
    )


def purge_quarantine(
    ctx: typer.Context,
    older_than: Annotated[
        str, typer.Option("--older-than", help="Delete quarantined leads older than this.")
    ] = "30d",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count them; delete nothing.")] = False,
    yes: YesOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Delete quarantined leads (suspected spam) older than 30 days, with their resumes."""
    from leadctl import submissions
    from leadctl.timeutil import parse_duration

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    try:
        age = parse_duration(older_than)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    env.open_database()
    if not dry_run:
        _confirm(out, f"Delete quarantined leads older than {older_than}?", yes)
    count = submissions.purge_quarantine(age, dry_run=dry_run)
    data = {"deleted": 0 if dry_run else count, "would_delete": count if dry_run else 0}
    out.obj(
        data,
        lambda d: f"would delete {count}" if dry_run else f"deleted {count} quarantined lead(s)",
    )


# -- database ------------------------------------------------------------------------------------


@db_app.command("backup")
def db_backup(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Where to write the copy (a new file).")],
    json_: JsonOpt = False,
) -> None:
    """Copy the SQLite database online: consistent even while the server writes."""
    import sqlite3

    from leadctl.db import sqlite_path
    from leadctl.private import private_file

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    url = env.settings.database_url
    if not url.startswith("sqlite:"):
        raise LeadctlError("db backup copies SQLite databases; for PostgreSQL use pg_dump")
    source = sqlite_path(url)
    if not Path(source).exists():
        raise LeadctlError(f"no database at {source}")
    try:  # the copy holds client data: readable by its owner only, whatever the umask
        private_file(path)
    except FileExistsError:
        raise LeadctlError(f"{path} exists; choose a new file") from None
    except OSError as exc:
        raise LeadctlError(f"cannot create {path}: {exc.strerror}") from None
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(path)
    try:
        with dst:
            src.backup(dst, pages=4096)  # in steps, so the server's writers are not held up
        check = dst.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        dst.close()
        src.close()
    data = {"path": str(path), "bytes": path.stat().st_size, "integrity": check}
    out.obj(
        data,
        lambda d: f"Backed up to {d['path']} ({d['bytes']:,} bytes, integrity {d['integrity']})",
    )


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Bring the database schema up to this version of leadctl."""
    from leadctl import db

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    env.open_database(check_schema=False)
    before, after = db.upgrade()
    data = {"from_version": before, "to_version": after, "changed": before != after}
    out.obj(
        data,
        lambda d: (
            f"schema version {d['to_version']}"
            + (f" (was {d['from_version']})" if d["changed"] else ", already current")
        ),
    )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("release")(release)
    app.command("purge-quarantine")(purge_quarantine)
    app.add_typer(attorney_app, name="attorney")
    app.add_typer(token_app, name="token")
    app.add_typer(outbox_app, name="outbox")
    app.add_typer(mail_app, name="mail")
    app.add_typer(db_app, name="db")
