"""Generate a database of N leads quickly (insert_many, one transaction per batch) for benchmarks.

python bench/make_leads.py --db sqlite:///bench/data/100k.db --count 100000 [--parties 100000]

Each lead gets its email key, name key and name words (`name_token`) as intake writes them.
`--rare 0.1` gives a tenth of the leads a rare second surname (a made-up word seen a few times
in a million); `--parties N` adds N parties (companies and people) to the conflict list.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import time
from datetime import timedelta

from peewee import SqliteDatabase

from leadctl import db, schema, transactions
from leadctl.leads import fold
from leadctl.models import Attorney, Event, Lead, NameToken, Party, Resume, database, email_key
from leadctl.names import name_key, words
from leadctl.submissions import new_reference
from leadctl.timeutil import utcnow

FIRST = [
    "Zoë",
    "Paul",
    "Li",
    "Ana",
    "Jean",
    "Omar",
    "Sara",
    "Ivan",
    "Maya",
    "Tomás",
    "Grace",
    "Yuki",
]
LAST = ["Ñúñez", "Smith", "Lei", "Müller", "Dubois", "Haddad", "Rossi", "Petrov", "Kim", "García"]
RESUME = b"%PDF-1.4\n% tiny benchmark resume\n%%EOF\n"
SYLLABLES = ["ka", "lo", "mi", "ra", "te", "vu", "zo", "ne", "pa", "si", "do", "fe", "gu", "ho"]
SYLLABLES += ["ja", "ki", "lu", "ma", "no", "pe", "qui", "ri", "su", "ta", "vo", "wa", "xe", "ye"]
ROLES = ["client", "adverse", "other"]
BUSINESS = ["Holdings", "Partners", "Group", "Logistics", "Foods", "Capital", "Labs", "Energy"]
ENTITY = ["LLC", "Inc.", "Ltd", "GmbH", "Corp.", ""]


def rare_word(rng: random.Random) -> str:
    """A made-up word of three or four syllables: 28^3 + 28^4 of them, each rare."""
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((3, 4)))).capitalize()


def _set_sequence(table: str) -> None:
    """PostgreSQL: explicit ids leave the id sequence behind; move it past them."""
    if not isinstance(database.obj, SqliteDatabase):
        database.obj.execute_sql(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
        )


def analyze() -> None:
    """PostgreSQL: statistics, as autovacuum would gather them on a database this size (SQLite
    is left without: leadctl's plans are made to hold without them)."""
    if not isinstance(database.obj, SqliteDatabase):
        database.obj.execute_sql("ANALYZE")


def generate(url: str, count: int, batch: int = 4000, seed: int = 7, rare: float = 0.0) -> float:
    # batch × columns must stay under PostgreSQL's 65,535 parameters per statement.
    rng = random.Random(seed)
    db.bind(url)
    schema.ensure_schema()
    started = time.perf_counter()
    now = utcnow()
    with transactions.write_transaction():
        if Attorney.select().count() == 0:
            Attorney.insert_many(
                [
                    {
                        "name": f"Attorney {i}",
                        "email": f"a{i}@firm.example",
                        "role": "attorney",
                        "active": True,
                        "created_at": now,
                    }
                    for i in range(5)
                ]
            ).execute()
    attorney_ids = [a.id for a in Attorney.select(Attorney.id)]
    sha = hashlib.sha256(RESUME).hexdigest()
    start_id = (Lead.select(Lead.id).order_by(Lead.id.desc()).scalar() or 0) + 1
    used = {r for (r,) in Lead.select(Lead.reference).tuples()}
    span = timedelta(days=365)
    for offset in range(0, count, batch):
        n = min(batch, count - offset)
        leads, resumes, events, tokens = [], [], [], []
        for k in range(n):
            lead_id = start_id + offset + k
            first, last = rng.choice(FIRST), rng.choice(LAST)
            if rare and rng.random() < rare:
                last = f"{last} {rare_word(rng)}"
            email = f"{fold(first)}.{fold(last).replace(' ', '-')}.{lead_id}@example.com"
            full = f"{first} {last}"
            tokens += [{"token": w, "lead": lead_id} for w in words(full)]
            # Spread creation over a year, oldest first, so ids and times agree.
            created = now - span + span * ((offset + k) / max(count, 1))
            reached = rng.random() < 0.6
            reached_at = created + timedelta(hours=rng.uniform(0.2, 72)) if reached else None
            reference = new_reference()
            while reference in used:  # among a million, random codes do clash now and then
                reference = new_reference()
            used.add(reference)
            leads.append(
                {
                    "id": lead_id,
                    "reference": reference,
                    "first_name": first,
                    "last_name": last,
                    "email": email,
                    "email_key": email_key(email),
                    "name_key": name_key(full),
                    "search_key": fold(f"{first} {last} {email}"),
                    "state": "REACHED_OUT" if reached else "PENDING",
                    "attorney": rng.choice(attorney_ids),
                    "created_at": created,
                    "updated_at": reached_at or created,
                    "reached_out_at": reached_at,
                    "reached_out_by": "bench" if reached else None,
                    "reached_out_seconds": (reached_at - created).total_seconds()
                    if reached_at
                    else None,
                }
            )
            resumes.append(
                {
                    "lead": lead_id,
                    "filename": "cv.pdf",
                    "content_type": "application/pdf",
                    "size": len(RESUME),
                    "sha256": sha,
                    "data": RESUME,
                }
            )
            events.append(
                {
                    "lead": lead_id,
                    "at": created,
                    "actor": "prospect",
                    "kind": "submitted",
                    "details": {"resume": "cv.pdf"},
                }
            )
        with transactions.write_transaction():
            Lead.insert_many(leads).execute()
            Resume.insert_many(resumes).execute()
            Event.insert_many(events).execute()
            for first in range(0, len(tokens), 5000):  # 3 columns: under SQLite's 32,766
                NameToken.insert_many(tokens[first : first + 5000]).execute()
    with transactions.write_transaction():
        _set_sequence("lead")
    analyze()
    elapsed = time.perf_counter() - started
    database.obj.close()
    return elapsed


def generate_parties(url: str, count: int, batch: int = 2000, seed: int = 11) -> float:
    """`count` parties: two thirds companies ("Kalomi Holdings LLC"), a third people."""
    rng = random.Random(seed)
    db.bind(url)
    schema.ensure_schema()
    started = time.perf_counter()
    now = utcnow()
    start_id = (Party.select(Party.id).order_by(Party.id.desc()).scalar() or 0) + 1
    for offset in range(0, count, batch):
        parties, tokens = [], []
        for k in range(min(batch, count - offset)):
            party_id = start_id + offset + k
            if rng.random() < 2 / 3:
                name = f"{rare_word(rng)} {rng.choice(BUSINESS)} {rng.choice(ENTITY)}".strip()
            else:
                name = f"{rng.choice(FIRST)} {rare_word(rng)}"
            parties.append(
                {
                    "id": party_id,
                    "name": name,
                    "role": rng.choice(ROLES),
                    "matter": f"M-{rng.randrange(1, 20_000):05d}",
                    "name_key": name_key(name),
                    "created_at": now,
                }
            )
            tokens += [{"token": w, "party": party_id} for w in words(name)]
        with transactions.write_transaction():
            Party.insert_many(parties).execute()
            NameToken.insert_many(tokens).execute()
    with transactions.write_transaction():
        _set_sequence("party")
    analyze()
    elapsed = time.perf_counter() - started
    database.obj.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="database URL")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--rare", type=float, default=0.0, help="share of rare surnames")
    parser.add_argument("--parties", type=int, default=0, help="parties to add")
    args = parser.parse_args()
    elapsed = generate(args.db, args.count, rare=args.rare)
    print(
        f"generated {args.count:,} leads in {elapsed:.1f} s ({args.count / elapsed:,.0f} leads/s)"
    )
    if args.parties:
        elapsed = generate_parties(args.db, args.parties)
        print(f"generated {args.parties:,} parties in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
