"""Erasure reaches the later leads that named the person at intake (their conflict hits and
notifications), and purge-quarantine the digests; through the real CLI, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from leadctl import db
from leadctl.models import ConflictMention, Event, Lead, OutboxMessage
from tests.conftest import erase_while_another_erasure_holds_its_locks
from tests.test_privacy import ADMIN, World, close, everything_stored, make_world, seed

ZOE_A = ("Zoe", "Nunez", "zoe.a@example.com")
ZOE_B = ("Zoë", "Núñez", "zn.b@example.com")
A_WORDS = ("Zoe Nunez", "zoe.a@example.com", "zoe.a")


@pytest.fixture
def pair(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """Lead A, then lead B whose intake check named A (B's name is A's, accented)."""
    yield from make_world(
        db_url, tmp_path, monkeypatch, ZOE_A, ("Paul", "Smith", "paul@example.com"), ZOE_B
    )


def a_leaks(text: str) -> list[str]:
    """A's name as typed (B's search key holds B's folded name, "zoe nunez": B's own), and A's
    address in any case."""
    folded = text.casefold()
    return [w for w in A_WORDS if (w in text if " " in w else w.casefold() in folded)]


def test_erasing_a_lead_takes_its_name_out_of_later_leads_that_named_it(pair: World) -> None:
    a, b = pair.ids[ZOE_A[2]], pair.ids[ZOE_B[2]]
    db.bind(pair.url)
    (found,) = Event.select().where((Event.lead == b) & (Event.kind == "conflicts_found"))
    (hit,) = [h for h in found.details["hits"] if h["source"] == "lead"]
    assert (hit["id"], hit["name"]) == (a, "Zoe Nunez")
    assert [(m.named_id, m.lead_id) for m in ConflictMention.select()] == [(a, b)]
    (note,) = OutboxMessage.select().where(
        (OutboxMessage.lead == b) & (OutboxMessage.purpose == "notification")
    )
    assert "Zoe Nunez: lead" in note.body_text and "Zoe Nunez: lead" in note.body_html
    b_before = pair.cli("show", str(b), "--json").json()
    assert a_leaks(everything_stored())

    done = pair.cli("erase", str(a), "--reason", "asked", "--yes")
    assert done.code == 0, done.stderr

    assert a_leaks(everything_stored()) == []  # events, outbox bodies and subjects, everything
    (after,) = Event.select().where((Event.lead == b) & (Event.kind == "conflicts_found"))
    (gone,) = [h for h in after.details["hits"] if h["id"] == a]
    assert gone == {
        "source": "erased", "id": a, "name": "", "role": None, "matter": None,
        "reference": hit["reference"], "date": hit["date"], "score": hit["score"],
        "matched": hit["matched"],
    }  # fmt: skip
    note = OutboxMessage.get_by_id(note.id)
    assert "[erased]: lead" in note.body_text and "[erased]: lead" in note.body_html
    shown = pair.cli("show", str(b))
    assert shown.code == 0 and f"an erased lead of {hit['date']}" in shown.stdout
    assert "Zoe Nunez" not in shown.stdout
    # B's own data is untouched: its name (so like A's) and address, in its record and its email.
    b_after = pair.cli("show", str(b), "--json").json()
    for key in ("first_name", "last_name", "email", "reference", "state", "resume"):
        assert b_after[key] == b_before[key]
    assert "Zoë Núñez" in note.body_text and ZOE_B[2] in note.body_text
    assert "Zoë Núñez" in note.subject
    assert not ConflictMention.select().exists()  # followed, and dropped


def test_same_name_later_lead_keeps_its_own_name(pair: World, tmp_path: Path) -> None:
    """A later lead whose name is exactly the erased person's keeps it: it is its own."""
    later = seed(pair.url, tmp_path, ("Zoe", "Nunez", "other.zoe@example.com"))
    c = later["other.zoe@example.com"]
    assert pair.cli("erase", str(pair.ids[ZOE_A[2]]), "--reason", "asked", "--yes").code == 0
    db.bind(pair.url)
    note = OutboxMessage.get((OutboxMessage.lead == c) & (OutboxMessage.purpose == "notification"))
    assert "Name:       Zoe Nunez" in note.body_text and "Zoe Nunez" in note.subject
    assert "zoe.a@example.com" not in everything_stored()
    hits = Event.get((Event.lead == c) & (Event.kind == "conflicts_found")).details["hits"]
    assert [h["name"] for h in hits if h["id"] == pair.ids[ZOE_A[2]]] == [""]


def test_a_lead_erased_while_a_later_one_was_checked_is_named_as_erased(pair: World) -> None:
    """The check runs before the write lock: a lead it found may be erased before the later
    lead is stored. The submission then records the hit as an erased lead's."""
    from leadctl import submissions
    from leadctl.resumes import check_resume
    from leadctl.validation import check_prospect
    from tests import samples

    a = pair.ids[ZOE_A[2]]
    db.bind(pair.url)
    hits = submissions.check_conflicts("Zoe", "Nunez", "late@example.com")
    assert sorted(h["id"] for h in hits if h["source"] == "lead") == [a, pair.ids[ZOE_B[2]]]
    close()
    assert pair.cli("erase", str(a), "--reason", "asked", "--yes").code == 0
    db.bind(pair.url)
    resume = check_resume("cv.pdf", samples.pdf(), pair.settings.max_resume_bytes)
    prospect = check_prospect("Zoe", "Nunez", "late@example.com")
    s = pair.settings.replace(confirmations_per_hour=1000)
    lead = submissions.submit(prospect, resume, s, conflict_hits=hits).lead
    stored = Event.get((Event.lead == lead.id) & (Event.kind == "conflicts_found"))
    (gone,) = [h for h in stored.details["hits"] if h["id"] == a]
    assert gone["source"] == "erased" and gone["name"] == ""
    note = OutboxMessage.get(
        (OutboxMessage.lead == lead.id) & (OutboxMessage.purpose == "notification")
    )
    assert "an erased lead of" in note.body_text
    linked = [m.named_id for m in ConflictMention.select().where(ConflictMention.lead == lead.id)]
    assert sorted(linked) == sorted([a, pair.ids[ZOE_B[2]]])


def test_no_hit_no_link(pair: World) -> None:
    """The common case (nothing found) writes no link."""
    db.bind(pair.url)
    paul = pair.ids["paul@example.com"]
    assert not ConflictMention.select().where(ConflictMention.lead == paul).exists()
    assert Lead.get_by_id(paul).erased_at is None


def test_erasures_of_leads_that_named_each_other_at_once(pair: World) -> None:
    """A and B (whose check named A) erased by two erasures at once: both done, no deadlock
    (each takes the later lead's notification, then its events, in erase_messages' order)."""
    from functools import partial

    from leadctl import erasure
    from leadctl.names import keyed_hash
    from tests.test_privacy import race

    a, b = pair.ids[ZOE_A[2]], pair.ids[ZOE_B[2]]
    db.bind(pair.url)
    keyed_hash("")
    errors = race(
        partial(erasure.erase_ids, [a], ADMIN, "asked"),
        partial(erasure.erase_ids, [b], ADMIN, "asked"),
    )
    assert errors == []
    assert all(Lead.get_by_id(i).erased_at is not None for i in (a, b))
    stored = everything_stored()
    assert a_leaks(stored) == [] and "Zoë" not in stored and "zn.b@" not in stored
    assert not ConflictMention.select().exists()


def test_two_erasures_named_by_one_later_lead_keep_each_other_out(
    pair: World, tmp_path: Path
) -> None:
    """C's check named A and B. Erasing A holds C's records locked until it commits; erasing B
    meanwhile waits, then reads them as A's erasure left them: neither name is written back."""
    if not pair.url.startswith("postgresql"):
        pytest.skip("SQLite has one write lock: two erasures run one after the other")
    c = seed(pair.url, tmp_path, ("Zoe", "Núñez", "c@example.com"))["c@example.com"]
    a, b = pair.ids[ZOE_A[2]], pair.ids[ZOE_B[2]]
    db.bind(pair.url)
    erase_while_another_erasure_holds_its_locks([a], [b])
    hits = Event.get((Event.lead == c) & (Event.kind == "conflicts_found")).details["hits"]
    assert {h["id"]: h["source"] for h in hits if h["id"] in (a, b)} == {a: "erased", b: "erased"}
    note = OutboxMessage.get((OutboxMessage.lead == c) & (OutboxMessage.purpose == "notification"))
    assert "Zoe Nunez" not in note.body_text and "Zoë Núñez" not in note.body_text
    assert note.body_text.count("[erased]: lead") == 2 and "Zoe Núñez" in note.body_text


@pytest.fixture
def namesakes(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """Ann Lee, then Mary-Ann Lee (jo.ann@example.com), whose intake check named Ann."""
    people = (("Ann", "Lee", "ann@example.com"), ("Mary-Ann", "Lee", "jo.ann@example.com"))
    yield from make_world(db_url, tmp_path, monkeypatch, *people)


def test_erasing_a_name_held_inside_a_later_leads_own_keeps_that_one_whole(
    namesakes: World,
) -> None:
    """ "Ann Lee" is inside "Mary-Ann Lee", and ann@example.com inside jo.ann@example.com: erasing
    Ann takes her out of Mary-Ann's notification without cutting Mary-Ann's name or address."""
    ids, cli = namesakes.ids, namesakes.cli
    assert cli("erase", str(ids["ann@example.com"]), "--reason", "asked", "--yes").code == 0
    db.bind(namesakes.url)
    note = OutboxMessage.get(
        (OutboxMessage.lead == ids["jo.ann@example.com"])
        & (OutboxMessage.purpose == "notification")
    )
    assert "Mary-Ann Lee" in note.subject and "[erased]" not in note.subject
    for body in (note.body_text, note.body_html):
        assert "Mary-Ann Lee" in body and "jo.ann@example.com" in body
        assert "[erased]: lead" in body  # the hit on Ann, taken out


@pytest.mark.parametrize(
    ("text", "erased", "kept", "expected"),
    [
        ("Mary-Ann Lee", ["Ann Lee"], [], "Mary-Ann Lee"),
        ("jo.ann@example.com", ["ann@example.com"], [], "jo.ann@example.com"),
        ("O'Neil Ann Lee.", ["Ann Lee"], [], "O'Neil [erased]."),
        ("- Ann Lee: lead 1", ["Ann Lee"], [], "- [erased]: lead 1"),
        (
            "Zoe Nunez-Garcia; Zoe Nunez",
            ["Zoe Nunez"],
            ["Zoe Nunez-Garcia"],
            "Zoe Nunez-Garcia; [erased]",
        ),
        ("<ann@example.com>", ["ann@example.com"], [], "<[erased]>"),
    ],
)
def test_only_whole_names_and_addresses_are_taken(
    text: str, erased: list[str], kept: list[str], expected: str
) -> None:
    from leadctl.redaction import _without

    assert _without(text, erased, kept) == expected


def test_only_real_lead_ids_in_old_hits_are_linked() -> None:
    """What an old `conflicts_found` event holds is read by the upgrade to 7: a bool, an id
    past any column's range, a string or a hit that is not an object links nothing."""
    from leadctl.mentions import named_leads

    hits = [
        {"source": "lead", "id": True},
        {"source": "lead", "id": 2**70},
        {"source": "lead", "id": "7"},
        "not a hit",
        {"source": "party", "id": 9},
        {"source": "lead", "id": 5},
        {"source": "lead", "id": 5},
    ]
    assert named_leads(hits) == [5]  # type: ignore[arg-type]
