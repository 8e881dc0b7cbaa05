"""The conflict check over the staff API: `POST /api/v1/conflicts` (any attorney's token)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from litestar import Request, post
from litestar.params import JSONBody

from intake.staff import STAFF
from leadctl import conflicts, leads
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
    sync_to_thread=True,
    summary="Check names (or a lead) for conflicts with leads, parties and erased leads",
    description=(
        "Body: `names` (at most 50, each at most 300 characters), optional `lead` (id or "
        "reference: its name and email are checked, itself excluded), `limit` (1-500). "
        "Answers `hits`, best first, and `common_words`, the searched words too common to "
        "look for longer names from."
    ),
)
def check_conflicts(request: Request, data: JSONBody[ConflictQuery]) -> dict[str, Any]:
    attorney: Attorney = request.scope["state"]["attorney"]
    lead_id = None
    if data.lead is not None:
        # A quarantined lead is hidden by id exactly as in lists: only admins see suspected spam.
        lead = leads.find(data.lead, include_quarantined=attorney.role == "admin")
        request.scope["state"]["lead_reference"] = lead.reference
        lead_id = lead.id
    return conflicts.search(data.names, lead_id=lead_id, limit=data.limit).as_dict()


ROUTES: list[Any] = [check_conflicts]
