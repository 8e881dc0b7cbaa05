"""What the delivery worker's chores and `stats` cost on a big database (make one with
bench/make_leads.py).

python bench/chores.py --db sqlite:///bench/data/1m.db [--repeat 20]

Measured: an idle chore pass (nothing due: what runs every couple of seconds), the first walk
after a start (a week of pending leads read once), an idle digest check, and `stats` with and
without the reminder/escalation counts. Nothing is written: each timed pass runs inside a
transaction that is rolled back.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import timedelta

from leadctl import chores, db, stats
from leadctl.models import Lead, database
from leadctl.settings import Settings
from leadctl.timeutil import utcnow


def timed(
    label: str, run: Callable[[], object], repeat: int, setup: Callable[[], object] = lambda: None
) -> None:
    samples = []
    for _ in range(repeat):
        with database.obj.atomic() as tx:
            setup()
            started = time.perf_counter()
            run()
            samples.append(time.perf_counter() - started)
            tx.rollback()
    print(
        f"{label:<52} median {statistics.median(samples) * 1000:8.2f} ms"
        f"   max {max(samples) * 1000:8.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    s = Settings.from_env({}, database_url=args.db, mail_dir="/tmp/bench-chores-mail")
    db.bind(s.database_url)
    total = Lead.select().count()
    pending = Lead.select().where(Lead.state == "PENDING").count()
    print(f"{total:,} leads, {pending:,} pending")
    now = utcnow()

    def idle_walk() -> None:
        # A walk that stopped a second ago: only the last second (and the settle margin) is read,
        # and what is in it was nudged already (by `setup`).
        for nudge in (chores.REMINDER, chores.ESCALATION):
            period = nudge.period(s)
            assert period is not None
            chores.nudge_due(nudge, s, now, since=now - period - timedelta(seconds=1))

    timed("idle reminder+escalation pass (walk resumed)", idle_walk, args.repeat, idle_walk)
    timed(
        "first walk after start (a week, BATCH leads nudged)",
        lambda: chores.nudge_due(chores.REMINDER, s, now),
        max(args.repeat // 4, 1),
    )

    def week_nudged() -> None:
        Lead.update(reminded_at=now).where(Lead.created_at >= now - chores.CATCH_UP * 2).execute()

    timed(
        "first walk after start, the whole week nudged already",
        lambda: chores.nudge_due(chores.REMINDER, s, now),
        max(args.repeat // 4, 1),
        week_nudged,
    )
    timed("digest check, nothing held", lambda: chores.digest_due(s, now), args.repeat)
    timed("stats.nudges (reminded/escalated counts)", lambda: stats.nudges(None), 5)
    timed("stats.compute (all of it)", stats.compute, 5)


if __name__ == "__main__":
    main()
