"""What the intake conflict check tells an attorney under LEADS_ATTORNEY_SCOPE=own: `show`,
`history` and the attorney's notification withhold another attorney's lead exactly as
`leadctl conflicts` does (a hit says whose lead it is, when it came and its score), while the
check itself stays firm-wide and an admin sees every hit whole. A returning prospect's earlier
lead of another attorney is withheld from `show` the same way."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from leadctl import db, submissions
from leadctl.leads import assign
from leadctl.models import Lead, OutboxMessage, database
from leadctl.resumes import check_resume
from leadctl.settings import Settings
from leadctl.validation import check_prospect
from tests import samples
from tests.cli_harness import Cli
from tests.conftest import cli_in_mode

ANN, BOB = "ann@firm.example", "bob@firm.example"  # the seeded admin and attorney
OWN = {"LEADS_ATTORNEY_SCOPE": "own"}


def _submit(cli_env: dict[str, str], first: str, last: str, email: str) -> Lead:
    """A lead submitted as the server takes one, under LEADS_ATTORNEY_SCOPE=own."""
    s = Settings.from_env(
        {},
        database_url=cli_env["LEADS_DATABASE_URL"],
        mail_dir=cli_env["LEADS_MAIL_DIR"],
        attorney_scope="own",
    )
    db.bind(s.database_url)
    try:
        # Another resume than the seeded leads': the same person's same file again would be
        # a double click, answered with the lead already made.
        resume = check_resume("cv.pdf", samples.pdf(4000), s.max_resume_bytes)
        lead = submissions.submit(check_prospect(first, last, email), resume, s).lead
        return Lead.select(Lead, Lead.attorney).where(Lead.id == lead.id).get()
    finally:
        database.obj.close()


@pytest.fixture
def namesake(seeded: list[Any], cli_env: dict[str, str]) -> Lead:
    """A second Zoe Nunez, Bob's (round robin: Ann, Bob, Ann, then Bob): the check at intake
    finds Ann's Zoë Ñúñez."""
    lead = _submit(cli_env, "Zoe", "Nunez", "zoe.n@example.com")
    assert lead.attorney.email == BOB
    return lead


@pytest.fixture
def returning(seeded: list[Any], cli_env: dict[str, str], namesake: Lead) -> Lead:
    """Zoë again, under another spelling of her address: Ann's as a returning prospect, then
    moved to Bob by Ann (an admin)."""
    lead = _submit(cli_env, "Zoë", "Ñúñez", "ZOE@example.com")
    assert lead.attorney.email == ANN
    db.bind(cli_env["LEADS_DATABASE_URL"])
    try:
        assign(lead.id, BOB, ANN)
    finally:
        database.obj.close()
    return lead


@pytest.fixture(params=["local", "remote"])
def own_scope_cli(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    cli_env: dict[str, str],
    namesake: Lead,
    returning: Lead,
) -> Iterator[Any]:
    with cli_in_mode(request, monkeypatch, cli_env, attorney_scope="own") as cli:
        yield cli


def _withheld(hit: dict[str, Any]) -> tuple[Any, ...]:
    return hit["source"], hit["id"], hit["name"], hit["reference"], hit["owner"]


def test_show_withholds_another_attorneys_lead_among_the_conflicts(
    own_scope_cli: Any, namesake: Lead, seeded: list[Any]
) -> None:
    cli, as_bob, zoe = own_scope_cli, own_scope_cli.acting_as(BOB), seeded[0]
    shown = cli("show", "--json", str(namesake.id), env=as_bob).json()
    (hit,) = shown["conflicts"]
    assert _withheld(hit) == ("lead", None, "", None, ANN)
    assert hit["score"] == 1.0 and hit["date"].startswith(zoe.created_at.date().isoformat())
    (found,) = [e for e in shown["events"] if e["kind"] == "conflicts_found"]
    assert found["details"]["hits"] == [hit]  # the history says no more than the summary
    on_terminal = cli("show", str(namesake.id), env=as_bob, tty=True)
    assert on_terminal.code == 0
    assert f"a lead of {ANN} of 20" in on_terminal.stdout
    for secret in ("Ñúñez", zoe.reference, f"lead {zoe.id} "):
        assert secret not in on_terminal.stdout + on_terminal.stderr
    # The admin reads it whole: the event keeps every hit.
    (full,) = cli("show", "--json", str(namesake.id)).json()["conflicts"]
    assert (full["id"], full["name"], full["reference"]) == (zoe.id, "Zoë Ñúñez", zoe.reference)


def test_show_withholds_another_attorneys_earlier_lead_of_a_returning_prospect(
    own_scope_cli: Any, returning: Lead, seeded: list[Any]
) -> None:
    cli, as_bob, zoe = own_scope_cli, own_scope_cli.acting_as(BOB), seeded[0]
    (earlier,) = cli("show", "--json", str(returning.id), env=as_bob).json()["earlier_leads"]
    assert (earlier["id"], earlier["reference"], earlier["owner"]) == (None, None, ANN)
    assert earlier["state"] == "PENDING"
    assert earlier["created_at"].startswith(zoe.created_at.date().isoformat())
    on_terminal = cli("show", str(returning.id), env=as_bob, tty=True).stdout
    assert f"an earlier lead of {ANN}" in on_terminal and zoe.reference not in on_terminal
    (whole,) = cli("show", "--json", str(returning.id)).json()["earlier_leads"]
    assert (whole["id"], whole["reference"]) == (zoe.id, zoe.reference)


def test_history_withholds_it_too(
    monkeypatch: pytest.MonkeyPatch, cli_env: dict[str, str], namesake: Lead, seeded: list[Any]
) -> None:
    cli, zoe = Cli(monkeypatch, {**cli_env, **OWN}), seeded[0]
    args = ("history", "--action", "conflicts_found", "--json")
    (event,) = cli("--as", BOB, *args).json()
    assert event["lead_id"] == namesake.id
    (hit,) = event["details"]["hits"]
    assert _withheld(hit) == ("lead", None, "", None, ANN)
    plain = cli("--as", BOB, "history", "--action", "conflicts_found", tty=True)
    assert f"a lead of {ANN}" in plain.stdout and "Ñúñez" not in plain.stdout
    (whole,) = cli("--as", ANN, *args).json()
    assert [(h["id"], h["name"]) for h in whole["details"]["hits"]] == [(zoe.id, "Zoë Ñúñez")]


def _notification(cli_env: dict[str, str], lead: Lead) -> OutboxMessage:
    db.bind(cli_env["LEADS_DATABASE_URL"])
    try:
        query = OutboxMessage.lead == lead.id, OutboxMessage.purpose == "notification"
        message: OutboxMessage = OutboxMessage.get(*query)
        return message
    finally:
        database.obj.close()


def test_the_notification_tells_the_attorney_only_whose_lead_it_is(
    cli_env: dict[str, str], namesake: Lead, seeded: list[Any]
) -> None:
    zoe = seeded[0]
    to_bob = _notification(cli_env, namesake)
    assert to_bob.recipient == BOB
    for body in (to_bob.body_text, to_bob.body_html):
        assert "Possible conflicts found at intake" in body
        assert f"a lead of {ANN} of {zoe.created_at.date().isoformat()}" in body
        assert "Ñúñez" not in body and "&#209;" not in body and zoe.reference not in body
    # Ann is an admin: her notification names the lead it found, as her `show` does.
    third = _submit(cli_env, "Zoe", "Nunez", "zoe.third@example.com")
    to_ann = _notification(cli_env, third)
    assert (third.attorney.email, to_ann.recipient) == (ANN, ANN)
    assert "Zoë Ñúñez: lead" in to_ann.body_text and zoe.reference in to_ann.body_text
