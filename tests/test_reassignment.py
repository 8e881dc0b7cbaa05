"""Reassignment: `assign` (ids from arguments or `-`), `attorney deactivate --reassign-to`, and
the email that tells the new attorney who moved the lead and why."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leadctl import attorneys, db, reassignment, submissions
from leadctl.errors import Forbidden, LeadctlError, NotFound
from leadctl.models import Attorney, Event, Lead, OutboxMessage, database
from leadctl.permissions import local, of_attorney
from leadctl.resumes import check_resume
from leadctl.schema import ensure_schema
from leadctl.settings import Settings
from leadctl.states import Action
from leadctl.validation import check_prospect
from tests import samples
from tests.conftest import SmtpSink, make_settings, smtp_settings, wait_until

ANN, BOB, CY = "ann@firm.example", "bob@firm.example", "cy@firm.example"


def _submit(s: Settings, first: str, last: str, email: str) -> Lead:
    resume = check_resume("cv.pdf", samples.pdf(2000 + len(email)), s.max_resume_bytes)
    return submissions.submit(check_prospect(first, last, email), resume, s).lead


def _handover_mail() -> list[OutboxMessage]:
    try:
        return list(
            OutboxMessage.select()
            .where(OutboxMessage.purpose == "reassigned")
            .order_by(OutboxMessage.id)
        )
    finally:
        database.obj.close()


def _owners() -> dict[int, str | None]:
    try:
        return {
            lead.id: lead.attorney.email if lead.attorney_id else None
            for lead in Lead.select().order_by(Lead.id)
        }
    finally:
        database.obj.close()


# -- assign, end to end ---------------------------------------------------------------------------


def test_assign_through_a_real_server_mails_the_new_attorney_who_and_why(
    tmp_path: Path, make_server: Any, smtp_sink: SmtpSink, cli: Any
) -> None:
    s = smtp_settings(make_settings(tmp_path), smtp_sink.port)
    db.bind(s.database_url)
    ensure_schema()
    ann = attorneys.add("Ann Lee", ANN, "admin")[1].secret
    attorneys.add("Bob Roe", BOB)
    hostile = _submit(s, "[bold red]Zoë[/]", "<script>x</script>", "zoe@example.com")
    database.obj.close()
    server = make_server(s)
    remote = {"LEADCTL_SERVER": server.url, "LEADCTL_TOKEN": ann}
    done = cli("assign", str(hostile.id), BOB, "--json", env=remote)
    assert done.code == 0, done.stderr
    assert done.json()["changed"][0]["attorney"] == BOB

    def handover() -> Any:
        for rcpt, msg in smtp_sink.received:
            if rcpt == [BOB] and "is now yours" in str(msg["Subject"]):
                return msg
        return None

    msg = wait_until(handover, 15, "the reassignment email")
    assert msg["Subject"] == f"Lead {hostile.reference} is now yours"
    text = msg.get_body(("plain",)).get_content()
    assert f"{ANN} moved a lead to you from {ANN}." in text
    assert "Why: reassigned by hand (leadctl assign)" in text
    assert "[bold red]Zoë[/] <script>x</script> <zoe@example.com>" in text  # literally
    assert f"leadctl show {hostile.id}" in text
    page = msg.get_body(("html",)).get_content()
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    shown = cli("show", str(hostile.id), "--json", env=remote).json()
    assigned = [e for e in shown["events"] if e["kind"] == "assigned"][-1]
    assert (assigned["actor"], assigned["details"]) == (
        ANN,
        {"attorney": BOB, "previous": ANN, "reason": "manual"},
    )


def test_assign_reads_ids_and_list_ndjson_from_stdin(lead_cli: Any, seeded: list[Any]) -> None:
    zoe, paul, li = (str(lead.id) for lead in seeded)
    ndjson = lead_cli("list", "--ndjson", "--search", "zoe").stdout
    piped = f"# from list\n{ndjson}\n{li}\t{seeded[2].reference}\tLi Lei\n{paul}\n"
    result = lead_cli("assign", "-", BOB, "--json", input=piped)
    assert result.code == 0, result.stderr
    body = result.json()
    assert sorted(c["id"] for c in body["changed"]) == sorted(int(i) for i in (zoe, li))
    assert [u["id"] for u in body["unchanged"]] == [int(paul)]  # bob's already
    assert set(_owners().values()) == {BOB}
    # One email per lead that moved, to bob, each tied to its lead (erasure reaches it).
    mail = _handover_mail()
    assert sorted(m.lead_id for m in mail if m.recipient == BOB) == sorted([int(zoe), int(li)])
    # Moving a lead to yourself tells nobody.
    back = lead_cli("assign", zoe, ANN)
    assert back.code == 0 and len(_handover_mail()) == len(mail)


def test_assign_several_ids_on_a_terminal_asks_first(lead_cli: Any, seeded: list[Any]) -> None:
    ids = [str(lead.id) for lead in seeded]
    declined = lead_cli("assign", *ids, BOB, tty=True, input="n\n")
    assert declined.code == 1 and f"Assign 3 leads to {BOB}?" in declined.stderr
    assert list(_owners().values()).count(BOB) == 1


# -- assign -: hostile input, refused whole before anything is done ------------------------------


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("1\n" * 10_001, "more than 10,000 ids on standard input"),
        ("1\n" * 100_000, "more than 10,000 ids on standard input"),
        ("1\n2\nhello world\n", "line 3 of standard input is not a lead id or reference: "),
        ("1\n2\x003\n", "line 2 of standard input holds a control character: '2\\x003'"),
        ("1\n\x1b[2J\n", "line 2 of standard input holds a control character: '\\x1b[2J'"),
        ("1" * 10_000_000, "line 1 of standard input is longer than 4,096 characters"),
        ('{"name": "x"}\n', "line 1 of standard input is a JSON object without an id"),
        ('{"id": true}\n', "line 1 of standard input is a JSON object without an id"),
        ("{not json\n", "line 1 of standard input is not valid JSON"),
        ("1;DROP TABLE lead\n", "line 1 of standard input is not a lead id or reference"),
    ],
    ids=[
        "10001-lines",
        "100000-lines",
        "garbage",
        "nul",
        "escape",
        "huge-line",
        "no-id",
        "bool-id",
        "bad-json",
        "sql",
    ],
)
def test_bad_standard_input_is_refused_whole(
    cli: Any, seeded: list[Any], stdin: str, message: str
) -> None:
    before = _owners()
    result = cli("assign", "-", BOB, input=stdin)
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.startswith(f"leadctl: error: {message}"), result.stderr[:300]
    assert result.stderr.count("\n") == 1 and len(result.stderr) < 300
    assert _owners() == before and _handover_mail() == []
    # The same reader serves reach-out and reopen.
    assert cli("reach-out", "-", input=stdin).code == 2


def test_a_bad_attorney_fails_each_lead_once_said(lead_cli: Any, seeded: list[Any]) -> None:
    ids = [str(lead.id) for lead in seeded]
    unknown = lead_cli("assign", *ids, "nobody@firm.example", "--yes")
    assert unknown.code == 1 and unknown.stdout == ""
    assert unknown.stderr == (
        "leadctl: error: no attorney nobody@firm.example; see: leadctl attorney list\n"
        "leadctl: error: no attorney nobody@firm.example; see: leadctl attorney list "
        "(and 2 more leads the same)\n"
    )
    as_json = lead_cli("assign", *ids, "nobody@firm.example", "--json")
    assert len(as_json.json()["failed"]) == 3


def test_assigning_to_an_inactive_attorney_is_refused(cli: Any, seeded: list[Any]) -> None:
    assert cli("attorney", "deactivate", BOB, "--yes").code == 0
    before = _owners()
    refused = cli("assign", str(seeded[0].id), BOB)
    assert refused.code == 1
    assert refused.stderr == (
        f"leadctl: error: attorney {BOB} is deactivated; choose an active one\n"
    )
    assert _owners() == before


# -- attorney deactivate --reassign-to -----------------------------------------------------------


def test_deactivate_hands_pending_leads_over_in_one_go(cli: Any, seeded: list[Any]) -> None:
    zoe, paul, li = (lead.id for lead in seeded)
    assert cli("assign", str(zoe), BOB).code == 0  # bob: Zoë and Paul
    assert cli("--as", BOB, "reach-out", str(zoe)).code == 0  # Zoë stays his, as history
    assert cli("attorney", "add", "Cy Poe", CY).code == 0
    before_mail = len(_handover_mail())
    result = cli("attorney", "deactivate", BOB, "--reassign-to", CY, "--yes", "--json")
    assert result.code == 0, result.stderr
    data = result.json()
    assert (data["email"], data["active"], data["changed"]) == (BOB, False, True)
    assert (data["moved"], data["reassigned_to"]) == (1, {CY: [paul]})
    assert _owners() == {zoe: BOB, paul: CY, li: ANN}
    mail = _handover_mail()[before_mail:]
    assert [(m.recipient, m.lead_id) for m in mail] == [(CY, None)]
    assert mail[0].subject == f"Lead {seeded[1].reference} is now yours"
    assert f"{ANN} moved a lead to you from {BOB}." in mail[0].body_text
    assert f"Why: {BOB} was deactivated" in mail[0].body_text
    assert "Paul" not in mail[0].body_text  # no prospect's name in a mail tied to no lead
    text = cli("attorney", "deactivate", BOB, "--reassign-to", CY, "--yes")
    assert text.stdout == f"{BOB} is already inactive; they had no pending leads to move\n"


def test_the_handover_line_says_how_many_leads_went_to_whom() -> None:
    from leadctl.cli.attorney_commands import _handover_text

    moved = {"email": BOB, "changed": True, "moved": 3, "reassigned_to": {CY: [1, 2], ANN: [3]}}
    assert (
        _handover_text(moved)
        == f"{BOB} is now inactive; 3 pending leads moved: 2 to {CY}, 1 to {ANN}"
    )


def test_deactivate_round_robin_spreads_the_leads(cli: Any, seeded: list[Any]) -> None:
    assert cli("attorney", "add", "Cy Poe", CY).code == 0
    assert cli("attorney", "add", "Di Fox", "di@firm.example").code == 0
    s = Settings.from_env({}, database_url=cli.env["LEADS_DATABASE_URL"])
    db.bind(s.database_url)
    extra = [_submit(s, "P", f"N{i}", f"p{i}@example.com") for i in range(8)]
    Lead.update(attorney=Attorney.get(Attorney.email == ANN)).where(
        Lead.id.in_([lead.id for lead in extra])
    ).execute()
    database.obj.close()
    pending = [lead for lead, owner in _owners().items() if owner == ANN]
    result = cli("attorney", "deactivate", ANN, "--reassign-to", "round-robin", "--yes", "--json")
    assert result.code == 0, result.stderr
    spread = result.json()["reassigned_to"]
    assert set(spread) == {BOB, CY, "di@firm.example"}
    assert sorted(i for ids in spread.values() for i in ids) == sorted(pending)
    counts = sorted(len(ids) for ids in spread.values())
    assert counts[-1] - counts[0] <= 1, spread  # round robin: even to within one
    text = cli("attorney", "list", "--json").json()
    assert {a["email"]: a["active"] for a in text}[ANN] is False
    assert len(_handover_mail()) == 3  # one per new attorney


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (BOB, f"--reassign-to names {BOB}, whose leads are being moved"),
        ("nobody@firm.example", "no attorney nobody@firm.example"),
        ("gone@firm.example", "attorney gone@firm.example is deactivated; choose an active one"),
    ],
)
def test_deactivate_refuses_a_bad_target_and_changes_nothing(
    cli: Any, seeded: list[Any], target: str, message: str
) -> None:
    assert cli("attorney", "add", "Gone", "gone@firm.example").code == 0
    assert cli("attorney", "deactivate", "gone@firm.example", "--yes").code == 0
    before = _owners()
    result = cli("attorney", "deactivate", BOB, "--reassign-to", target, "--yes")
    assert result.code == 1 and result.stderr.startswith(f"leadctl: error: {message}")
    assert _owners() == before and _handover_mail() == []
    active = {a["email"]: a["active"] for a in cli("attorney", "list", "--json").json()}
    assert active[BOB] is True  # the deactivation went back with the rest


def test_deactivate_with_nobody_left_to_take_the_leads(cli: Any, seeded: list[Any]) -> None:
    assert cli("attorney", "deactivate", ANN, "--yes").code == 0
    result = cli(
        "--as", BOB, "attorney", "deactivate", BOB, "--reassign-to", "round-robin", "--yes"
    )
    assert result.code == 1
    assert result.stderr == (
        f"leadctl: error: no other active attorney can take the 1 pending lead of {BOB}; "
        "add one first (leadctl attorney add)\n"
    )
    assert cli("attorney", "list", "--json").json()[1]["active"] is True


def test_only_an_admin_or_the_attorney_may_hand_leads_over(cli: Any, seeded: list[Any]) -> None:
    before = _owners()
    refused = cli("--as", BOB, "attorney", "deactivate", ANN, "--reassign-to", BOB, "--yes")
    assert refused.code == 1
    assert refused.stderr == (
        f"leadctl: error: only {ANN} or an admin may move the leads of {ANN}\n"
    )
    assert _owners() == before
    own = cli("--as", BOB, "attorney", "deactivate", BOB, "--reassign-to", ANN, "--yes")
    assert own.code == 0, own.stderr
    assert set(_owners().values()) == {ANN}


def test_deactivate_needs_yes_off_a_terminal(cli: Any, seeded: list[Any]) -> None:
    result = cli("attorney", "deactivate", BOB, "--reassign-to", ANN)
    assert result.code == 2 and "--yes" in result.stderr
    assert _owners()[seeded[1].id] == BOB


# -- the core, on SQLite and PostgreSQL ----------------------------------------------------------


def test_hand_over_on_both_databases(core: Settings) -> None:
    ann, _ = attorneys.add("Ann Lee", ANN, "admin")
    bob, _ = attorneys.add("Bob Roe", BOB)
    attorneys.add("Cy Poe", CY)
    made = [_submit(core, "P", f"N{i}", f"p{i}@example.com") for i in range(6)]
    Lead.update(attorney=bob).where(Lead.id.in_([m.id for m in made])).execute()
    from leadctl import leads

    leads.change_state(made[0].id, Action.REACH_OUT, of_attorney(bob))
    with pytest.raises(Forbidden):
        reassignment.hand_over(ANN, BOB, of_attorney(bob), core)
    with pytest.raises(NotFound):
        reassignment.hand_over("who@firm.example", CY, of_attorney(ann), core)
    with pytest.raises(LeadctlError, match="whose leads are being moved"):
        reassignment.hand_over(BOB, BOB, of_attorney(ann), core)
    assert Attorney.get_by_id(bob.id).active
    events = Event.select().count()
    done = reassignment.hand_over(BOB, "Round-Robin", local(ANN), core)
    assert done.deactivated and not Attorney.get_by_id(bob.id).active
    assert sorted(i for ids in done.moved.values() for i in ids) == [m.id for m in made[1:]]
    assert set(done.moved) == {ANN, CY}
    assert Lead.get_by_id(made[0].id).attorney_id == bob.id  # reached out: stays
    assert Event.select().count() == events + 5
    mails = list(OutboxMessage.select().where(OutboxMessage.purpose == "reassigned"))
    assert [m.recipient for m in mails] == [CY]  # ann moved some to herself: no mail for that


def test_the_email_lists_at_most_fifty_leads(core: Settings) -> None:
    attorneys.add("Ann Lee", ANN, "admin")
    bob, _ = attorneys.add("Bob Roe", BOB)
    made = [_submit(core, "P", f"N{i}", f"p{i}@example.com") for i in range(53)]
    Lead.update(attorney=bob).where(Lead.id.in_([m.id for m in made])).execute()
    done = reassignment.hand_over(BOB, ANN, "root", core)
    assert len(done.moved[ANN]) == 53
    ann_mail = OutboxMessage.get(OutboxMessage.purpose == "reassigned")
    assert ann_mail.subject == "53 leads are now yours"
    assert ann_mail.body_text.count("  Lead ") == 50 and "... and 3 more." in ann_mail.body_text


# -- round robin over many leads at once ---------------------------------------------------------


@contextlib.contextmanager
def _statements() -> Iterator[list[str]]:
    """The SQL the bound database runs meanwhile."""
    seen: list[str] = []
    obj = database.obj
    run = obj.execute_sql

    def counted(sql: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(sql)
        return run(sql, *args, **kwargs)

    obj.execute_sql = counted
    try:
        yield seen
    finally:
        del obj.execute_sql


def _bob_has(core: Settings, count: int, bob: Attorney, first: str = "P") -> list[Lead]:
    made = [_submit(core, first, f"N{i}", f"p{i}@example.com") for i in range(count)]
    Lead.update(attorney=bob).where(Lead.id.in_([m.id for m in made])).execute()
    return made


def test_round_robin_hand_over_replays_one_pick_at_a_time(core: Settings) -> None:
    """Each lead, in id order, goes to its returning prospect's attorney, else to the active
    attorney assigned least recently (a returning prospect's lead counts): never twice in a row
    to one attorney. And the marks are kept: the next new prospect goes on from there."""
    attorneys.add("Ann Lee", ANN, "admin")
    bob, _ = attorneys.add("Bob Roe", BOB)
    cy, _ = attorneys.add("Cy Poe", CY)
    di, _ = attorneys.add("Di Fox", "di@firm.example")
    made = _bob_has(core, 14, bob)
    # Earlier leads of three of these prospects, with cy and di (any case of the address).
    back = {made[2].id: cy.id, made[5].id: di.id, made[9].id: cy.id}
    for lead_id, owner in back.items():
        earlier = _submit(core, "P", "Back", Lead.get_by_id(lead_id).email.upper())
        Lead.update(attorney=owner).where(Lead.id == earlier.id).execute()
    line = {a.id: a.last_assigned_at for a in Attorney.select() if a.active and a.id != bob.id}
    done = reassignment.hand_over(BOB, "round-robin", local(ANN), core)
    owners = {i: a for a, ids in done.moved.items() for i in ids}
    by_email = {a.email: a.id for a in Attorney.select()}
    # Never assigned first, then by the last mark before the handover, then picks in it.
    rank = {i: (0, 0.0, i) if m is None else (1, m.timestamp(), i) for i, m in line.items()}
    previous = None
    for position, lead in enumerate(made):
        expected = back.get(lead.id) or min(line, key=lambda i: rank[i])
        assert by_email[owners[lead.id]] == expected, (position, owners)
        if lead.id not in back:
            assert expected != previous, position  # round robin: never the same twice
        rank[expected], previous = (2, float(position), 0), expected
    # The marks were written: a new prospect goes to whoever has waited longest since.
    waited_longest = min(line, key=lambda i: rank[i])
    fresh = _submit(core, "New", "Prospect", "new@example.com")
    assert fresh.attorney_id == waited_longest
    assigned = Event.select().where((Event.kind == "assigned") & (Event.actor == ANN))
    assert sorted(e.lead_id for e in assigned) == [m.id for m in made]
    assert {e.details["reason"] for e in assigned} == {f"{BOB} was deactivated"}


def test_a_hand_over_takes_as_many_statements_for_many_leads_as_for_few(core: Settings) -> None:
    counts = []
    for n, size in enumerate((3, 60)):
        # A fresh cast each round (the last one's deactivated): two take bob's leads.
        attorneys.add("Ann Lee", f"ann{n}@firm.example", "admin")
        bob, _ = attorneys.add("Bob Roe", f"bob{n}@firm.example")
        attorneys.add("Cy Poe", f"cy{n}@firm.example")
        _bob_has(core, size, bob, f"R{n}")
        with _statements() as seen:
            done = reassignment.hand_over(bob.email, "round-robin", "root", core)
        assert sorted(len(ids) for ids in done.moved.values()) == [size // 2, size - size // 2]
        counts.append(len(seen))
        for a in Attorney.select().where(Attorney.active):
            attorneys.deactivate(a.email)
    assert counts[0] == counts[1], counts
