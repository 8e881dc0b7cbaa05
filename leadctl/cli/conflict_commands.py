"""The conflict check (`conflicts`, local or remote) and the firm's parties (`parties`, local)."""

from __future__ import annotations

import io
from typing import Annotated, Any, BinaryIO, cast

import typer

from leadctl.cli.batch import PARTIES, read_ids
from leadctl.cli.context import Env, UsageError, pick_format
from leadctl.cli.exitcodes import ExitCode
from leadctl.cli.output import Column, age

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON with the API's field names.")]
CsvOpt = Annotated[bool, typer.Option("--csv", help="Print CSV with a header row.")]
NdjsonOpt = Annotated[bool, typer.Option("--ndjson", help="Print one JSON object per line.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]

parties_app = typer.Typer(
    help="The firm's parties (clients, adverse parties, others) for the conflict check (local).",
    no_args_is_help=True,
)


def _shown_name(hit: dict[str, Any]) -> str:
    """The NAME cell on a terminal: an erased lead, and (LEADS_ATTORNEY_SCOPE=own) a lead the
    caller may not read, say what they are instead of a blank."""
    if hit["source"] == "erased":
        return "(erased lead)"
    if hit["source"] == "lead" and hit["id"] is None:
        return f"(a lead of {hit.get('owner') or 'the intake inbox'})"
    return str(hit["name"] or "")


HIT_COLUMNS = [
    Column("SCORE", lambda h: f"{h['score']:.2f}", style="bold"),
    Column("SOURCE", lambda h: h["source"]),
    Column("ID", lambda h: h["id"]),
    Column("NAME", lambda h: h["name"], on_terminal=_shown_name),
    Column("ROLE", lambda h: h["role"]),
    Column("MATTER", lambda h: h["matter"]),
    Column("REFERENCE", lambda h: h["reference"]),
    Column("DATE", lambda h: h["date"], on_terminal=lambda h: h["date"][:10]),
    Column("MATCHED", lambda h: h["matched"]),
    Column("QUERY", lambda h: h.get("query")),
    Column("OWNER", lambda h: h.get("owner")),  # last: left out where no hit has an owner
]

PARTY_COLUMNS = [
    Column("ID", lambda p: p["id"], style="bold"),
    Column("NAME", lambda p: p["name"]),
    Column("ROLE", lambda p: p["role"]),
    Column("MATTER", lambda p: p["matter"]),
    Column("ADDED", lambda p: p["created_at"], on_terminal=lambda p: age(p["created_at"])),
]


def conflicts(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="NAME...",
            help='Names to check, each one argument: "Zoe Nunez" "Acme Holdings, LLC".',
            show_default=False,
        ),
    ] = None,
    lead: Annotated[
        str | None,
        typer.Option(
            "--lead",
            metavar="ID",
            help="Check this lead's name and email against everything else.",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=500, help="Show at most this many hits.")
    ] = 50,
    json_: JsonOpt = False,
    csv_: CsvOpt = False,
    ndjson: NdjsonOpt = False,
) -> None:
    """Check names for conflicts against every lead, the firm's parties and erased leads.

    Case, accents, punctuation, word order and words like LLC are ignored; each hit has a
    score (shared words / all words; 1.00 is the same name, hits start at 0.50).
    """
    from leadctl.conflicts import prepare
    from leadctl.errors import InvalidInput

    env: Env = ctx.obj
    out = env.output(pick_format(json_, csv_, ndjson))
    wanted = list(names or [])
    if not wanted and lead is None:
        raise UsageError("give at least one NAME, or --lead ID")
    try:
        prepare(wanted)  # the same bounds the server applies, before anything is opened
    except InvalidInput as exc:
        raise UsageError(str(exc).removeprefix("names: ")) from None
    report = env.backend().conflicts(wanted, lead, limit)
    hits = report["hits"]
    # OWNER only where the report has owners (LEADS_ATTORNEY_SCOPE=own), as the CSV and JSON
    # carry the field only then: no empty last column in every other firm's rows.
    owners = any("owner" in h for h in hits)
    out.rows(hits, HIT_COLUMNS if owners else HIT_COLUMNS[:-1])
    common = report.get("common_words") or []
    if common:
        listed = ", ".join(repr(w) for w in common)
        out.say(
            f"Too common to look for longer names from: {listed}; "
            "names of the same words were still compared."
        )
    if not out.machine:
        erased = sum(1 for h in hits if h["source"] == "erased")
        if not hits:
            out.say("No possible conflicts found.")
        else:
            count = f"{len(hits)} possible conflict{'s' if len(hits) != 1 else ''}"
            dates = sorted({h["date"][:10] for h in hits if h["source"] == "erased"})
            note = f" ({erased} with an erased lead of {', '.join(dates)})" if erased else ""
            out.say(count + note)


@parties_app.command("import")
def parties_import(
    ctx: typer.Context,
    file: Annotated[
        str,
        typer.Argument(metavar="FILE.csv", help="CSV with header name,role,matter; - reads stdin."),
    ],
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace the whole list instead of adding to it.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check the file and count; change nothing.")
    ] = False,
    yes: YesOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Add parties from a CSV file (name, role: client|adverse|other, matter); all or nothing."""
    from leadctl import parties

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    # Read as a stream, at most parties.MAX_PARTIES rows (and 32 MB) kept, whatever comes in.
    rows = parties.parse_stream(_stdin(env), "stdin") if file == "-" else parties.read_file(file)
    env.open_database()
    if replace and not dry_run:
        env.confirm("Replace the whole list of parties?", yes=yes, destructive=True)
    result = parties.import_rows(rows, replace=replace, dry_run=dry_run)
    out.obj(result, _import_line)


def _import_line(r: dict[str, Any]) -> str:
    would = "would be " if r["dry_run"] else ""
    parts = [f"{r['added']} part{'y' if r['added'] == 1 else 'ies'} {would}added"]
    if r["skipped"]:
        parts.append(f"{r['skipped']} already listed (skipped)")
    if r["removed"]:
        parts.append(f"{r['removed']} {would}removed first")
    return "; ".join(parts)


def _stdin(env: Env) -> BinaryIO:
    """Standard input as bytes: its binary buffer (a text stream without one, as a test's, is
    read up to the file limit and encoded)."""
    from leadctl import parties

    stream = env.streams.stdin
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        return cast(BinaryIO, buffer)
    return io.BytesIO(str(stream.read(parties.MAX_FILE_BYTES + 1)).encode())


@parties_app.command("list")
def parties_list(
    ctx: typer.Context,
    role: Annotated[
        str | None,
        typer.Option("--role", help="Only parties of this role: client, adverse, other."),
    ] = None,
    json_: JsonOpt = False,
    csv_: CsvOpt = False,
    ndjson: NdjsonOpt = False,
) -> None:
    """List the firm's parties, oldest first."""
    from leadctl import parties

    env: Env = ctx.obj
    out = env.output(pick_format(json_, csv_, ndjson))
    if role is not None and role.lower() not in parties.ROLES:
        raise UsageError(f"--role must be client, adverse or other, not {role!r}")
    env.open_database()
    shown = out.rows(parties.iter_parties(role.lower() if role else None), PARTY_COLUMNS)
    if out.is_tty and not out.machine:
        out.say(f"{shown:,} part{'y' if shown == 1 else 'ies'}")


@parties_app.command("remove")
def parties_remove(
    ctx: typer.Context,
    ids: Annotated[
        list[str],
        typer.Argument(
            metavar="ID...", help="Party ids (see: leadctl parties list), or - for stdin."
        ),
    ],
    yes: YesOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Remove parties from the list."""
    from leadctl import parties

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    numbers: list[int] = []
    for value in read_ids(env, ids, PARTIES):
        if not (value.isascii() and value.isdigit() and len(value) <= 15):
            raise UsageError(f"a party id is a number, not {value[:40]!r}")
        numbers.append(int(value))
    if not numbers:
        raise UsageError("give at least one party id")
    env.open_database()
    count = len(set(numbers))
    env.confirm(
        f"Remove {count} part{'y' if count == 1 else 'ies'} from the list?",
        yes=yes,
        destructive=True,
    )
    result = parties.remove(numbers)
    if out.machine:
        out.obj(result)
    else:
        for pid in result["removed"]:
            out.line(f"removed party {pid}")
        for pid in result["missing"]:
            out.error(f"no party {pid}")
    if result["missing"]:
        raise typer.Exit(ExitCode.FAILURE)


def register(app: typer.Typer) -> None:
    """Adds this module's commands to `app`."""
    app.command("conflicts")(conflicts)
    app.add_typer(parties_app, name="parties")
