"""Who may change and read which lead: the lead's attorney, any attorney for the intake inbox's,
admins for all; `LEADS_ATTORNEY_SCOPE=own` narrows reading. Through the real CLI, locally and
against a real server, and the rule itself on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from intake import create_app
from leadctl import attorneys, leads, permissions, submissions
from leadctl.errors import Forbidden
from leadctl.models import Event, Lead, OutboxMessage, database
from leadctl.resumes import check_resume
from leadctl.settings import Settings
from leadctl.states import Action
from leadctl.validation import check_prospect
from tests import samples
from tests.conftest import cli_in_mode

BOB = "bob@firm.example"
ANN = "ann@firm.example"


def _written() -> tuple[int, int, list[tuple[int, str, str | None]]]:
    """Everything a change could write: events, outbox rows, each lead's state and attorney."""
    try:
        rows = [
            (lead.id, lead.state, lead.attorney.email if lead.attorney_id else None)
            for lead in Lead.select().order_by(Lead.id)
        ]
        return Event.select().count(), OutboxMessage.select().count(), rows
    finally:
        database.obj.close()


def _to_inbox(lead_id: int) -> None:
    Lead.update(attorney=None).where(Lead.id == lead_id).execute()
    database.obj.close()


OWNED_BY_ANN = "lead {id} is assigned to ann@firm.example; only they or an admin may change it"


@pytest.mark.parametrize(
    "args",
    [
        ("reach-out", "{id}"),
        ("reach-out", "{id}", "--dry-run"),
        ("reopen", "{id}"),
        ("note", "{id}", "called"),
        ("assign", "{id}", BOB),
    ],
    ids=lambda a: " ".join(a),
)
def test_an_attorney_cannot_change_anothers_lead(
    lead_cli: Any, seeded: list[Any], args: tuple[str, ...]
) -> None:
    lead = seeded[0].id  # Zoë, round robin's first pick: ann's
    before = _written()
    result = lead_cli(*(a.format(id=lead) for a in args), env=lead_cli.acting_as(BOB))
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr == f"leadctl: error: {OWNED_BY_ANN.format(id=lead)}\n"
    assert _written() == before  # nothing written: no event, no email, no change


def test_the_owner_and_admins_may_change_a_lead_and_anyone_the_inboxs(
    lead_cli: Any, seeded: list[Any]
) -> None:
    bobs, anns, inbox = seeded[1].id, seeded[0].id, seeded[2].id
    as_bob = lead_cli.acting_as(BOB)
    assert lead_cli("reach-out", str(bobs), env=as_bob).code == 0  # his own
    assert lead_cli("note", str(bobs), "admin was here").code == 0  # ann is an admin
    assert lead_cli("reopen", str(bobs)).code == 0
    _to_inbox(inbox)
    assert lead_cli("reach-out", str(inbox), env=as_bob).code == 0  # nobody's yet: anyone's
    taken = lead_cli("assign", str(inbox), BOB, "--json", env=as_bob)
    assert taken.json()["changed"][0]["attorney"] == BOB  # he takes it from the inbox
    assert lead_cli("note", str(inbox), "mine now", env=as_bob).code == 0
    # A batch goes on past the leads he may not change, and says which.
    batch = lead_cli("reopen", str(anns), str(inbox), "--json", env=as_bob)
    assert batch.code == 1
    body = batch.json()
    assert [c["id"] for c in body["changed"]] == [inbox]
    assert body["failed"] == [{"id": str(anns), "error": OWNED_BY_ANN.format(id=anns)}]


def test_the_staff_api_answers_403_with_its_code_and_the_owner(settings: Settings) -> None:
    with TestClient(create_app(settings, run_worker=False)) as client:
        ann = attorneys.add("Ann Lee", ANN)[1].secret  # both plain attorneys
        bob = attorneys.add("Bob Roe", BOB)[1].secret
        lead = submissions.submit(
            check_prospect("Zoë", "Ñúñez", "zoe@example.com"),
            check_resume("cv.pdf", samples.pdf(2000), settings.max_resume_bytes),
            settings,
        ).lead
        before = _written()
        for path, body in (
            ("reach-out", None),
            ("reopen", None),
            ("notes", {"text": "x"}),
            ("assign", {"attorney": BOB}),
            ("reach-out", {"dry_run": True}),
        ):
            answer = client.post(
                f"/api/v1/leads/{lead.id}/{path}",
                json=body,
                headers={"Authorization": f"Bearer {bob}"},
            )
            assert answer.status_code == 403, (path, answer.text)
            assert answer.json() == {
                "code": "forbidden",
                "errors": [
                    {
                        "field": None,
                        "message": f"lead {lead.id} is assigned to {ANN}; only they or an admin "
                        "may change it",
                    }
                ],
            }
        assert _written() == before
        mine = client.post(
            f"/api/v1/leads/{lead.id}/reach-out", headers={"Authorization": f"Bearer {ann}"}
        )
        assert mine.status_code == 200 and mine.json()["changed"] is True


# -- reading under LEADS_ATTORNEY_SCOPE=own ------------------------------------------------------


@pytest.fixture(params=["local", "remote"])
def own_scope_cli(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    cli_env: dict[str, str],
    seeded: list[Any],
) -> Iterator[Any]:
    """The CLI with LEADS_ATTORNEY_SCOPE=own: locally, or against a real server set so."""
    _to_inbox(seeded[2].id)  # Li: in the inbox, which every attorney reads
    with cli_in_mode(request, monkeypatch, cli_env, attorney_scope="own") as cli:
        yield cli


def test_own_scope_shows_an_attorney_their_leads_and_the_inboxs(
    own_scope_cli: Any, seeded: list[Any]
) -> None:
    cli, as_bob = own_scope_cli, own_scope_cli.acting_as(BOB)
    zoe, paul, li = (lead.id for lead in seeded)
    listed = cli("list", "--json", env=as_bob)
    assert [i["id"] for i in listed.json()] == [li, paul]  # his own and the inbox's
    assert [i["id"] for i in cli("list", "--json", "--attorney", ANN, env=as_bob).json()] == []
    exported = cli("export", "--ndjson", env=as_bob)
    assert exported.stdout.count("\n") == 2
    assert cli("show", str(paul), env=as_bob).code == 0
    assert cli("show", str(li), env=as_bob).code == 0
    for args in (("show", str(zoe)), ("open", str(zoe), "--print-path")):
        refused = cli(*args, env=as_bob)
        assert (refused.code, refused.stdout) == (1, "")
        assert refused.stderr == (
            f"leadctl: error: lead {zoe} is assigned to {ANN}; with LEADS_ATTORNEY_SCOPE=own "
            "an attorney reads only their own leads and the intake inbox's\n"
        )
    # The admin reads every lead.
    assert [i["id"] for i in cli("list", "--json").json()] == [li, paul, zoe]
    assert cli("show", str(paul)).code == 0


def test_every_attorney_reads_every_lead_by_default(lead_cli: Any, seeded: list[Any]) -> None:
    as_bob = lead_cli.acting_as(BOB)
    assert len(lead_cli("list", "--json", env=as_bob).json()) == 3
    assert lead_cli("show", str(seeded[0].id), env=as_bob).code == 0


# -- the local actor -----------------------------------------------------------------------------


def test_a_local_actor_who_is_no_attorney_may_not_change_leads(cli: Any, seeded: list[Any]) -> None:
    lead = str(seeded[2].id)
    before = _written()
    for actor in ("root", "stranger@firm.example"):
        refused = cli("reach-out", lead, env={"LEADCTL_ACTOR": actor})
        assert refused.code == 1
        assert refused.stderr == (
            f"leadctl: error: {actor} is not an attorney here; act as one with leadctl --as "
            "EMAIL (an admin's for any lead; see: leadctl attorney list)\n"
        )
    assert cli("list", env={"LEADCTL_ACTOR": "root"}).code == 0  # reading stays open
    scoped = cli("list", env={"LEADCTL_ACTOR": "root", "LEADS_ATTORNEY_SCOPE": "own"})
    assert scoped.code == 1 and "(LEADS_ATTORNEY_SCOPE=own)" in scoped.stderr
    assert cli("attorney", "deactivate", BOB, "--yes").code == 0
    gone = cli("--as", BOB, "reach-out", str(seeded[1].id))
    assert gone.stderr == f"leadctl: error: attorney {BOB} is deactivated\n"
    assert _written()[:2] == before[:2]


def test_without_any_attorney_the_local_actor_acts_freely(cli: Any, settings: Settings) -> None:
    from leadctl import db
    from leadctl.schema import ensure_schema

    s = settings.replace(database_url=cli.env["LEADS_DATABASE_URL"])
    db.bind(s.database_url)
    ensure_schema()
    lead = submissions.submit(
        check_prospect("Li", "Lei", "li@example.com"),
        check_resume("cv.pdf", samples.pdf(2000), s.max_resume_bytes),
        s,
    ).lead
    database.obj.close()
    done = cli("reach-out", str(lead.id), env={"LEADCTL_ACTOR": "root"})
    assert done.code == 0, done.stderr
    assert (
        cli("note", str(lead.id), "set up by the installer", env={"LEADCTL_ACTOR": "root"}).code
        == 0
    )


# -- the rule itself, on both databases ----------------------------------------------------------


def test_the_rule_on_both_databases(core: Settings) -> None:
    ann, _ = attorneys.add("Ann Lee", ANN)
    bob, _ = attorneys.add("Bob Roe", BOB)
    boss, _ = attorneys.add("Cy Boss", "cy@firm.example", "admin")
    lead = submissions.submit(
        check_prospect("Zoë", "Ñúñez", "zoe@example.com"),
        check_resume("cv.pdf", samples.pdf(2000), core.max_resume_bytes),
        core,
    ).lead
    assert Lead.get_by_id(lead.id).attorney_id == ann.id
    events = Event.select().count()
    with pytest.raises(Forbidden, match=r"assigned to ann@firm\.example"):
        leads.change_state(lead.id, Action.REACH_OUT, permissions.of_attorney(bob))
    with pytest.raises(Forbidden):
        leads.add_note(lead.id, "x", permissions.of_attorney(bob))
    with pytest.raises(Forbidden):
        leads.assign(lead.id, BOB, permissions.of_attorney(bob), core)
    assert Event.select().count() == events
    assert Lead.get_by_id(lead.id).state == "PENDING"
    assert leads.change_state(lead.id, Action.REACH_OUT, permissions.of_attorney(boss)).changed
    assert permissions.local(BOB) == permissions.of_attorney(bob)
    assert permissions.local("nobody").refusal
    visible = leads.LeadQuery(visible_to=bob.id)
    assert leads.count(visible) == 0
    Lead.update(attorney=None).where(Lead.id == lead.id).execute()
    assert leads.count(visible) == 1  # the inbox's leads are everyone's
