"""The conflict check on a million leads and 100,000 parties: `check` and `at_intake` timings.

python bench/conflicts.py [--db sqlite:////tmp/leadctl-conflicts-bench.db] [--count 1000000] [--parties 100000]
python bench/conflicts.py --db postgresql://postgres@127.0.0.1:5432/test   (a fresh schema)

Fills the database first when it holds fewer leads (bench/make_leads.py, a tenth of them with a
rare second surname). Prints each query's median and p90 over warm repetitions, and the CPU
reference of the run (bench/common.py).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import cpu_reference, percentile, pg_schema
from make_leads import generate, generate_parties

from leadctl import conflicts, db, schema
from leadctl.models import Lead, Party, database


def timed(call: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(median ms, p90 ms, last result) over `repeat` warm runs."""
    result = call()  # warm: the pages in the cache, the erasure secret read
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), percentile(times, 0.9), result


@contextlib.contextmanager
def database_for(url: str | None) -> Iterator[str]:
    if url and url.startswith("postgresql") and "search_path" not in url:
        with pg_schema(url) as fresh:
            yield fresh
        return
    yield url or "sqlite:////tmp/leadctl-conflicts-bench.db"


def fill(url: str, count: int, parties: int) -> None:
    db.bind(url)
    schema.ensure_schema()
    have_leads, have_parties = Lead.select().count(), Party.select().count()
    database.obj.close()
    if have_leads < count:
        print(f"generating {count - have_leads:,} leads …", flush=True)
        print(f"  {generate(url, count - have_leads, rare=0.1):.0f} s", flush=True)
    if have_parties < parties:
        print(f"generating {parties - have_parties:,} parties …", flush=True)
        print(f"  {generate_parties(url, parties - have_parties):.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="database URL (PostgreSQL: a fresh schema is made)")
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--parties", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    print(cpu_reference(), flush=True)
    with database_for(args.db) as url:
        fill(url, args.count, args.parties)
        db.bind(url)
        run(url, args.repeat)
        database.obj.close()


def run(url: str, repeat: int) -> None:
    kind = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    leads, parties = Lead.select().count(), Party.select().count()
    print(f"{kind}: {leads:,} leads, {parties:,} parties", flush=True)
    # A lead with a rare second surname (three words), from the middle of the table.
    middle = Lead.select().where(Lead.id > leads // 3).order_by(Lead.id).limit(2000)
    sample = next((lead for lead in middle if len(lead.name_key.split()) == 3), None)
    party = Party.select().where(Party.id == parties // 2).first()
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("common name, thousands exact ('Ñúñez, Zoë')", lambda: conflicts.check(["Ñúñez, Zoë"])),
        (
            "three words, two common ('Zoe Maria Nunez')",
            lambda: conflicts.check(["Zoe Maria Nunez"]),
        ),
        ("one common word ('Nunez')", lambda: conflicts.check(["Nunez"])),
        ("no match at all ('Quentin Wxyzzy')", lambda: conflicts.check(["Quentin Wxyzzy"])),
    ]
    if sample is not None:
        rare = sample.last_name.split()[-1]
        cases += [
            (f"rare lead's full name ({sample.first_name} {sample.last_name})",
             lambda: conflicts.check([f"{sample.first_name} {sample.last_name}"])),
            (f"rare surname alone ('{rare}'), supersets by token",
             lambda: conflicts.check([rare])),
            ("--lead ID of that lead (name and email)",
             lambda: conflicts.check([], lead_id=sample.id)),
        ]  # fmt: skip
    if party is not None:
        cases.append(
            (f"a party's name, entity word changed ({party.name!r} + ' Inc')",
             lambda: conflicts.check([f"{party.name} Inc"]))
        )  # fmt: skip
    ten = ["Zoe Nunez", "Paul Smith", "Acme Holdings LLC", "Li Lei", "Omar Haddad"]
    ten += ["Grace Kim", "Yuki Rossi", "Ivan Petrov", "Sara Dubois", "Maya Garcia"]
    cases.append(("ten names at once (all common)", lambda: conflicts.check(ten)))
    for label, call in cases:
        median, p90, result = timed(call, repeat)
        print(f"  check: {label}: median {median:.1f} ms, p90 {p90:.1f} ms, {len(result)} hits")
    intake_cases = [
        ("common name, new address", ("Zoë", "Ñúñez", "new.person@example.com", 0)),
    ]
    if sample is not None:
        intake_cases.append(
            ("returning prospect (same email)",
             (sample.first_name, sample.last_name, sample.email, 0))
        )  # fmt: skip
    intake_cases.append(("no match", ("Quentin", "Wxyzzy", "q.w@example.com", 0)))
    for label, (first, last, email, lead_id) in intake_cases:
        median, p90, result = timed(
            lambda f=first, la=last, e=email, i=lead_id: conflicts.at_intake(f, la, e, i),
            repeat * 10,
        )
        print(f"  at_intake: {label}: median {median:.2f} ms, p90 {p90:.2f} ms, {len(result)} hits")


if __name__ == "__main__":
    main()
