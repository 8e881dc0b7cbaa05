"""The conflict check over the staff API: `POST /api/v1/conflicts` (any attorney's token)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio
from litestar import Request, post
from litestar.params import JSONBody

from intake.staff import STAFF
from leadctl import conflicts, leads, permissions
from leadctl.models import Attorney

# Fifty names of 300 characters, each character up to 6 bytes as a JSON escape.
MAX_BODY_BYTES = 128 * 1024


@dataclass
class ConflictQuery:
    names: list[str] = field(default_factory=list)
    lead: str | None = None
    limit: int = 50


@post(
    "/conflicts",
    **{**STAFF, "request_max_body_size": MAX_BODY_BYTES},
    status_code=200,
    summary="Check names (or a lead) for conflicts with leads, parties and erased leads",
    description=(
        f"Body: `names` (at most {conflicts.MAX_NAMES}, each at most "
        f"{conflicts.MAX_NAME_CHARS} characters, at most {conflicts.MAX_WORDS_PER_CHECK} words "
        "in all), optional `lead` (id or reference: its name and email are checked, itself "
        f"excluded), `limit` (1-{conflicts.MAX_LIMIT}). Answers `hits`, best first, and "
        "`common_words`, the searched words too common to look for longer names from. A check "
        f"that would read more than {conflicts.MAX_ROWS_PER_CHECK:,} rows is refused (422). "
        "With LEADS_ATTORNEY_SCOPE=own an attorney's check still covers every lead, but a hit "
        "on another attorney's lead has no id, name or reference: its `owner` says whose it is."
    ),
)
async def check_conflicts(request: Request, data: JSONBody[ConflictQuery]) -> dict[str, Any]:
    # One check at a time per server process, the others waiting here without a thread: the
    # bounds keep one check to a fraction of a second, and eight at once must not take every
    # core from the public form.
    async with request.app.state.intake.conflict_gate:
        result: dict[str, Any] = await anyio.to_thread.run_sync(_check, request, data)
    return result


def _check(request: Request, data: ConflictQuery) -> dict[str, Any]:
    attorney: Attorney = request.scope["state"]["attorney"]
    caller = permissions.of_attorney(attorney)
    scope = request.app.state.intake.settings.attorney_scope
    visible_to = permissions.reads_only(caller, scope)
    lead_id = None
    if data.lead is not None:
        # A quarantined lead is hidden by id exactly as in lists: only admins see suspected spam.
        lead = leads.find(data.lead, include_quarantined=attorney.role == "admin")
        request.scope["state"]["lead_reference"] = lead.reference
        permissions.check_read(caller, lead, scope)  # as GET /leads/{id}: 403 naming its owner
        lead_id = lead.id
    report = conflicts.search(data.names, lead_id=lead_id, limit=data.limit, visible_to=visible_to)
    return report.as_dict()


ROUTES: list[Any] = [check_conflicts]
