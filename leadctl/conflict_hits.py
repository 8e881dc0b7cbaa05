"""A conflict hit: its format, merging and order, and what a reader held to their own leads
(`LEADS_ATTORNEY_SCOPE=own`) may see of a hit on a lead that is not theirs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from leadctl import permissions
from leadctl.models import Attorney, Lead
from leadctl.timeutil import iso


def hit(
    source: str,
    row: dict[str, Any],
    name: str,
    score: float,
    matched: str,
    query: str | None,
    **extra: Any,
) -> dict[str, Any]:
    """A hit: source (lead, party, erased), id, name ("" for erased), role and matter (a
    party's), reference (a lead's), date (ISO 8601: when the lead came or the party was
    listed), score (0..1), matched (name or email), and `query` when `check` made it."""
    found = {
        "source": source,
        "id": row["id"],
        "name": name,
        "role": extra.get("role"),
        "matter": extra.get("matter"),
        "reference": row.get("reference"),
        "date": iso(row["created_at"]),
        "score": score,
        "matched": matched,
    }
    if query is not None:
        found["query"] = query
    return found


def lead_hit(
    row: dict[str, Any], score: float, matched: str, query: str | None = None
) -> dict[str, Any]:
    return hit("lead", row, f"{row['first_name']} {row['last_name']}", score, matched, query)


def party_hit(row: dict[str, Any], score: float, query: str | None = None) -> dict[str, Any]:
    return hit(
        "party", row, row["name"], score, "name", query, role=row["role"], matter=row["matter"]
    )


def erased_hit(
    row: dict[str, Any], score: float, matched: str, query: str | None = None
) -> dict[str, Any]:
    return hit("erased", row, "", score, matched, query)


def merge(found: dict[tuple[str, int], dict[str, Any]], hits: Iterable[dict[str, Any]]) -> None:
    """One hit per lead or party: the best score; an email match wins a tie."""
    for new in hits:
        key = (new["source"], new["id"])
        known = found.get(key)
        if (
            known is None
            or new["score"] > known["score"]
            or (new["score"] == known["score"] and new["matched"] == "email")
        ):
            found[key] = new


def best(hits: Iterable[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """Best score first, then newest, at most `limit`."""
    key = lambda h: (h["score"], h["date"], h["source"], h["id"])  # noqa: E731
    return sorted(hits, key=key, reverse=True)[:limit]


def withhold(hits: list[dict[str, Any]], visible_to: int | None) -> list[dict[str, Any]]:
    """`hits` as a reader of only attorney `visible_to`'s leads and the inbox's may see them
    (None: every lead, and the hits are returned as they are).

    The check stays firm-wide, for a conflict hidden is a duty missed, but a hit on another
    attorney's lead says only whose lead it is, when it came, and its score: its `id`, `name`
    and `reference` are withheld (None, "", None). Every hit then carries `owner`, the email of
    the lead's attorney (None for the intake inbox, a party or an erased lead), so the fields
    are the same on every row of a CSV."""
    if visible_to is None:
        return hits
    owners = lead_owners([h["id"] for h in hits if h["source"] == "lead"])
    shown = []
    for found in hits:
        attorney, owner = owners.get(found["id"], NOBODY) if found["source"] == "lead" else NOBODY
        found = {**found, "owner": owner}
        if attorney is not None and attorney != visible_to:
            found.update(id=None, name="", reference=None)
        shown.append(found)
    return shown


NOBODY: tuple[int | None, str | None] = (None, None)  # the intake inbox's, a party, a tombstone


def lead_owners(ids: list[int]) -> dict[int, tuple[int | None, str | None]]:
    """Each lead's attorney: (id, email), or NOBODY while it sits in the intake inbox."""
    if not ids:
        return {}
    query = Lead.select(Lead.id, Lead.attorney).where(Lead.id.in_(ids))
    owners: dict[int, int | None] = dict(query.tuples())  # type: ignore[arg-type]
    known = {a for a in owners.values() if a is not None}
    emails = Attorney.select(Attorney.id, Attorney.email).where(Attorney.id.in_(known))
    email_of: dict[int, str] = dict(emails.tuples()) if known else {}  # type: ignore[arg-type]
    return {i: (a, email_of.get(a)) if a is not None else NOBODY for i, a in owners.items()}


def withhold_event(details: Any, visible_to: int | None) -> Any:
    """A `conflicts_found` event's details, its hits withheld from `visible_to` as `withhold`
    withholds them: the one rule for `show`, `history` and the attorney's notification."""
    hits = details.get("hits") if isinstance(details, dict) else None
    if visible_to is None or not isinstance(hits, list):
        return details
    return {**details, "hits": withhold(hits, visible_to)}


def told_to(
    attorney: Attorney | None, hits: list[dict[str, Any]], scope: str
) -> list[dict[str, Any]]:
    """The hits as the notification tells them to `attorney`: as their `show` shows them. The
    intake inbox (None) is told every hit, as an admin is."""
    if not hits or attorney is None or scope != "own":
        return hits
    reader = permissions.of_attorney(Attorney.get_by_id(attorney.id))  # with the role to judge
    return withhold(hits, permissions.reads_only(reader, scope))


def describe(found: dict[str, Any]) -> str:
    """One line for people: `party "Acme Holdings" (adverse, matter M-12) 0.67 by name`."""
    if found["source"] == "erased":
        what = f"an erased lead of {found['date'][:10]}"
    elif found["source"] == "lead" and found["id"] is None:  # withheld: see `withhold`
        what = f"a lead of {found['owner']} of {found['date'][:10]}"
    elif found["source"] == "lead":
        what = f"lead {found['id']} {found['reference']} {found['name']!r} of {found['date'][:10]}"
    else:
        extra = ", ".join(
            x for x in (found["role"], found["matter"] and f"matter {found['matter']}") if x
        )
        what = f"party {found['name']!r}" + (f" ({extra})" if extra else "")
    return f"{what}: {found['matched']} match, score {found['score']:.2f}"
