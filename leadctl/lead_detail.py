"""What `leadctl show` holds of one lead: the lead, its resume's metadata, consent, the same
person's earlier leads, the conflicts found at intake, and its history, as its reader may see
them."""

from __future__ import annotations

from typing import Any

from leadctl.conflict_hits import NOBODY, lead_owners, withhold_event
from leadctl.fastpath import earlier_leads as latest
from leadctl.leads import lead_dict
from leadctl.models import Event, Lead, Resume
from leadctl.timeutil import iso

EARLIER_SHOWN = 50  # a person's earlier leads `show` lists (the most recent ones)


def detail_dict(lead: Lead, visible_to: int | None = None) -> dict[str, Any]:
    """The lead with its resume metadata (never the bytes) or link, consent, earlier leads of
    the same person, the conflicts found at intake, the erasure, and its history, oldest first.

    `visible_to` is the reader's `permissions.reads_only`: a conflict hit on a lead they may not
    read says only whose it is (`conflict_hits.withhold`), as `leadctl conflicts` does.
    """
    resume = (
        Resume.select(Resume.filename, Resume.content_type, Resume.size, Resume.sha256)
        .where(Resume.lead == lead.id)
        .first()
    )
    history = list(Event.select().where(Event.lead == lead.id).order_by(Event.at, Event.id))
    data = lead_dict(lead)
    data["resume"] = (
        {
            "filename": resume.filename,
            "content_type": resume.content_type,
            "size": resume.size,
            "sha256": resume.sha256,
        }
        if resume
        else None
    )
    data["resume_url"] = lead.resume_url
    data["consent_at"] = iso(lead.consent_at)
    data["disclaimer_version"] = lead.disclaimer_version
    data["events"] = [
        {
            "at": iso(e.at),
            "actor": e.actor,
            "kind": e.kind,
            "details": withhold_event(e.details, visible_to)
            if e.kind == "conflicts_found"
            else e.details,
        }
        for e in history
    ]
    data["earlier_leads"] = earlier_leads(lead, visible_to)
    # What the conflict check found when the lead came in: the latest check's hits.
    found = [e["details"] for e in data["events"] if e["kind"] == "conflicts_found"]
    hits = found[-1].get("hits") if found and isinstance(found[-1], dict) else []
    data["conflicts"] = hits if isinstance(hits, list) else []
    data["quarantined"] = bool(lead.quarantined)
    data["quarantine_reason"] = lead.quarantine_reason
    data["erased_at"] = iso(lead.erased_at)
    return data


def earlier_leads(lead: Lead, visible_to: int | None = None) -> list[dict[str, Any]]:
    """The same person's earlier leads (same address, whatever its case), oldest first: the
    most recent `EARLIER_SHOWN` of them, so a returning prospect's story is one look away.
    The notification's query (leadctl.fastpath), which leaves out quarantined leads and
    erased ones (whose address is gone).

    For a reader of only `visible_to`'s leads (LEADS_ATTORNEY_SCOPE=own), each carries its
    `owner`, and one of another attorney's keeps only that, its date and its state (id and
    reference None), as a conflict hit does."""
    if not lead.email_key:  # an erased lead's address is gone
        return []
    as_iso = Lead.created_at.iso
    found = [
        {"id": ident, "reference": ref, "state": state, "created_at": as_iso(at)}
        for ident, ref, state, at in reversed(latest(lead.email_key, lead.id, EARLIER_SHOWN))
    ]
    if visible_to is not None:
        owners = lead_owners([e["id"] for e in found])
        for e in found:
            attorney, e["owner"] = owners.get(e["id"], NOBODY)
            if attorney is not None and attorney != visible_to:
                e.update(id=None, reference=None)
    return found
