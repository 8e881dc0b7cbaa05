"""The `leadctl` entry point: global options, the command groups, and the one exit-code mapping."""

import sys
from typing import Annotated

import typer

from leadctl.cli import admin_commands, lead_commands, session_commands
from leadctl.cli.context import Env, UsageError
from leadctl.cli.exitcodes import ExitCode, exit_code_for
from leadctl.errors import LeadctlError
from leadctl.settings import SettingsError

app = typer.Typer(
    name="leadctl",
    help="Work the firm's leads from the terminal, locally on the database or through a server.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def main(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Database URL for local mode [env: LEADS_DATABASE_URL].",
            show_default=False,
        ),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            metavar="URL",
            help="Work through this intake server [env: LEADCTL_SERVER; default: saved login].",
            show_default=False,
        ),
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option(
            "--as", help="Who local changes are recorded as [env: LEADCTL_ACTOR; default: OS user]."
        ),
    ] = None,
) -> None:
    """Global options come before the command: leadctl --db sqlite:///other.db list."""
    if db and server:
        raise UsageError("choose --db (local) or --server (remote), not both")
    ctx.obj = env = Env(db_url=db, server=server, actor_option=actor)
    ctx.call_on_close(env.close)


lead_commands.register(app)
admin_commands.register(app)
session_commands.register(app)


def _error(message: str) -> None:
    print(f"leadctl: error: {message}", file=sys.stderr)


def run(argv: list[str] | None = None) -> None:
    """Console-script entry: commands raise, this maps every outcome to an exit code."""
    from peewee import DatabaseError

    try:
        result = app(args=argv, prog_name="leadctl", standalone_mode=False)
        code = result if isinstance(result, int) else ExitCode.OK
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        _error("cancelled")
        code = ExitCode.FAILURE
    except typer.TyperException as exc:  # the parser's usage errors (Typer vendors Click)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            _error(str(exc))
        code = ExitCode.USAGE
    except (UsageError, SettingsError) as exc:
        _error(str(exc))
        code = ExitCode.USAGE
    except LeadctlError as exc:
        _error(str(exc))
        code = exit_code_for(exc)
    except DatabaseError as exc:
        _error(f"the database cannot be used: {exc}; check --db or LEADS_DATABASE_URL")
        code = ExitCode.FAILURE
    except KeyboardInterrupt:
        _error("interrupted")
        code = ExitCode.INTERRUPTED
    except BrokenPipeError:
        # `leadctl list | head`: the reader left; that is not an error worth a traceback.
        sys.stderr.close()
        code = ExitCode.OK
    sys.exit(int(code))
