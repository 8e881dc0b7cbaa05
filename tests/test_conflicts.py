"""The conflict check's core: matching, scores, tombstones, quarantine, bounds, at intake.

Runs on SQLite and PostgreSQL (the `core` fixture). Leads are written as intake writes them
(name key, email key, one name_token row per word), so these tests do not depend on the form.
"""

from __future__ import annotations

from typing import Any

import pytest

from leadctl import conflict_hits, conflicts, parties
from leadctl.errors import InvalidInput, NotFound
from leadctl.models import Lead, NameToken, email_key
from leadctl.names import keyed_hash, name_key, words
from leadctl.settings import Settings
from leadctl.submissions import new_reference
from leadctl.timeutil import utcnow


def add_lead(first: str, last: str, email: str, *, quarantined: bool = False) -> int:
    """A lead with its compared forms, as `submissions._insert_lead` writes them."""
    now = utcnow()
    full = f"{first} {last}"
    lead = Lead.create(
        reference=new_reference(),
        first_name=first,
        last_name=last,
        email=email,
        email_key=email_key(email),
        name_key=name_key(full),
        state="PENDING",
        created_at=now,
        updated_at=now,
        quarantined=quarantined,
    )
    NameToken.insert_many([{"token": w, "lead": lead.id} for w in words(full)]).execute()
    return int(lead.id)


def erase(lead_id: int) -> None:
    """The lead erased as `leadctl erase` does it: a tombstone with the keyed hashes."""
    from leadctl.erasure import erase_ids

    assert erase_ids([lead_id], "ann@firm.example", "asked").changed


def add_parties(text: str) -> dict[str, Any]:
    return parties.import_rows(parties.parse(text.encode()))


def by_source(hits: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    return {(h["source"], h["name"]): h["score"] for h in hits}


def test_accents_case_punctuation_order_and_entity_words_are_ignored(core: Settings) -> None:
    add_lead("Zoë", "Ñúñez", "zoe@example.com")
    add_lead("Zoe", "Nunez", "other@example.com")
    add_parties("name,role,matter\nAcme Holdings,adverse,M-1\n")
    hits = conflicts.check(["Ñúñez, Zoë", "ACME Holdings, LLC"])
    assert by_source(hits) == {
        ("lead", "Zoë Ñúñez"): 1.0,
        ("lead", "Zoe Nunez"): 1.0,
        ("party", "Acme Holdings"): 1.0,
    }
    party = next(h for h in hits if h["source"] == "party")
    assert party["role"] == "adverse" and party["matter"] == "M-1"
    assert party["query"] == "ACME Holdings, LLC" and party["matched"] == "name"
    lead = next(h for h in hits if h["source"] == "lead")
    assert lead["reference"] and lead["date"].endswith("Z") and lead["role"] is None


def test_partial_matches_score_below_one_both_ways(core: Settings) -> None:
    add_lead("Zoe Maria", "Nunez", "zm@example.com")
    add_lead("Zoe", "Smith", "zs@example.com")
    add_parties("name,role\nNunez Zoe,client\n")
    longer = conflicts.check(["Zoe Nunez"])  # finds the longer name from its words
    assert by_source(longer) == {("lead", "Zoe Maria Nunez"): 0.667, ("party", "Nunez Zoe"): 1.0}
    shorter = conflicts.check(["Zoe Maria Nunez"])  # finds the shorter name by a subset key
    assert by_source(shorter) == {("party", "Nunez Zoe"): 0.667, ("lead", "Zoe Maria Nunez"): 1.0}
    assert [h["score"] for h in shorter] == [1.0, 0.667]  # best first
    # One shared word out of three is below the threshold: "Zoe Smith" is no conflict.
    assert all(h["name"] != "Zoe Smith" for h in longer + shorter)


def test_a_name_holding_every_searched_word_is_a_hit_below_the_threshold(core: Settings) -> None:
    add_lead("Ana Rossi", "Ramirez", "ana@example.com")
    add_lead("Ana", "Smith", "as@example.com")
    assert by_source(conflicts.check(["Ramírez"])) == {("lead", "Ana Rossi Ramirez"): 0.333}
    assert by_source(conflicts.check(["Ramirez Smith"])) == {}  # half of neither


def test_quarantined_leads_are_not_compared(core: Settings) -> None:
    add_lead("Zoe", "Nunez", "bot@example.com", quarantined=True)
    assert conflicts.check(["Zoe Nunez"]) == []
    assert conflicts.at_intake("Zoe", "Nunez", "bot@example.com", 0) == []


def test_an_erased_lead_is_reported_by_date_without_its_data(core: Settings) -> None:
    gone = add_lead("Zoë", "Ñúñez", "Zoe@Example.com")
    erase(gone)
    hits = conflicts.check(["nunez zoe"])
    assert len(hits) == 1
    hit = hits[0]
    assert (hit["source"], hit["id"], hit["name"], hit["score"]) == ("erased", gone, "", 1.0)
    assert "zoe" not in str(hit).lower().replace("nunez zoe", "")  # only the query says it
    assert conflict_hits.describe(hit).startswith(f"an erased lead of {hit['date'][:10]}")
    # A subset of the name finds it too ("Zoe Maria Nunez" was searched, "Zoe Nunez" erased).
    assert by_source(conflicts.check(["Zoe Maria Nunez"])) == {("erased", ""): 0.667}
    # And a new lead with the same address, through --lead.
    again = add_lead("Z.", "Other", "zoe@example.com")
    by_lead = conflicts.check([], lead_id=again)
    assert [(h["source"], h["matched"]) for h in by_lead] == [("erased", "email")]


def test_check_by_lead_uses_its_name_and_email_and_excludes_itself(core: Settings) -> None:
    first = add_lead("Paul", "Smith", "paul@example.com")
    same_mail = add_lead("P.", "Smyth", "PAUL@example.com")
    same_name = add_lead("Paul", "Smith", "another@example.com")
    hits = conflicts.check([], lead_id=first)
    assert {(h["id"], h["matched"]) for h in hits} == {(same_mail, "email"), (same_name, "name")}
    with pytest.raises(NotFound):
        conflicts.check([], lead_id=10**9)
    erase(same_name)
    with pytest.raises(InvalidInput, match="erased"):
        conflicts.check([], lead_id=same_name)


def test_at_intake_finds_name_email_party_and_tombstones(core: Settings) -> None:
    earlier = add_lead("Zoe", "Nunez", "zoe@example.com")
    returning = add_lead("Zoey", "Jones", "Zoe@example.com")
    erased = add_lead("Zoë", "Ñúñez", "old@example.com")
    erase(erased)
    add_parties('name,role,matter\n"Nunez, Zoe",adverse,Smith v. Nunez\n')
    new = add_lead("ZOE", "NUÑEZ", "zoe@example.com")
    hits = conflicts.at_intake("ZOE", "NUÑEZ", "zoe@example.com", new)
    seen = {(h["source"], h["id"] if h["source"] != "party" else 0, h["matched"]) for h in hits}
    assert seen == {
        ("lead", earlier, "email"),
        ("lead", returning, "email"),
        ("erased", erased, "name"),
        ("party", 0, "name"),
    }
    assert all("query" not in h for h in hits)  # the contract's hit format
    assert set(hits[0]) == {
        "source", "id", "name", "role", "matter", "reference", "date", "score", "matched",
    }  # fmt: skip


def test_common_words_are_not_read_in_full_but_exact_names_still_match(
    core: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conflicts, "WORD_CAP", 2)
    for n in range(3):
        add_lead("Zoe", f"Smith{n}", f"z{n}@example.com")
    add_lead("Zoe", "Nunez", "zn@example.com")
    add_lead("Zoe Maria", "Nunez", "zmn@example.com")
    report = conflicts.search(["Zoe Nunez"])
    assert report.common_words == ["zoe"]
    # "nunez" is rare: the longer name is still found from it.
    assert by_source(report.hits) == {
        ("lead", "Zoe Nunez"): 1.0,
        ("lead", "Zoe Maria Nunez"): 0.667,
    }


def test_limit_keeps_the_best(core: Settings) -> None:
    for n in range(5):
        add_lead("Ann", "Lee", f"a{n}@example.com")
    add_lead("Ann Mary", "Lee", "am@example.com")
    hits = conflicts.check(["Ann Lee"], limit=3)
    assert [h["score"] for h in hits] == [1.0, 1.0, 1.0]
    assert [h["id"] for h in hits] == sorted((h["id"] for h in hits), reverse=True)  # newest
    with pytest.raises(InvalidInput, match="limit"):
        conflicts.check(["Ann Lee"], limit=0)


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["x"] * (conflicts.MAX_NAMES + 1), "at most 50 names"),
        (["Zoe " + "n" * 100_000], "longer than 300 characters"),
        (["LLC"], "has no words to compare"),
        (["--- ,,, !!!"], "has no words to compare"),
        (["Inc. Ltd. The Co"], "has no words to compare"),
        ([""], "has no words to compare"),
        ([], "at least one name"),
    ],
)
def test_bounds_and_names_without_words_are_refused(
    core: Settings, names: list[str], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        conflicts.check(names)


def test_odd_text_is_only_text(core: Settings) -> None:
    add_lead("Zoe", "Nunez", "zoe@example.com")
    # SQL wildcards, quotes, NUL and escapes are folded away or compared as they are.
    assert by_source(conflicts.check(["Zoe%"])) == {("lead", "Zoe Nunez"): 0.5}  # as "Zoe"
    assert by_source(conflicts.check(["Zoe' OR 1=1 --"])) == {}
    # "\x1b[31mZoe" is the word "31mzoe": one word of three shared, no hit, no error.
    assert conflicts.check(["\x1b[31mZoe Nunez"]) == []
    assert by_source(conflicts.check(["Zoe\x00Nunez"])) == {("lead", "Zoe Nunez"): 1.0}


def test_words_fold_and_cap() -> None:
    assert words("Ñúñez, Zoë") == ["nunez", "zoe"]
    assert name_key("ACME Holdings, LLC") == name_key("acme holdings") == "acme holdings"
    assert len(words(" ".join(f"w{i}" for i in range(1000)))) == 20
    assert all(len(w) <= 100 for w in words("x" * 5000))


def test_the_erasure_secret_is_read_once_per_database(core: Settings) -> None:
    from leadctl.models import AppSecret

    first = keyed_hash("nunez zoe")
    assert keyed_hash("nunez zoe") == first
    assert AppSecret.select().where(AppSecret.name == "erasure").count() == 1


def test_every_statement_of_a_check_starts_from_an_index(sqlite_core: Settings) -> None:
    """SQLite without statistics: no statement of `check` or `at_intake` walks a table (with
    the quarantine flag in SQL, one walked every lead through (quarantined, id))."""
    import re

    from leadctl.models import database
    from tests.test_storage import _walks_a_table

    for n in range(3):
        add_lead("Zoe", f"Nunez{n}", f"z{n}@example.com")
    erase(add_lead("Ann", "Lee", "ann@example.com"))
    add_parties("name,role\nAcme Holdings,client\n")
    keyed_hash("warm")  # the secret, read once
    conn = database.obj.connection()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        conflicts.check(["Zoe Maria Nunez", "Acme", "Ann Lee"], lead_id=1)
        conflicts.at_intake("Zoe", "Nunez", "z1@example.com", 1)
    finally:
        conn.set_trace_callback(None)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) >= 10
    walks = []
    for sql in selects:
        tables = {alias: table for table, alias in re.findall(r'"(\w+)" AS "(t\d+)"', sql)}
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
        walks += [(sql, step) for step in plan if _walks_a_table(step, tables)]
    assert walks == []
