"""Deadlocks between servers: two `leadctl serve` on one PostgreSQL under interleaved submissions
that share idempotency keys and addresses; counts deadlocks, 503s and retried writes.

    python bench/many_servers.py [--requests 2000] [--connections 32] [--rounds 2] [--fresh]
                                 [--before DIR] [--now DIR]

Each request goes to server i % 2. A quarter of the bodies carry an idempotency key sent three
times, a quarter are double clicks (the same body three times), a quarter are returning prospects
(one address, four bodies), the rest new prospects; copies go out side by side. `--fresh`: only
new prospects, which share nothing but the round-robin lock. A 503 is retried
at once, as a client would. Deadlocks are PostgreSQL's own count (`pg_stat_database.deadlocks`
of the database, so run nothing else on it meanwhile); retried writes are the servers' log lines.
With `--before DIR` the same load also runs on the code in DIR (`git archive HEAD leadctl intake
| tar -x -C DIR`), put first on the servers' PYTHONPATH; `--now DIR` does the same for this code
(a snapshot, when the checkout is being edited).
"""

from __future__ import annotations

import argparse
import os
import random
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from common import cpu_reference, fresh_database, pdf, percentile, server

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
Body = tuple[str, str, bytes, str | None]  # first name, email, resume, idempotency key


def workload(requests: int, seed: int, fresh: bool = False) -> list[Body]:
    """The requests in order; `fresh`: every one a new prospect (nothing shared but round robin)."""
    groups: list[list[Body]] = []
    resume = pdf(20_000)
    n = 0
    while sum(map(len, groups)) < requests:
        kind = 3 if fresh else n % 4
        if kind == 0:
            groups.append([("Kay", f"key{n}@example.com", pdf(20_000 + n), f"k{n}")] * 3)
        elif kind == 1:
            groups.append([("Clicky", f"click{n}@example.com", resume, None)] * 3)
        elif kind == 2:
            groups.append([(f"Back{m}", f"back{n}@example.com", resume, None) for m in range(4)])
        else:
            groups.append([("Newton", f"new{n}@example.com", resume, None)])
        n += 1
    random.Random(seed).shuffle(groups)
    return [body for group in groups for body in group][:requests]


def deadlocks() -> int:
    import psycopg

    with psycopg.connect(ADMIN) as conn:
        row = conn.execute(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def load(urls: list[str], bodies: list[Body], connections: int) -> tuple[Counter[int], list[float]]:
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    lanes = [list(enumerate(bodies))[i :: len(urls)] for i in range(len(urls))]
    lock = threading.Lock()
    cursors = [0] * len(urls)

    def work(lane_no: int) -> None:
        with httpx.Client(base_url=urls[lane_no], timeout=60) as c:
            while True:
                with lock:
                    if cursors[lane_no] >= len(lanes[lane_no]):
                        return
                    _, (first, email, resume, key) = lanes[lane_no][cursors[lane_no]]
                    cursors[lane_no] += 1
                headers = {"Idempotency-Key": key} if key else {}
                for _ in range(10):
                    started = time.perf_counter()
                    answer = c.post(
                        "/api/v1/leads",
                        data={"first_name": first, "last_name": "Doe", "email": email},
                        files={"resume": ("cv.pdf", resume, "application/pdf")},
                        headers=headers,
                    )
                    with lock:
                        latencies.append(time.perf_counter() - started)
                        statuses[answer.status_code] += 1
                    if answer.status_code != 503:
                        break

    threads = [threading.Thread(target=work, args=(n % len(urls),)) for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses, latencies


def run(args: argparse.Namespace, code: str | None, label: str) -> str:
    env = {"PYTHONPATH": code} if code else {}
    bodies = workload(args.requests, seed=16, fresh=args.fresh)
    with fresh_database("postgresql", **env) as url:
        assert url is not None
        import psycopg

        with psycopg.connect(url) as conn:
            for n in range(3):
                conn.execute(
                    "INSERT INTO attorney (name, email, role, active, created_at) "
                    "VALUES (%s, %s, 'attorney', true, now() AT TIME ZONE 'UTC')",
                    (f"Attorney {n}", f"a{n}@firm.example"),
                )
        with server(1, url, **env) as (a, folder_a), server(1, url, **env) as (b, folder_b):
            before = deadlocks()
            started = time.perf_counter()
            statuses, latencies = load([a, b], bodies, args.connections)
            elapsed = time.perf_counter() - started
            found = deadlocks() - before
        logs = "".join((f / "server.log").read_text(errors="replace") for f in (folder_a, folder_b))
        retried = logs.count("rolled back, running again")
        with psycopg.connect(url) as conn:
            (leads,) = conn.execute("SELECT COUNT(*) FROM lead").fetchone()  # type: ignore[misc]
    return (
        f"{label}: {len(bodies)} requests over {args.connections} connections in {elapsed:.1f} s "
        f"= {leads / elapsed:.0f} leads/s ({leads} leads); answers {dict(sorted(statuses.items()))}; "
        f"deadlocks {found}; writes retried {retried}; "
        f"p50 {percentile(latencies, 0.5) * 1000:.0f} ms, p99 {percentile(latencies, 0.99) * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--before", default=None, help="a folder holding the older code")
    parser.add_argument("--fresh", action="store_true", help="only new prospects")
    parser.add_argument("--now", default=None, help="a folder holding this code (a snapshot)")
    args = parser.parse_args()
    args.before, args.now = (str(Path(d).resolve()) if d else None for d in (args.before, args.now))
    print(cpu_reference())
    for round_ in range(args.rounds):
        print(f"round {round_ + 1}", flush=True)
        print(run(args, args.now, "now"), flush=True)
        if args.before:
            print(run(args, args.before, "before"), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("LEADS_RATE_LIMIT", "off")
    main()
