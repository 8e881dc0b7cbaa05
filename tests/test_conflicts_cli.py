"""`leadctl conflicts` and `leadctl parties` through the real CLI, locally and against a real
server (`--server`), on SQLite and PostgreSQL; and `POST /api/v1/conflicts` over HTTP."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadctl import attorneys, db, parties
from leadctl.models import database
from leadctl.schema import ensure_schema
from tests.cli_harness import Cli
from tests.conftest import make_settings
from tests.test_conflicts import add_lead, erase

PARTIES_CSV = (
    "name,role,matter\n"
    '"ACME Holdings, LLC",adverse,Smith v. Acme\n'
    "[bold red]Evil[/] Nunez,other,[link=http://evil.example]click[/link]\n"
    '"=HYPERLINK(""http://x"",""Nunez"")",client,=1+2\n'
)


class Seed:
    def __init__(self) -> None:
        self.leads: dict[str, int] = {}
        self.token = ""
        self.bob_token = ""


def seed(url: str) -> Seed:
    made = Seed()
    db.bind(url)
    ensure_schema()
    made.token = attorneys.add("Ann Lee", "ann@firm.example", "admin")[1].secret
    made.bob_token = attorneys.add("Bob Roe", "bob@firm.example", "attorney")[1].secret
    made.leads["zoe"] = add_lead("Zoë", "Ñúñez", "zoe@example.com")
    made.leads["zoe2"] = add_lead("Zoe Maria", "Nunez", "zm@example.com")
    made.leads["paul"] = add_lead("Paul", "Smith", "paul@example.com")
    made.leads["paul2"] = add_lead("P.", "Smyth", "Paul@Example.com")
    made.leads["gone"] = add_lead("Erin", "Gone", "erin@example.com")
    erase(made.leads["gone"])
    parties.import_rows(parties.parse(PARTIES_CSV.encode()))
    database.obj.close()
    return made


@pytest.fixture(params=["local", "remote"])
def ccli(
    request: pytest.FixtureRequest, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Cli, Seed]]:
    """The CLI on a seeded database (SQLite or PostgreSQL), locally or through a real server."""
    made = seed(db_url)
    env = {
        "LEADS_DATABASE_URL": db_url,
        "LEADS_MAIL_DIR": str(tmp_path / "mail"),
        "LEADCTL_ACTOR": "ann@firm.example",
        "COLUMNS": "200",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    if request.param == "local":
        yield Cli(monkeypatch, env), made
        return
    # A real `leadctl serve` process: its PostgreSQL connections live and end with it.
    server = request.getfixturevalue("make_server")(make_settings(tmp_path, db_url))
    remote = {**env, "LEADCTL_SERVER": server.url, "LEADCTL_TOKEN": made.bob_token}
    yield Cli(monkeypatch, remote), made


def test_conflicts_json_finds_folded_names_and_parties(ccli: tuple[Cli, Seed]) -> None:
    cli, _ = ccli
    result = cli("conflicts", "Ñúñez, Zoë", "ACME Holdings, LLC", "--json")
    assert result.code == 0, result.stderr
    hits = result.json()
    found = {(h["source"], h["name"], h["score"]) for h in hits}
    assert found == {
        ("lead", "Zoë Ñúñez", 1.0),
        ("lead", "Zoe Maria Nunez", 0.667),
        ("party", "ACME Holdings, LLC", 1.0),
    }
    assert hits[-1]["score"] == 0.667  # best first
    assert result.stderr == ""


def test_conflicts_by_lead_reports_the_email_match(ccli: tuple[Cli, Seed]) -> None:
    cli, made = ccli
    result = cli("conflicts", "--lead", str(made.leads["paul"]), "--json")
    assert result.code == 0, result.stderr
    assert [(h["id"], h["matched"]) for h in result.json()] == [(made.leads["paul2"], "email")]
    missing = cli("conflicts", "--lead", "999999")
    assert (missing.code, missing.stderr) == (1, "leadctl: error: no lead 999999\n")


def test_an_erased_lead_is_reported_without_data(ccli: tuple[Cli, Seed]) -> None:
    cli, made = ccli
    result = cli("conflicts", "erin gone")
    assert result.code == 0
    fields = result.stdout.rstrip("\n").split("\t")
    assert fields[:4] == ["1.00", "erased", str(made.leads["gone"]), ""]
    assert len(fields) == 10  # as the CSV: an OWNER column only under LEADS_ATTORNEY_SCOPE=own
    assert "Erin" not in result.stdout
    on_terminal = cli("conflicts", "Gone, Erin", tty=True, env={"NO_COLOR": "1"})
    assert "(erased lead)" in on_terminal.stdout
    assert "1 possible conflict (1 with an erased lead of 20" in on_terminal.stderr


def test_markup_and_formulas_in_parties_are_shown_literally(ccli: tuple[Cli, Seed]) -> None:
    cli, _ = ccli
    table = cli("conflicts", "Evil Nunez Bold Red", tty=True)
    assert table.code == 0, table.stderr
    assert "[bold red]Evil[/] Nunez" in table.stdout
    assert "[link=http://evil.example]click[/link]" in table.stdout
    assert "\x1b]8;" not in table.stdout  # no terminal hyperlink was made
    as_csv = cli("conflicts", "Nunez HYPERLINK http x", "--csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    formula = next(r for r in rows if r["source"] == "party" and "HYPERLINK" in r["name"])
    assert formula["name"].startswith("'=") and formula["matter"] == "'=1+2"


def test_bad_names_are_one_line_usage_errors(ccli: tuple[Cli, Seed]) -> None:
    cli, _ = ccli
    many = cli("conflicts", *(f"Name {i}" for i in range(10_000)))
    assert (many.code, many.stderr) == (
        2,
        "leadctl: error: at most 50 names can be checked at once\n",
    )
    long = cli("conflicts", "Zoe " + "n" * 100_000)
    assert long.code == 2 and "longer than 300 characters" in long.stderr
    assert long.stderr.count("\n") == 1
    entity = cli("conflicts", "LLC")
    assert entity.code == 2 and "('LLC') has no words to compare" in entity.stderr
    nothing = cli("conflicts")
    assert nothing.code == 2 and "give at least one NAME" in nothing.stderr
    escape = cli("conflicts", "\x1b[;!!!")
    assert escape.code == 2 and "\x1b" not in escape.stderr and "\\x1b" in escape.stderr


def test_no_hits_is_an_empty_array(ccli: tuple[Cli, Seed]) -> None:
    cli, _ = ccli
    result = cli("conflicts", "Quentin Wxyzzy", "--json")
    assert (result.code, result.stdout) == (0, "[]\n")


# -- parties (local: an admin's job on the server host) -----------------------------------------


@pytest.fixture
def local(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    seed(db_url)
    yield Cli(monkeypatch, {"LEADS_DATABASE_URL": db_url, "COLUMNS": "200"})
    database.obj.close()


def test_parties_import_list_remove(local: Cli, tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("name,role,matter\nBeta Labs,client,M-9\nGamma Foods,adverse,\n")
    imported = local("parties", "import", str(path), "--json")
    assert imported.code == 0, imported.stderr
    assert imported.json() == {"added": 2, "skipped": 0, "removed": 0, "dry_run": False}
    listed = local("parties", "list", "--json").json()
    assert [p["name"] for p in listed][-2:] == ["Beta Labs", "Gamma Foods"]
    beta = listed[-2]["id"]
    assert set(listed[0]) == {"id", "name", "role", "matter", "created_at"}
    assert [p["name"] for p in local("parties", "list", "--role", "adverse", "--json").json()] == [
        "ACME Holdings, LLC",
        "Gamma Foods",
    ]
    piped = local("parties", "remove", str(beta))  # not at a terminal: needs --yes
    assert piped.code == 2 and "--yes" in piped.stderr
    removed = local("parties", "remove", str(beta), "999999", "--yes")
    assert removed.code == 1
    assert removed.stdout == f"removed party {beta}\n"
    assert removed.stderr == "leadctl: error: no party 999999\n"
    assert local("conflicts", "Beta Labs", "--json").json() == []
    bad_id = local("parties", "remove", "abc", "--yes")
    assert bad_id.code == 2 and "a party id is a number" in bad_id.stderr


def test_parties_remove_reads_ids_from_stdin_as_every_batch_command(local: Cli) -> None:
    """`parties remove -` reads standard input through cli/batch.read_ids: `parties list`'s
    plain or NDJSON output, bounded and checked whole before anything is removed."""
    listed = local("parties", "list", "--ndjson").stdout
    ids = [json.loads(line)["id"] for line in listed.splitlines()]
    endless = local("parties", "remove", "-", "--yes", input="1" * 10_000_000)
    assert endless.code == 2 and endless.stderr.count("\n") == 1
    assert "line 1 of standard input is longer than 4,096 characters" in endless.stderr
    assert "give one party id per line" in endless.stderr
    many = local("parties", "remove", "-", "--yes", input="1\n" * 10_001)
    assert many.code == 2 and "more than 10,000 ids on standard input" in many.stderr
    reference = local("parties", "remove", "-", "--yes", input=f"{ids[0]}\nK7QF-M2XD\n")
    assert reference.code == 2
    assert reference.stderr == (
        "leadctl: error: line 2 of standard input is not a party id: 'K7QF-M2XD'\n"
    )
    on_terminal = local("parties", "remove", "-", "--yes", tty=True)
    assert on_terminal.code == 2 and "reads party ids from standard input" in on_terminal.stderr
    assert [p["id"] for p in local("parties", "list", "--json").json()] == ids  # none removed
    done = local("parties", "remove", "-", "--yes", input=listed)
    assert done.code == 0, done.stderr
    assert done.stdout == "".join(f"removed party {i}\n" for i in ids)
    assert local("parties", "list", "--json").json() == []


def test_parties_import_from_stdin_and_errors(local: Cli, tmp_path: Path) -> None:
    piped = local("parties", "import", "-", input="name,role\nDelta Energy,other\n")
    assert piped.code == 0 and piped.stdout == "1 party added\n"
    bad = local("parties", "import", "-", input="name,role\nOk,client\nBad,enemy\n")
    assert bad.code == 1
    assert bad.stderr == (
        "leadctl: error: line 3: the role must be client, adverse or other, not 'enemy'\n"
    )
    huge = tmp_path / "huge.csv"
    with huge.open("wb") as handle:
        handle.truncate(1024**3)
    refused = local("parties", "import", str(huge))
    assert refused.code == 1 and "larger than 32 MB" in refused.stderr
    replace = local("parties", "import", "-", "--replace", input="name,role\nOnly One,client\n")
    assert replace.code == 2 and "--yes" in replace.stderr
    done = local("parties", "import", "-", "--replace", "--yes", input="name,role\nOnly,client\n")
    assert done.code == 0 and "removed first" in done.stdout
    assert [p["name"] for p in local("parties", "list", "--json").json()] == ["Only"]


# -- the route itself -------------------------------------------------------------------------


@pytest.fixture
def api(db_url: str, tmp_path: Path, make_server: Any) -> Iterator[tuple[httpx.Client, Seed]]:
    made = seed(db_url)
    server = make_server(make_settings(tmp_path, db_url))
    with httpx.Client(base_url=server.url) as client:
        client.headers["Authorization"] = f"Bearer {made.bob_token}"
        yield client, made


def test_the_route_answers_hits_and_refuses_bad_bodies(api: tuple[httpx.Client, Seed]) -> None:
    client, made = api
    ok = client.post("/api/v1/conflicts", json={"names": ["zoe nunez"]})
    assert ok.status_code == 200
    assert {h["name"] for h in ok.json()["hits"]} == {"Zoë Ñúñez", "Zoe Maria Nunez"}
    assert ok.json()["common_words"] == []
    by_ref = client.post("/api/v1/conflicts", json={"lead": str(made.leads["paul"])})
    assert [h["matched"] for h in by_ref.json()["hits"]] == ["email"]
    assert (
        client.post(
            "/api/v1/conflicts", json={"names": ["x"]}, headers={"Authorization": ""}
        ).status_code
        == 401
    )
    many = client.post("/api/v1/conflicts", json={"names": ["Zoe Nunez"] * 10_000})
    assert many.status_code == 422
    assert many.json()["errors"] == [
        {"field": "names", "message": "at most 50 names can be checked at once"}
    ]
    huge = client.post("/api/v1/conflicts", json={"names": ["n" * 1_000_000]})
    assert huge.status_code == 413
    wrong = client.post("/api/v1/conflicts", content=b'{"names": [1, {"a": 2}]}')
    assert wrong.status_code in (400, 422) and wrong.json()
    entity = client.post("/api/v1/conflicts", json={"names": ["LLC, Inc."]})
    assert entity.status_code == 422 and "no words to compare" in entity.text
    limit = client.post("/api/v1/conflicts", json={"names": ["a b"], "limit": 10**9})
    assert limit.status_code == 422
    garbage = client.post("/api/v1/conflicts", content=b"\x00\xff not json")
    assert garbage.status_code == 400
    assert json.loads(garbage.text)  # a JSON answer, never a 500 page
