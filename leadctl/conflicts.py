"""The conflict check: names (and a lead's email) against every lead, party and erased lead.

Matching compares folded word sets (`names.words`: case, accents, punctuation, word order and
entity words such as "LLC" ignored). A hit's score is the Jaccard index of the two word sets:
shared words / all words of both. The same set is 1.0 ("Ñúñez, Zoë" and "Zoe Nunez"); "Zoe
Nunez" against "Zoe Maria Nunez" is 2/3. A hit needs `THRESHOLD` (0.5), which means it shares
at least half of the searched name's words: "Zoe Smith" is not a hit for "Zoe Nunez" (1/3).
A name holding every searched word is a hit whatever its score: "Ramirez" finds "Ana Rossi
Ramirez" (1/3), as long as "ramirez" is not a common word (below).
The same email address (its trimmed, lowercased key) is a hit of score 1.0 whatever the name.

Every look-up starts from an index: names by their key (the whole set, and each subset of at
least half of the searched words, which finds "Zoe Nunez" when "Zoe Maria Nunez" is searched),
and partial matches the other way ("Zoe Maria Nunez" when "Zoe Nunez" is searched) from the
`name_token` rows of the searched words. A word with more than `WORD_CAP` rows is too common
to start from ("john"): it still counts in the score, and the report names it.

Not compared: quarantined leads (suspected spam, kept outside every list: a bot typing a
client's name must not raise alarms) and erased leads' names, which are gone. An erased lead
is found only through the keyed hashes of its name key and email key (whole keys, and the
subsets above), and reported as "an erased lead of DATE" with no name.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from leadctl import fastpath
from leadctl.errors import InvalidInput, NotFound
from leadctl.models import Lead, NameToken, Party, email_key
from leadctl.names import keyed_hash, words
from leadctl.timeutil import iso

THRESHOLD = 0.5
MAX_NAMES = 50  # names in one check
MAX_NAME_CHARS = 300  # Party.name's length; a lead's full name is at most 201
MAX_LIMIT = 500
WORD_CAP = 500  # name_token rows read per word; a word with more is "common"
SUBSET_WORDS = 6  # up to this many words, every subset of at least half is looked up by key
CANDIDATES = 2000  # partial-match candidates scored per name, at most
AT_INTAKE_LIMIT = 20
AT_INTAKE_SUBSET_WORDS = 4


@dataclass(frozen=True)
class Name:
    """A searched name: as typed, its folded words, and its key."""

    text: str
    words: frozenset[str]
    key: str


@dataclass
class Report:
    """What `search` found: the hits, best first, and the words too common to start from."""

    hits: list[dict[str, Any]] = field(default_factory=list)
    common_words: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"hits": self.hits, "common_words": self.common_words}


def prepare(names: Iterable[Any]) -> list[Name]:
    """The names to search, checked: at most MAX_NAMES, each a string of at most MAX_NAME_CHARS
    with at least one word to compare; InvalidInput names the first that is not."""
    prepared: dict[str, Name] = {}
    for n, raw in enumerate(names, start=1):
        if n > MAX_NAMES:
            raise InvalidInput([("names", f"at most {MAX_NAMES} names can be checked at once")])
        if not isinstance(raw, str):
            raise InvalidInput([("names", f"name {n} is not text")])
        text = raw.strip()
        if len(text) > MAX_NAME_CHARS:
            raise InvalidInput(
                [("names", f"name {n} is longer than {MAX_NAME_CHARS} characters ({len(text)})")]
            )
        found = words(text)
        if not found:
            shown = text if len(text) <= 40 else text[:40] + "…"
            raise InvalidInput(
                [
                    (
                        "names",
                        f"name {n} ({shown!r}) has no words to compare: it is only punctuation "
                        "or words like LLC and Inc",
                    )
                ]
            )
        name = Name(text, frozenset(found), " ".join(sorted(found)))
        prepared.setdefault(name.key, name)
    return list(prepared.values())


def check(names: list[str], *, lead_id: int | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Possible conflicts of `names` (and of lead `lead_id`'s name and email, excluding that
    lead itself), best first, at most `limit`. Each hit is a dict (see `_hit`) with `query`,
    the name or email it was found for."""
    return search(names, lead_id=lead_id, limit=limit).hits


def search(names: list[str], *, lead_id: int | None = None, limit: int = 50) -> Report:
    """`check`, with the words that were too common to look for partial matches from."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput([("limit", f"limit must be between 1 and {MAX_LIMIT}")])
    prepared = prepare(names)
    report = Report()
    found: dict[tuple[str, int], dict[str, Any]] = {}
    email = None
    if lead_id is not None:
        lead = _lead(lead_id)
        full = f"{lead.first_name} {lead.last_name}"
        own = [n for n in prepare([full]) if all(n.key != p.key for p in prepared)]
        prepared += own
        email = lead.email_key or email_key(lead.email)
    if not prepared and email is None:
        raise InvalidInput([("names", "give at least one name, or a lead")])
    for name in prepared:
        hits, common = _name_hits(name, lead_id, limit)
        _merge(found, hits)
        report.common_words += [w for w in common if w not in report.common_words]
    if email:
        _merge(found, _email_hits(email, lead_id, limit))
    report.hits = _best(found.values(), limit)
    return report


def at_intake(first_name: str, last_name: str, email: str, lead_id: int) -> list[dict[str, Any]]:
    """The cheap check made on every submission: leads and parties with the same name key (or
    one of at least half its words), leads with the same email, and erased leads whose hashed
    keys match. Three index look-ups; at most AT_INTAKE_LIMIT hits, best first, in the hit
    format without `query`."""
    found = words(f"{first_name} {last_name}")
    name = Name(f"{first_name} {last_name}", frozenset(found), " ".join(sorted(found)))
    ekey = email_key(email)
    keys = _keys(name, AT_INTAKE_SUBSET_WORDS) if found else {}
    hashed = {keyed_hash(k): score for k, score in keys.items()}
    email_hash = keyed_hash(ekey)
    hits: dict[tuple[str, int], dict[str, Any]] = {}
    # The same address, live or erased: a returning prospect has a few leads, not thousands.
    # The look-ups are fastpath's hand-written SQL: this runs for every submission.
    by_address = fastpath.leads_by_address(
        ekey, email_hash, list(hashed), lead_id, AT_INTAKE_LIMIT + _SPARE
    )
    for row in _kept(by_address, AT_INTAKE_LIMIT, tombs=True):
        if row["erased_at"] is not None:
            if row["erased_email_hash"] == email_hash:
                _merge(hits, [_erased_hit(row, 1.0, "email")])
            if row["erased_name_hash"] in hashed:
                _merge(hits, [_erased_hit(row, hashed[row["erased_name_hash"]], "name")])
        elif row["email_key"] == ekey:
            _merge(hits, [_lead_hit(row, 1.0, "email")])
    if keys:
        by_name = fastpath.leads_by_name_keys(list(keys), lead_id, AT_INTAKE_LIMIT + _SPARE)
        for row in _kept(by_name, AT_INTAKE_LIMIT):
            _merge(hits, [_lead_hit(row, keys[row["name_key"]], "name")])
        for party in fastpath.parties_by_name_keys(list(keys), AT_INTAKE_LIMIT):
            _merge(hits, [_party_hit(party, keys[party["name_key"]])])
    return _best(hits.values(), AT_INTAKE_LIMIT)


# -- one name ------------------------------------------------------------------------------------


def _name_hits(
    name: Name, exclude: int | None, limit: int
) -> tuple[list[dict[str, Any]], list[str]]:
    keys = _keys(name, SUBSET_WORDS)
    hits: list[dict[str, Any]] = []
    others = Lead.id != (exclude or 0)
    # By key, best score first: the whole set, then each size of subset. A common name's
    # thousands of exact matches stop at `limit` instead of being read and sorted.
    by_score: dict[float, list[str]] = {}
    for key, score in keys.items():
        by_score.setdefault(score, []).append(key)
    for score, group in sorted(by_score.items(), reverse=True):
        rows = _lead_rows(others & Lead.name_key.in_(group), limit, ordered=True)
        hits += [_lead_hit(row, score, "name", name.text) for row in rows]
        parties = _party_rows(Party.name_key.in_(group), limit)
        hits += [_party_hit(row, score, name.text) for row in parties]
    hashed = {keyed_hash(k): score for k, score in keys.items()}
    for row in _tomb_rows(Lead.erased_name_hash.in_(list(hashed)), limit):
        if row["id"] != exclude:
            hits.append(_erased_hit(row, hashed[row["erased_name_hash"]], "name", name.text))
    partial, common = _token_hits(name, set(keys), others, limit)
    return hits + partial, common


def _token_hits(
    name: Name, keys: set[str], others: Any, limit: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """Names that contain the searched words and more, found from the rarer words' tokens."""
    need = math.ceil(len(name.words) / 2)
    lead_counts: Counter[int] = Counter()
    party_counts: Counter[int] = Counter()
    common: list[str] = []
    for word in sorted(name.words):
        postings = NameToken.select(NameToken.lead, NameToken.party).where(NameToken.token == word)
        # Counted in the database, up to the cap: a common word costs no row in Python.
        if postings.limit(WORD_CAP + 1).count() > WORD_CAP:
            common.append(word)
            continue
        rows: list[tuple[int | None, int | None]] = list(postings.tuples())  # type: ignore[arg-type]
        for lead, party in rows:
            if lead is not None:
                lead_counts[lead] += 1
            elif party is not None:
                party_counts[party] += 1
    # A candidate must be able to share half the words, counting every common word as shared.
    reach = len(common)
    leads = [i for i, c in lead_counts.most_common(CANDIDATES) if c + reach >= need]
    parties = [i for i, c in party_counts.most_common(CANDIDATES) if c + reach >= need]
    hits: list[dict[str, Any]] = []
    for chunk in _chunks(leads):
        for row in _lead_rows(others & Lead.id.in_(chunk), len(chunk)):
            score = _score(name.words, row["name_key"])
            if _is_hit(name, row["name_key"], score) and row["name_key"] not in keys:
                hits.append(_lead_hit(row, score, "name", name.text))
    for chunk in _chunks(parties):
        for row in _party_rows(Party.id.in_(chunk), len(chunk)):
            score = _score(name.words, row["name_key"])
            if _is_hit(name, row["name_key"], score) and row["name_key"] not in keys:
                hits.append(_party_hit(row, score, name.text))
    return _best(hits, limit), common


def _email_hits(ekey: str, exclude: int | None, limit: int) -> list[dict[str, Any]]:
    same = (Lead.email_key == ekey) & (Lead.id != (exclude or 0))
    hits = [_lead_hit(row, 1.0, "email", ekey) for row in _lead_rows(same, limit, ordered=True)]
    email_hash = keyed_hash(ekey)
    for row in _tomb_rows(Lead.erased_email_hash == email_hash, limit):
        if row["id"] != exclude:
            hits.append(_erased_hit(row, 1.0, "email", ekey))
    return hits


def _keys(name: Name, max_words: int) -> dict[str, float]:
    """The name's key (score 1.0) and, for a short name, the key of each subset of at least
    half of its words, with the score a name of exactly those words gets."""
    keys = {name.key: 1.0}
    n = len(name.words)
    if 1 < n <= max_words:
        ordered = sorted(name.words)
        for size in range(max(1, math.ceil(n / 2)), n):
            for subset in itertools.combinations(ordered, size):
                keys[" ".join(subset)] = round(size / n, 3)
    return keys


def _is_hit(name: Name, key: str, score: float) -> bool:
    """At the threshold, or holding every searched word ("Ramirez" in "Ana Rossi Ramirez")."""
    return score >= THRESHOLD or name.words <= set(key.split())


def _score(searched: frozenset[str], key: str) -> float:
    """Shared words / all words of both (Jaccard): 1.0 for the same set."""
    other = set(key.split())
    union = len(searched | other)
    return round(len(searched & other) / union, 3) if union else 0.0


# -- rows and hits -------------------------------------------------------------------------------


def _lead(lead_id: int) -> Lead:
    lead = Lead.get_or_none(Lead.id == lead_id)
    if lead is None:
        raise NotFound(f"no lead {lead_id}")
    if lead.erased_at is not None:
        raise InvalidInput([("lead", f"lead {lead_id} is erased: its name and email are gone")])
    return lead


_LEAD_COLUMNS = (
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
_SPARE = 20  # rows read beyond the limit, for the quarantined ones dropped after reading


def _lead_rows(
    where: Any, limit: int, *, ordered: bool = False, tombs: bool = False
) -> list[dict[str, Any]]:
    """Live, unquarantined leads (and erased ones when `tombs`) matching `where`, at most
    `limit`, newest first when `ordered`.

    Quarantine and erasure are checked here rather than in SQL: with them in the WHERE clause,
    SQLite without statistics walks the (quarantined, id) index newest first — every lead —
    instead of looking the name up.
    """
    columns = (
        [*_LEAD_COLUMNS, Lead.erased_name_hash, Lead.erased_email_hash] if tombs else _LEAD_COLUMNS
    )
    query: Any = Lead.select(*columns).where(where).limit(limit + _SPARE)
    if ordered:
        query = query.order_by(Lead.id.desc())
    return _kept(list(query.dicts()), limit, tombs=tombs)


def _kept(rows: list[dict[str, Any]], limit: int, *, tombs: bool = False) -> list[dict[str, Any]]:
    """The first `limit` rows not quarantined (nor erased, unless `tombs`)."""
    kept = [r for r in rows if not r["quarantined"] and (tombs or r["erased_at"] is None)]
    return kept[:limit]


def _tomb_rows(where: Any, limit: int) -> list[dict[str, Any]]:
    """Erased leads matching `where` (a keyed-hash look-up), newest first."""
    rows = _lead_rows(where & Lead.erased_at.is_null(False), limit, ordered=True, tombs=True)
    return [row for row in rows if row["erased_at"] is not None]


def _party_rows(where: Any, limit: int, *, ordered: bool = True) -> list[dict[str, Any]]:
    query = Party.select().where(where).limit(limit)
    if ordered:
        query = query.order_by(Party.id.desc())
    return list(query.dicts())  # type: ignore[arg-type]


def _hit(
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
    hit = {
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
        hit["query"] = query
    return hit


def _lead_hit(
    row: dict[str, Any], score: float, matched: str, query: str | None = None
) -> dict[str, Any]:
    return _hit("lead", row, f"{row['first_name']} {row['last_name']}", score, matched, query)


def _party_hit(row: dict[str, Any], score: float, query: str | None = None) -> dict[str, Any]:
    return _hit(
        "party", row, row["name"], score, "name", query, role=row["role"], matter=row["matter"]
    )


def _erased_hit(
    row: dict[str, Any], score: float, matched: str, query: str | None = None
) -> dict[str, Any]:
    return _hit("erased", row, "", score, matched, query)


def _merge(found: dict[tuple[str, int], dict[str, Any]], hits: Iterable[dict[str, Any]]) -> None:
    """One hit per lead or party: the best score; an email match wins a tie."""
    for hit in hits:
        key = (hit["source"], hit["id"])
        known = found.get(key)
        if (
            known is None
            or hit["score"] > known["score"]
            or (hit["score"] == known["score"] and hit["matched"] == "email")
        ):
            found[key] = hit


def _best(hits: Iterable[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """Best score first, then newest, at most `limit`."""
    key = lambda h: (h["score"], h["date"], h["source"], h["id"])  # noqa: E731
    return sorted(hits, key=key, reverse=True)[:limit]


def _chunks(ids: list[int], size: int = 500) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def describe(hit: dict[str, Any]) -> str:
    """One line for people: `party "Acme Holdings" (adverse, matter M-12) 0.67 by name`."""
    if hit["source"] == "erased":
        what = f"an erased lead of {hit['date'][:10]}"
    elif hit["source"] == "lead":
        what = f"lead {hit['id']} {hit['reference']} {hit['name']!r} of {hit['date'][:10]}"
    else:
        extra = ", ".join(
            x for x in (hit["role"], hit["matter"] and f"matter {hit['matter']}") if x
        )
        what = f"party {hit['name']!r}" + (f" ({extra})" if extra else "")
    return f"{what}: {hit['matched']} match, score {hit['score']:.2f}"
