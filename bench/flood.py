"""Flood resilience: one client floods (wrk, 64 connections) while another, from 127.0.0.2,
submits one lead a second; the legitimate client's latency, with the rate limit on.

    python bench/flood.py [--seconds 120] [--rate 90/minute]

A p99 needs about a hundred samples: at one lead a second, two minutes. The limit must let the
legitimate client's 60 a minute through (the flood, from another address, has its own count).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
from common import cpu_reference, pdf, percentile, server
from intake_load import LUA


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--rate", default="90/minute")
    args = parser.parse_args()
    print(cpu_reference())
    scratch = Path(tempfile.mkdtemp(prefix="leadctl-flood-"))
    (scratch / "cv.pdf").write_bytes(pdf(200_000))
    (scratch / "submit.lua").write_text(LUA)
    env = {**os.environ, "BENCH_PDF": str(scratch / "cv.pdf")}
    body = pdf(200_000)
    with server(workers=1, LEADS_RATE_LIMIT=args.rate) as (url, _folder):
        flood_out: list[str] = []

        def flood() -> None:
            flood_out.append(
                subprocess.run(
                    [
                        "wrk",
                        "-t",
                        "2",
                        "-c",
                        "64",
                        "-d",
                        f"{args.seconds + 2}s",
                        "-s",
                        str(scratch / "submit.lua"),
                        url,
                    ],
                    capture_output=True,
                    text=True,
                    env=env,
                ).stdout
            )

        flooder = threading.Thread(target=flood)
        flooder.start()
        time.sleep(1.0)
        latencies, errors = [], []
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(base_url=url, transport=transport, timeout=10) as client:
            for i in range(args.seconds):
                started = time.perf_counter()
                try:
                    r = client.post(
                        "/api/v1/leads",
                        data={
                            "first_name": "Real",
                            "last_name": "Person",
                            "email": f"real{i}@example.com",
                            "consent": "true",
                        },
                        files={"resume": ("cv.pdf", body, "application/pdf")},
                    )
                    if r.status_code != 201:
                        errors.append(str(r.status_code))
                except httpx.HTTPError as exc:
                    errors.append(type(exc).__name__)
                latencies.append((time.perf_counter() - started) * 1000)
                time.sleep(max(0.0, 1.0 - (time.perf_counter() - started)))
        flooder.join()
    flood_requests = flood_out[0].split(" requests in")[0].split()[-1] if flood_out else "?"
    lines = flood_out[0].splitlines() if flood_out else []
    non2xx = [line.strip() for line in lines if "Non-2xx" in line or "Socket errors" in line]
    print(
        f"flood: wrk 64 connections from 127.0.0.1, {flood_requests} requests ({'; '.join(non2xx) or 'all 2xx'})"
    )
    print(
        f"legitimate client from 127.0.0.2, 1 lead/s for {args.seconds} s, rate limit {args.rate}:"
    )
    print(
        f"  p50 {percentile(latencies, 0.5):.1f} ms  p90 {percentile(latencies, 0.9):.1f} ms  "
        f"p99 {percentile(latencies, 0.99):.1f} ms  "
        f"max {max(latencies):.1f} ms  errors {len(errors)} {errors[:5]}"
    )


if __name__ == "__main__":
    main()
