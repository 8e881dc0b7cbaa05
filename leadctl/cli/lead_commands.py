"""Lead commands: list, show, open, reach-out, reopen, note, assign, export, stats."""

import contextlib
import dataclasses
import shutil
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from leadctl.cli.backend import Backend
from leadctl.cli.batch import read_ids, run_batch
from leadctl.cli.context import Env, UsageError, pick_format
from leadctl.cli.output import Output
from leadctl.cli.saving import (
    launch_viewer,
    open_private_text,
    private_copy,
    save_path,
    write_private,
)
from leadctl.cli.views import LEAD_COLUMNS, render_detail, render_stats
from leadctl.errors import LeadctlError
from leadctl.leads import LeadQuery
from leadctl.states import Action, State, parse_state
from leadctl.timeutil import parse_duration, parse_when

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON with the API's field names.")]
CsvOpt = Annotated[bool, typer.Option("--csv", help="Print CSV with a header row.")]
NdjsonOpt = Annotated[bool, typer.Option("--ndjson", help="Print one JSON object per line.")]


STATE_CHOICES = ("pending", "reached-out", "all")


def _state(text: str) -> State | None:
    """`--state`: a state in any spelling (`REACHED_OUT`, `reached_out`, `reached-out`) or `all`."""
    if text.strip().lower() == "all":
        return None
    try:
        return parse_state(text)
    except ValueError:
        raise UsageError(
            f"--state must be one of {', '.join(STATE_CHOICES)}, not {text!r}"
        ) from None


class ExportFormat(str, Enum):
    csv = "csv"
    json = "json"
    ndjson = "ndjson"


def _query(
    env: Env,
    backend: Backend,
    state: str,
    attorney: str | None,
    mine: bool,
    search: str | None,
    since: str | None,
    until: str | None,
    overdue: str | None,
    limit: int | None,
) -> LeadQuery:
    if mine:
        if attorney:
            raise UsageError("--mine and --attorney cannot be combined")
        attorney = env.identity(backend)
    try:
        return LeadQuery(
            state=_state(state),
            attorney=attorney,
            search=search,
            since=parse_when(since) if since else None,
            until=parse_when(until) if until else None,
            overdue=parse_duration(overdue) if overdue else None,
            limit=limit,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


StateOpt = Annotated[
    str,
    typer.Option(
        "--state",
        metavar="|".join(STATE_CHOICES),
        help="Only leads in this state (any case; - or _ alike).",
        autocompletion=lambda: list(STATE_CHOICES),
    ),
]
AttorneyOpt = Annotated[
    str | None, typer.Option("--attorney", help="Only leads assigned to this attorney (email).")
]
MineOpt = Annotated[
    bool, typer.Option("--mine", help="Only leads assigned to me (locally: --as EMAIL).")
]
SearchOpt = Annotated[
    str | None,
    typer.Option("--search", help="Name or email contains this (case and accents ignored)."),
]
SinceOpt = Annotated[
    str | None,
    typer.Option("--since", help="Created at or after: a date, timestamp or duration ago (7d)."),
]
UntilOpt = Annotated[
    str | None, typer.Option("--until", help="Created before: a date, timestamp or duration ago.")
]
OverdueOpt = Annotated[
    str | None, typer.Option("--overdue", help="Pending for longer than this duration, e.g. 24h.")
]


def list_leads(
    ctx: typer.Context,
    state: StateOpt = "all",
    attorney: AttorneyOpt = None,
    mine: MineOpt = False,
    search: SearchOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    overdue: OverdueOpt = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="Show at most this many leads.")
    ] = 50,
    all_: Annotated[
        bool, typer.Option("--all", help="Show every matching lead (no limit).")
    ] = False,
    quarantined: Annotated[
        bool,
        typer.Option("--quarantined", help="Show only suspected spam, kept apart (admins)."),
    ] = False,
    json_: JsonOpt = False,
    csv_: CsvOpt = False,
    ndjson: NdjsonOpt = False,
) -> None:
    """List leads, newest first."""
    env: Env = ctx.obj
    out = env.output(pick_format(json_, csv_, ndjson))
    backend = env.backend()
    query = _query(
        env, backend, state, attorney, mine, search, since, until, overdue, None if all_ else limit
    )
    if quarantined:
        query = dataclasses.replace(query, quarantined=True)
    # Counting every match costs a scan on a big database: only a person at a terminal sees it.
    on_terminal = out.is_tty and not out.machine
    items, total = backend.list_leads(query, with_total=on_terminal)
    out.rows(items, LEAD_COLUMNS)
    if total is not None:
        out.say(f"Showing {len(items):,} of {total:,} lead{'s' if total != 1 else ''}")


def show(
    ctx: typer.Context,
    lead: Annotated[str, typer.Argument(help="Lead id or reference.")],
    json_: JsonOpt = False,
) -> None:
    """Show one lead: details, resume and history."""
    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    out.obj(env.backend().show(lead), render_detail)


def open_resume(
    ctx: typer.Context,
    lead: Annotated[str, typer.Argument(help="Lead id or reference.")],
    save: Annotated[
        str | None,
        typer.Option(
            "--save",
            metavar="PATH",
            help="Write the resume to this file, or into this folder (an existing one, or a "
            "path ending in /, made if missing) instead of opening it.",
        ),
    ] = None,
    print_path: Annotated[
        bool,
        typer.Option("--print-path", help="Print the path of the private copy; do not open it."),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="With --save, overwrite an existing file.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Fetch a lead's resume and open it in the system viewer."""
    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    resume = env.backend().resume(lead)
    if save is not None:
        path = save_path(save, resume.filename)
        write_private(path, resume.data, replace=force)
    else:
        path = private_copy(resume.filename, resume.data)
    result = {
        "path": str(path),
        "filename": resume.filename,
        "content_type": resume.content_type,
        "size": len(resume.data),
    }
    if save is not None or print_path or out.machine:
        out.obj(result, lambda r: r["path"])
        return
    failure = launch_viewer(path)
    if failure is not None:
        # The private copy would outlive the command for nobody: it goes now.
        shutil.rmtree(path.parent, ignore_errors=True)
        raise LeadctlError(
            f"no viewer could be launched here ({failure}); save the resume instead: "
            f"leadctl open {lead} --save DIR/"
        )


IdsArg = Annotated[
    list[str],
    typer.Argument(metavar="ID...", help="Lead ids or references, or - to read them from stdin."),
]
NoteOpt = Annotated[str | None, typer.Option("--note", help="A note recorded with the change.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Show what would change; change nothing.")
]


def _transition(
    ctx: typer.Context,
    action: Action,
    ids: list[str],
    note: str | None,
    yes: bool,
    dry_run: bool,
    json_: bool,
) -> None:
    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    idents = read_ids(env, ids)
    verb = "Reach out to" if action == Action.REACH_OUT else "Reopen"
    # Reversible (reopen undoes a reach-out, both are in the history): asked only of a person,
    # and only for a batch; a pipe goes ahead.
    env.confirm(
        f"{verb} {len(idents)} leads?", yes=yes or dry_run or len(idents) <= 1, destructive=False
    )
    backend = env.backend()
    run_batch(out, idents, lambda i: backend.change_state(i, action, note, dry_run))


def reach_out(
    ctx: typer.Context,
    ids: IdsArg,
    note: NoteOpt = None,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Mark leads REACHED_OUT (PENDING → REACHED_OUT)."""
    _transition(ctx, Action.REACH_OUT, ids, note, yes, dry_run, json_)


def reopen(
    ctx: typer.Context,
    ids: IdsArg,
    note: NoteOpt = None,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Put leads back to PENDING (REACHED_OUT → PENDING), e.g. after a mistake."""
    _transition(ctx, Action.REOPEN, ids, note, yes, dry_run, json_)


def note(
    ctx: typer.Context,
    lead: Annotated[str, typer.Argument(help="Lead id or reference.")],
    text: Annotated[str, typer.Argument(help="The note; - reads it from stdin.")],
    json_: JsonOpt = False,
) -> None:
    """Add a note to a lead's history."""
    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    if text == "-":
        text = env.streams.stdin.read()
    backend = env.backend()
    run_batch(out, [lead], lambda i: backend.add_note(i, text))


def assign(
    ctx: typer.Context,
    ids: IdsArg,
    email: Annotated[str, typer.Argument(metavar="EMAIL", help="The attorney's email.")],
    yes: YesOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Assign leads to an attorney, who is told by email; ids as arguments or - for stdin."""
    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    idents = read_ids(env, ids)
    env.confirm(
        f"Assign {len(idents)} leads to {email}?", yes=yes or len(idents) <= 1, destructive=False
    )
    backend = env.backend()
    run_batch(out, idents, lambda i: backend.assign(i, email))


def export(
    ctx: typer.Context,
    fmt: Annotated[
        ExportFormat | None,
        typer.Option("--format", help="Output format [default: csv]; or --csv, --json, --ndjson."),
    ] = None,
    json_: JsonOpt = False,
    csv_: CsvOpt = False,
    ndjson: NdjsonOpt = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
    state: StateOpt = "all",
    attorney: AttorneyOpt = None,
    mine: MineOpt = False,
    search: SearchOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    overdue: OverdueOpt = None,
) -> None:
    """Export every matching lead as CSV, JSON or NDJSON (streamed)."""
    env: Env = ctx.obj
    chosen = _export_format(fmt, pick_format(json_, csv_, ndjson))
    backend = env.backend()
    query = _query(env, backend, state, attorney, mine, search, since, until, overdue, None)
    target = open_private_text(output) if output else None
    # Closed here, not by the garbage collector after the database: a reader that stops early
    # (`export | head`) must not leave a cursor to fail on a closed connection.
    with contextlib.closing(backend.iter_leads(query)) as rows:
        try:
            out = Output(chosen, env.streams, target=target)
            written = out.rows(
                out.progress(rows, lambda: backend.count_leads(query), "Exporting"), []
            )
        finally:
            if target is not None:
                target.close()
    if output:
        out.say(f"Exported {written:,} leads to {output}")


def _export_format(fmt: ExportFormat | None, flag: str) -> str:
    """`--format X` or one of `--csv`/`--json`/`--ndjson` (the same one twice is fine)."""
    if flag == "table":
        return fmt.value if fmt is not None else ExportFormat.csv.value
    if fmt is not None and fmt.value != flag:
        raise UsageError(f"choose one of --format {fmt.value} and --{flag}")
    return flag


def stats(
    ctx: typer.Context,
    since: SinceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Counts by state, time to first contact (median, p90), per attorney, and overdue leads."""
    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    try:
        when = parse_when(since) if since else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    out.obj(env.backend().stats(when), render_stats)


def register(app: typer.Typer) -> None:
    app.command("list")(list_leads)
    app.command("show")(show)
    app.command("open")(open_resume)
    app.command("reach-out")(reach_out)
    app.command("reopen")(reopen)
    app.command("note")(note)
    app.command("assign")(assign)
    app.command("export")(export)
    app.command("stats")(stats)
