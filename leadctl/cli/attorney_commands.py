"""Attorneys and their API tokens (local mode): add, list, deactivate; create, list, revoke."""

from typing import Annotated, Any

import typer

from leadctl.cli.context import Env, pick_format
from leadctl.cli.lead_commands import CsvOpt, JsonOpt, NdjsonOpt, YesOpt
from leadctl.cli.output import Output
from leadctl.cli.views import ATTORNEY_COLUMNS, TOKEN_COLUMNS

attorney_app = typer.Typer(help="Manage attorneys (local mode).", no_args_is_help=True)
token_app = typer.Typer(help="Manage API tokens (local mode).", no_args_is_help=True)


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
    env.open_database(create=True)  # the first attorney is how a firm starts
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
def attorney_list(
    ctx: typer.Context, json_: JsonOpt = False, csv_: CsvOpt = False, ndjson: NdjsonOpt = False
) -> None:
    """List attorneys."""
    from leadctl import attorneys

    env: Env = ctx.obj
    out = env.output(pick_format(json_, csv_, ndjson))
    env.open_database()
    out.rows([attorneys.attorney_dict(a) for a in attorneys.all_attorneys()], ATTORNEY_COLUMNS)


@attorney_app.command("deactivate")
def attorney_deactivate(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The attorney's email.")],
    reassign_to: Annotated[
        str | None,
        typer.Option(
            "--reassign-to",
            metavar="EMAIL|round-robin",
            help="Also move their pending leads (in one go) to this attorney, or round-robin "
            "among the others; each new attorney is told by email.",
        ),
    ] = None,
    yes: YesOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Deactivate an attorney: their tokens stop working and new leads go to others."""
    from leadctl import attorneys

    if reassign_to is not None:
        _hand_over(ctx, email, reassign_to, yes, json_)
        return
    out = _confirmed(ctx, json_, f"Deactivate {email}?", yes)
    attorney, changed = attorneys.deactivate(email)
    data = {**attorneys.attorney_dict(attorney), "changed": changed}
    out.obj(data, lambda d: f"{d['email']} is {'now' if changed else 'already'} inactive")


def _hand_over(ctx: typer.Context, email: str, reassign_to: str, yes: bool, json_: bool) -> None:
    """`deactivate --reassign-to`: moving leads is a change to them, so the local actor needs
    the right to change that attorney's leads (an admin, or the attorney themselves)."""
    from leadctl import attorneys, permissions, reassignment

    env: Env = ctx.obj
    out = _confirmed(
        ctx, json_, f"Deactivate {email} and move their pending leads to {reassign_to}?", yes
    )
    handover = reassignment.hand_over(
        email, reassign_to, permissions.local(env.actor), env.settings
    )
    data = {
        **attorneys.attorney_dict(handover.attorney),
        "changed": handover.deactivated,
        **handover.as_dict(),
    }
    out.obj(data, _handover_text)


def _handover_text(d: dict[str, Any]) -> str:
    state = "now" if d["changed"] else "already"
    if not d["moved"]:
        return f"{d['email']} is {state} inactive; they had no pending leads to move"
    to = ", ".join(f"{len(ids):,} to {email}" for email, ids in d["reassigned_to"].items())
    plural = "s" if d["moved"] != 1 else ""
    return f"{d['email']} is {state} inactive; {d['moved']:,} pending lead{plural} moved: {to}"


def _confirmed(ctx: typer.Context, json_: bool, question: str, yes: bool) -> Output:
    """The output of a change that cannot be undone, once the database is open and it is
    confirmed (asked on a terminal; `--yes` elsewhere)."""
    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    env.open_database()
    env.confirm(question, yes=yes, destructive=True)
    return out


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The attorney's email.")],
    name: Annotated[str, typer.Option("--name", help="A label, e.g. the laptop it is for.")] = "",
    json_: JsonOpt = False,
) -> None:
    """Create an API token for an attorney (printed once)."""
    from leadctl import attorneys
    from leadctl.models import email_key

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    env.open_database()
    issued = attorneys.create_token(email, name)
    data = {**attorneys.token_dict(issued.token, email_key(email)), "token": issued.secret}
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
    csv_: CsvOpt = False,
    ndjson: NdjsonOpt = False,
) -> None:
    """List API tokens (never the secrets)."""
    from leadctl import attorneys

    env: Env = ctx.obj
    out = env.output(pick_format(json_, csv_, ndjson))
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

    out = _confirmed(ctx, json_, f"Revoke token {token_id}?", yes)
    token, changed = attorneys.revoke_token(token_id)
    data = {**attorneys.token_dict(token, token.attorney.email), "changed": changed}
    out.obj(data, lambda d: f"token {d['id']} is {'now' if changed else 'already'} revoked")


def register(app: typer.Typer) -> None:
    app.add_typer(attorney_app, name="attorney")
    app.add_typer(token_app, name="token")
