"""The rows the conflict check reads, each look-up from an index: live leads (quarantine and
erasure sorted out in Python), tombstones, parties, and word postings as plain tuples."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from peewee import JOIN

from leadctl.db import chunks
from leadctl.models import Lead, NameToken, Party, database

LEAD_COLUMNS = (
    Lead.id,
    Lead.reference,
    Lead.first_name,
    Lead.last_name,
    Lead.created_at,
    Lead.name_key,
    Lead.email_key,
    Lead.quarantined,
    Lead.erased_at,
)
SPARE = 20  # rows read beyond the limit, for the quarantined ones dropped after reading


def lead_rows(
    where: Any, limit: int, *, ordered: bool = False, tombs: bool = False
) -> list[dict[str, Any]]:
    """Live, unquarantined leads (and erased ones when `tombs`) matching `where`, at most
    `limit`, newest first when `ordered`.

    Quarantine and erasure are checked here rather than in SQL: with them in the WHERE clause,
    SQLite without statistics walks the (quarantined, id) index newest first — every lead —
    instead of looking the name up.
    """
    columns = (
        [*LEAD_COLUMNS, Lead.erased_name_hash, Lead.erased_email_hash] if tombs else LEAD_COLUMNS
    )
    query: Any = Lead.select(*columns).where(where).limit(limit + SPARE)
    if ordered:
        query = query.order_by(Lead.id.desc())
    return kept(list(query.dicts()), limit, tombs=tombs)


def kept(rows: list[dict[str, Any]], limit: int, *, tombs: bool = False) -> list[dict[str, Any]]:
    """The first `limit` rows not quarantined (nor erased, unless `tombs`)."""
    live = [r for r in rows if not r["quarantined"] and (tombs or r["erased_at"] is None)]
    return live[:limit]


def tomb_rows(where: Any, limit: int) -> list[dict[str, Any]]:
    """Erased leads matching `where` (a keyed-hash look-up), newest first."""
    rows = lead_rows(where & Lead.erased_at.is_null(False), limit, ordered=True, tombs=True)
    return [row for row in rows if row["erased_at"] is not None]


def party_rows(where: Any, limit: int, *, ordered: bool = True) -> list[dict[str, Any]]:
    query = Party.select().where(where).limit(limit)
    if ordered:
        query = query.order_by(Party.id.desc())
    return list(query.dicts())  # type: ignore[arg-type]


def postings(word: str, cap: int) -> list[tuple[Any, ...]] | None:
    """The postings of `word`: (lead id, party id, the lead's name key, quarantined and
    erased_at, the party's name key), one of the two ids None, as the driver's tuples (no row
    processing: a check may read tens of thousands). None when there are more than `cap`:
    counted in the database first, so a common word costs no row in Python."""
    of_word = NameToken.token == word
    if NameToken.select(NameToken.token).where(of_word).limit(cap + 1).count() > cap:
        return None
    query = (
        NameToken.select(
            NameToken.lead, NameToken.party, Lead.name_key, Lead.quarantined, Lead.erased_at,
            Party.name_key,
        )
        .join(Lead, JOIN.LEFT_OUTER, on=(NameToken.lead == Lead.id))
        .switch(NameToken)
        .join(Party, JOIN.LEFT_OUTER, on=(NameToken.party == Party.id))
        .where(of_word)
    )  # fmt: skip
    rows: list[tuple[Any, ...]] = database.obj.execute(query).fetchall()
    return rows


def whole_leads(ids: Iterable[int]) -> list[dict[str, Any]]:
    """`lead_rows` of these ids, in chunks."""
    wanted = list(ids)
    return [row for chunk in chunks(wanted) for row in lead_rows(Lead.id.in_(chunk), len(chunk))]
