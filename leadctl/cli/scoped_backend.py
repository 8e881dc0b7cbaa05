"""Local mode under the team's rules: `LocalBackend` acting with the local actor's rights.

The local actor (`--as`, `LEADCTL_ACTOR`, else the OS user) is held to what a token of theirs
would be held to by the server (leadctl.permissions): the same reading scope, the same right to
change a lead. Every other method is `LocalBackend`'s own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from leadctl.cli.backend import LocalBackend, ResumeFile
from leadctl.leads import LeadQuery, Outcome
from leadctl.states import Action

if TYPE_CHECKING:
    from leadctl.permissions import Caller
    from leadctl.settings import Settings


class ScopedLocalBackend(LocalBackend):
    def __init__(self, actor: str, settings: Settings) -> None:
        super().__init__(actor)
        self.settings = settings
        self._caller: Caller | None = None

    @property
    def caller(self) -> Caller:
        """Who the local actor is, with their rights; looked up once, when first needed."""
        if self._caller is None:
            from leadctl import permissions

            self._caller = permissions.local(self.actor)
        return self._caller

    def _scoped(self, query: LeadQuery) -> LeadQuery:
        if self.settings.attorney_scope != "own":
            return query  # every attorney reads every lead: no look-up needed
        from leadctl import permissions

        only = permissions.reads_only(self.caller, self.settings.attorney_scope)
        return dataclasses.replace(query, visible_to=only)

    def _readable(self, ident: str, *, include_quarantined: bool = False) -> Any:
        from leadctl import leads, permissions

        lead = leads.find(ident, include_quarantined=include_quarantined)
        if self.settings.attorney_scope == "own":
            permissions.check_read(self.caller, lead, self.settings.attorney_scope)
        return lead

    def list_leads(
        self, query: LeadQuery, with_total: bool = False
    ) -> tuple[list[dict[str, Any]], int | None]:
        return super().list_leads(self._scoped(query), with_total)

    def iter_leads(self, query: LeadQuery) -> Iterator[dict[str, Any]]:
        return super().iter_leads(self._scoped(query))

    def count_leads(self, query: LeadQuery) -> int:
        return super().count_leads(self._scoped(query))

    def show(self, ident: str) -> dict[str, Any]:
        from leadctl import leads

        return leads.detail_dict(self._readable(ident, include_quarantined=True))

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
