"""Remote sessions: login (token into the OS keyring), logout, whoami."""

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from leadctl.cli.context import Env, UsageError, pick_format
from leadctl.cli.lead_commands import JsonOpt
from leadctl.errors import LeadctlError

if TYPE_CHECKING:
    from leadctl.secrets import KeyringUnavailable


def login(
    ctx: typer.Context,
    server: Annotated[
        str,
        typer.Option(
            "--server", metavar="URL", help="The intake server, e.g. https://leads.firm.example."
        ),
    ],
    with_token: Annotated[
        bool,
        typer.Option("--with-token", help="Read the token from stdin instead of a hidden prompt."),
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Log in to an intake server: check the token, keep it in the OS keyring."""
    from leadctl.cli.remote import RemoteBackend, normalize_server, save_server, token_key
    from leadctl.secrets import KeyringUnavailable, require_keyring, set_secret

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    url = normalize_server(server)
    if not os.environ.get("PYTHON_KEYRING_BACKEND"):
        try:  # before asking for the token: it could not be kept
            require_keyring()
        except KeyringUnavailable as exc:
            if exc.absent:
                raise LeadctlError(
                    f"cannot keep a token here: {exc}; on this machine set LEADCTL_SERVER and "
                    "LEADCTL_TOKEN in the environment instead of logging in"
                ) from None
            raise LeadctlError(
                f"cannot keep a token: {exc.advice('LEADCTL_SERVER and LEADCTL_TOKEN')}"
            ) from None
    if with_token:
        if env.streams.stdin_tty:
            raise UsageError("--with-token reads the token from stdin; pipe it in")
        token = env.streams.stdin.readline().strip()
    else:
        token = typer.prompt("API token", hide_input=True, err=True).strip()
    if not token:
        raise UsageError("the token is empty")
    backend = RemoteBackend(url, token)
    try:
        me = backend.me()  # a bad token stops here, with exit 4
    finally:
        backend.close()
    try:
        set_secret(token_key(url), token)
    except KeyringUnavailable as exc:
        raise LeadctlError(
            f"the token was not kept: {exc.advice('LEADCTL_SERVER and LEADCTL_TOKEN')}"
        ) from None
    save_server(url)
    data = {"server": url, "attorney": me}
    out.obj(data, lambda d: f"Logged in to {url} as {me['email']}.")


def logout(
    ctx: typer.Context,
    forget: Annotated[
        bool,
        typer.Option(
            "--forget",
            help="Forget the saved server even when the OS keyring cannot be reached to remove "
            "its token (any token stays there).",
        ),
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Forget the saved server and remove its token from the OS keyring."""
    from leadctl.cli.remote import save_server, saved_server, token_key
    from leadctl.secrets import KeyringUnavailable, delete_secret

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    server = env.server or saved_server()
    if server is None:
        out.obj({"server": None, "removed": False}, lambda d: "Not logged in.")
        return
    try:
        removed = delete_secret(token_key(server.rstrip("/")))
    except KeyringUnavailable as exc:
        # The token may still be there (locked, or kept by a keyring this shell cannot reach,
        # e.g. a desktop session's over SSH): saying "logged out" and forgetting the server
        # would leave it behind unseen. Keep the login so that logout can be run again, unless
        # told to forget it all the same (a machine whose keyring is gone for good).
        data = {"server": server, "removed": False, "reason": str(exc)}
        if not forget:
            if out.machine:
                out.obj(data)
            raise LeadctlError(_kept(server, exc)) from None
        if saved_server() == server:
            save_server(None)
        out.obj(
            data,
            lambda d: (
                f"Logged out of {server}; its token, if one was stored, was not removed "
                f"({d['reason']}) and may remain in the OS keyring."
            ),
        )
        return
    if saved_server() == server:
        save_server(None)
    out.obj(
        {"server": server, "removed": removed},
        lambda d: (
            f"Logged out of {server}; "
            + ("its token was removed from the OS keyring." if removed else "no token was stored.")
        ),
    )


def _kept(server: str, exc: "KeyringUnavailable") -> str:
    """Why logout kept the login, and what to do next."""
    if exc.absent:
        # No keyring answers here, which is not to say none holds the token: login keeps it
        # only in a working keyring, so one did when this server was saved.
        return (
            f"still logged in to {server}: its token, if one was stored, cannot be reached "
            f"from here: {exc}; run leadctl logout again where that keyring works (e.g. in "
            "your desktop session), or leadctl logout --forget to forget the server and leave "
            "any token where it is"
        )
    return (
        f"still logged in to {server}: its token could not be removed from the OS keyring: "
        f"{exc}; {exc.remedy}, then run leadctl logout again"
    )


def whoami(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Who you are, on which server, and where the token came from."""
    from leadctl.cli.remote import RemoteBackend, find_token

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    server = env.remote_server
    if server is None:
        from leadctl.db import location

        env.open_database()  # no database there is an error here too, naming where it looked
        data: dict[str, Any] = {
            "mode": "local",
            "database": location(env.settings.database_url),
            "actor": env.actor,
        }
        out.obj(data, lambda d: f"Local mode on {d['database']}, acting as {d['actor']}.")
        return
    token, source = find_token(server)
    backend = RemoteBackend(server, token)
    try:
        me = backend.me()
    finally:
        backend.close()
    data = {"mode": "remote", "server": server, "attorney": me, "token_source": source}
    origin = "from the keyring" if source == "keyring" else f"from {source}"
    out.obj(
        data, lambda d: f"{me['name']} <{me['email']}> ({me['role']}) on {server}, token {origin}."
    )


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("whoami")(whoami)
