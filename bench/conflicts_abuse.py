"""The conflict check's worst case: a staff token asking for the most work one request can ask.

python bench/conflicts_abuse.py [--leads 25000] [--repeat 5] [--server] [--db sqlite|postgres]

Fills a fresh database with `--leads` leads whose ten-word names come from a vocabulary sized so
that every word has just under `WORD_CAP` postings (read in full, never "too common"), then
times `conflicts.search` for 50 names of 20 such words (the outsider's request), for the
largest request the bounds let through, and for a normal check. With `--server` it also runs
`leadctl serve` on that database and measures public submissions (one after another) while
eight of the outsider's requests run at once, then eight of the costliest let through. Prints the CPU reference of the run (bench/common.py).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import cpu_reference, pdf, percentile, scratch_database, server

from leadctl import attorneys, conflicts, db, schema, transactions
from leadctl.errors import InvalidInput
from leadctl.models import Lead, NameToken, database, email_key
from leadctl.names import name_key, words
from leadctl.submissions import new_reference
from leadctl.timeutil import utcnow

WORDS_PER_LEAD = 10
ALPHABET = "bcdfghjklmnprstvz"


def vocabulary(size: int, rng: random.Random) -> list[str]:
    """`size` distinct made-up words of six letters."""
    found: set[str] = set()
    while len(found) < size:
        found.add("".join(rng.choice(ALPHABET) + rng.choice("aeiou") for _ in range(3)))
    return sorted(found)


def fill(url: str, count: int, rng: random.Random) -> list[str]:
    """`count` leads of ten words each; every word in about `WORD_CAP` - 20 leads."""
    db.bind(url)
    schema.ensure_schema()
    size = max(1, count * WORDS_PER_LEAD // (conflicts.WORD_CAP - 20))
    vocab = vocabulary(size, rng)
    now = utcnow()
    for start in range(0, count, 2000):
        leads, tokens = [], []
        for lead_id in range(start + 1, min(count, start + 2000) + 1):
            chosen = rng.sample(vocab, WORDS_PER_LEAD)
            first, last = " ".join(chosen[:5]), " ".join(chosen[5:])
            email = f"p{lead_id}@example.com"
            leads.append(
                {
                    "id": lead_id,
                    "reference": new_reference(),
                    "first_name": first,
                    "last_name": last,
                    "email": email,
                    "email_key": email_key(email),
                    "name_key": name_key(f"{first} {last}"),
                    "search_key": f"{first} {last} {email}",
                    "state": "PENDING",
                    "created_at": now,
                    "updated_at": now,
                }
            )
            tokens += [{"token": w, "lead": lead_id} for w in words(f"{first} {last}")]
        with transactions.write_transaction():
            Lead.insert_many(leads).execute()
            for first_row in range(0, len(tokens), 5000):
                NameToken.insert_many(tokens[first_row : first_row + 5000]).execute()
    if url.startswith("postgresql"):
        database.obj.execute_sql(
            "SELECT setval(pg_get_serial_sequence('lead', 'id'), (SELECT MAX(id) FROM lead))"
        )
        database.obj.execute_sql("ANALYZE")
    database.obj.close()
    return vocab


def timed(call: Callable[[], Any], repeat: int) -> tuple[list[float], list[float], str]:
    """(wall ms, CPU ms of this process, outcome) of each of `repeat` runs after a warm one."""
    outcome = _outcome(call)
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        outcome = _outcome(call)
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return walls, cpus, outcome


def _outcome(call: Callable[[], Any]) -> str:
    try:
        return f"{len(call().hits)} hits"
    except InvalidInput as exc:
        return f"refused (422): {exc}"


def show(label: str, walls: list[float], cpus: list[float], outcome: str) -> None:
    print(
        f"  {label}: wall median {statistics.median(walls):.0f} ms (range "
        f"{min(walls):.0f}-{max(walls):.0f}), CPU median {statistics.median(cpus):.0f} ms; "
        f"{outcome}",
        flush=True,
    )


def in_process(url: str, vocab: list[str], rng: random.Random, repeat: int) -> list[list[str]]:
    """Times each case; returns the outsider's request and the costliest one let through."""
    db.bind(url)
    abusive = [" ".join(rng.sample(vocab, 20)) for _ in range(50)]
    cases: list[tuple[str, list[str]]] = [("50 names x 20 words (the outsider's)", abusive)]
    per_name = max(1, min(20, conflicts.MAX_WORDS_PER_CHECK // conflicts.MAX_NAMES))
    names = min(conflicts.MAX_NAMES, conflicts.MAX_WORDS_PER_CHECK // per_name)
    largest = [" ".join(rng.sample(vocab, per_name)) for _ in range(names)]
    cases.append((f"{names} names x {per_name} words (the most let through)", largest))
    widest = [" ".join(rng.sample(vocab, 20)) for _ in range(conflicts.MAX_WORDS_PER_CHECK // 20)]
    cases.append((f"{len(widest)} names x 20 words (the most let through)", widest))
    cases.append(("a normal check: 3 names of 2 words", [" ".join(rng.sample(vocab, 2))] * 3))
    for label, names_ in cases:
        show(label, *timed(lambda n=names_: conflicts.search(n, limit=500), repeat))  # type: ignore[misc]
    database.obj.close()
    return [abusive, largest]


def under_load(url: str, abusive: list[str], seconds: float) -> None:
    """Public submissions, one after another, while eight checks of `abusive` run at once
    (again and again) for `seconds`."""
    import httpx

    db.bind(url)
    token = attorneys.add("Bench Abuser", f"abuser{time.monotonic_ns()}@firm.example")[1].secret
    database.obj.close()
    with server(database_url=url) as (base, _folder):
        body = pdf(20_000)

        def latencies(stop: Callable[[], bool]) -> list[float]:
            found = []
            with httpx.Client(base_url=base, timeout=120) as client:
                n = 0
                while not stop():
                    n += 1
                    data = {"first_name": "Ann", "last_name": f"Bee{n}", "consent": "true"}
                    data["email"] = f"bench{n}.{time.monotonic_ns()}@example.com"
                    started = time.perf_counter()
                    answer = client.post(
                        "/api/v1/leads", data=data, files={"resume": ("cv.pdf", body)}
                    )
                    found.append((time.perf_counter() - started) * 1000)
                    assert answer.status_code == 201, answer.text
            return found

        quiet_until = time.monotonic() + 5
        quiet = latencies(lambda: time.monotonic() > quiet_until)
        report("public submissions, quiet", quiet)
        done = threading.Event()
        answers: list[int] = []
        checks: list[float] = []

        def abuse() -> None:
            with httpx.Client(base_url=base, timeout=300) as client:
                while not done.is_set():
                    started = time.perf_counter()
                    answer = client.post(
                        "/api/v1/conflicts",
                        json={"names": abusive, "limit": 500},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    checks.append((time.perf_counter() - started) * 1000)
                    answers.append(answer.status_code)

        threads = [threading.Thread(target=abuse) for _ in range(8)]
        for thread in threads:
            thread.start()
        busy_until = time.monotonic() + seconds
        busy = latencies(lambda: time.monotonic() > busy_until)
        done.set()
        for thread in threads:
            thread.join()
        report("public submissions, 8 abusive checks at once", busy)
        statuses = {s: answers.count(s) for s in sorted(set(answers))}
        report(f"abusive checks (statuses {statuses})", checks)


def report(label: str, values: list[float]) -> None:
    if not values:
        print(f"  {label}: none finished", flush=True)
        return
    print(
        f"  {label}: {len(values)} requests, p50 {percentile(values, 0.5):.0f} ms, "
        f"p99 {percentile(values, 0.99):.0f} ms, max {max(values):.0f} ms",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=25_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--server", action="store_true", help="also measure a real server")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    print(cpu_reference(), flush=True)
    rng = random.Random(7)
    with scratch_database(args.db) as url:
        vocab = fill(url, args.leads, rng)
        print(f"{args.db}: {args.leads:,} leads, {len(vocab)} words of about "
              f"{args.leads * WORDS_PER_LEAD // len(vocab)} postings each", flush=True)  # fmt: skip
        requests = in_process(url, vocab, rng, args.repeat)
        if args.server:
            labels = ("the outsider's", "the costliest let through")
            for label, names in zip(labels, requests, strict=True):
                print(f"a server, eight of {label} at once:", flush=True)
                under_load(url, names, args.seconds)


if __name__ == "__main__":
    main()
