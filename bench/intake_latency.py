"""Latency of one client's submissions (200 KB PDF) against a real `leadctl serve` on loopback.

    python bench/intake_latency.py [--count 200] [--size 200000] [--url http://127.0.0.1:8000]

Without --url it starts its own server on a temporary SQLite database (WAL, synchronous=FULL,
mail backend `file`) and checks afterwards that every 201 is a lead with its resume and two
outbox rows.
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx
from common import cpu_reference, pdf, server, verify


def measure(url: str, count: int, body: bytes) -> list[float]:
    latencies = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(count + 10):
            started = time.perf_counter()
            response = client.post(
                "/api/v1/leads",
                data={
                    "first_name": "Bench",
                    "last_name": f"Mark{i}",
                    "email": f"b{i}@example.com",
                    "consent": "true",
                },
                files={"resume": ("cv.pdf", body, "application/pdf")},
            )
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 201:
                raise SystemExit(f"submission {i} answered {response.status_code}: {response.text}")
            if i >= 10:  # the first ten warm up connections and caches
                latencies.append(elapsed)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=int, default=200_000)
    parser.add_argument("--url")
    args = parser.parse_args()
    print(cpu_reference())
    body = pdf(args.size)
    checked = ""
    if args.url:
        latencies = measure(args.url, args.count, body)
    else:
        with server() as (url, folder):
            latencies = measure(url, args.count, body)
        checked = verify(folder / "leads.db", args.count + 10)
    qs = statistics.quantiles(latencies, n=100)
    print(
        f"{len(latencies)} sequential submissions of a {args.size:,}-byte PDF, one client, keep-alive"
    )
    print(
        f"  p50 {statistics.median(latencies):6.2f} ms   p90 {qs[89]:6.2f} ms   p99 {qs[98]:6.2f} ms   "
        f"min {min(latencies):6.2f} ms"
    )
    if checked:
        print(f"  verified: {checked}")


if __name__ == "__main__":
    main()
