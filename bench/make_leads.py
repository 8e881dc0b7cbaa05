"""Generate a database of N leads quickly (insert_many, one transaction per batch) for benchmarks.

python bench/make_leads.py --db sqlite:///bench/data/100k.db --count 100000
"""

from __future__ import annotations

import argparse
import hashlib
import random
import time
from datetime import timedelta

from leadctl import db, schema, transactions
from leadctl.leads import fold
from leadctl.models import Attorney, Event, Lead, Resume, database
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


def generate(url: str, count: int, batch: int = 4000, seed: int = 7) -> float:
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
        leads, resumes, events = [], [], []
        for k in range(n):
            lead_id = start_id + offset + k
            first, last = rng.choice(FIRST), rng.choice(LAST)
            email = f"{fold(first)}.{fold(last)}.{lead_id}@example.com"
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
    elapsed = time.perf_counter() - started
    database.obj.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="database URL")
    parser.add_argument("--count", type=int, default=100_000)
    args = parser.parse_args()
    elapsed = generate(args.db, args.count)
    print(
        f"generated {args.count:,} leads in {elapsed:.1f} s ({args.count / elapsed:,.0f} leads/s)"
    )


if __name__ == "__main__":
    main()
