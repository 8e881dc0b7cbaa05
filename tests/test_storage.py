"""Storage on SQLite and PostgreSQL: one transaction per lead, assignment, schema versions."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from peewee import IntegrityError

from leadctl import attorneys, db, lead_detail, leads, names, schema, submissions
from leadctl.errors import InvalidTransition, NotFound
from leadctl.models import Event, Lead, OutboxMessage, Resume, SchemaVersion
from leadctl.resumes import check_resume
from leadctl.settings import Settings
from leadctl.states import Action, State
from leadctl.validation import check_prospect
from tests import samples

pytestmark = pytest.mark.postgres


def _submit(
    settings: Settings, email: str = "jane@example.com", first: str = "Jane", size: int = 2048
) -> submissions.Submitted:
    prospect = check_prospect(first, "Doe", email)
    resume = check_resume("cv.pdf", samples.pdf(size), settings.max_resume_bytes)
    return submissions.submit(prospect, resume, settings)


def test_a_lead_is_stored_with_resume_events_and_two_messages(core: Settings) -> None:
    attorney, _ = attorneys.add("Ann Lee", "ann@firm.example")
    submitted = _submit(core)
    lead = Lead.get_by_id(submitted.lead.id)
    assert lead.state == State.PENDING
    assert lead.attorney_id == attorney.id
    assert lead.created_at.tzinfo is not None
    resume = Resume.get(Resume.lead == lead.id)
    assert bytes(resume.data) == samples.pdf()
    assert [e.kind for e in Event.select().where(Event.lead == lead.id).order_by(Event.id)] == [
        "submitted",
        "assigned",
    ]
    messages = list(
        OutboxMessage.select().where(OutboxMessage.lead == lead.id).order_by(OutboxMessage.id)
    )
    assert [(m.purpose, m.recipient, m.status) for m in messages] == [
        ("confirmation", "jane@example.com", "pending"),
        ("notification", "ann@firm.example", "pending"),
    ]
    assert lead.reference in messages[0].body_text


def test_lead_and_resume_are_all_or_nothing(core: Settings) -> None:
    import dataclasses

    prospect = check_prospect("Jane", "Doe", "jane@example.com")
    resume = check_resume("cv.pdf", samples.pdf(), core.max_resume_bytes)
    broken = dataclasses.replace(resume, filename=None)  # the database refuses the resume row
    with pytest.raises(IntegrityError):
        submissions.submit(prospect, broken, core)  # type: ignore[arg-type]
    assert Lead.select().count() == 0
    assert Event.select().count() == 0
    assert OutboxMessage.select().count() == 0


def test_references_are_distinct_and_not_sequential(core: Settings) -> None:
    refs = [_submit(core, f"p{i}@example.com").lead.reference for i in range(20)]
    assert len(set(refs)) == 20
    assert all(len(r) == 9 and r[4] == "-" for r in refs)
    assert refs != sorted(refs)


def test_round_robin_then_returning_prospect_keeps_their_attorney(core: Settings) -> None:
    attorneys.add("Ann Lee", "ann@firm.example")
    attorneys.add("Bob Roe", "bob@firm.example")
    first = _submit(core, "a@example.com").attorney
    second = _submit(core, "b@example.com").attorney
    third = _submit(core, "c@example.com").attorney
    assert first is not None and second is not None and third is not None
    assert {first.email, second.email} == {"ann@firm.example", "bob@firm.example"}
    assert third.email == first.email
    again = _submit(core, "b@example.com", size=4000).attorney  # days later, a new resume
    assert again is not None and again.email == second.email
    event = Event.select().where(Event.kind == "assigned").order_by(Event.id.desc()).get()
    assert event.details["reason"] == "returning prospect"


def test_returning_prospect_of_a_deactivated_attorney_goes_round_robin(core: Settings) -> None:
    attorneys.add("Ann Lee", "ann@firm.example")
    first = _submit(core, "a@example.com").attorney
    assert first is not None
    attorneys.add("Bob Roe", "bob@firm.example")
    attorneys.deactivate("ann@firm.example")
    again = _submit(core, "a@example.com", size=4000).attorney
    assert again is not None and again.email == "bob@firm.example"


def test_no_active_attorney_notifies_the_intake_inbox(core: Settings) -> None:
    submitted = _submit(core)
    assert submitted.attorney is None
    notification = OutboxMessage.get(OutboxMessage.purpose == "notification")
    assert notification.recipient == core.intake_email
    assert "No active attorney" in notification.body_text


def test_state_changes_go_through_the_table_and_are_recorded(core: Settings) -> None:
    lead = _submit(core).lead
    done = leads.change_state(lead.id, Action.REACH_OUT, "ann@firm.example", "called her")
    assert done.changed and done.lead["state"] == "REACHED_OUT"
    first_at = done.lead["reached_out_at"]
    again = leads.change_state(lead.reference, Action.REACH_OUT, "bob@firm.example")
    assert not again.changed
    assert again.lead["reached_out_at"] == first_at
    assert again.lead["reached_out_by"] == "ann@firm.example"
    event = Event.get(Event.kind == "state_changed")
    assert (event.actor, event.details) == (
        "ann@firm.example",
        {"from": "PENDING", "to": "REACHED_OUT", "note": "called her"},
    )
    reopened = leads.change_state(lead.id, Action.REOPEN, "ann@firm.example")
    assert reopened.lead["state"] == "PENDING" and reopened.lead["reached_out_at"] is None


def test_invalid_transition_is_refused(core: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from leadctl import states

    lead = _submit(core).lead
    monkeypatch.setitem(states.TRANSITIONS, Action.REACH_OUT, (frozenset(), State.REACHED_OUT))
    with pytest.raises(InvalidTransition):
        leads.change_state(lead.id, Action.REACH_OUT, "ann@firm.example")
    assert Lead.get_by_id(lead.id).state == "PENDING"


def test_find_by_id_or_reference(core: Settings) -> None:
    lead = _submit(core).lead
    assert leads.find(str(lead.id)).id == lead.id
    assert leads.find(lead.reference.lower().replace("-", "")).id == lead.id
    with pytest.raises(NotFound):
        leads.find("999999")
    with pytest.raises(NotFound):
        leads.find("nonsense")


def test_search_ignores_case_and_accents_and_treats_wildcards_literally(core: Settings) -> None:
    _submit(core, "zoe@example.com", first="Zoë")
    _submit(core, "other@example.com", first="Paul")
    found = [x["first_name"] for x in leads.iter_lead_dicts(leads.LeadQuery(search="ZOE"))]
    assert found == ["Zoë"]
    assert list(leads.iter_lead_dicts(leads.LeadQuery(search="%"))) == []
    assert list(leads.iter_lead_dicts(leads.LeadQuery(search="_"))) == []


def _names(q: leads.LeadQuery) -> list[str]:
    return [x["email"] for x in leads.iter_lead_dicts(q)]


def test_search_finds_substrings_through_the_index_and_pages_by_cursor(core: Settings) -> None:
    emails = [f"mara.{i}@example.com" for i in range(5)] + ["odd%quote_x@example.com"]
    made = [_submit(core, email, first="Márä").lead.id for email in emails]
    _submit(core, "paul@example.com", first="Paul")
    assert _names(leads.LeadQuery(search="ara.3@")) == ["mara.3@example.com"]
    assert _names(leads.LeadQuery(search="MARA DOE ODD")) == ["odd%quote_x@example.com"]
    assert _names(leads.LeadQuery(search="d%quote_")) == ["odd%quote_x@example.com"]
    assert _names(leads.LeadQuery(search="d%quote%")) == []
    assert _names(leads.LeadQuery(search='"odd')) == []  # FTS5 syntax is not the user's
    assert _names(leads.LeadQuery(search="a.")) == emails[4::-1]  # two letters: no trigram
    first = leads.LeadQuery(search="mara", limit=4)
    page = [x["id"] for x in leads.iter_lead_dicts(first)]
    assert page == made[::-1][:4]
    rest = leads.LeadQuery(search="mara", limit=4, before_id=page[-1])
    assert [x["id"] for x in leads.iter_lead_dicts(rest)] == made[::-1][4:]
    assert leads.count(leads.LeadQuery(search="mara")) == 6
    assert leads.count(leads.LeadQuery(search="mara", state=State.REACHED_OUT)) == 0
    # A deleted lead leaves the index with it.
    Lead.delete().where(Lead.id == made[3]).execute()
    assert _names(leads.LeadQuery(search="ara.3@")) == []


def test_list_is_newest_first_and_paginates_by_cursor(core: Settings) -> None:
    ids = [_submit(core, f"p{i}@example.com").lead.id for i in range(5)]
    page = [x["id"] for x in leads.iter_lead_dicts(leads.LeadQuery(limit=2))]
    assert page == ids[::-1][:2]
    nxt = [x["id"] for x in leads.iter_lead_dicts(leads.LeadQuery(limit=2, before_id=page[-1]))]
    assert nxt == ids[::-1][2:4]


def test_schema_is_versioned_and_an_outdated_one_is_refused(
    core: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert schema.current_version() == schema.SCHEMA_VERSION
    added: list[str] = []
    monkeypatch.setitem(
        schema.MIGRATIONS, schema.SCHEMA_VERSION + 1, lambda _db: added.append("ran")
    )
    monkeypatch.setattr(schema, "SCHEMA_VERSION", schema.SCHEMA_VERSION + 1)
    with pytest.raises(schema.SchemaOutdated, match="leadctl db upgrade"):
        schema.ensure_schema()
    assert schema.upgrade() == (schema.SCHEMA_VERSION - 1, schema.SCHEMA_VERSION)
    assert added == ["ran"]
    schema.ensure_schema()
    assert SchemaVersion.select().count() == 2


V6_LEAD_COLUMNS = (
    "email_key",
    "name_key",
    "consent_at",
    "disclaimer_version",
    "resume_url",
    "reminded_at",
    "escalated_at",
    "erased_at",
    "erased_name_hash",
    "erased_email_hash",
)


def _undo_version_7(conn: Any) -> None:
    """Take away what schema version 7 added: the links of conflict hits on earlier leads."""
    from leadctl.models import ConflictMention

    conn.drop_tables([ConflictMention])


def _undo_version_6(conn: Any) -> None:
    """Take away what schema version 6 added: the lead's new columns, parties and name words."""
    from playhouse.migrate import SchemaMigrator, migrate

    from leadctl.models import NameToken, Party

    conn.drop_tables([NameToken, Party])
    migrator = SchemaMigrator.from_database(conn)
    migrate(
        *(
            migrator.drop_index("lead", f"lead_{columns}")
            for columns in ("email_key_quarantined", "name_key", "erased_name_hash")
        ),
        migrator.drop_index("lead", "lead_erased_email_hash"),
        migrator.drop_index("event", "event_actor_id"),
        migrator.drop_index("event", "event_kind_id"),
        *(migrator.drop_column("lead", column) for column in V6_LEAD_COLUMNS),
    )


def _undo_version_4(conn: Any) -> None:
    """Take away what schema version 4 added: the confirmations' mailbox and its index."""
    from playhouse.migrate import SchemaMigrator, migrate

    migrator = SchemaMigrator.from_database(conn)
    migrate(
        migrator.drop_index("outbox_message", "outbox_message_mailbox_purpose_created_at"),
        migrator.drop_column("outbox_message", "mailbox"),
        migrator.add_index("outbox_message", ("recipient", "purpose", "created_at"), False),
    )


def _undo_version_3(conn: Any) -> None:
    """Take away what schema version 3 added (by hand, as version 2 never had it)."""
    from playhouse.migrate import SchemaMigrator, migrate

    if db.is_sqlite():
        for name in ("insert", "delete", "update"):
            conn.execute_sql(f"DROP TRIGGER lead_search_{name}")
        conn.execute_sql("DROP TABLE lead_search")
    else:
        conn.execute_sql("DROP INDEX lead_search_key_trgm")
    migrator = SchemaMigrator.from_database(conn)
    migrate(
        *(
            migrator.drop_index("lead", f"lead_quarantined_{columns}")
            for columns in (
                "attorney_id_state_reached_out_seconds",
                "state_reached_out_seconds",
                "state_created_at",
            )
        ),
        migrator.drop_index("outbox_message", "outbox_message_recipient_purpose_created_at"),
        migrator.drop_index("lead", "lead_email_quarantined"),
        migrator.add_index("lead", ("email",)),
        migrator.drop_column("lead", "reached_out_seconds"),
    )


def _undo_version_2(conn: Any) -> None:
    from playhouse.migrate import SchemaMigrator, migrate

    from leadctl.models import AppSecret, IdempotencyKey

    conn.drop_tables([IdempotencyKey, AppSecret])
    migrator = SchemaMigrator.from_database(conn)
    migrate(
        migrator.drop_index("lead", "lead_quarantined_id"),
        migrator.drop_index("outbox_message", "outbox_message_purpose_created_at"),
        migrator.drop_column("lead", "quarantined"),
        migrator.drop_column("lead", "quarantine_reason"),
    )


def _set_version(version: int) -> None:
    SchemaVersion.delete().execute()
    SchemaVersion.create(version=version)
    with pytest.raises(schema.SchemaOutdated, match=f"version {version}"):
        schema.ensure_schema()
    assert schema.upgrade() == (version, schema.SCHEMA_VERSION)
    schema.ensure_schema()


def test_a_version_1_database_is_upgraded_in_place(core: Settings) -> None:
    from leadctl.models import database

    made = _submit(core).lead
    kept = (Resume.select().count(), OutboxMessage.select().count(), Event.select().count())
    conn = database.obj
    _undo_version_7(conn)
    _undo_version_6(conn)
    _undo_version_4(conn)
    _undo_version_3(conn)
    _undo_version_2(conn)
    _set_version(1)
    upgraded = Lead.get_by_id(made.id)
    assert upgraded.reference == made.reference and upgraded.quarantined is False
    # Nothing that hangs off a lead is lost when a column is added to it.
    assert (Resume.select().count(), OutboxMessage.select().count(), Event.select().count()) == kept
    assert {c.name for c in conn.get_columns("lead")} >= {"quarantined", "quarantine_reason"}
    assert conn.table_exists("idempotency_key") and conn.table_exists("app_secret")
    _submit(core, "after@example.com")  # the upgraded database takes new leads


def test_a_version_2_database_gets_durations_and_a_search_index(
    core: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leadctl import stats
    from leadctl.models import database

    attorneys.add("Ann Lee", "ann@firm.example")
    made = [_submit(core, f"old{i}@example.com").lead.id for i in range(3)]
    _reach_out_after(made[0], 2, monkeypatch)
    _reach_out_after(made[1], 4, monkeypatch)
    _undo_version_7(database.obj)
    _undo_version_6(database.obj)
    _undo_version_4(database.obj)
    _undo_version_3(database.obj)
    _set_version(2)
    seconds = [Lead.get_by_id(i).reached_out_seconds for i in made]
    assert seconds[0] == pytest.approx(7200, abs=0.01)
    assert seconds[1] == pytest.approx(14400, abs=0.01)
    assert seconds[2] is None
    assert stats.compute()["first_contact"]["median_seconds"] == pytest.approx(10800, abs=0.01)
    # Leads from before the upgrade are in the search index, and so are new ones.
    assert _names(leads.LeadQuery(search="old1@")) == ["old1@example.com"]
    _submit(core, "new1@example.com")
    assert _names(leads.LeadQuery(search="ew1@")) == ["new1@example.com"]


def test_a_version_3_database_counts_recent_confirmations_by_mailbox(core: Settings) -> None:
    """The upgrade keys the confirmations of the last hour, so the cap holds across it."""
    from leadctl.models import database

    _submit(core, "Jane+old@Example.com")
    _undo_version_7(database.obj)
    _undo_version_6(database.obj)
    _undo_version_4(database.obj)
    assert "mailbox" not in {c.name for c in database.obj.get_columns("outbox_message")}
    _set_version(3)
    confirmation = OutboxMessage.get(OutboxMessage.purpose == "confirmation")
    assert confirmation.mailbox == "jane@example.com"
    _submit(core, "JANE+new@example.com")  # the same mailbox, spelt anew, after the upgrade
    assert OutboxMessage.select().where(OutboxMessage.purpose == "confirmation").count() == 1
    assert Event.select().where(Event.kind == "confirmation_skipped").count() == 1
    indexes = {i.name for i in database.obj.get_indexes("outbox_message")}
    assert "outbox_message_mailbox_purpose_created_at" in indexes
    assert "outbox_message_recipient_purpose_created_at" not in indexes


def test_a_version_5_database_gets_compared_emails_and_names(core: Settings) -> None:
    """The upgrade to 6 keys every existing lead's email and name, and indexes its name words."""
    from leadctl.models import NameToken, database

    made = _submit(core, "Zoe.Nunez@Example.com").lead
    _undo_version_7(database.obj)
    _undo_version_6(database.obj)
    assert "email_key" not in {c.name for c in database.obj.get_columns("lead")}
    _set_version(5)
    upgraded = Lead.get_by_id(made.id)
    assert upgraded.email_key == "zoe.nunez@example.com"
    assert upgraded.name_key == " ".join(sorted(names.words(f"{made.first_name} {made.last_name}")))
    assert upgraded.consent_at is None and upgraded.erased_at is None
    tokens = {t.token for t in NameToken.select().where(NameToken.lead == made.id)}
    assert tokens == set(upgraded.name_key.split())
    assert {c.name for c in database.obj.get_columns("lead")} >= set(V6_LEAD_COLUMNS)


def test_a_version_6_database_links_earlier_hits_and_reaches_the_erased(core: Settings) -> None:
    """The upgrade to 7 links the conflict hits recorded before it (from the events of that
    kind), and follows at once the links of a lead already erased: the later lead's hit and
    notification then name it no more."""
    from leadctl import erasure
    from leadctl.models import ConflictMention, database

    a = _submit(core, "a@example.com", "Zoe").lead.id  # Zoe Doe
    b = _submit(core, "b@example.com", "Zoë").lead.id  # her check names a
    c = _submit(core, "c@example.com", "Zoé").lead.id  # names a and b
    assert {(m.named_id, m.lead_id) for m in ConflictMention.select()} == {(a, b), (a, c), (b, c)}
    ConflictMention.delete().execute()  # as version 6 had none: its erasure left b's records
    erasure.erase_ids([a], "ann@firm.example", "asked")
    note = OutboxMessage.get((OutboxMessage.lead == b) & (OutboxMessage.purpose == "notification"))
    assert "Zoe Doe: lead" in note.body_text
    _undo_version_7(database.obj)
    _set_version(6)
    assert [(m.named_id, m.lead_id) for m in ConflictMention.select()] == [(b, c)]
    note = OutboxMessage.get_by_id(note.id)
    assert "Zoe Doe" not in note.body_text + note.body_html and "[erased]: lead" in note.body_text
    assert "Zoë Doe" in note.body_text  # b's own name
    for later in (b, c):
        hits = Event.get((Event.lead == later) & (Event.kind == "conflicts_found")).details["hits"]
        (gone,) = [h for h in hits if h["id"] == a]
        assert gone["source"] == "erased" and gone["name"] == ""
    hits = Event.get((Event.lead == c) & (Event.kind == "conflicts_found")).details["hits"]
    assert [h["name"] for h in hits if h["id"] == b] == ["Zoë Doe"]


def test_a_reference_clash_is_retried_not_failed(
    core: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = _submit(core).lead.reference
    codes = iter([taken, taken, "ZZZZ-2345"])
    monkeypatch.setattr(submissions, "new_reference", lambda: next(codes))
    fresh = _submit(core, "other@example.com").lead
    assert fresh.reference == "ZZZZ-2345"
    assert Lead.select().count() == 2 and Resume.select().count() == 2


def test_streamed_rows_have_exactly_the_shape_of_one_lead(core: Settings) -> None:
    from leadctl import attorneys as _attorneys

    _attorneys.add("Ann Lee", "ann@firm.example")
    for i in range(3):
        _submit(core, f"p{i}@example.com")
    leads.change_state(1, leads.Action.REACH_OUT, "ann@firm.example")
    query = leads.LeadQuery(limit=None)
    streamed = list(leads.iter_lead_dicts(query))
    assert len(streamed) == 3
    assert streamed == [leads.lead_dict(leads.find(row["id"])) for row in streamed]


def _reach_out_after(lead_id: int, hours: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reach out to the lead as if `hours` had passed since it came in."""
    created = Lead.get_by_id(lead_id).created_at
    with monkeypatch.context() as m:
        m.setattr(leads, "utcnow", lambda: created + timedelta(hours=hours))
        leads.change_state(lead_id, Action.REACH_OUT, "ann@firm.example")


def test_stats_on_both_databases(core: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from leadctl import stats

    attorneys.add("Ann Lee", "ann@firm.example")
    made = [_submit(core, f"p{i}@example.com").lead for i in range(4)]
    for lead, hours in zip(made[:3], (1, 2, 10), strict=True):
        _reach_out_after(lead.id, hours, monkeypatch)
    result = stats.compute()
    assert result["by_state"] == {"PENDING": 1, "REACHED_OUT": 3}
    assert result["first_contact"]["median_seconds"] == pytest.approx(7200, abs=1)
    assert result["first_contact"]["p90_seconds"] == pytest.approx(36000, abs=1)
    assert result["per_attorney"] == [
        {
            "attorney": "ann@firm.example",
            "leads": 4,
            "pending": 1,
            "reached_out": 3,
            "median_seconds": pytest.approx(7200, abs=1),
            "p90_seconds": pytest.approx(36000, abs=1),
        }
    ]


def test_stats_median_of_an_even_count_per_attorney_and_the_inbox(
    core: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leadctl import stats

    inbox = [_submit(core, f"in{i}@example.com").lead for i in range(2)]  # nobody to assign
    ann, _ = attorneys.add("Ann Lee", "ann@firm.example")
    bo, _ = attorneys.add("Bo Chen", "bo@firm.example")
    made = [_submit(core, f"p{i}@example.com").lead for i in range(6)]
    by_attorney: dict[int | None, list[int]] = {}
    for lead in made:
        by_attorney.setdefault(Lead.get_by_id(lead.id).attorney_id, []).append(lead.id)
    assert [len(by_attorney[a.id]) for a in (ann, bo)] == [3, 3]
    for lead_id, hours in zip(by_attorney[ann.id], (1, 3, 8), strict=True):
        _reach_out_after(lead_id, hours, monkeypatch)
    for lead_id, hours in zip(by_attorney[bo.id][:2], (2, 4), strict=True):
        _reach_out_after(lead_id, hours, monkeypatch)
    _reach_out_after(inbox[0].id, 5, monkeypatch)
    # A reopened lead is pending again and its time to first contact no longer counts.
    _reach_out_after(inbox[1].id, 50, monkeypatch)
    leads.change_state(inbox[1].id, Action.REOPEN, "ann@firm.example")
    result = stats.compute()
    # All six durations: 1, 2, 3, 4, 5, 8 hours → median (3 + 4) / 2, p90 the 6th of 6.
    assert result["first_contact"] == {
        "reached_out": 6,
        "median_seconds": pytest.approx(3.5 * 3600, abs=1),
        "p90_seconds": pytest.approx(8 * 3600, abs=1),
    }
    rows = {row["attorney"]: row for row in result["per_attorney"]}
    assert list(rows) == ["ann@firm.example", "bo@firm.example", None]
    assert rows["ann@firm.example"]["median_seconds"] == pytest.approx(3 * 3600, abs=1)
    assert rows["bo@firm.example"]["median_seconds"] == pytest.approx(3 * 3600, abs=1)
    assert rows["bo@firm.example"]["p90_seconds"] == pytest.approx(4 * 3600, abs=1)
    assert rows[None] == {
        "attorney": None,
        "leads": 2,
        "pending": 1,
        "reached_out": 1,
        "median_seconds": pytest.approx(5 * 3600, abs=1),
        "p90_seconds": pytest.approx(5 * 3600, abs=1),
    }
    # `since` narrows every figure to leads that came in from then on.
    later = stats.compute(since=Lead.get_by_id(made[0].id).created_at)
    assert later["total"] == 6 and later["first_contact"]["reached_out"] == 5


def test_taking_a_submission_reads_no_table_from_end_to_end(sqlite_core: Settings) -> None:
    """Each statement of a submission goes through an index (SQLite, fresh: no statistics).

    A plan that walks every lead or every message would make each submission slower as the
    firm's history grows: one such plan once scanned a million leads to assign a new prospect.
    """
    from leadctl.models import database

    attorneys.add("Ann Lee", "ann@firm.example")
    for i in range(3):
        _submit(sqlite_core, f"p{i}@example.com")
    conn = database.obj.connection()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        _submit(sqlite_core, "new@example.com")
        _submit(sqlite_core, "p1@example.com")  # a returning prospect
        lead_detail.detail_dict(leads.find(4))
    finally:
        conn.set_trace_callback(None)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) >= 8
    walks = []
    for sql in selects:
        tables = {alias: table for table, alias in re.findall(r'"(\w+)" AS "(t\d+)"', sql)}
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
        walks += [(sql, step) for step in plan if _walks_a_table(step, tables)]
    assert walks == []


def _walks_a_table(step: str, tables: dict[str, str]) -> bool:
    """A plan step reading a whole table, or most of it through an index used only by columns
    of a few values (quarantined, state…) or by a range of ids. peewee names tables t1, t2…;
    "SCAN _wrapped" is the outside of EXISTS(…) or COUNT(…); a firm's few attorneys may be
    read whole."""
    found = re.match(r"(SCAN|SEARCH) (t\d+)\b(?: USING (?:COVERING )?INDEX \S+ \((.*)\))?", step)
    if found is None or tables.get(found.group(2)) == "attorney":
        return False
    if found.group(1) == "SCAN":
        return True
    if found.group(3) is None:  # the integer primary key: one row
        return False
    constraints = re.findall(r"(\w+)([=<>])", found.group(3))
    return not any(
        (op == "=" and column not in _UNSELECTIVE) or column == "created_at"
        for column, op in constraints
    )


# Columns with a handful of values: an index used only through these still reads most rows.
_UNSELECTIVE = {"quarantined", "purpose", "state", "status", "active"}


def test_the_upgrade_to_7_refolds_names_split_at_an_invisible_character(core: Settings) -> None:
    """Before version 7 "Nu\u00adnez" (a soft hyphen) was the words "nu" and "nez": no check of
    "Zoe Nunez" found it. The upgrade makes such names' keys and words again, leads' and
    parties'."""
    from leadctl import conflicts, parties
    from leadctl.models import ConflictMention, NameToken, Party, database
    from leadctl.names import name_key

    hidden = "Zoe Nu\u00adnez"
    lead = _submit(core, "zoe@example.com", "Zoe\u200b").lead  # "Zoe<ZWSP> Doe"
    parties.import_rows(parties.parse(f"name,role,matter\n{hidden},adverse,Acme\n".encode()))
    party = Party.get(Party.name == hidden).id
    for owner, key in ((NameToken.lead, lead.id), (NameToken.party, party)):
        NameToken.delete().where(owner == key).execute()  # as version 6 split them
        NameToken.insert_many(
            [{"token": w, owner.name: key} for w in ("zoe", "nu", "nez", "doe")]
        ).execute()
    Lead.update(name_key="doe zoe\u200b").where(Lead.id == lead.id).execute()
    Party.update(name_key="nez nu zoe").where(Party.id == party).execute()
    database.obj.drop_tables([ConflictMention])
    _set_version(6)
    assert Lead.get_by_id(lead.id).name_key == name_key("Zoe Doe") == "doe zoe"
    assert Party.get_by_id(party).name_key == "nunez zoe"
    tokens = {t.token for t in NameToken.select().where(NameToken.party == party)}
    assert tokens == {"zoe", "nunez"}
    hits = conflicts.search(["Zoe Nunez"]).as_dict()["hits"]
    assert [(h["source"], h["score"]) for h in hits] == [("party", 1.0)]
