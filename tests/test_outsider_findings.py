"""An outsider's attack review, each finding a test: the conflict check under
LEADS_ATTORNEY_SCOPE=own (F3), invisible characters in names (F4), long non-ASCII resume names
(F5), resume links naming an address (F6) and the work one conflict check may ask for (F7)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from intake import create_app
from leadctl import attorneys, conflict_hits, conflicts, db, submissions
from leadctl.errors import InvalidInput
from leadctl.models import Event, Lead, database
from leadctl.names import words
from leadctl.resumes import check_resume
from leadctl.schema import ensure_schema
from leadctl.settings import Settings
from leadctl.text import has_unsafe, visible
from leadctl.validation import check_prospect, check_resume_url
from tests import samples
from tests.conftest import cli_in_mode, serve_in_thread, submit

ANN, BOB = "ann@firm.example", "bob@firm.example"
READ_REFUSAL = (
    "lead {id} is assigned to ann@firm.example; with LEADS_ATTORNEY_SCOPE=own an attorney "
    "reads only their own leads and the intake inbox's"
)
HIDDEN = ["\u00ad", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\U000e0041"]


def _lead(s: Settings, first: str, last: str, email: str) -> Lead:
    resume = check_resume("cv.pdf", samples.pdf(2000), s.max_resume_bytes)
    return submissions.submit(check_prospect(first, last, email), resume, s).lead


# -- F3: the conflict check keeps to the caller's reading scope ---------------------------------


def test_the_conflicts_api_withholds_other_attorneys_leads(settings: Settings) -> None:
    s = settings.replace(attorney_scope="own")
    with TestClient(create_app(s, run_worker=False)) as client:
        attorneys.add("Ann Lee", ANN)
        bob = attorneys.add("Bob Roe", BOB)[1].secret
        anns = _lead(s, "Zoë", "Ñúñez", "zoe@example.com")  # round robin: Ann's
        bobs = _lead(s, "Zoe", "Nunez", "zoe.n@example.com")  # Bob's
        assert Lead.get_by_id(anns.id).attorney.email == ANN
        head = {"Authorization": f"Bearer {bob}"}
        by_lead = client.post("/api/v1/conflicts", json={"lead": str(anns.id)}, headers=head)
        assert by_lead.status_code == 403
        assert by_lead.json()["errors"][0]["message"] == READ_REFUSAL.format(id=anns.id)
        assert client.get(f"/api/v1/leads/{anns.id}", headers=head).status_code == 403
        answer = client.post("/api/v1/conflicts", json={"names": ["Nunez"]}, headers=head)
        assert answer.status_code == 200
        assert "Ñúñez" not in answer.text and anns.reference not in answer.text
        withheld, own = sorted(answer.json()["hits"], key=lambda h: h["id"] or 0)
        assert withheld == {
            "source": "lead",
            "id": None,
            "name": "",
            "role": None,
            "matter": None,
            "reference": None,
            "date": withheld["date"],
            "score": 0.5,
            "matched": "name",
            "query": "Nunez",
            "owner": ANN,
        }
        assert withheld["date"].startswith(anns.created_at.date().isoformat())
        assert conflict_hits.describe(withheld).startswith(f"a lead of {ANN} of 20")
        assert (own["id"], own["name"], own["reference"], own["owner"]) == (
            bobs.id,
            "Zoe Nunez",
            bobs.reference,
            BOB,
        )
        # Bob's own lead, checked by id: Ann's lead is a hit, withheld.
        mine = client.post("/api/v1/conflicts", json={"lead": str(bobs.id)}, headers=head)
        assert [(h["id"], h.get("owner")) for h in mine.json()["hits"]] == [(None, ANN)]
    database.obj.close()


def test_without_scope_own_every_hit_is_shown(settings: Settings) -> None:
    with TestClient(create_app(settings, run_worker=False)) as client:
        attorneys.add("Ann Lee", ANN)
        bob = attorneys.add("Bob Roe", BOB)[1].secret
        anns = _lead(settings, "Zoë", "Ñúñez", "zoe@example.com")
        head = {"Authorization": f"Bearer {bob}"}
        answer = client.post("/api/v1/conflicts", json={"names": ["Nunez"]}, headers=head)
        (hit,) = answer.json()["hits"]
        assert (hit["id"], hit["name"], "owner" in hit) == (anns.id, "Zoë Ñúñez", False)
        assert client.post(
            "/api/v1/conflicts", json={"lead": anns.reference}, headers=head
        ).is_success
    database.obj.close()


@pytest.fixture(params=["local", "remote"])
def own_scope_cli(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    cli_env: dict[str, str],
    seeded: Any,
) -> Iterator[Any]:
    """The CLI with LEADS_ATTORNEY_SCOPE=own: locally, or against a real server set so."""
    with cli_in_mode(request, monkeypatch, cli_env, attorney_scope="own") as cli:
        yield cli


def test_the_conflicts_command_keeps_to_the_actors_scope(
    own_scope_cli: Any, seeded: list[Any]
) -> None:
    cli, as_bob = own_scope_cli, own_scope_cli.acting_as(BOB)
    zoe, paul = seeded[0], seeded[1]  # Ann's, Bob's
    (hit,) = cli("conflicts", "--json", "Zoe Nunez", env=as_bob).json()
    assert (hit["id"], hit["name"], hit["reference"], hit["owner"]) == (None, "", None, ANN)
    assert hit["score"] == 1.0
    (own,) = cli("conflicts", "--json", "Paul Smith", env=as_bob).json()
    assert (own["id"], own["name"], own["owner"]) == (paul.id, "Paul Smith", BOB)
    refused = cli("conflicts", "--lead", str(zoe.id), env=as_bob)
    assert (refused.code, refused.stdout) == (1, "")
    assert refused.stderr == f"leadctl: error: {READ_REFUSAL.format(id=zoe.id)}\n"
    on_terminal = cli("conflicts", "Zoe Nunez", env=as_bob, tty=True)
    assert on_terminal.code == 0 and "Ñúñez" not in on_terminal.stdout
    assert zoe.reference not in on_terminal.stdout + on_terminal.stderr
    assert "(a lead of" in on_terminal.stdout  # what the blank name is, not a blank
    (piped,) = cli("conflicts", "Zoe Nunez", env=as_bob).stdout.splitlines()
    assert piped.split("\t")[-1] == ANN  # the plain rows' last column: whose it is
    as_csv = cli("conflicts", "--csv", "Zoe Nunez", "Paul Smith", env=as_bob).stdout.splitlines()
    assert as_csv[0] == "source,id,name,role,matter,reference,date,score,matched,query,owner"
    assert sorted(line.split(",")[-1] for line in as_csv[1:]) == [ANN, BOB]
    # The admin sees the hit whole.
    (full,) = cli("conflicts", "--json", "Zoe Nunez").json()
    assert (full["id"], full["name"]) == (zoe.id, "Zoë Ñúñez")


# -- F4: an invisible character does not hide a conflict ---------------------------------------


@pytest.mark.parametrize("hidden", HIDDEN)
def test_an_invisible_character_does_not_hide_a_conflict(core: Settings, hidden: str) -> None:
    _lead(core, "Zoe", "Nunez", "zoe@example.com")
    assert words(f"Zoe Nu{hidden}nez") == ["zoe", "nunez"]
    hits = conflicts.at_intake("Zoe", f"Nu{hidden}nez", "adverse@example.com", 0)
    assert [(h["name"], h["score"]) for h in hits] == [("Zoe Nunez", 1.0)]
    found = conflicts.check([f"Zo{hidden}e Nunez"])
    assert [(h["name"], h["score"]) for h in found] == [("Zoe Nunez", 1.0)]
    # Stored with it, found without it: the matching drops it on both sides.
    hidden_lead = _lead(core, f"Ana{hidden}", "Rossi", "ana@example.com")
    assert [h["id"] for h in conflicts.check(["Ana Rossi"])] == [hidden_lead.id]


def test_invisible_characters_are_shown_escaped() -> None:
    assert visible("Nu\u00adnez") == "Nu\\xadnez"
    assert visible("Nu\u200bnez \ufeff\u2060") == "Nu\\u200bnez \\ufeff\\u2060"
    assert visible("x\U000e0041\U000e007f") == "x\\U000e0041\\U000e007f"
    assert visible("Zoe\u200d Nu\u200cnez") == "Zoe\\u200d Nu\\u200cnez"  # beside ASCII
    # Between letters of scripts that need them, the joiners stay; so do emoji sequences.
    for kept in ("क्\u200dष", "می\u200cخواهم", "👩\u200d💻", "❤\ufe0f"):
        assert visible(kept) == kept


@pytest.mark.parametrize(
    "blank", ["\u034f", "\u115f", "\u1160", "\u17b4", "\u17b5", "\u3164", "\uffa0"]
)
def test_blanks_python_counts_as_printable_are_shown_escaped_too(blank: str) -> None:
    """Hangul fillers and the like draw nothing, yet `str.isprintable` says yes: a first name
    of only "\u3164" listed as a blank name."""
    assert visible(f"Nu{blank}nez") == f"Nu\\u{ord(blank):04x}nez"
    assert visible(blank) == f"\\u{ord(blank):04x}" and has_unsafe(blank)


def test_intake_finds_a_conflict_hidden_by_a_soft_hyphen(
    settings: Settings, make_server: Any
) -> None:
    db.bind(settings.database_url)
    ensure_schema()
    first = _lead(settings, "Zoe", "Nunez", "zoe@example.com")
    database.obj.close()
    server = make_server(settings)
    with httpx.Client(base_url=server.url) as client:
        answer = submit(client, first="Zoe", last="Nu\u00adnez", email="adverse@example.com")
        assert answer.status_code == 201, answer.text
    db.bind(settings.database_url)
    new = Lead.get(Lead.reference == answer.json()["reference"])
    (found,) = Event.select().where((Event.lead == new.id) & (Event.kind == "conflicts_found"))
    assert [(h["id"], h["score"]) for h in found.details["hits"]] == [(first.id, 1.0)]
    database.obj.close()


# -- F5: a long non-ASCII resume name ------------------------------------------------------------


def test_a_long_non_ascii_resume_name_is_kept_within_a_file_names_bytes(
    settings: Settings, make_server: Any, cli: Any, tmp_path: Path
) -> None:
    db.bind(settings.database_url)
    ensure_schema()
    token = attorneys.add("Ann Lee", ANN, "admin")[1].secret
    database.obj.close()
    server = make_server(settings)
    name = "𝐀" * 100 + ".pdf"  # 100 characters, 404 bytes: over a Linux file name's 255
    with httpx.Client(base_url=server.url) as client:
        answer = submit(client, email="long@example.com", filename=name)
        assert answer.status_code == 201, answer.text
    db.bind(settings.database_url)
    lead = Lead.get(Lead.reference == answer.json()["reference"])
    stored = lead.resume_rows.get().filename
    database.obj.close()
    assert stored.endswith("𝐀.pdf") and len(stored.encode()) <= 150
    remote = {"LEADCTL_SERVER": server.url, "LEADCTL_TOKEN": token}
    for mode, env in (("local", {}), ("remote", remote)):
        saved = cli("open", str(lead.id), "--save", f"{tmp_path}/{mode}/", env=env)
        assert saved.code == 0, saved.stderr
        assert (tmp_path / mode / stored).read_bytes()[:5] == b"%PDF-"
    exported = cli("person", "export", "long@example.com", str(tmp_path / "export"))
    assert exported.code == 0, exported.stderr
    assert (tmp_path / "export" / "resumes" / f"{lead.id}-{stored}").exists()


# -- F6: a resume link naming an address -----------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://0x7f.0x0.0x0.0x1/cv", "must name a public host"),
        ("https://127.0.0.0x1/cv", "must name a public host"),
        ("https://0X7F.1/cv", "must name a public host"),
        ("https://2130706433/cv", "must name a public host"),
        ("https://files.example.0x10/cv", "must name a public host"),
        ("https://[v1.x]/cv", "not an address in brackets"),
        ("https://[::1]/cv", "not an address in brackets"),
    ],
)
def test_a_resume_url_naming_an_address_is_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        check_resume_url(url)
    assert "\n" not in str(refused.value)


def test_host_names_with_hex_looking_labels_stay_accepted() -> None:
    for url in ("https://0x7f.example.com/cv", "https://cafe.example/cv", "https://a1.example/cv"):
        assert check_resume_url(url) == url


# -- F7: the work one conflict check may ask for ------------------------------------------------


def test_a_check_of_too_many_words_is_refused_before_any_work(core: Settings) -> None:
    names = [" ".join(f"w{n}x{i}" for i in range(20)) for n in range(11)]  # 220 words
    with pytest.raises(InvalidInput, match="at most 200 words can be checked at once"):
        conflicts.prepare(names)
    assert len(conflicts.prepare(names[:10])) == 10  # 200 words


def test_a_check_that_reads_too_many_rows_is_refused(
    core: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(6):
        _lead(core, "Zoe", f"Nunez{n}", f"z{n}@example.com")
    assert len(conflicts.check(["Zoe Smith"])) == 0  # reads the six postings of "zoe"
    monkeypatch.setattr(conflicts, "MAX_ROWS_PER_CHECK", 5)
    with pytest.raises(InvalidInput, match="this check reads more than 5 rows: check fewer"):
        conflicts.check(["Zoe Smith"])


def test_the_api_answers_too_much_work_with_a_one_line_422(settings: Settings) -> None:
    with TestClient(create_app(settings, run_worker=False)) as client:
        token = attorneys.add("Ann Lee", ANN)[1].secret
        names = [" ".join(f"w{n}x{i}" for i in range(20)) for n in range(11)]
        answer = client.post(
            "/api/v1/conflicts",
            json={"names": names},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 422
        (error,) = answer.json()["errors"]
        assert error["field"] == "names"
        assert error["message"] == (
            "at most 200 words can be checked at once (name 11 brings the names to 220)"
        )
    database.obj.close()


def test_checks_sent_at_once_take_turns_and_all_answer(settings: Settings) -> None:
    """The server runs one check at a time; the others wait their turn, none is lost."""
    import threading

    db.bind(settings.database_url)
    ensure_schema()
    token = attorneys.add("Ann Lee", ANN)[1].secret
    lead = _lead(settings, "Zoe", "Nunez", "zoe@example.com")
    database.obj.close()
    answers: list[tuple[int, list[Any]]] = []
    with serve_in_thread(settings) as server:
        start = threading.Barrier(6)

        def ask() -> None:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                start.wait()
                answer = client.post(
                    "/api/v1/conflicts",
                    json={"names": ["Zoe Nunez", "Nunez"]},
                    headers={"Authorization": f"Bearer {token}"},
                )
                answers.append((answer.status_code, [h["id"] for h in answer.json()["hits"]]))

        threads = [threading.Thread(target=ask) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert answers == [(200, [lead.id])] * 6
