"""Duties to prospective clients (local mode): erase, person show/export/erase, purge, history."""

import dataclasses
from enum import Enum
from typing import Annotated, Any

import typer

from leadctl.cli.batch import read_ids, say_nothing_read
from leadctl.cli.context import Env, UsageError, pick_format
from leadctl.cli.exitcodes import ExitCode
from leadctl.cli.lead_commands import CsvOpt, DryRunOpt, IdsArg, JsonOpt, NdjsonOpt, YesOpt
from leadctl.cli.output import Column, Output, age
from leadctl.cli.views import event_details, event_line
from leadctl.errors import InvalidInput

ReasonOpt = Annotated[
    str,
    typer.Option(
        "--reason", help="Why (recorded in the erased event), e.g. 'asked by email on 3 May'."
    ),
]
person_app = typer.Typer(
    help="What is held about a person, by email address: show, export, erase (local mode).",
    no_args_is_help=True,
)


def _reason(text: str) -> str:
    from leadctl.leads import check_note

    try:
        reason = check_note(text, "reason")
    except InvalidInput as exc:
        raise UsageError(str(exc)) from None
    if not reason:
        raise UsageError("--reason is empty; say why (it is kept in the erased event)")
    return reason


# -- erase ---------------------------------------------------------------------------------------


# Bulk erasure is `purge`'s job: `erase` takes as many ids as any batch command.
ERASE_MORE = "split them, or erase by age with: leadctl purge --older-than 2y"


def erase(
    ctx: typer.Context,
    ids: IdsArg,
    reason: ReasonOpt = "",
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Erase leads' personal data for good, keeping a tombstone (admin only)."""
    from leadctl import erasure

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    idents = read_ids(env, ids, more=ERASE_MORE)
    why = _reason(reason) if not dry_run else reason
    actor = env.admin("erase")
    if not idents:
        say_nothing_read(out)
    lead_ids, failed = erasure.resolve(idents)
    _run(env, out, lead_ids, failed, dry_run, yes, lambda: erasure.erase_ids(lead_ids, actor, why))


def _run(
    env: Env,
    out: Output,
    lead_ids: list[int],
    failed: list[dict[str, Any]],
    dry_run: bool,
    yes: bool,
    apply: Any,
    extra: list[dict[str, Any]] | None = None,
) -> None:
    """Preview, or confirm and erase; print the result; exit 1 when any lead failed."""
    from leadctl import erasure

    for item in failed:
        out.error(item["error"])
    if dry_run:
        items = erasure.preview(lead_ids)
        out.obj({"dry_run": True, "would_erase": items, "failed": failed}, _render_preview)
    else:
        if lead_ids:
            many = f"{len(lead_ids)} leads" if len(lead_ids) != 1 else f"lead {lead_ids[0]}"
            env.confirm(
                f"Erase {many} for good? Names, emails, resumes and notes cannot be brought back.",
                yes=yes,
                destructive=True,
            )
        result = apply() if lead_ids else erasure.Erasure()
        result.failed[:0] = failed
        result.unchanged += extra or []
        for item in result.failed[len(failed) :]:
            out.error(item["error"])
        out.obj(result.as_dict(), _render_erasure)
        failed = result.failed
    if failed:
        raise typer.Exit(ExitCode.FAILURE)


def _render_preview(d: dict[str, Any]) -> str:
    lines = []
    for i in d["would_erase"]:
        state = "already erased" if i["erased_at"] else i["state"]
        lines.append(
            f"would erase lead {i['id']} ({i['reference']}, {state}): {i['first_name']} "
            f"{i['last_name']} <{i['email']}>, created {i['created_at']}, "
            f"{'a resume, ' if i['resume'] else ''}{i['events']} events, {i['messages']} emails"
        )
    return "\n".join(lines) or "nothing to erase"


def _render_erasure(d: dict[str, Any]) -> str:
    lines = [i["message"] for i in d["changed"] + d["unchanged"]]
    return "\n".join(lines) or "nothing erased"


@person_app.command("erase")
def person_erase(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The person's email address, in any case.")],
    reason: ReasonOpt = "",
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Erase every lead under an email address, in any case (admin only)."""
    from leadctl import erasure, person
    from leadctl.errors import NotFound

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    why = _reason(reason) if not dry_run else reason
    actor = env.admin("person erase")
    live, gone = person.person_leads(email)
    if not live and not gone:
        raise NotFound(f"no lead has the address {email.strip()}")
    tombs = [{**t, "message": erasure.already_erased(t["id"], t["erased_at"])} for t in gone]
    _run(env, out, live, [], dry_run, yes, lambda: erasure.erase_ids(live, actor, why), tombs)


# -- person show / export ------------------------------------------------------------------------


@person_app.command("show")
def person_show(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The person's email address, in any case.")],
    json_: JsonOpt = False,
) -> None:
    """Everything held about a person: leads, consent, resumes, history, emails (admin only)."""
    from leadctl import person

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    env.admin("person show")
    out.obj(person.show(email), _render_person)


def _render_person(d: dict[str, Any]) -> str:
    if not d["leads"] and not d["erased"]:
        return f"Nothing is held about {d['email']}."
    lines = [f"{d['email']}: {len(d['leads'])} lead(s), {len(d['erased'])} erased"]
    for lead in d["leads"]:
        consent = (
            f"{lead['consent_at']} (disclaimer {lead['disclaimer_version'] or '?'})"
            if lead["consent_at"]
            else "none recorded"
        )
        lines += [
            "",
            f"Lead {lead['id']}  {lead['reference']}  {lead['state']}"
            + ("  (quarantined)" if lead["quarantined"] else ""),
            f"  Name:      {lead['first_name']} {lead['last_name']}",
            f"  Email:     {lead['email']}",
            f"  Attorney:  {lead['attorney'] or '(unassigned)'}",
            f"  Created:   {lead['created_at']}",
            f"  Consent:   {consent}",
        ]
        r = lead["resume"]
        if r:
            lines.append(f"  Resume:    {r['filename']} ({r['content_type']}, {r['size']:,} bytes)")
        if lead["resume_url"]:
            lines.append(f"  Resume at: {lead['resume_url']}")
        for m in lead["messages"]:
            lines.append(f"  Email:     {m['purpose']} to {m['recipient']}, {m['status']}")
        lines.append("  History:")
        for e in lead["events"]:
            lines.append(f"  {event_line(e)}")
    for t in d["erased"]:
        lines += ["", f"Erased lead {t['id']}  {t['reference']}  created {t['created_at']}, "
                  f"erased {t['erased_at']}"]  # fmt: skip
    return "\n".join(lines)


@person_app.command("export")
def person_export(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The person's email address, in any case.")],
    folder: Annotated[str, typer.Argument(metavar="DIR", help="Folder to write into (0700).")],
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite files of an earlier export.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Export everything held about a person: person.json and their resume files (admin only)."""
    from leadctl import person

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    if not folder.strip():
        raise UsageError("name the folder to export into")
    env.admin("person export")
    done = person.export(email, folder, overwrite=force)
    out.obj(
        done,
        lambda d: "\n".join(
            [f"Exported {d['leads']} lead(s) of {d['email']} to {d['folder']}"]
            + [f"  {f['path']} ({f['bytes']:,} bytes)" for f in d["files"]]
        ),
    )


# -- purge ---------------------------------------------------------------------------------------


class PurgeState(str, Enum):
    pending = "pending"
    reached_out = "reached-out"


def purge(
    ctx: typer.Context,
    older_than: Annotated[
        str, typer.Option("--older-than", help="Erase leads created longer ago than this (2y).")
    ],
    state: Annotated[
        list[PurgeState] | None,
        typer.Option("--state", help="Only leads in this state (repeatable)."),
    ] = None,
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Erase every lead older than a cutoff, recording purged events (admin only)."""
    from leadctl import retention
    from leadctl.states import State
    from leadctl.timeutil import parse_duration

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    try:
        age_ = parse_duration(older_than)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    states = [State.PENDING if s == PurgeState.pending else State.REACHED_OUT for s in state or []]
    actor = env.admin("purge")
    if not dry_run:
        count = retention.due(age_, states).count()
        if count:
            env.confirm(
                f"Erase {count} lead(s) created more than {older_than.strip()} ago, for good?",
                yes=yes,
                destructive=True,
            )
    done = retention.purge(age_, states, dry_run=dry_run, actor=actor)
    for item in done.skipped:
        out.error(item["error"])
    out.obj(done.as_dict(), _render_purge)


def _render_purge(d: dict[str, Any]) -> str:
    verb = "would erase" if d["dry_run"] else "erased"
    text = f"{verb} {d['count']} lead(s) created before {d['cutoff']}"
    if d["skipped"]:
        text += f"; {len(d['skipped'])} left for next time (an email was being sent)"
    return text


# -- history -------------------------------------------------------------------------------------

HISTORY_LIMIT = 50  # events shown without --limit or --all
HISTORY_COLUMNS = [
    Column("ID", lambda r: r["id"]),
    Column("AT", lambda r: r["at"], on_terminal=lambda r: age(r["at"])),
    Column("LEAD", lambda r: r["lead_id"]),
    Column("REFERENCE", lambda r: r["reference"]),
    Column("ACTOR", lambda r: r["actor"]),
    Column("ACTION", lambda r: r["kind"]),
    Column("DETAILS", event_details),
]


def history(
    ctx: typer.Context,
    lead: Annotated[
        str | None, typer.Option("--lead", help="Only this lead (id or reference).")
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option("--actor", help="Only events by this actor (email, system, prospect)."),
    ] = None,
    action: Annotated[
        list[str] | None,
        typer.Option("--action", help="Only these kinds (repeatable or comma list): note,erased."),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="At or after: a date, timestamp or duration ago.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Before: a date, timestamp or duration ago.")
    ] = None,
    before: Annotated[
        int | None, typer.Option("--before", min=1, help="Only events older than this event id.")
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Show at most this many [default: 50]; or --all."),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Show every matching event.")] = False,
    json_: JsonOpt = False,
    csv_: CsvOpt = False,
    ndjson: NdjsonOpt = False,
) -> None:
    """Events across all leads, newest first: who did what, when. With
    LEADS_ATTORNEY_SCOPE=own, an attorney's own leads and the intake inbox's (an admin's: all)."""
    from leadctl import history as audit
    from leadctl import permissions
    from leadctl.leads import find
    from leadctl.timeutil import parse_when

    env: Env = ctx.obj
    out = env.output(pick_format(json_, csv_, ndjson))
    if all_ and limit is not None:
        raise UsageError("choose one of --limit N and --all")
    try:
        query = audit.HistoryQuery(
            actor=actor,
            kinds=audit.parse_kinds(action or []),
            since=parse_when(since) if since else None,
            until=parse_when(until) if until else None,
            before_id=before,
            limit=None if all_ else limit or HISTORY_LIMIT,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    env.open_database()
    scope = env.settings.attorney_scope
    caller = permissions.local(env.actor) if scope == "own" else None
    if caller is not None:  # as `show` and `list` read: a non-admin their leads and the inbox's
        query = dataclasses.replace(query, visible_to=permissions.reads_only(caller, scope))
    if lead is not None:
        found = find(lead, include_quarantined=True)
        if caller is not None:
            permissions.check_read(caller, found, scope)
        query = dataclasses.replace(query, lead=found.id)
    shown = out.rows(audit.events(query), HISTORY_COLUMNS)
    if not out.machine and query.limit is not None and shown == query.limit:
        out.say("more: add --all, or page on with --before the last ID")


def register(app: typer.Typer) -> None:
    app.command("erase")(erase)
    app.add_typer(person_app, name="person")
    app.command("purge")(purge)
    app.command("history")(history)
