"""The one interface every lead command talks to; `LocalBackend` works on the database itself."""

from __future__ import annotations

import dataclasses
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from leadctl.leads import LeadQuery, Outcome
from leadctl.states import Action

if TYPE_CHECKING:
    from leadctl.permissions import Caller
    from leadctl.settings import Settings


@dataclass
class ResumeFile:
    filename: str
    content_type: str
    data: bytes


@dataclass
class BatchResult:
    """What a batch command did: `{"changed": [...], "unchanged": [...], "failed": [...]}`."""

    changed: list[dict[str, Any]] = field(default_factory=list)
    unchanged: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"changed": self.changed, "unchanged": self.unchanged, "failed": self.failed}


class Backend(Protocol):
    """What the CLI needs; local (database) and remote (staff API) implement it identically.

    A change answers with the core's `Outcome` either way: `changed` False means it was
    already so; a failure is an exception.
    """

    def me(self) -> dict[str, Any]: ...

    def list_leads(
        self, query: LeadQuery, with_total: bool = False
    ) -> tuple[list[dict[str, Any]], int | None]: ...

    def iter_leads(self, query: LeadQuery) -> Generator[dict[str, Any], None, None]: ...

    def count_leads(self, query: LeadQuery) -> int: ...

    def show(self, ident: str) -> dict[str, Any]: ...

    def resume(self, ident: str) -> ResumeFile: ...

    def change_state(
        self, ident: str, action: Action, note: str | None, dry_run: bool
    ) -> Outcome: ...

    def add_note(self, ident: str, text: str) -> Outcome: ...

    def assign(self, ident: str, attorney_email: str) -> Outcome: ...

    def stats(self, since: datetime | None) -> dict[str, Any]: ...

    def conflicts(self, names: list[str], lead: str | None, limit: int) -> dict[str, Any]:
        """`{"hits": [...], "common_words": [...]}`: see leadctl.conflicts.search."""
        ...

    def close(self) -> None: ...


class LocalBackend:
    """Works directly on the database named by `--db` / `LEADS_DATABASE_URL`, with the local
    actor's rights: `--as`, `LEADCTL_ACTOR`, else the OS user, held to what a token of theirs
    would be held to by the server (leadctl.permissions): the same reading scope, the same
    right to change a lead."""

    def __init__(self, actor: str, settings: Settings) -> None:
        self.actor = actor
        self.settings = settings
        self._caller: Caller | None = None

    @property
    def caller(self) -> Caller:
        """Who the local actor is, with their rights; looked up once, when first needed."""
        if self._caller is None:
            from leadctl import permissions

            self._caller = permissions.local(self.actor)
        return self._caller

    def me(self) -> dict[str, Any]:
        """The local actor: their attorney record when there is one, else just the email."""
        from leadctl import attorneys
        from leadctl.cli.context import UsageError
        from leadctl.errors import NotFound

        if "@" not in self.actor:
            raise UsageError("this needs to know who you are: pass --as EMAIL or set LEADCTL_ACTOR")
        try:
            return attorneys.attorney_dict(attorneys.get(self.actor))
        except NotFound:
            pass
        return {"id": None, "name": self.actor, "email": self.actor, "role": None, "active": None}

    def _visible_to(self) -> int | None:
        """The attorney whose leads (with the inbox's) alone the actor reads in full under
        LEADS_ATTORNEY_SCOPE=own; None for every lead (without a look-up when the scope is all)."""
        if self.settings.attorney_scope != "own":
            return None
        from leadctl import permissions

        return permissions.reads_only(self.caller, self.settings.attorney_scope)

    def _scoped(self, query: LeadQuery) -> LeadQuery:
        if query.quarantined:  # as the staff API: suspected spam is an admin's to see
            from leadctl import permissions

            hint = "pass --as ADMIN_EMAIL before the command (see: leadctl attorney list)"
            permissions.check_admin(self.caller, "listing quarantined leads", hint)
        return dataclasses.replace(query, visible_to=self._visible_to())

    def _readable(self, ident: str, *, include_quarantined: bool = False) -> Any:
        from leadctl import leads, permissions

        lead = leads.find(ident, include_quarantined=include_quarantined)
        if self.settings.attorney_scope == "own":
            permissions.check_read(self.caller, lead, self.settings.attorney_scope)
        return lead

    def list_leads(
        self, query: LeadQuery, with_total: bool = False
    ) -> tuple[list[dict[str, Any]], int | None]:
        from leadctl import leads

        query = self._scoped(query)
        items = list(leads.iter_lead_dicts(query))
        return items, leads.count(query) if with_total else None

    def iter_leads(self, query: LeadQuery) -> Generator[dict[str, Any], None, None]:
        from leadctl import leads

        return leads.iter_lead_dicts(self._scoped(query))

    def count_leads(self, query: LeadQuery) -> int:
        from leadctl import leads

        return leads.count(self._scoped(query))

    def show(self, ident: str) -> dict[str, Any]:
        from leadctl import lead_detail

        lead = self._readable(ident, include_quarantined=True)
        return lead_detail.detail_dict(lead, visible_to=self._visible_to())

    def resume(self, ident: str) -> ResumeFile:
        from leadctl import leads

        row = leads.resume_of(self._readable(ident))
        return ResumeFile(row.filename, row.content_type, bytes(row.data))

    def change_state(self, ident: str, action: Action, note: str | None, dry_run: bool) -> Outcome:
        from leadctl import leads

        if dry_run:
            return leads.preview_state(ident, action, self.caller)
        return leads.change_state(ident, action, self.caller, note)

    def add_note(self, ident: str, text: str) -> Outcome:
        from leadctl import leads

        return leads.add_note(ident, text, self.caller)

    def assign(self, ident: str, attorney_email: str) -> Outcome:
        from leadctl import leads

        return leads.assign(ident, attorney_email, self.caller, self.settings)

    def stats(self, since: datetime | None) -> dict[str, Any]:
        from leadctl import stats

        return stats.compute(since)

    def conflicts(self, names: list[str], lead: str | None, limit: int) -> dict[str, Any]:
        """As the server checks: every lead, but under LEADS_ATTORNEY_SCOPE=own a hit on a lead
        the actor may not read says only whose it is, and `lead` must be one they may read."""
        from leadctl import conflicts

        lead_id = self._readable(lead, include_quarantined=True).id if lead is not None else None
        only = self._visible_to()
        return conflicts.search(names, lead_id=lead_id, limit=limit, visible_to=only).as_dict()

    def close(self) -> None:
        pass
