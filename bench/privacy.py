"""Erasure and audit history at scale: the cost of one erasure (with and without SQLite's
secure_delete and the search index merge), of 10,000 ids in one call, and of `history` filters.

python bench/privacy.py --leads 250000           # 4 events a lead: a million events
python bench/privacy.py --leads 250000 --indexes # the same with the proposed event indexes
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from leadctl import db, erasure, history, schema, transactions
from leadctl.models import Event, Lead, Resume, database
from leadctl.timeutil import utcnow

PROPOSED_INDEXES = (
    "CREATE INDEX IF NOT EXISTS event_actor_id ON event (actor, id)",
    "CREATE INDEX IF NOT EXISTS event_kind_id ON event (kind, id)",
    'CREATE INDEX IF NOT EXISTS event_at ON event ("at")',
)


def generate(count: int, batch: int = 2000) -> None:
    now = utcnow()
    pdf = b"%PDF-1.4\n" + b"x" * 3000 + b"\n%%EOF\n"
    last = 0
    for start in range(0, count, batch):
        when = now - timedelta(minutes=count - start)
        with transactions.write_transaction():
            Lead.insert_many(
                [{"reference": f"B{start + i:07d}", "first_name": f"Ada{start + i}",
                  "last_name": "Byron", "email": f"ada{start + i}@example.com",
                  "email_key": f"ada{start + i}@example.com", "name_key": f"ada{start + i} byron",
                  "search_key": f"ada{start + i} byron ada{start + i}@example.com",
                  "state": "PENDING", "created_at": when, "updated_at": when}
                 for i in range(min(batch, count - start))]
            ).execute()  # fmt: skip
            ids = [r.id for r in Lead.select(Lead.id).where(Lead.id > last).order_by(Lead.id)]
            last = ids[-1]
            Resume.insert_many(
                [{"lead": i, "filename": "cv.pdf", "content_type": "application/pdf",
                  "size": len(pdf), "sha256": "0" * 64, "data": pdf} for i in ids]
            ).execute()  # fmt: skip
            rows = []
            for i in ids:
                rows += [
                    {"lead": i, "at": when, "actor": "prospect", "kind": "submitted",
                     "details": {"resume": "cv.pdf", "size": len(pdf)}},
                    {"lead": i, "at": when, "actor": "system", "kind": "assigned",
                     "details": {"attorney": f"a{i % 5}@firm.example", "reason": "round robin"}},
                    {"lead": i, "at": when, "actor": f"a{i % 5}@firm.example", "kind": "note",
                     "details": {"text": f"called Ada{i}"}},
                    {"lead": i, "at": when, "actor": f"a{i % 5}@firm.example",
                     "kind": "state_changed", "details": {"from": "PENDING", "to": "REACHED_OUT"}},
                ]  # fmt: skip
            Event.insert_many(rows).execute()


def timed(label: str, work: Callable[[], Any], repeat: int = 5) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    print(f"{label:<58} median {statistics.median(times):9.1f} ms  (min {min(times):.1f})")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=250_000)
    parser.add_argument("--db", help="database URL (default: a new SQLite file)")
    parser.add_argument("--indexes", action="store_true", help="add the proposed event indexes")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="leadctl-bench-")
    url = args.db or f"sqlite:///{Path(folder) / 'bench.db'}"
    db.bind(url)
    schema.ensure_schema()
    started = time.perf_counter()
    if not Lead.select().exists():
        generate(args.leads)
    print(f"{args.leads:,} leads, {Event.select().count():,} events "
          f"({time.perf_counter() - started:.0f} s to make)")  # fmt: skip
    if args.indexes:
        for statement in PROPOSED_INDEXES:
            database.obj.execute_sql(statement)
        database.obj.execute_sql("ANALYZE")
    sqlite = url.startswith("sqlite")

    def page(**filters: Any) -> Callable[[], Any]:
        return lambda: list(history.events(history.HistoryQuery(**filters)))

    print("-- history (50 newest matching)")
    timed("no filter", page())
    timed("--lead (one lead)", page(lead=args.leads // 2))
    timed("--actor a3@firm.example (a fifth of events)", page(actor="a3@firm.example"))
    timed("--actor nobody@firm.example (none)", page(actor="nobody@firm.example"))
    timed("--action note (a quarter)", page(kinds=("note",)))
    timed("--action erased (rare: only the erasures below)", page(kinds=("erased",)))
    timed("--since 1h (a few)", page(since=utcnow() - timedelta(minutes=60)))
    timed("--until 30 days ago (none)", page(until=utcnow() - timedelta(days=30)))

    print("-- erasure of one lead")
    victims = iter(range(1, args.leads))
    timed("erase one (secure_delete on, index merged)",
          lambda: erasure.erase_ids([next(victims)], "bench", "bench"))  # fmt: skip
    timed("erase one (index merge left out)",
          lambda: erasure.erase_ids([next(victims)], "bench", "bench", merge_search=False))  # fmt: skip
    if sqlite:
        original = erasure._deleted_bytes_zeroed

        @contextlib.contextmanager
        def off() -> Any:
            database.obj.pragma("secure_delete", 0)
            yield

        erasure._deleted_bytes_zeroed = off  # type: ignore[assignment]
        timed("erase one (secure_delete off, no merge)",
              lambda: erasure.erase_ids([next(victims)], "b", "b", merge_search=False))  # fmt: skip
        erasure._deleted_bytes_zeroed = original
        timed("merge + checkpoint alone", erasure.forget_erased_text)
    print("-- 10,000 ids in one call")
    base = args.leads // 2
    timed("erase 10,000 leads (one transaction)",
          lambda: erasure.erase(range(base, base + 10_000), "bench", "bench"), repeat=1)  # fmt: skip
    timed("--action erased after them", page(kinds=("erased",)))


if __name__ == "__main__":
    main()
