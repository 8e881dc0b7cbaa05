"""Scale: list, stats and export on a database of N leads (default 1,000,000), SQLite or PostgreSQL.

    python bench/scale.py [--count 1000000] [--db sqlite:///bench/data/1m.db | postgresql://…]

Query times are measured in-process (best of 5, warm cache); `export` runs the real
`leadctl export --format ndjson` as a subprocess, timing it and reading its peak RSS.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from common import cpu_reference
from make_leads import generate

from leadctl import db, leads, schema, stats
from leadctl.models import Lead, database
from leadctl.states import State

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def best_ms(fn, runs: int = 5) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    print(cpu_reference())
    url = args.db or f"sqlite:///{HERE / 'data' / f'scale-{args.count}.db'}"
    (HERE / "data").mkdir(exist_ok=True)
    db.bind(url)
    schema.ensure_schema()
    existing = Lead.select().count()
    database.obj.close()
    if existing < args.count:
        elapsed = generate(url, args.count - existing)
        print(f"generated {args.count - existing:,} leads in {elapsed:.0f} s")
    db.bind(url)
    n = Lead.select().count()
    print(f"{n:,} leads on {url.split(':')[0]}")

    def page(q: leads.LeadQuery) -> int:
        return len(list(leads.iter_lead_dicts(q)))

    rows = [
        ("list: 50 newest", lambda: page(leads.LeadQuery())),
        ("list: 50 newest PENDING", lambda: page(leads.LeadQuery(state=State.PENDING))),
        ("list: name search 'nunez', 50", lambda: page(leads.LeadQuery(search="nunez"))),
        ("list: rare search (one match)", lambda: page(leads.LeadQuery(search=f".{n // 2}@"))),
        ("count for 'Showing 50 of N'", lambda: leads.count(leads.LeadQuery())),
        ("count PENDING", lambda: leads.count(leads.LeadQuery(state=State.PENDING))),
        ("stats (whole table)", lambda: stats.compute()),
    ]
    for label, fn in rows:
        print(f"  {label:<34} {best_ms(fn, 3 if 'stats' in label else 5):9.1f} ms")
    database.obj.close()

    env = {**os.environ, "LEADS_DATABASE_URL": url}
    target = HERE / "data" / "export.ndjson"
    # GNU time reports the export process's own peak; getrusage(RUSAGE_CHILDREN) would count
    # the pages the child shared with this (large) process between fork and exec.
    started = time.perf_counter()
    done = subprocess.run(
        [
            "/usr/bin/time",
            "-f",
            "%M",
            str(BIN / "leadctl"),
            "export",
            "--format",
            "ndjson",
            "--output",
            str(target),
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    )
    elapsed = time.perf_counter() - started
    peak = int(done.stderr.strip().splitlines()[-1]) / 1024
    size = target.stat().st_size
    with target.open("rb") as handle:
        lines = sum(1 for _ in handle)
    target.unlink()
    print(
        f"  export ndjson: {lines:,} rows in {elapsed:.1f} s = {lines / elapsed:,.0f} rows/s, "
        f"peak RSS {peak:.0f} MB, {size / 1e6:.0f} MB written"
    )


if __name__ == "__main__":
    main()
