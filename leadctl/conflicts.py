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

One check is bounded (`MAX_WORDS_PER_CHECK` words, `MAX_ROWS_PER_CHECK` rows read; past
either it is refused, 422). Under LEADS_ATTORNEY_SCOPE=own it still covers every lead, but a hit
on a lead the caller may not read says only whose it is (`conflict_hits.withhold`).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from leadctl import fastpath
from leadctl.conflict_hits import best, erased_hit, lead_hit, merge, party_hit, withhold
from leadctl.conflict_rows import (
    SPARE,
    kept,
    lead_rows,
    party_rows,
    postings,
    tomb_rows,
    whole_leads,
)
from leadctl.db import chunks
from leadctl.errors import InvalidInput, NotFound
from leadctl.models import Lead, Party, email_key
from leadctl.names import keyed_hash, words

THRESHOLD = 0.5
MAX_NAMES = 50  # names in one check
MAX_NAME_CHARS = 300  # Party.name's length; a lead's full name is at most 201
MAX_LIMIT = 500
WORD_CAP = 500  # name_token rows read per word; a word with more is "common"
SUBSET_WORDS = 6  # up to this many words, every subset of at least half is looked up by key
CANDIDATES = 2000  # partial-match candidates scored per name, at most
# The work one check may ask for (a staff token's request must not stall the intake server):
# the searched words of all names together (four words for each of 50 parties), and the rows
# read to answer: postings of the searched words, candidates and exact matches.
MAX_WORDS_PER_CHECK = 200
MAX_ROWS_PER_CHECK = 50_000
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


class _Budget:
    """The rows one check may still read; InvalidInput (422) once it asks for more."""

    def __init__(self, rows: int) -> None:
        self.rows = self.left = rows

    def charge(self, rows: int) -> None:
        self.left -= rows
        if self.left < 0:
            raise InvalidInput(
                [
                    (
                        "names",
                        f"this check reads more than {self.rows:,} rows: check fewer names at "
                        "once, or names of fewer words",
                    )
                ]
            )


def prepare(names: Iterable[Any]) -> list[Name]:
    """The names to search, checked: at most MAX_NAMES, each a string of at most MAX_NAME_CHARS
    with at least one word to compare, at most MAX_WORDS_PER_CHECK words in all; InvalidInput
    names the first that is not."""
    prepared: dict[str, Name] = {}
    total = 0
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
        if name.key not in prepared:
            total += len(name.words)
            if total > MAX_WORDS_PER_CHECK:
                raise InvalidInput(
                    [
                        (
                            "names",
                            f"at most {MAX_WORDS_PER_CHECK} words can be checked at once "
                            f"(name {n} brings the names to {total})",
                        )
                    ]
                )
            prepared[name.key] = name
    return list(prepared.values())


def check(names: list[str], *, lead_id: int | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Possible conflicts of `names` (and of lead `lead_id`'s name and email, excluding that
    lead itself), best first, at most `limit`. Each hit is a dict (see `conflict_hits.hit`)
    with `query`, the name or email it was found for."""
    return search(names, lead_id=lead_id, limit=limit).hits


def search(
    names: list[str],
    *,
    lead_id: int | None = None,
    limit: int = 50,
    visible_to: int | None = None,
) -> Report:
    """`check`, with the words that were too common to look for partial matches from.

    `visible_to`: the attorney whose leads (and the inbox's) alone the caller may read
    (`permissions.reads_only`), or None for every lead: the check is made against every lead
    all the same, and a hit on a lead the caller may not read says only whose it is and when
    it came (`conflict_hits.withhold`). Whether the caller may read lead `lead_id` is the
    caller's to check first."""
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
    budget = _Budget(MAX_ROWS_PER_CHECK)
    for name in prepared:
        hits, common = _name_hits(name, lead_id, limit, budget)
        merge(found, hits)
        report.common_words += [w for w in common if w not in report.common_words]
    if email:
        merge(found, _email_hits(email, lead_id, limit))
    report.hits = withhold(best(found.values(), limit), visible_to)
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
        ekey, email_hash, list(hashed), lead_id, AT_INTAKE_LIMIT + SPARE
    )
    for row in kept(by_address, AT_INTAKE_LIMIT, tombs=True):
        if row["erased_at"] is not None:
            if row["erased_email_hash"] == email_hash:
                merge(hits, [erased_hit(row, 1.0, "email")])
            if row["erased_name_hash"] in hashed:
                merge(hits, [erased_hit(row, hashed[row["erased_name_hash"]], "name")])
        elif row["email_key"] == ekey:
            merge(hits, [lead_hit(row, 1.0, "email")])
    if keys:
        by_name = fastpath.leads_by_name_keys(list(keys), lead_id, AT_INTAKE_LIMIT + SPARE)
        for row in kept(by_name, AT_INTAKE_LIMIT):
            merge(hits, [lead_hit(row, keys[row["name_key"]], "name")])
        for party in fastpath.parties_by_name_keys(list(keys), AT_INTAKE_LIMIT):
            merge(hits, [party_hit(party, keys[party["name_key"]])])
    return best(hits.values(), AT_INTAKE_LIMIT)


# -- one name ------------------------------------------------------------------------------------


def _name_hits(
    name: Name, exclude: int | None, limit: int, budget: _Budget
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
        rows = lead_rows(others & Lead.name_key.in_(group), limit, ordered=True)
        parties = party_rows(Party.name_key.in_(group), limit)
        budget.charge(len(rows) + len(parties))
        hits += [lead_hit(row, score, "name", name.text) for row in rows]
        hits += [party_hit(row, score, name.text) for row in parties]
    hashed = {keyed_hash(k): score for k, score in keys.items()}
    for row in tomb_rows(Lead.erased_name_hash.in_(list(hashed)), limit):
        if row["id"] != exclude:
            hits.append(erased_hit(row, hashed[row["erased_name_hash"]], "name", name.text))
    partial, common = _token_hits(name, set(keys), exclude, limit, budget)
    return hits + partial, common


def _token_hits(
    name: Name, keys: set[str], exclude: int | None, limit: int, budget: _Budget
) -> tuple[list[dict[str, Any]], list[str]]:
    """Names that contain the searched words and more, found from the rarer words' tokens.

    Each word's postings come with the name key of their lead or party, in one statement, as
    the driver's plain tuples: a long check reads tens of thousands of them, and peewee's row
    processing and a second statement per 500 candidates were most of its time. Only the hits
    are read whole."""
    need = math.ceil(len(name.words) / 2)
    lead_counts: Counter[int] = Counter()
    party_counts: Counter[int] = Counter()
    lead_keys: dict[int, str] = {}
    party_keys: dict[int, str] = {}
    common: list[str] = []
    for word in sorted(name.words):
        rows = postings(word, WORD_CAP)
        if rows is None:
            common.append(word)
            continue
        budget.charge(len(rows))
        for lead, party, lead_key, held, erased, party_key in rows:
            if lead is not None:
                if lead != exclude and not held and erased is None:
                    lead_counts[lead] += 1
                    lead_keys[lead] = lead_key
            elif party is not None:
                party_counts[party] += 1
                party_keys[party] = party_key
    # A candidate must be able to share half the words, counting every common word as shared.
    reach = len(common)
    scores: dict[int, float] = {}
    for lead_id, count in lead_counts.most_common(CANDIDATES):
        if count + reach >= need:
            scores.update(_scored(name, keys, lead_id, lead_keys[lead_id]))
    budget.charge(len(scores))
    hits = [lead_hit(row, scores[row["id"]], "name", name.text) for row in whole_leads(scores)]
    scores = {}
    for party_id, count in party_counts.most_common(CANDIDATES):
        if count + reach >= need:
            scores.update(_scored(name, keys, party_id, party_keys[party_id]))
    budget.charge(len(scores))
    for chunk in chunks(list(scores)):
        for row in party_rows(Party.id.in_(chunk), len(chunk), ordered=False):
            hits.append(party_hit(row, scores[row["id"]], name.text))
    return best(hits, limit), common


def _scored(name: Name, keys: set[str], row_id: int, key: str) -> dict[int, float]:
    """{row_id: score} when a name of this key is a partial-match hit, else {}."""
    score = _score(name.words, key)
    return {row_id: score} if _is_hit(name, key, score) and key not in keys else {}


def _email_hits(ekey: str, exclude: int | None, limit: int) -> list[dict[str, Any]]:
    same = (Lead.email_key == ekey) & (Lead.id != (exclude or 0))
    hits = [lead_hit(row, 1.0, "email", ekey) for row in lead_rows(same, limit, ordered=True)]
    email_hash = keyed_hash(ekey)
    for row in tomb_rows(Lead.erased_email_hash == email_hash, limit):
        if row["id"] != exclude:
            hits.append(erased_hit(row, 1.0, "email", ekey))
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
