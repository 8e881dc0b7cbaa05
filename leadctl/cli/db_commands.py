"""The database (local mode): backup, check, upgrade."""

import os
from pathlib import Path
from typing import Annotated

import typer

from leadctl.cli.context import Env, UsageError, pick_format
from leadctl.cli.exitcodes import ExitCode
from leadctl.cli.lead_commands import JsonOpt
from leadctl.errors import LeadctlError

db_app = typer.Typer(
    help="Back up, check and upgrade the database (local mode).", no_args_is_help=True
)


@db_app.command("backup")
def db_backup(
    ctx: typer.Context,
    path: Annotated[
        str,
        typer.Argument(
            metavar="DIR|FILE",
            help="A folder (existing, ending in /, or with --keep): a new timestamped file in "
            "it. Otherwise the new file to write.",
        ),
    ],
    keep: Annotated[
        int | None,
        typer.Option("--keep", min=1, help="Keep only the newest N backups in the folder."),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Back up the database online (SQLite copy or pg_dump): a 0600 file, never overwriting."""
    from leadctl.backup import PgDumpMissing, make_backup

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    if not path.strip():
        raise UsageError("name the backup folder or file")
    dest = Path(path)
    into_folder = keep is not None or path.endswith(("/", os.sep)) or dest.is_dir()
    try:
        done = make_backup(env.settings.database_url, dest, into_folder=into_folder, keep=keep)
    except PgDumpMissing as exc:
        # The command on stdout, whole, to copy; the error on stderr, as for any failure.
        out.obj({"backed_up": False, "command": exc.command}, lambda d: d["command"])
        raise LeadctlError(
            "pg_dump is not installed here (Debian: apt install postgresql-client); "
            "run the command above where it is"
        ) from None
    data = {
        "backed_up": True,
        "path": str(done.path),
        "bytes": done.size,
        "integrity": done.integrity,
        "pruned": [str(p) for p in done.pruned],
    }
    out.obj(data, _render_backup)


def _render_backup(d: dict[str, object]) -> str:
    check = f", integrity {d['integrity']}" if d["integrity"] else ""
    lines = [f"Backed up to {d['path']} ({d['bytes']:,} bytes{check})"]
    lines += [f"Deleted the older backup {p}" for p in d["pruned"]]  # type: ignore[attr-defined]
    return "\n".join(lines)


@db_app.command("check")
def db_check(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Check the database: SQLite's integrity check, or PostgreSQL answering; and the schema."""
    from leadctl.backup import check
    from leadctl.db import location

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    url = env.settings.database_url
    env.open_database(check_schema=False)
    problems = check(url)
    where = location(url)
    data = {"database": where, "ok": not problems, "problems": problems}
    out.obj(
        data,
        lambda d: f"{where}: ok" if d["ok"] else "\n".join(f"{where}: {p}" for p in d["problems"]),
    )
    if problems:
        raise typer.Exit(ExitCode.FAILURE)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Create the database, or bring its schema up to this version of leadctl."""
    from leadctl import schema

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    env.open_database(create=True, check_schema=False)
    before, after = schema.upgrade()
    data = {"from_version": before, "to_version": after, "changed": before != after}
    out.obj(
        data,
        lambda d: (
            f"created the database at schema version {d['to_version']}"
            if d["from_version"] == 0
            else f"schema version {d['to_version']}"
            + (f" (was {d['from_version']})" if d["changed"] else ", already current")
        ),
    )


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
