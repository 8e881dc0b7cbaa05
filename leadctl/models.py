"""Peewee models: leads, their resumes, attorneys, API tokens, the audit trail and the outbox."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from peewee import (
    AutoField,
    BlobField,
    BooleanField,
    CharField,
    CompositeKey,
    DatabaseProxy,
    DateTimeField,
    FloatField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

from leadctl.timeutil import iso

database = DatabaseProxy()


class UtcDateTimeField(DateTimeField):
    """A timezone-aware UTC datetime, stored as naive UTC so SQLite and PostgreSQL sort it alike."""

    def db_value(self, value: Any) -> Any:
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                value = value.astimezone(UTC).replace(tzinfo=None)
            # Fixed-width text: sorts correctly in SQLite and needs no deprecated sqlite3 adapter.
            return value.strftime("%Y-%m-%d %H:%M:%S.%f")
        return super().db_value(value)

    def python_value(self, value: Any) -> Any:
        if isinstance(value, str):
            # Our own fixed format is ISO 8601: the C parser, not peewee's strptime trials
            # (which dominated exporting a million leads).
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                value = super().python_value(value)
        else:
            value = super().python_value(value)
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def iso(self, stored: Any) -> str | None:
        """`timeutil.iso(self.python_value(stored))`, straight from our own stored text.

        Exports render millions of timestamps; rearranging the fixed-format text costs a
        fraction of parsing it into a datetime and formatting that again.
        """
        if isinstance(stored, str) and len(stored) == 26 and stored[10] == " ":
            whole = stored[:19] if stored.endswith(".000000") else stored  # as isoformat() does
            return f"{whole[:10]}T{whole[11:]}Z"
        if isinstance(stored, datetime) and stored.tzinfo is None:  # PostgreSQL's naive UTC
            return f"{stored.isoformat()}Z"
        return iso(self.python_value(stored))


class JsonField(TextField):
    """A JSON document kept as text (portable across SQLite and PostgreSQL)."""

    def db_value(self, value: Any) -> Any:
        return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)

    def python_value(self, value: Any) -> Any:
        return None if value is None else json.loads(value)


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


def email_key(value: str) -> str:
    """An attorney's email as stored and looked up: trimmed and lowercased."""
    return value.strip().lower()


class Attorney(BaseModel):
    id = AutoField()
    name = CharField(max_length=200)
    email = CharField(max_length=320, unique=True)
    role = CharField(max_length=20, default="attorney")
    active = BooleanField(default=True)
    created_at = UtcDateTimeField()
    last_assigned_at = UtcDateTimeField(null=True)


class ApiToken(BaseModel):
    id = AutoField()
    attorney = ForeignKeyField(Attorney, backref="tokens", on_delete="CASCADE")
    name = CharField(max_length=100, default="")
    token_hash = CharField(max_length=64, unique=True)
    hint = CharField(max_length=16)
    created_at = UtcDateTimeField()
    last_used_at = UtcDateTimeField(null=True)
    revoked_at = UtcDateTimeField(null=True)


class Lead(BaseModel):
    id = AutoField()
    reference = CharField(max_length=16, unique=True)
    first_name = CharField(max_length=100)
    last_name = CharField(max_length=100)
    email = CharField(max_length=320)
    search_key = TextField(default="")
    state = CharField(max_length=20, index=True)
    attorney = ForeignKeyField(Attorney, null=True, backref="leads", on_delete="SET NULL")
    attorney_id: int | None  # peewee's accessor for the foreign key's raw value
    created_at = UtcDateTimeField(index=True)
    updated_at = UtcDateTimeField()
    reached_out_at = UtcDateTimeField(null=True)
    reached_out_by = CharField(max_length=320, null=True)
    # Seconds from submission to reached_out_at, kept beside it so `stats` takes its median
    # and p90 from an index instead of computing a million differences.
    reached_out_seconds = FloatField(null=True)
    # Suspected spam (honeypot, form sent back too fast): kept apart, outside every list.
    quarantined = BooleanField(default=False)
    quarantine_reason = CharField(max_length=100, null=True)
    # The address as compared: `email_key(email)`. A returning prospect is the same person
    # whatever the case they type; `person show` finds every lead under any case.
    email_key = CharField(max_length=320, default="")
    # The name as the conflict check compares it: `names.name_key(first last)`.
    name_key = CharField(max_length=400, default="")
    # What the prospect agreed to: when, and the SHA-256 of the exact disclaimer shown.
    consent_at = UtcDateTimeField(null=True)
    disclaimer_version = CharField(max_length=64, null=True)
    # A resume given as a link instead of a file (never fetched); a lead has one or the other.
    resume_url = TextField(null=True)
    # Speed to lead: the one reminder to its attorney and the one escalation to the inbox.
    reminded_at = UtcDateTimeField(null=True)
    escalated_at = UtcDateTimeField(null=True)
    # Erasure leaves a tombstone: these keyed hashes (HMAC with the `erasure` secret) of the
    # name key and the email key let a later check report the match without the data.
    erased_at = UtcDateTimeField(null=True)
    erased_name_hash = CharField(max_length=64, null=True)
    erased_email_hash = CharField(max_length=64, null=True)

    class Meta:
        indexes = (
            # "newest first" walks this index backwards and stops at the limit.
            (("quarantined", "id"), False),
            # A prospect's earlier leads (assignment, double clicks, `show`). Two equalities, so
            # SQLite prefers it to (quarantined, id) even without statistics — which would walk
            # every lead to find none for a new address.
            (("email", "quarantined"), False),
            # `stats`: counts per attorney and state, and each attorney's percentiles.
            (("quarantined", "attorney", "state", "reached_out_seconds"), False),
            # `stats`: the firm's percentiles; `--overdue`: old PENDING leads.
            (("quarantined", "state", "reached_out_seconds"), False),
            (("quarantined", "state", "created_at"), False),
            (("email_key", "quarantined"), False),
            (("name_key",), False),
            (("erased_name_hash",), False),
            (("erased_email_hash",), False),
        )


class Party(BaseModel):
    """Someone on the firm's list of parties (clients, adverse parties, others), for conflicts."""

    id = AutoField()
    name = CharField(max_length=300)
    role = CharField(max_length=20)  # client, adverse or other
    matter = CharField(max_length=300, default="")
    name_key = CharField(max_length=400, index=True)
    created_at = UtcDateTimeField()


class NameToken(BaseModel):
    """One word of a lead's or a party's folded name: the conflict check finds partial matches
    ("Zoe Nunez" in "Zoe Maria Nunez") by word, from an index instead of a scan."""

    token = CharField(max_length=100)
    lead = ForeignKeyField(Lead, null=True, on_delete="CASCADE")
    party = ForeignKeyField(Party, null=True, on_delete="CASCADE")

    class Meta:
        primary_key = False
        indexes = (
            (("token",), False),
            (("lead",), False),
            (("party",), False),
        )


class LeadSearch(BaseModel):
    """SQLite only: the FTS5 trigram index over `Lead.search_key` (kept by triggers, see schema.py).

    On PostgreSQL a pg_trgm index on the column itself does the same job.
    """

    rowid = IntegerField(primary_key=True)  # the lead's id
    search_key = TextField()

    class Meta:
        table_name = "lead_search"


class Resume(BaseModel):
    lead = ForeignKeyField(Lead, primary_key=True, backref="resume_rows", on_delete="CASCADE")
    filename = CharField(max_length=255)
    content_type = CharField(max_length=100)
    size = IntegerField()
    sha256 = CharField(max_length=64)
    data = BlobField()


class Event(BaseModel):
    id = AutoField()
    lead = ForeignKeyField(Lead, backref="events", on_delete="CASCADE")
    at = UtcDateTimeField()
    actor = CharField(max_length=320)
    kind = CharField(max_length=40)
    details = JsonField(default=dict)

    class Meta:
        indexes = (
            # `leadctl history --actor/--action`: newest first, from the index, however rare.
            (("actor", "id"), False),
            (("kind", "id"), False),
        )

    @staticmethod
    def row(
        lead_id: int, at: datetime, actor: str, kind: str, details: dict[str, Any]
    ) -> dict[str, Any]:
        """One event as a row for `events.record`, which writes every event."""
        return {"lead": lead_id, "at": at, "actor": actor, "kind": kind, "details": details}


class ConflictMention(BaseModel):
    """A conflict hit on an earlier lead (`named`) in a later lead's intake check (`lead`): the
    link erasure follows from a person's lead to the later leads' records that name them. Written
    only when the check found a lead, beside the `conflicts_found` event; dropped once followed."""

    named = ForeignKeyField(Lead, backref="+", on_delete="CASCADE")
    lead = ForeignKeyField(Lead, backref="+", on_delete="CASCADE")

    class Meta:
        primary_key = CompositeKey("named", "lead")  # erasure looks up by `named`
        indexes = ((("lead",), False),)  # a deleted (or erased) later lead's links


class OutboxMessage(BaseModel):
    id = AutoField()
    lead = ForeignKeyField(Lead, null=True, backref="messages", on_delete="CASCADE")
    lead_id: int | None  # peewee's accessor for the foreign key's raw value
    purpose = CharField(max_length=40)
    message_id = CharField(max_length=255, unique=True)
    recipient = CharField(max_length=320)
    # A confirmation's mailbox, however spelt (`Jane+x@Example.com` → `jane@example.com`):
    # what the one-per-hour cap counts. See mailer.mailbox_key.
    mailbox = CharField(max_length=400, null=True)
    subject = TextField()
    body_text = TextField()
    body_html = TextField()
    status = CharField(max_length=20, default="pending")
    attempts = IntegerField(default=0)
    next_attempt_at = UtcDateTimeField()
    lease_until = UtcDateTimeField(null=True)
    last_error = TextField(null=True)
    created_at = UtcDateTimeField()
    sent_at = UtcDateTimeField(null=True)

    class Meta:
        indexes = (
            (("status", "next_attempt_at"), False),
            (("purpose", "created_at"), False),
            # The mail cap's "one confirmation per mailbox per hour", without a scan.
            (("mailbox", "purpose", "created_at"), False),
        )


class IdempotencyKey(BaseModel):
    """A submission's `Idempotency-Key` (or form token) and the answer it got, kept 24 hours."""

    key = CharField(max_length=200, primary_key=True)
    body_hash = CharField(max_length=64)
    lead = ForeignKeyField(Lead, on_delete="CASCADE")
    lead_id: int
    created_at = UtcDateTimeField(index=True)


class AppSecret(BaseModel):
    """Server-side secrets shared by every process (the form-token signing key)."""

    name = CharField(max_length=50, primary_key=True)
    value = CharField(max_length=200)


class RateLimitHit(BaseModel):
    """One accepted submission of a client, kept while it counts against the rate limit; the
    shared log of every server on one PostgreSQL (see leadctl.fastpath)."""

    client = CharField(max_length=64)  # sha256 of the client address: fixed size, any input
    at = DateTimeField()  # naive UTC, from the database's clock (one clock for every server)

    class Meta:
        indexes = ((("client", "at"), False),)


class SchemaVersion(BaseModel):
    version = IntegerField()


ALL_MODELS: list[type[BaseModel]] = [
    Attorney,
    ApiToken,
    Lead,
    Resume,
    Event,
    OutboxMessage,
    IdempotencyKey,
    AppSecret,
    RateLimitHit,
    Party,
    NameToken,
    ConflictMention,
    SchemaVersion,
]
