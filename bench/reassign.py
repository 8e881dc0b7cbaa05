"""What `leadctl attorney deactivate EMAIL --reassign-to …` costs with many pending leads.

python bench/reassign.py [--leads 10000] [--attorneys 4] [--returning 0.1] [--repeat 3]
                         [--db sqlite|postgres|both]

Each run makes a fresh database (a SQLite file in a temporary folder, or a fresh PostgreSQL
schema), gives one attorney `--leads` pending leads (a share `--returning` of them from a
prospect another attorney already has: a returning prospect keeps that attorney), then times
`reassignment.hand_over` to round-robin and to one named attorney, counting the statements it
sent. Prints the CPU reference of the run (bench/common.py) and checks what the handover wrote:
every lead moved once, one `assigned` event per lead, one email per new attorney.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import cpu_reference, scratch_database

from leadctl import db, reassignment, schema, transactions
from leadctl.models import Attorney, Event, Lead, OutboxMessage, Resume, database, email_key
from leadctl.settings import Settings
from leadctl.submissions import new_reference
from leadctl.timeutil import utcnow

RESUME = b"%PDF-1.4\n% tiny benchmark resume\n%%EOF\n"
BATCH = 2000  # rows per INSERT: 15 columns stay under every database's parameter limit
DEPARTING = "a0@firm.example"


def fill(count: int, attorneys: int, returning: float) -> None:
    """`attorneys` active attorneys; `count` pending leads of the first. One lead in
    1/`returning` has an earlier (reached-out) lead of the same address with another attorney."""
    now = utcnow()
    with transactions.write_transaction():
        Attorney.insert_many(
            [
                {
                    "name": f"Attorney {i}",
                    "email": f"a{i}@firm.example",
                    "role": "admin" if i == 1 else "attorney",
                    "active": True,
                    "created_at": now,
                }
                for i in range(attorneys)
            ]
        ).execute()
    ids = [a.id for a in Attorney.select(Attorney.id).order_by(Attorney.id)]
    every = round(1 / returning) if returning else 0
    rows: list[dict[str, Any]] = []
    for n in range(count):
        address = f"p{n}@example.com"
        if every and n % every == 0:  # an earlier lead, with another attorney, reached out
            rows.append(_lead(address, ids[1 + n % (attorneys - 1)], "REACHED_OUT", now))
        rows.append(_lead(address, ids[0], "PENDING", now))
    sha = hashlib.sha256(RESUME).hexdigest()
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        with transactions.write_transaction():
            made = [row[0] for row in Lead.insert_many(batch).returning(Lead.id).tuples().execute()]
            Resume.insert_many(
                {
                    "lead": lead_id,
                    "filename": "cv.pdf",
                    "content_type": "application/pdf",
                    "size": len(RESUME),
                    "sha256": sha,
                    "data": RESUME,
                }
                for lead_id in made
            ).execute()


def _lead(address: str, attorney: int, state: str, now: Any) -> dict[str, Any]:
    return {
        "reference": new_reference(),
        "first_name": "P",
        "last_name": "Bench",
        "email": address,
        "email_key": email_key(address),
        "name_key": "p bench",
        "search_key": f"p bench {address}",
        "state": state,
        "attorney": attorney,
        "created_at": now,
        "updated_at": now,
    }


@contextlib.contextmanager
def counting() -> Iterator[list[int]]:
    """Counts the statements the bound database runs meanwhile."""
    seen = [0]
    obj = database.obj
    original = obj.execute_sql

    def execute_sql(sql: str, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        seen[0] += 1
        return original(sql, params, *args, **kwargs)

    obj.execute_sql = execute_sql
    try:
        yield seen
    finally:
        del obj.execute_sql


def one_run(kind: str, target: str, args: argparse.Namespace) -> tuple[float, int, str]:
    with scratch_database(kind) as url, tempfile.TemporaryDirectory() as mail:
        settings = Settings.from_env({}, database_url=url, mail_dir=mail)
        db.bind(url)
        schema.ensure_schema()
        fill(args.leads, args.attorneys, args.returning)
        if kind == "postgres":
            database.obj.execute_sql("ANALYZE")
        with counting() as statements:
            started = time.perf_counter()
            done = reassignment.hand_over(DEPARTING, target, "bench", settings)
            elapsed = time.perf_counter() - started
        moved = sum(len(ids) for ids in done.moved.values())
        events = Event.select().where(Event.kind == "assigned").count()
        mails = OutboxMessage.select().where(OutboxMessage.purpose == "reassigned").count()
        departing = Attorney.get(Attorney.email == DEPARTING)
        left = Lead.select().where((Lead.attorney == departing) & (Lead.state == "PENDING")).count()
        ok = moved == events == args.leads and mails == len(done.moved) and left == 0
        spread = ", ".join(f"{len(ids)}" for _email, ids in sorted(done.moved.items()))
        check = f"{'ok' if ok else 'MISMATCH'} (moved {moved}, events {events}, mails {mails}; {spread})"
        database.obj.close()
        return elapsed, statements[0], check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--attorneys", type=int, default=4)
    parser.add_argument("--returning", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()
    print(cpu_reference(), flush=True)
    kinds = ("sqlite", "postgres") if args.db == "both" else (args.db,)
    for kind in kinds:
        for target in ("round-robin", "a1@firm.example"):
            times = []
            for _ in range(args.repeat):
                elapsed, statements, check = one_run(kind, target, args)
                times.append(elapsed)
            print(
                f"{kind:<8} {target:<16} {args.leads:,} leads: median {statistics.median(times):7.3f} s"
                f"  (min {min(times):.3f}, max {max(times):.3f}; {statements} statements) {check}",
                flush=True,
            )
    print(cpu_reference())


if __name__ == "__main__":
    main()
