"""Intake latency and throughput with 200 KB PDFs (wrk), beside the disk's append+fsync limit.

    python bench/intake_load.py [--duration 15] [--size 200000]

Needs `wrk` (Debian package `wrk`). Durable settings: SQLite in WAL with synchronous=FULL,
mail backend `file`, rate limit off. SQLite runs one server process (`serve` refuses more);
PostgreSQL (127.0.0.1:5432, db `test`, a fresh schema per run) one and two. After each run the
database is checked: every 201 is a lead with its resume and two outbox rows. For mail under
this load (SMTP, lag, CPU with PostgreSQL's own) see bench/mail_lag.py.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from common import cpu_reference, fresh_database, pdf, server, verify

LUA = r"""
local counter = 0
local boundary = "leadctlbench"
local resume = io.open(os.getenv("BENCH_PDF"), "rb"):read("*all")
local tail = "\r\n--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"resume\"; filename=\"cv.pdf\"\r\nContent-Type: application/pdf\r\n\r\n" .. resume .. "\r\n--" .. boundary .. "--\r\n"
local prefix = "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"consent\"\r\n\r\ntrue\r\n--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"first_name\"\r\n\r\nBench\r\n--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"last_name\"\r\n\r\nMark\r\n--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\n"
local thread_id = 0
setup = function(thread) thread:set("tid", thread_id); thread_id = thread_id + 1 end
request = function()
  counter = counter + 1
  local body = prefix .. "b" .. tid .. "x" .. counter .. "@example.com" .. tail
  return wrk.format("POST", "/api/v1/leads", {["Content-Type"] = "multipart/form-data; boundary=" .. boundary}, body)
end
"""


def wrk(
    url: str, connections: int, duration: int, script: Path, env: dict[str, str]
) -> dict[str, float]:
    threads = max(1, min(2, connections))
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{duration}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        match = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests": requests,
        "ok": requests - (int(non2xx.group(1)) if non2xx else 0),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": ms("50%"),
        "p90": ms("90%"),
        "p99": ms("99%"),
        "errors": errors.group(1) if errors else "none",
    }


def fsync_rate(folder: Path, size: int, seconds: float = 5.0) -> float:
    """Appends of `size` bytes, each followed by fsync, per second: the disk's durable-write limit."""
    block = os.urandom(size)
    path = folder / "fsync.bin"
    count = 0
    with path.open("ab") as handle:
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            handle.write(block)
            handle.flush()
            os.fsync(handle.fileno())
            count += 1
        elapsed = time.perf_counter() - started
    path.unlink()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--size", type=int, default=200_000)
    args = parser.parse_args()
    print(cpu_reference())
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    scratch = Path(tempfile.mkdtemp(prefix="leadctl-wrk-"))
    body = scratch / "cv.pdf"
    body.write_bytes(pdf(args.size))
    script = scratch / "submit.lua"
    script.write_text(LUA)
    env = {**os.environ, "BENCH_PDF": str(body)}
    print(
        f"intake of {args.size:,}-byte PDFs, {args.duration} s per run, {os.cpu_count()} cores, wrk on loopback"
    )
    for kind, workers, connections in (
        ("sqlite", 1, 1),
        ("sqlite", 1, 32),
        ("postgresql", 1, 32),
        ("postgresql", 2, 32),
    ):
        with (
            fresh_database(kind) as database_url,
            server(workers=workers, database_url=database_url) as (url, folder),
        ):
            result = wrk(url, connections, args.duration, script, env)
            time.sleep(0.5)
            limit = fsync_rate(folder, args.size)
            print(
                f"  {kind:10} workers={workers} connections={connections:>2}: {result['rps']:7.1f} leads/s  "
                f"p50 {result['p50']:6.1f} ms  p90 {result['p90']:6.1f} ms  p99 {result['p99']:6.1f} ms  "
                f"errors {result['errors']}"
            )
            print(
                f"    disk: {limit:7.1f} appends+fsync/s of {args.size:,} bytes -> intake at {result['rps'] / limit:5.1%} of it"
            )
            print(
                f"    verified: {verify(database_url or folder / 'leads.db', int(result['ok']), in_flight=connections)}"
            )


if __name__ == "__main__":
    main()
