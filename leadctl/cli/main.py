"""The `leadctl` entry point: global options, the command groups, and the one exit-code mapping."""

import importlib
import io
import sys
from typing import Annotated

import typer

from leadctl.cli.context import Env, UsageError
from leadctl.cli.exitcodes import ExitCode, exit_code_for
from leadctl.cli.output import Output
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
    env_file: Annotated[
        str | None,
        typer.Option(
            "--env-file",
            metavar="PATH",
            help="Settings file read after the environment "
            "[env: LEADS_ENV_FILE; default: ./.env when present].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Global options go before or after the command: leadctl list --db sqlite:///other.db."""
    if db and server:
        raise UsageError("choose --db (local) or --server (remote), not both")
    ctx.obj = env = Env(db_url=db, server=server, actor_option=actor, env_file=env_file)
    ctx.call_on_close(env.close)


# Typer builds the whole command tree on every start, and the admin commands import more: a
# group's module is imported and registered only when one of its commands is asked for. Help,
# and a name leadctl does not know (for the "no such command" answer), get every group.
GROUPS: dict[str, tuple[str, ...]] = {
    "leadctl.cli.lead_commands": (
        "list",
        "show",
        "open",
        "reach-out",
        "reopen",
        "note",
        "assign",
        "export",
        "stats",
    ),
    "leadctl.cli.admin_commands": ("serve", "release", "purge-quarantine"),
    "leadctl.cli.attorney_commands": ("attorney", "token"),
    "leadctl.cli.mail_commands": ("outbox", "mail"),
    "leadctl.cli.db_commands": ("db",),
    "leadctl.cli.session_commands": ("login", "logout", "whoami"),
    "leadctl.cli.config_commands": ("config",),
    "leadctl.cli.conflict_commands": ("conflicts", "parties"),
    "leadctl.cli.privacy_commands": ("erase", "person", "purge", "history"),
}
_OPTIONS_WITH_VALUE = {"--db", "--server", "--as", "--env-file"}
_registered: set[str] = set()


def _command_asked_for(args: list[str]) -> str | None:
    """The command named in `args` (after the global options), or None for help and nothing."""
    rest = iter(args)
    for arg in rest:
        if arg in _OPTIONS_WITH_VALUE:
            next(rest, None)
        elif arg in ("-h", "--help"):
            return None
        elif not arg.startswith("-"):
            return arg
    return None


def register(args: list[str] | None = None) -> typer.Typer:
    """The app with the commands `args` needs (None: every command)."""
    wanted = _command_asked_for(args) if args is not None else None
    known = wanted is not None and any(wanted in names for names in GROUPS.values())
    for module, names in GROUPS.items():
        if module not in _registered and (not known or wanted in names):
            importlib.import_module(module).register(app)
            _registered.add(module)
    return app


def hoist_global_options(args: list[str]) -> list[str]:
    """`leadctl list --server URL` as `leadctl --server URL list`: a global option after the
    command moves before it. Nothing moves after `--`, nor a command's own option of the same
    name (`login --server`), nor the value of its own option (`reach-out 1 --note --db`)."""
    start = 0
    while start < len(args) and args[start].startswith("-"):
        start += 2 if args[start] in _OPTIONS_WITH_VALUE else 1
    tail = args[start + 1 :]
    if "--" in tail:
        tail = tail[: tail.index("--")]
    if not any(arg.split("=", 1)[0] in _OPTIONS_WITH_VALUE for arg in tail):
        return args  # the usual case: no need to look at the command's options
    import typer.main

    node = typer.main.get_command(app)
    end = start
    while end < len(args) and args[end] in getattr(node, "commands", {}):
        node = node.commands[args[end]]  # type: ignore[attr-defined]
        end += 1
    own = {name: param for param in node.params for name in param.opts}
    moved: list[str] = []
    kept: list[str] = []
    i = end
    while i < len(args):
        arg, name = args[i], args[i].split("=", 1)[0]
        if arg == "--":
            kept += args[i:]
            break
        takes_value = "=" not in arg and (
            name in _OPTIONS_WITH_VALUE
            if name not in own
            else not getattr(own[name], "is_flag", False)
        )
        width = 2 if takes_value else 1
        global_option = name in _OPTIONS_WITH_VALUE and name not in own
        # Without its value, a global option stays where the parser will say so.
        (moved if global_option and i + width <= len(args) else kept).extend(args[i : i + width])
        i += width
    return [*args[:start], *moved, *args[start:end], *kept]


def _error(message: str) -> None:
    # Error text carries outside text: an id the user typed, a server's message in remote mode.
    Output().error(message)


def _show_usage_error(exc: typer.TyperException) -> None:
    """A usage error as every other error: one line, `leadctl: error: no such option: --bogus
    (see: leadctl list -h)`, with what was typed made visible. A group or command given
    nothing to do shows its help instead, as the parser would."""
    from typer._click.exceptions import NoArgsIsHelpError
    from typer._click.exceptions import UsageError as ParserUsageError

    if isinstance(exc, ParserUsageError) and not isinstance(exc, NoArgsIsHelpError):
        message = " ".join(exc.format_message().split()).rstrip(".")
        where = exc.ctx.command_path if exc.ctx is not None else "leadctl"
        _error(f"{message[:1].lower()}{message[1:]} (see: {where} -h)")
        return
    show = getattr(exc, "show", None)
    if not callable(show):
        _error(str(exc))
        return
    buffer = io.StringIO()
    show(file=buffer)
    Output().usage(buffer.getvalue())


def run(argv: list[str] | None = None) -> None:
    """Console-script entry: commands raise, this maps every outcome to an exit code."""
    from peewee import DatabaseError

    args = sys.argv[1:] if argv is None else argv
    try:
        cli = register(args)
        args = hoist_global_options(args)
        result = cli(args=args, prog_name="leadctl", standalone_mode=False)
        code = result if isinstance(result, int) else ExitCode.OK
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        _error("cancelled")
        code = ExitCode.FAILURE
    except typer.TyperException as exc:  # the parser's usage errors (Typer vendors Click)
        _show_usage_error(exc)
        code = ExitCode.USAGE
    except (UsageError, SettingsError) as exc:
        _error(str(exc))
        code = ExitCode.USAGE
    except LeadctlError as exc:
        _error(str(exc))
        code = exit_code_for(exc)
    except DatabaseError as exc:
        reason = " ".join(str(exc).split())  # a driver's message spans lines and indents
        _error(f"the database cannot be used: {reason}; check --db or LEADS_DATABASE_URL")
        code = ExitCode.FAILURE
    except KeyboardInterrupt:
        _error("interrupted")
        code = ExitCode.INTERRUPTED
    except BrokenPipeError:
        # `leadctl list | head`: the reader left; that is not an error worth a traceback.
        sys.stderr.close()
        code = ExitCode.OK
    sys.exit(int(code))
