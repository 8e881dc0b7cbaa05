"""Latency of one client's submissions (200 KB PDF) against a real `leadctl serve` on loopback.

    python bench/intake_latency.py [--count 200] [--size 200000] [--url http://127.0.0.1:8000]

Without --url it starts its own server on a temporary SQLite database (WAL, synchronous=FULL,
mail backend `file`) and checks afterwards that every 201 is a lead with its resume and two
outbox rows.
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def pdf(size: int) -> bytes:
    head, tail = b"%PDF-1.4\n", b"\n%%EOF\n"
    return head + b"%" + b"x" * (size - len(head) - len(tail) - 2) + b"\n" + tail


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(url: str, count: int, body: bytes) -> list[float]:
    latencies = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(count + 10):
            started = time.perf_counter()
            response = client.post(
                "/api/v1/leads",
                data={"first_name": "Bench", "last_name": f"Mark{i}", "email": f"b{i}@example.com"},
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
    body = pdf(args.size)
    if args.url:
        latencies = measure(args.url, args.count, body)
        db_file = None
    else:
        workdir = Path(tempfile.mkdtemp(prefix="leadctl-bench-"))
        db_file = workdir / "leads.db"
        port = free_port()
        env = {
            **os.environ,
            "LEADS_DATABASE_URL": f"sqlite:///{db_file}",
            "LEADS_MAIL_DIR": str(workdir / "mail"),
        }
        log = (workdir / "server.log").open("wb")
        server = subprocess.Popen(
            [str(BIN / "leadctl"), "serve", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    if httpx.get(f"{url}/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            latencies = measure(url, args.count, body)
        finally:
            server.terminate()
            server.wait()
            log.close()
    qs = statistics.quantiles(latencies, n=100)
    print(
        f"{len(latencies)} sequential submissions of a {args.size:,}-byte PDF, one client, keep-alive"
    )
    print(
        f"  p50 {statistics.median(latencies):6.2f} ms   p90 {qs[89]:6.2f} ms   p99 {qs[98]:6.2f} ms   "
        f"min {min(latencies):6.2f} ms"
    )
    if db_file is not None:
        with sqlite3.connect(db_file) as conn:
            leads, resumes, messages = (
                conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("lead", "resume", "outbox_message")
            )
        expected = args.count + 10
        verdict = (
            "ok" if (leads, resumes, messages) == (expected, expected, 2 * expected) else "MISMATCH"
        )
        print(
            f"  verified: {leads} leads, {resumes} resumes, {messages} outbox rows for {expected} answers of 201: {verdict}"
        )


if __name__ == "__main__":
    main()
