"""The two database layers: the fast path's hand-written SQL (placeholders on both databases,
confined to one module) and the one way events are written."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from leadctl import db, events, fastpath, lead_detail, leads, submissions
from leadctl.models import Event
from leadctl.resumes import check_resume
from leadctl.settings import Settings
from leadctl.timeutil import utcnow
from leadctl.transactions import write_transaction
from leadctl.validation import check_prospect
from tests import samples

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("sql", "params", "expected"),
    [
        ("SELECT ?, 'what?', '100%', 'it''s ?'", ("x",), ("x", "what?", "100%", "it's ?")),
        ('SELECT ? AS "odd?name%"', (1,), (1,)),
        ("SELECT ? /* why? 50% */ -- really?\n", (2,), (2,)),
        ("SELECT '%s', ?", (3,), ("%s", 3)),
        ("SELECT '%(name)s' || ?", ("!",), ("%(name)s!",)),
        ("SELECT ? || '%%'", ("a",), ("a%%",)),
    ],
)
def test_a_literal_question_mark_or_percent_is_text_on_both_databases(
    core: Settings, sql: str, params: tuple[Any, ...], expected: tuple[Any, ...]
) -> None:
    assert tuple(fastpath.run_sql(sql, params).fetchone()) == expected


def test_dollar_quoted_text_keeps_its_question_mark_on_postgresql(core: Settings) -> None:
    if db.is_sqlite():
        pytest.skip("dollar quoting is PostgreSQL's")
    assert fastpath.run_sql("SELECT $$why?%$$, ?", (4,)).fetchone() == ("why?%", 4)


def test_hostile_values_are_only_ever_parameters(core: Settings) -> None:
    for value in ("?", "%s", "%(x)s", "%%", "'; DROP TABLE lead; --", "$$", "\\?"):
        assert fastpath.run_sql("SELECT ?, ?", (value, "?")).fetchone() == (value, "?")


def test_the_translation_for_psycopg() -> None:
    assert fastpath.pyformat("SELECT ? WHERE a LIKE 'x?%' AND b = ?") == (
        "SELECT %s WHERE a LIKE 'x?%%' AND b = %s"
    )
    assert fastpath.pyformat('SELECT "a""?" -- ?\n, ?') == 'SELECT "a""?" -- ?\n, %s'
    assert fastpath.pyformat("SELECT $t$?$t$, /* ? */ ?") == "SELECT $t$?$t$, /* ? */ %s"


def test_a_prospect_typing_placeholders_is_stored_as_typed(core: Settings) -> None:
    first, last = "Zoë?%s", "%(name)s?"
    lead = submissions.submit(
        check_prospect(first, last, "q@example.com"),
        check_resume("cv.pdf", samples.pdf(), core.max_resume_bytes),
        core,
    ).lead
    stored = lead_detail.detail_dict(leads.find(lead.id))
    assert (stored["first_name"], stored["last_name"]) == (first, last)
    assert [e["kind"] for e in stored["events"]] == ["submitted", "assigned"]


def test_events_go_in_through_one_helper_in_one_statement(core: Settings) -> None:
    lead = submissions.submit(
        check_prospect("Ann", "Lee", "ann@example.com"),
        check_resume("cv.pdf", samples.pdf(), core.max_resume_bytes),
        core,
    ).lead
    now = utcnow()
    with write_transaction():
        events.record()  # nothing to write is no statement at all
        events.record(
            Event.row(lead.id, now, "tester", "note", {"text": "a ? and 50%"}),
            Event.row(lead.id, now, "tester", "note", {"text": "ünïcode"}),
        )
    notes = Event.select().where((Event.lead == lead.id) & (Event.kind == "note"))
    assert [e.details["text"] for e in notes.order_by(Event.id)] == ["a ? and 50%", "ünïcode"]


def _calls(path: Path) -> set[str]:
    """Names of what the module calls as `x.execute_sql`, `run_sql`, `x.run_sql`, …"""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


def test_hand_written_sql_in_the_core_lives_in_the_fast_path_module() -> None:
    # The schema's DDL (FTS5 triggers, pg_trgm) and the health check's `SELECT 1` are the other
    # statements written by hand; everything else is built by peewee.
    allowed = {"fastpath.py", "schema.py", "db.py"}
    offenders = {
        path.name: sorted(_calls(path) & {"execute_sql", "run_sql"})
        for path in (ROOT / "leadctl").rglob("*.py")
        if path.name not in allowed
    }
    assert {name: calls for name, calls in offenders.items() if calls} == {}
