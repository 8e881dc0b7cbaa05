"""Erasure, access and retention through the real CLI, on SQLite and PostgreSQL (issue 13)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from leadctl import db
from leadctl.models import (
    ALL_MODELS,
    Event,
    IdempotencyKey,
    Lead,
    NameToken,
    OutboxMessage,
    Resume,
    database,
)
from leadctl.schema import ensure_schema
from leadctl.settings import Settings
from tests.cli_harness import Cli

ADMIN = "ann@firm.example"
ZOE = ("Zoë", "Ñúñez", "Zoe.Nunez@Example.com")
SECRET_WORDS = ("Zoë", "Ñúñez", "zoe.nunez@example.com", "Zoe.Nunez", "nunez", "husband Bob")


class ClosingCli(Cli):
    """The CLI binds a database of its own at each call: the test's connection to the one
    before is closed first (PostgreSQL would warn of a connection left open)."""

    def __call__(self, *args: str, **kwargs: Any) -> Any:
        close()
        return super().__call__(*args, **kwargs)


def close() -> None:
    if database.obj is not None and not database.obj.is_closed():
        database.obj.close()


@dataclass
class World:
    cli: Cli
    url: str
    settings: Settings
    ids: dict[str, int]


def seed(url: str, tmp_path: Path, *people: tuple[str, str, str]) -> dict[str, int]:
    """Ann (admin), Bob (attorney), and a lead for each person: (first, last, email)."""
    from leadctl import attorneys, submissions
    from leadctl.resumes import check_resume
    from leadctl.validation import check_prospect
    from tests import samples

    s = Settings.from_env(
        {}, database_url=url, mail_dir=str(tmp_path / "mail"), confirmations_per_hour=1000
    )
    db.bind(url)
    ensure_schema()
    if not Lead.select().exists():
        attorneys.add("Ann Lee", ADMIN, "admin")
        attorneys.add("Bob Roe", "bob@firm.example", "attorney")
    ids = {}
    for first, last, email in people:
        resume = check_resume(f"{first} CV.pdf", samples.pdf(3000), s.max_resume_bytes)
        lead = submissions.submit(check_prospect(first, last, email), resume, s).lead
        ids[email] = lead.id
    close()
    return ids


@pytest.fixture
def world(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from make_world(db_url, tmp_path, monkeypatch, ZOE, ("Paul", "Smith", "paul@example.com"))


def make_world(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *people: tuple[str, str, str]
) -> Iterator[World]:
    """`people` submitted (first name, last name, email), and the CLI acting as the admin."""
    ids = seed(db_url, tmp_path, *people)
    env = {
        "LEADS_DATABASE_URL": db_url,
        "LEADS_MAIL_DIR": str(tmp_path / "mail"),
        "LEADCTL_ACTOR": ADMIN,
        "COLUMNS": "200",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    settings = Settings.from_env({}, database_url=db_url, mail_dir=str(tmp_path / "mail"))
    yield World(ClosingCli(monkeypatch, env), db_url, settings, ids)
    close()


def everything_stored() -> str:
    """Every row of every table, as text: what a search of the database would find."""
    rows = []
    for model in ALL_MODELS:
        for row in model.select().tuples():
            rows.append(repr([bytes(v).decode("latin-1") if isinstance(v, bytes | memoryview)
                              else v for v in row]))  # fmt: skip
    return "\n".join(rows)


def leaks(text: str) -> list[str]:
    folded = text.casefold()
    return [word for word in SECRET_WORDS if word.casefold() in folded]


def zoe_id(w: World) -> str:
    return str(w.ids[ZOE[2]])


# -- erase ---------------------------------------------------------------------------------------


def test_erase_keeps_a_tombstone_and_no_personal_data(world: World) -> None:
    from leadctl.names import keyed_hash, name_key

    cli, lead = world.cli, zoe_id(world)
    assert cli("note", lead, "Spoke to her husband Bob about Zoë's case").code == 0
    assert cli("reach-out", lead, "--note", "called Zoë Ñúñez").code == 0
    assert cli("outbox", "send").code == 0  # delivered: email_sent events name the recipient
    before = cli("show", lead, "--json").json()
    assert leaks(everything_stored())

    done = cli("erase", lead, "--reason", "asked by email", "--yes", "--json")
    assert done.code == 0, done.stderr
    assert [i["id"] for i in done.json()["changed"]] == [int(lead)]

    shown = cli("show", lead, "--json").json()
    for kept in ("id", "reference", "state", "attorney", "created_at", "reached_out_at"):
        assert shown[kept] == before[kept]
    assert (shown["first_name"], shown["last_name"], shown["email"]) == ("", "", "")
    assert shown["resume"] is None
    kinds = [e["kind"] for e in shown["events"]]
    assert kinds[: len(before["events"])] == [e["kind"] for e in before["events"]]
    assert kinds[-1] == "erased"
    assert shown["events"][-1]["actor"] == ADMIN
    assert shown["events"][-1]["details"] == {"reason": "asked by email"}
    assert leaks(json.dumps(shown, ensure_ascii=False)) == []
    assert leaks(everything_stored()) == []  # outbox, events, tokens, idempotency: everything

    opened = cli("open", lead, "--print-path")
    assert opened.code == 1 and opened.stderr.count("\n") == 1 and "erased" in opened.stderr
    assert cli("list", "--search", "nunez", "--json").json() == []
    assert cli("list", "--search", "zoe.nunez", "--json").json() == []
    listed = cli("list", "--json").json()
    assert leaks(json.dumps(listed, ensure_ascii=False)) == [] and len(listed) == 2

    tomb = Lead.get_by_id(int(lead))
    assert tomb.erased_at is not None
    assert tomb.erased_name_hash == keyed_hash(name_key("Zoë Ñúñez"))
    assert tomb.erased_email_hash == keyed_hash("zoe.nunez@example.com")
    assert not Resume.select().where(Resume.lead == tomb.id).exists()
    assert not NameToken.select().where(NameToken.lead == tomb.id).exists()
    assert not IdempotencyKey.select().where(IdempotencyKey.lead == tomb.id).exists()

    person = cli("person", "show", "ZOE.NUNEZ@example.COM", "--json").json()
    assert person["leads"] == []
    assert [(t["id"], t["reference"]) for t in person["erased"]] == [
        (int(lead), before["reference"])
    ]
    assert set(person["erased"][0]) == {"id", "reference", "created_at", "erased_at"}


def test_a_later_lead_of_the_same_person_meets_the_tombstone_hashes(
    world: World, tmp_path: Path
) -> None:
    assert world.cli("erase", zoe_id(world), "--reason", "asked", "--yes").code == 0
    again = seed(world.url, tmp_path, ("ZOE", "nuñez", "zoe.nunez@EXAMPLE.com"))
    db.bind(world.url)
    tomb = Lead.get_by_id(int(zoe_id(world)))
    new = Lead.get_by_id(again["zoe.nunez@EXAMPLE.com"])
    from leadctl.names import keyed_hash

    assert keyed_hash(new.name_key) == tomb.erased_name_hash
    assert keyed_hash(new.email_key) == tomb.erased_email_hash
    shown = world.cli("person", "show", "zoe.nunez@example.com", "--json").json()
    assert [lead["id"] for lead in shown["leads"]] == [new.id]
    assert [t["id"] for t in shown["erased"]] == [tomb.id]


def test_erasing_an_erased_lead_changes_nothing_and_says_so(world: World) -> None:
    cli, lead = world.cli, zoe_id(world)
    assert cli("erase", lead, "--reason", "asked", "--yes").code == 0
    events = Event.select().where(Event.lead == int(lead)).count()
    again = cli("erase", lead, "--reason", "asked again", "--yes")
    assert again.code == 0
    assert f"lead {lead} was already erased on" in again.stdout
    assert Event.select().where(Event.lead == int(lead)).count() == events
    as_json = cli("erase", lead, "--reason", "x", "--yes", "--json").json()
    assert as_json["changed"] == [] and as_json["unchanged"][0]["id"] == int(lead)


def test_erase_is_for_admins_locally_and_asks_first(world: World) -> None:
    cli, lead = world.cli, zoe_id(world)
    bob = cli("--as", "bob@firm.example", "erase", lead, "--reason", "x", "--yes")
    assert bob.code == 1 and "needs an admin" in bob.stderr and "bob@firm.example" in bob.stderr
    nobody = cli("--as", "root", "erase", lead, "--reason", "x", "--yes")
    assert nobody.code == 1 and "needs an admin" in nobody.stderr
    remote = cli("--server", "http://127.0.0.1:9", "erase", lead, "--reason", "x", "--yes")
    assert remote.code == 2 and "--server" in remote.stderr
    assert cli("erase", lead, "--yes").code == 2  # no reason
    assert cli("erase", lead, "--reason", "   ", "--yes").code == 2
    bad_reason = cli("erase", lead, "--reason", "x\x1b[2Jy", "--yes")
    assert bad_reason.code == 2 and "\x1b" not in bad_reason.stderr
    piped = cli("erase", lead, "--reason", "asked")
    assert piped.code == 2 and "--yes" in piped.stderr
    declined = cli("erase", lead, "--reason", "asked", input="n\n", tty=True)
    assert declined.code == 1
    dry = cli("erase", lead, "--dry-run")
    assert dry.code == 0 and "would erase lead" in dry.stdout and "Ñúñez" in dry.stdout
    preview = cli("person", "erase", ZOE[2].upper(), "--dry-run", "--json").json()
    assert preview["would_erase"][0]["email"] == "Zoe.Nunez@example.com"
    assert Lead.get_by_id(int(lead)).erased_at is None  # none of that erased anything
    assert cli("erase", lead, "--reason", "asked", input="y\n", tty=True).code == 0
    assert Lead.get_by_id(int(lead)).erased_at is not None


def test_hostile_and_unknown_ids_fail_alone_and_reach_no_sql(world: World) -> None:
    cli, lead = world.cli, zoe_id(world)
    done = cli(
        "erase", "1;DROP TABLE lead", "' OR 1=1 --", "99999999999999999999", lead, "nope",
        "--reason", "asked", "--yes", "--json",
    )  # fmt: skip
    assert done.code == 1
    result = done.json()
    assert [i["id"] for i in result["changed"]] == [int(lead)]
    assert [f["id"] for f in result["failed"]] == [
        "1;DROP TABLE lead", "' OR 1=1 --", "99999999999999999999", "nope",
    ]  # fmt: skip
    assert Lead.select().count() == 2  # the table is there, the other lead untouched
    assert Lead.get_by_id(world.ids["paul@example.com"]).erased_at is None


def test_ten_thousand_ids_from_stdin_in_one_call(world: World) -> None:
    ids = [str(i) for i in range(10_000, 19_999)] + [zoe_id(world)]
    ids[5] = Lead.get_by_id(world.ids["paul@example.com"]).reference.lower()
    done = world.cli("erase", "-", "--reason", "asked", "--yes", "--json", input="\n".join(ids))
    assert done.code == 1
    result = done.json()
    assert sorted(i["id"] for i in result["changed"]) == sorted(world.ids.values())
    assert len(result["failed"]) == 9_998
    assert done.stderr.count("\n") == 9_998  # one line each, nothing else


def test_more_than_ten_thousand_ids_erase_nothing(world: World) -> None:
    """`erase -` reads standard input as every batch command does (cli/batch.read_ids): bounded,
    checked whole before anything is erased; bulk erasure by age is `purge`'s job."""
    ids = [zoe_id(world)] + [str(i) for i in range(10_000, 20_000)]
    done = world.cli("erase", "-", "--reason", "asked", "--yes", input="\n".join(ids))
    assert done.code == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert "more than 10,000 ids on standard input" in done.stderr
    assert "leadctl purge --older-than" in done.stderr
    endless = world.cli("erase", "-", "--reason", "asked", "--yes", input=zoe_id(world) * 10**6)
    assert endless.code == 2 and endless.stderr.count("\n") == 1
    assert "longer than 4,096 characters" in endless.stderr
    hostile = world.cli("erase", "-", "--reason", "x", "--yes", input=f"{zoe_id(world)}\n\x1b[2J\n")
    assert hostile.code == 2 and "\x1b" not in hostile.stderr
    on_terminal = world.cli("erase", "-", "--reason", "x", "--yes", tty=True)
    assert on_terminal.code == 2 and "pipe them in" in on_terminal.stderr
    assert not Lead.select().where(Lead.erased_at.is_null(False)).exists()


def test_erase_many_leads_in_one_call_over_several_chunks(core: Settings) -> None:
    from leadctl import erasure
    from leadctl.timeutil import utcnow

    now = utcnow()
    rows = [
        {"reference": f"R{i:07d}", "first_name": "Ada", "last_name": f"Byron{i}",
         "email": f"ada{i}@example.com", "email_key": f"ada{i}@example.com",
         "name_key": f"ada byron{i}", "search_key": f"ada byron{i}", "state": "PENDING",
         "created_at": now, "updated_at": now}
        for i in range(1_203)
    ]  # fmt: skip
    Lead.insert_many(rows).execute()
    ids = [lead.id for lead in Lead.select(Lead.id)]
    Event.insert_many(
        [{"lead": i, "at": now, "actor": "x@firm.example", "kind": "note",
          "details": {"text": f"Ada {i}"}} for i in ids]
    ).execute()  # fmt: skip
    result = erasure.erase_ids(ids, ADMIN, "bulk")
    assert len(result.changed) == 1_203 and not result.failed
    assert not Lead.select().where(Lead.erased_at.is_null()).exists()
    assert {e.details["text"] for e in Event.select().where(Event.kind == "note")} == {"[erased]"}
    assert Event.select().where(Event.kind == "erased").count() == 1_203


def test_person_erase_takes_every_case_of_the_address(world: World, tmp_path: Path) -> None:
    more = seed(world.url, tmp_path, ("Zoe", "Nunez", "ZOE.NUNEZ@example.com"))
    done = world.cli("person", "erase", "zoe.NUNEZ@EXAMPLE.COM", "--reason", "asked", "--yes")
    assert done.code == 0, done.stderr
    erased = {lead.id for lead in Lead.select().where(Lead.erased_at.is_null(False))}
    assert erased == {world.ids[ZOE[2]], more["ZOE.NUNEZ@example.com"]}
    again = world.cli("person", "erase", "zoe.nunez@example.com", "--reason", "x", "--yes")
    assert again.code == 0 and again.stdout.count("already erased") == 2
    missing = world.cli("person", "erase", "nobody@example.com", "--reason", "x", "--yes")
    assert missing.code == 1 and "no lead has the address" in missing.stderr
    bad = world.cli("person", "erase", "not an address", "--reason", "x", "--yes")
    assert bad.code == 1 and "email" in bad.stderr


# -- outbox and events ---------------------------------------------------------------------------


def test_unsent_mail_is_cancelled_and_never_sent_with_personal_data(
    world: World, tmp_path: Path
) -> None:
    lead = zoe_id(world)
    assert world.cli("erase", lead, "--reason", "asked", "--yes").code == 0
    rows = list(OutboxMessage.select().where(OutboxMessage.lead == int(lead)))
    assert rows and {m.status for m in rows} == {"dead"}
    assert {(m.subject, m.body_text, m.body_html, m.recipient) for m in rows} == {("", "", "", "")}
    # Even an operator's retry of every dead message sends nothing about her.
    assert world.cli("outbox", "retry", "--dead").code == 0
    world.cli("outbox", "send")
    mail = "".join(p.read_text(errors="replace") for p in (tmp_path / "mail").glob("*.eml"))
    assert leaks(mail) == [] or "Paul" in mail  # only Paul's messages went out
    assert "Zoe.Nunez" not in mail and "zoe.nunez" not in mail.lower()


def test_an_email_being_sent_holds_the_erasure_back_until_it_is_recorded(world: World) -> None:
    from leadctl import erasure, outbox
    from leadctl.timeutil import utcnow

    lead = int(zoe_id(world))
    db.bind(world.url)
    claimed = outbox.claim(10, outbox.lease_for(world.settings))
    assert {m.lead_id for m in claimed} >= {lead}
    result = erasure.erase_ids([lead], ADMIN, "asked")
    assert result.changed == [] and "being sent right now" in result.failed[0]["error"]
    untouched = Lead.get_by_id(lead)
    assert untouched.erased_at is None and untouched.first_name == ZOE[0]  # no half state
    refused = world.cli("erase", str(lead), "--reason", "asked", "--yes")
    assert refused.code == 1 and "try again after" in refused.stderr
    outbox.mark_sent(claimed)  # the worker records its delivery
    assert erasure.erase_ids([lead], ADMIN, "asked").changed
    assert leaks(everything_stored()) == []
    # A lease that lapsed (its worker died) holds nothing back: the message is cancelled.
    other = world.ids["paul@example.com"]
    OutboxMessage.update(status="sending", lease_until=utcnow().replace(year=2000)).where(
        OutboxMessage.lead == other
    ).execute()
    assert erasure.erase_ids([other], ADMIN, "asked").changed
    assert {m.status for m in OutboxMessage.select().where(OutboxMessage.lead == other)} == {"dead"}


def test_redaction_keeps_the_firms_words_and_drops_the_rest() -> None:
    from leadctl.redaction import ERASED, redact

    address = "zoe@example.com"
    assert redact({"from": "PENDING", "to": "REACHED_OUT", "note": "hi Zoë"}, address,
                  kind="state_changed", system=False) == {
        "from": "PENDING", "to": "REACHED_OUT", "note": ERASED
    }  # fmt: skip
    sent = {"message_id": "<A.confirmation.1@f>", "to": "Zoe@Example.com", "purpose": "x"}
    assert redact(sent, address, kind="email_sent", system=True)["to"] == ERASED
    assert redact({**sent, "to": "bob@firm.example"}, address, kind="email_sent",
                  system=True) == {**sent, "to": "bob@firm.example"}  # fmt: skip
    assert redact({"reason": "round robin"}, address, kind="assigned", system=True) == {
        "reason": "round robin"
    }
    assert redact({"reason": "her brother"}, address, kind="note", system=False) == {
        "reason": ERASED
    }
    # An assignment's reason is the firm's whoever assigned: `leadctl assign`, a hand-over.
    manual = {"attorney": "bob@firm.example", "previous": None, "reason": "manual"}
    assert redact(manual, address, kind="assigned", system=False) == manual
    # A party is the firm's list, not the person: its name, role and matter stay. Another
    # lead's name (it matched this person's) and a searched text go; an address goes anywhere.
    party = {
        "source": "party",
        "id": 3,
        "name": "Acme",
        "role": "adverse",
        "matter": "M-1",
        "reference": None,
        "date": "2026-01-01T00:00:00Z",
        "score": 1.0,
        "matched": "name",
    }
    lead = {**party, "source": "lead", "id": 7, "name": "Zoë Ñúñez", "role": None,
            "matter": None, "reference": "K7QF-M2XD", "matched": "email"}  # fmt: skip
    hits = {"hits": [party, lead, {**party, "query": "Zoë", "matter": "zoe@example.com"}]}
    assert redact(hits, address, kind="conflicts_found", system=True) == {
        "hits": [party, {**lead, "name": ERASED},
                 {**party, "query": ERASED, "matter": ERASED}]
    }  # fmt: skip
    assert redact(hits, address, kind="other", system=True)["hits"][0]["name"] == ERASED
    assert redact({"digest": "<d@f>", "pending_since": "2026-01-01T00:00:00Z"}, address,
                  kind="x", system=True) == {"digest": "<d@f>", "pending_since": "2026-01-01T00:00:00Z"}  # fmt: skip
    assert redact({"anything_new": {"deep": "x"}, "empty": ""}, address, kind="x",
                  system=True) == {"anything_new": ERASED, "empty": ""}  # fmt: skip


def test_events_are_append_only_but_for_erasure() -> None:
    """No code updates or deletes events, except erasure's redaction (of the lead's own events,
    and of the hits on it in later leads' events) and the deletion of a whole quarantined lead
    (suspected spam) by `purge-quarantine`."""
    import ast
    import re

    root = Path(__file__).resolve().parent.parent / "leadctl"
    allowed = {("redaction.py", "update"), ("mentions.py", "update"), ("submissions.py", "delete")}
    found = set()
    for path in root.rglob("*.py"):
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in {"update", "delete", "bulk_update", "replace", "delete_instance"}
                and isinstance(node.value, ast.Name)
                and node.value.id == "Event"
            ):
                found.add((path.name, node.attr))
        if re.search(r"(UPDATE|DELETE\s+FROM)\s+\"?event\b", text, re.IGNORECASE):
            found.add((path.name, "sql"))
    assert found - allowed == set()
    assert ("redaction.py", "update") in found  # the scan sees what it looks for


def held(settings: Settings, first: str, last: str, email: str) -> int:
    """A submission kept in quarantine (the honeypot caught it): the digest lists it."""
    from leadctl import submissions
    from leadctl.resumes import check_resume
    from leadctl.validation import check_prospect
    from tests import samples

    resume = check_resume("cv.pdf", samples.pdf(), settings.max_resume_bytes)
    prospect = check_prospect(first, last, email)
    return submissions.submit(prospect, resume, settings, quarantine_reason="honeypot").lead.id


def test_erasure_takes_the_person_out_of_the_quarantine_digest(world: World) -> None:
    """The digest (an email with no lead, to the intake inbox) named her; after erasure it names
    the others it listed, and her only by reference. Found through her `quarantine_digested`
    event, which keeps the digest's Message-ID."""
    from leadctl import chores
    from leadctl.timeutil import utcnow

    s = world.settings.replace(quarantine_digest="1h", intake_email="intake@firm.example")
    db.bind(world.url)
    zoe = held(s, "Zoë", "Ñúñez <&> O'Neil", "Zoe.Nunez@example.com")
    sam = held(s, "Sam", "Other", "sam@example.com")
    assert chores.digest_due(s, utcnow()) == 1
    (digest,) = OutboxMessage.select().where(OutboxMessage.purpose == chores.DIGEST)
    assert "Ñúñez &lt;&amp;&gt; O&#39;Neil" in digest.body_html  # autoescaped: found as such
    assert "Zoë Ñúñez <&> O'Neil <Zoe.Nunez@example.com>" in digest.body_text
    close()

    done = world.cli("erase", str(zoe), zoe_id(world), "--reason", "asked", "--yes")
    assert done.code == 0, done.stderr
    stored = everything_stored()
    assert leaks(stored) == [] and "Neil" not in stored
    after = OutboxMessage.get_by_id(digest.id)
    zoe_ref, sam_ref = (Lead.get_by_id(i).reference for i in (zoe, sam))
    for body in (after.body_text, after.body_html):
        assert zoe_ref in body and sam_ref in body and "[erased]" in body
        assert "Sam Other" in body and "sam@example.com" in body  # the others stay listed
    assert "[erased] <[erased]>" in after.body_text
    assert after.subject == digest.subject and after.recipient == "intake@firm.example"
    (mark,) = Event.select().where((Event.lead == zoe) & (Event.kind == chores.DIGESTED))
    assert mark.details == {"digest": digest.message_id, "listed": True}  # the link stays


def test_erasure_keeps_the_firms_parties_and_assignment_reasons(
    world: World, tmp_path: Path
) -> None:
    """Only the person's data goes: a party of the firm that her name matched (its name, role and
    matter) and the reason of an assignment by hand stay in her history."""
    from leadctl import parties
    from leadctl.redaction import ERASED

    db.bind(world.url)
    matter = "Smith v. Acme Holdings (M-7)"
    parties.import_rows(parties.parse(f"name,role,matter\nSmith,adverse,{matter}\n".encode()))
    close()
    lead = seed(world.url, tmp_path, ("Paula", "Smith", "paula.smith@example.com"))
    lead_id = lead["paula.smith@example.com"]
    before = world.cli("show", str(lead_id), "--json").json()["attorney"]
    other = "bob@firm.example" if before == ADMIN else ADMIN
    assert world.cli("assign", str(lead_id), other).code == 0
    assert world.cli("erase", str(lead_id), "--reason", "asked", "--yes").code == 0

    history = {e.kind: e for e in Event.select().where(Event.lead == lead_id).order_by(Event.id)}
    (party,) = [h for h in history["conflicts_found"].details["hits"] if h["source"] == "party"]
    assert (party["name"], party["role"], party["matter"]) == ("Smith", "adverse", matter)
    assert history["assigned"].actor == ADMIN
    assert history["assigned"].details == {
        "attorney": other,
        "previous": before,
        "reason": "manual",
    }
    for hit in history["conflicts_found"].details["hits"]:
        assert hit["source"] == "party" or hit["name"] in (ERASED, "")
    stored = everything_stored()
    assert "Paula" not in stored and "paula.smith" not in stored
    assert world.cli("conflicts", "Smith", "--json").json()[0]["matter"] == matter


# -- concurrency ---------------------------------------------------------------------------------


def race(*steps: Any) -> list[BaseException]:
    """Run the steps at once, each in a thread of its own (its own connection); what they raised
    beyond a refusal (a LeadctlError)."""
    import threading

    from leadctl.errors import LeadctlError

    gate = threading.Barrier(len(steps))
    errors: list[BaseException] = []

    def run(step: Any) -> None:
        try:
            gate.wait()
            step()
        except LeadctlError:
            pass  # refusing is fine; a half state is not
        except BaseException as exc:
            errors.append(exc)
        finally:
            close()

    threads = [threading.Thread(target=run, args=(step,)) for step in steps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_concurrent_erase_and_reach_out_leave_no_half_state(core: Settings, tmp_path: Path) -> None:
    from functools import partial

    from leadctl import erasure, leads
    from leadctl.states import Action

    url = core.database_url
    close()
    for n in range(4):
        lead_id = seed(url, tmp_path, ("Zoë", "Ñúñez", f"z{n}@example.com"))[f"z{n}@example.com"]
        db.bind(url)
        errors = race(
            partial(erasure.erase_ids, [lead_id], ADMIN, "x"),
            partial(leads.change_state, lead_id, Action.REACH_OUT, ADMIN),
        )
        assert errors == []
        lead = Lead.get_by_id(lead_id)
        assert lead.erased_at is not None
        assert (lead.first_name, lead.email, lead.email_key, lead.search_key) == ("", "", "", "")
        assert not Resume.select().where(Resume.lead == lead_id).exists()
        kinds = [e.kind for e in Event.select().where(Event.lead == lead_id).order_by(Event.id)]
        assert kinds.count("erased") == 1
        assert (lead.state == "REACHED_OUT") == ("state_changed" in kinds)
        assert lead.reached_out_at is None or lead.state == "REACHED_OUT"
        close()


# -- person show / export ------------------------------------------------------------------------


def test_person_show_gives_everything_under_any_case(world: World) -> None:
    cli = world.cli
    cli("note", zoe_id(world), "prefers mornings")
    shown = cli("person", "show", "zoe.nunez@EXAMPLE.com", "--json").json()
    assert shown["email"] == "zoe.nunez@example.com" and shown["erased"] == []
    (lead,) = shown["leads"]
    assert (lead["first_name"], lead["email"]) == ("Zoë", "Zoe.Nunez@example.com")
    assert {"consent_at", "disclaimer_version", "resume", "resume_url"} <= set(lead)
    assert lead["resume"]["filename"] == "Zoë CV.pdf"
    assert "note" in [e["kind"] for e in lead["events"]]
    assert {m["purpose"] for m in lead["messages"]} == {"confirmation", "notification"}
    human = cli("person", "show", ZOE[2])
    assert human.code == 0 and "Zoë Ñúñez" in human.stdout and "prefers mornings" in human.stdout
    nothing = cli("person", "show", "nobody@example.com")
    assert nothing.code == 0 and "Nothing is held about nobody@example.com" in nothing.stdout
    assert cli("person", "show", "bad\x1b[31m").code == 1


def test_person_show_on_a_terminal_shows_hostile_text_as_text(world: World) -> None:
    Lead.update(first_name="[/]\x1b]8;;http://evil.example\x07x", last_name="[link=x]y").where(
        Lead.id == int(zoe_id(world))
    ).execute()
    shown = world.cli("person", "show", ZOE[2], tty=True)
    assert shown.code == 0
    assert "\x1b]8" not in shown.stdout and "\\x1b]8" in shown.stdout and "[/]" in shown.stdout


def test_person_export_writes_private_files_with_safe_names(world: World, tmp_path: Path) -> None:
    lead = int(zoe_id(world))
    folder = tmp_path / "out" / "zoe"
    done = world.cli("person", "export", ZOE[2], str(folder), "--json")
    assert done.code == 0, done.stderr
    assert (folder.stat().st_mode & 0o777) == 0o700
    data = json.loads((folder / "person.json").read_text())
    saved = data["leads"][0]["resume"]["saved_as"]
    assert saved == f"resumes/{lead}-Zoë CV.pdf"
    assert (folder / saved).read_bytes() == bytes(Resume.get_by_id(lead).data)
    for path in folder.rglob("*"):
        assert (path.stat().st_mode & 0o777) == (0o700 if path.is_dir() else 0o600)
    assert {m["purpose"] for m in data["leads"][0]["messages"]} == {"confirmation", "notification"}
    assert all("body_text" in m for m in data["leads"][0]["messages"])
    again = world.cli("person", "export", ZOE[2], str(folder))
    assert again.code == 1 and "exists; pass --force" in again.stderr
    # A symlink planted where a file goes is replaced, never followed.
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (folder / "person.json").unlink()
    (folder / "person.json").symlink_to(victim)
    assert world.cli("person", "export", ZOE[2], str(folder), "--force").code == 0
    assert victim.read_text() == "keep me" and not (folder / "person.json").is_symlink()


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("con", "_con"),
        ("NUL.pdf", "_NUL.pdf"),
        ("a\x00b.pdf", "a_b.pdf"),
        ("..", "resume"),
        ("", "resume"),
        (".bashrc", "bashrc"),
        ("a\x1b[31m.pdf", "a_[31m.pdf"),
        ("x" * 300 + ".pdf", "x" * 146 + ".pdf"),
        ("𝐀" * 100 + ".pdf", "𝐀" * 36 + ".pdf"),  # 4 bytes each: 148 bytes, not 404
    ],
)
def test_safe_filename(stored: str, expected: str) -> None:
    from leadctl.person import safe_filename

    assert safe_filename(stored) == expected


def test_export_of_hostile_stored_names_stays_in_the_folder(world: World, tmp_path: Path) -> None:
    lead = int(zoe_id(world))
    names = ["../../../../etc/passwd", "con", "/etc/shadow", "a\x1b]8;;x\x07b"]
    if world.url.startswith("sqlite"):
        names.append("a\x00b")  # PostgreSQL's text cannot even hold a NUL
    for name in names:
        Resume.update(filename=name).where(Resume.lead == lead).execute()
        folder = tmp_path / f"x{abs(hash(name))}"
        assert world.cli("person", "export", ZOE[2], str(folder)).code == 0
        files = [p for p in folder.rglob("*") if p.is_file()]
        assert len(files) == 2 and all(folder in p.parents for p in files)
    assert not (tmp_path / "etc").exists()


# -- retention -----------------------------------------------------------------------------------


def test_purge_erases_old_leads_with_purged_events(world: World) -> None:
    from datetime import timedelta

    from leadctl import retention
    from leadctl.timeutil import utcnow

    old = utcnow() - timedelta(days=800)
    Lead.update(created_at=old).where(Lead.id == int(zoe_id(world))).execute()
    dry = world.cli("purge", "--older-than", "2y", "--dry-run", "--json").json()
    assert dry["would_erase"] == [int(zoe_id(world))] and dry["count"] == 1
    assert world.cli("purge", "--older-than", "2y", "--state", "reached-out", "--yes",
                     "--json").json()["count"] == 0  # fmt: skip
    assert world.cli("purge", "--older-than", "2y").code == 2  # piped, no --yes
    assert world.cli("purge", "--older-than", "soon", "--yes").code == 2
    assert world.cli("--as", "bob@firm.example", "purge", "--older-than", "2y", "--yes").code == 1
    done = world.cli("purge", "--older-than", "2y", "--state", "pending", "--yes", "--json")
    assert done.code == 0 and done.json()["erased"] == [int(zoe_id(world))]
    (event,) = Event.select().where((Event.lead == int(zoe_id(world))) & (Event.kind == "purged"))
    assert event.actor == ADMIN and event.details == {"reason": "retention: older than 730d"}
    assert Lead.get_by_id(world.ids["paul@example.com"]).erased_at is None
    assert retention.purge_due(world.settings, utcnow()) == 0  # LEADS_RETENTION off
    on = world.settings.replace(retention="1d")
    assert retention.purge_due(on, utcnow() + timedelta(days=2)) == 1  # Paul, now old enough
    (sys_event,) = Event.select().where(
        (Event.lead == world.ids["paul@example.com"]) & (Event.kind == "purged")
    )
    assert sys_event.actor == "system"
    assert retention.purge_due(on, utcnow() + timedelta(days=2)) == 0


# -- history -------------------------------------------------------------------------------------


def test_history_filters_pages_and_formats(world: World) -> None:
    cli, lead = world.cli, str(world.ids["paul@example.com"])  # Bob's lead
    assert cli("--as", "bob@firm.example", "note", lead, "first").code == 0
    assert cli("note", zoe_id(world), "second").code == 0
    everything = cli("history", "--json").json()
    ids = [e["id"] for e in everything]
    assert ids == sorted(ids, reverse=True) and everything[0]["details"] == {"text": "second"}
    by_bob = cli("history", "--actor", "BOB@firm.example", "--json").json()
    assert [(e["kind"], e["lead_id"]) for e in by_bob] == [("note", int(lead))]
    of_lead = cli("history", "--lead", lead, "--action", "note,submitted", "--json").json()
    assert {e["kind"] for e in of_lead} == {"note", "submitted"}
    assert {e["lead_id"] for e in of_lead} == {int(lead)} and len(of_lead) == 2
    repeated = cli("history", "--action", "note", "--action", "SUBMITTED", "--json").json()
    assert len(repeated) == 4
    page = cli("history", "--limit", "2", "--json").json()
    following = cli("history", "--limit", "2", "--before", str(page[-1]["id"]), "--json").json()
    assert [e["id"] for e in page + following] == ids[:4]
    lines = cli("history", "--ndjson", "--since", "1h").stdout.splitlines()
    assert len(lines) == len(everything) and json.loads(lines[0])["id"] == ids[0]
    assert cli("history", "--until", "2000-01-01", "--json").json() == []
    assert cli("history", "--since", "yesterday-ish").code == 2
    assert cli("history", "--lead", "nope").code == 1
    plain = cli("history", "--limit", "1")
    assert plain.code == 0 and "\tnote\t" in plain.stdout and "--before" in plain.stderr
    assert cli("history", tty=True).code == 0


def test_history_action_takes_only_kinds_that_exist(world: World) -> None:
    for typo in ("erase", "bogus", "note,erase"):
        refused = world.cli("history", "--action", typo)
        assert refused.code == 2 and refused.stdout == ""
        assert refused.stderr.count("\n") == 1 and "is not a kind of event" in refused.stderr
        assert "erased, purged" in refused.stderr  # the valid ones are listed
    assert world.cli("history", "--action", "Erased", "--json").json() == []


def test_record_refuses_an_unknown_kind_and_writes_nothing(world: World) -> None:
    from leadctl import events
    from leadctl.timeutil import utcnow
    from leadctl.transactions import write_transaction

    db.bind(world.url)
    before = Event.select().count()
    lead, now = int(zoe_id(world)), utcnow()
    with pytest.raises(ValueError, match="'erase'"), write_transaction():
        events.record(Event.row(lead, now, "x", "note", {}), Event.row(lead, now, "x", "erase", {}))
    assert Event.select().count() == before
    kinds = {kind for (kind,) in Event.select(Event.kind).distinct().tuples()}
    assert kinds <= set(events.KINDS)


def test_history_follows_the_read_scope(world: World, tmp_path: Path) -> None:
    """With LEADS_ATTORNEY_SCOPE=own a non-admin's history holds only their leads' events and
    the inbox's; an admin's holds every lead's; without `own`, everyone's holds every lead's."""
    cli = world.cli
    inbox = seed(world.url, tmp_path, ("Ina", "Box", "ina@example.com"))["ina@example.com"]
    db.bind(world.url)
    Lead.update(attorney=None).where(Lead.id == inbox).execute()
    close()
    zoe, paul = int(zoe_id(world)), world.ids["paul@example.com"]  # Ann's, Bob's
    own = {"LEADS_ATTORNEY_SCOPE": "own"}
    bob = cli("--as", "bob@firm.example", "history", "--all", "--json", env=own).json()
    assert {e["lead_id"] for e in bob} == {paul, inbox}
    ann = cli("history", "--all", "--json", env=own).json()
    assert {e["lead_id"] for e in ann} == {zoe, paul, inbox}
    everyone = cli("--as", "bob@firm.example", "history", "--all", "--json").json()
    assert {e["lead_id"] for e in everyone} == {zoe, paul, inbox}
    theirs = cli("--as", "bob@firm.example", "history", "--lead", str(zoe), env=own)
    assert theirs.code == 1 and "LEADS_ATTORNEY_SCOPE=own" in theirs.stderr
    mine = cli("--as", "bob@firm.example", "history", "--lead", str(paul), "--json", env=own)
    assert mine.code == 0 and {e["lead_id"] for e in mine.json()} == {paul}
    stranger = cli("--as", "root", "history", env=own)
    assert stranger.code == 1 and "not an attorney" in stranger.stderr


def test_person_show_and_export_are_for_admins(world: World, tmp_path: Path) -> None:
    cli = world.cli
    for who in ("bob@firm.example", "root"):
        shown = cli("--as", who, "person", "show", ZOE[2])
        assert shown.code == 1 and "needs an admin" in shown.stderr and shown.stdout == ""
        folder = tmp_path / f"out-{who}"
        export = cli("--as", who, "person", "export", ZOE[2], str(folder))
        assert export.code == 1 and "needs an admin" in export.stderr
        assert not folder.exists()
    remote = cli("--server", "http://127.0.0.1:9", "person", "show", ZOE[2])
    assert remote.code == 2 and "--server" in remote.stderr
    assert cli("person", "show", ZOE[2]).code == 0  # Ann, an admin


def test_the_erasure_command_runs_as_a_real_executable(world: World) -> None:
    import os
    import subprocess

    from tests.conftest import BIN

    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADS_", "LEADCTL_"))}
    env.update(world.cli.env)
    run = subprocess.run(
        [str(BIN / "leadctl"), "erase", zoe_id(world), "--reason", "asked", "--yes", "--json"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["changed"][0]["id"] == int(zoe_id(world))


def test_conflict_check_still_reports_the_erased_lead(world: World) -> None:
    from leadctl import conflicts

    assert world.cli("erase", zoe_id(world), "--reason", "asked", "--yes").code == 0
    db.bind(world.url)
    hits = conflicts.check(["Zoe Nunez"])
    erased = [h for h in hits if h["source"] == "erased"]
    assert [h["id"] for h in erased] == [int(zoe_id(world))] and erased[0]["name"] == ""


def test_an_erased_lead_takes_no_new_personal_data(world: World) -> None:
    """A note (or a reach-out's note) on a tombstone would bring personal data back."""
    lead = zoe_id(world)
    assert world.cli("erase", lead, "--reason", "asked", "--yes").code == 0
    note = world.cli("note", lead, "Zoë called again")
    assert note.code == 1 and "erased" in note.stderr
    reach = world.cli("reach-out", lead, "--note", "Zoë called again")
    assert reach.code == 1 and "erased" in reach.stderr
    assert leaks(everything_stored()) == []


def test_sqlite_keeps_no_erased_bytes_in_its_files(world: World, tmp_path: Path) -> None:
    """Freed pages zeroed (secure_delete), the search index merged, the WAL checkpointed: the
    name, the address and the resume's bytes are nowhere in the database's files."""
    import sqlite3

    if not world.url.startswith("sqlite"):
        pytest.skip("PostgreSQL keeps old row versions until VACUUM: see the README")
    lead = int(zoe_id(world))
    marker = b"%PDF-1.4 UNIQUE-RESUME-MARKER-7Q9"
    Resume.update(data=marker + bytes(Resume.get_by_id(lead).data)).where(
        Resume.lead == lead
    ).execute()
    close()
    assert world.cli("erase", str(lead), "--reason", "asked", "--yes").code == 0
    path = tmp_path / "leads.db"
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("leads.db*"))
    for needle in (b"UNIQUE-RESUME-MARKER", "Ñúñez".encode(), b"Zoe.Nunez", b"zoe.nunez"):
        assert needle not in stored
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE VIRTUAL TABLE temp.terms USING fts5vocab(main, lead_search, instance)")
        assert (
            conn.execute("SELECT count(*) FROM temp.terms WHERE doc = ?", (lead,)).fetchone()[0]
            == 0
        )
    conn.close()
