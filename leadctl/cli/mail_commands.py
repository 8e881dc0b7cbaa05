"""Outgoing mail: the outbox (list, retry, send) and the mail settings (test, setup)."""

from typing import Annotated

import typer

from leadctl.cli.context import Env, UsageError, pick_format
from leadctl.cli.exitcodes import ExitCode
from leadctl.cli.lead_commands import CsvOpt, JsonOpt, NdjsonOpt
from leadctl.cli.views import OUTBOX_COLUMNS
from leadctl.errors import LeadctlError

mail_app = typer.Typer(help="Configure and test outgoing mail.", no_args_is_help=True)
outbox_app = typer.Typer(
    help="See and drive the email outbox (local mode).", invoke_without_command=True
)


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
    csv_: CsvOpt = False,
    ndjson: NdjsonOpt = False,
) -> None:
    """List outbox messages, newest first; subcommands retry and send."""
    if ctx.invoked_subcommand is not None:
        return
    from leadctl.outbox import list_messages
    from leadctl.states import MessageStatus

    try:
        wanted = MessageStatus(status) if status is not None else None
    except ValueError:
        raise UsageError(f"--status must be one of {', '.join(MessageStatus)}") from None
    env: Env = ctx.obj
    out = env.output(pick_format(json_, csv_, ndjson))
    env.open_database()
    if env.settings.attorney_scope == "own":  # every lead's mail: recipients, subjects
        env.admin("outbox")
    out.rows(list_messages(wanted, limit), OUTBOX_COLUMNS)


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
    if not ids:
        count = outbox.retry(None, dead=True)
        out.obj({"requeued": count}, lambda d: f"{d['requeued']} message(s) will be sent again")
        return
    count, failed = outbox.retry_named(ids)
    for item in failed:  # as a batch command says each item it could not do, and goes on
        out.error(item["error"])
    data = {"requeued": count, "failed": failed}
    out.obj(data, lambda d: f"{d['requeued']} message(s) will be sent again")
    if failed:
        raise typer.Exit(ExitCode.FAILURE)


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
    if not env.streams.stdin_tty:
        password = env.streams.stdin.readline().rstrip("\n")
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


def register(app: typer.Typer) -> None:
    app.add_typer(outbox_app, name="outbox")
    app.add_typer(mail_app, name="mail")
