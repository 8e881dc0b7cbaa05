"""`leadctl config` (the effective settings, each with its source) and `leadctl config check`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from leadctl.cli.context import Env, pick_format
from leadctl.cli.exitcodes import ExitCode
from leadctl.cli.lead_commands import JsonOpt
from leadctl.cli.output import Column

config_app = typer.Typer(
    help="Show the settings in effect and where each comes from; check them.",
    invoke_without_command=True,
)

_COLUMNS = [
    Column("SETTING", lambda r: r["name"]),
    Column("VALUE", lambda r: r["value"]),
    Column("SOURCE", lambda r: r["source"]),
]


def _overrides(env: Env) -> dict[str, str]:
    """Settings given as global options: `--db` is `LEADS_DATABASE_URL`."""
    return {"database_url": env.db_url} if env.db_url else {}


@config_app.callback()
def config_show(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Print every setting in effect with its source (default, environment, file, option);
    secrets masked. Exits 1 when a value is invalid."""
    if ctx.invoked_subcommand is not None:
        return
    from leadctl import config
    from leadctl.settings import read_sources

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    data = config.view(read_sources(env_file=env.env_file), _overrides(env))
    if out.machine:
        out.obj(data)
    else:
        where = data["env_file"]
        out.line(f"env file: {where} (from {data['env_file_from']})" if where else "env file: none")
        out.line(f"database: {data['database']}")
        rows = [_row(name, item) for name, item in data["settings"].items()]
        out.rows(rows, _COLUMNS)
    for problem in data["problems"]:
        out.error(problem)
    if data["problems"]:
        raise typer.Exit(ExitCode.FAILURE)


def _row(name: str, item: dict[str, Any]) -> dict[str, Any]:
    source = f"file, line {item['line']}" if item["line"] else item["source"]
    return {"name": name, "value": item["value"], "source": source}


@config_app.command("check")
def config_check(
    ctx: typer.Context,
    smtp: Annotated[
        bool, typer.Option("--smtp", help="Also connect to the SMTP server and log in.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Check every setting, the addresses, the database (reachable, current schema), the mail
    folder and every template (rendered with a sample lead), and with --smtp the SMTP login:
    one line per problem, exit 1 if any."""
    from leadctl import config
    from leadctl.settings import read_sources

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    report = config.check(read_sources(env_file=env.env_file), _overrides(env), smtp=smtp)
    if out.machine:
        out.obj(
            {
                "ok": not report.problems,
                "problems": report.problems,
                "warnings": report.warnings,
                "checked": report.checked,
            }
        )
    else:
        for problem in report.problems:
            out.line(f"problem: {problem}")
        for warning in report.warnings:
            out.line(f"warning: {warning}")
        count, warned = len(report.problems), len(report.warnings)
        summary = f"{count} problem(s)" if count else "no problems"
        if warned:
            summary += f", {warned} warning(s)"
        out.say(f"{summary}; checked: {', '.join(report.checked)}")
    if report.problems:
        raise typer.Exit(ExitCode.FAILURE)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
