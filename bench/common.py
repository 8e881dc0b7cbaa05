"""Helpers the benchmark scripts share: a server under test, a free port, a PDF, percentiles."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def cpu_reference() -> str:
    """How fast this machine's Python is right now: the same loop, timed, printed beside every
    figure. The VMs these run on differ (and their neighbours vary) by 2-3x; a figure taken on a
    machine whose loop is slower is not a regression."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(2_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return f"cpu reference: 2M-step Python loop in {best * 1000:.0f} ms (best of 3)"


def pdf(size: int) -> bytes:
    head, tail = b"%PDF-1.4\n", b"\n%%EOF\n"
    return head + b"%" + b"x" * (size - len(head) - len(tail) - 2) + b"\n" + tail


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


@contextlib.contextmanager
def server(workers: int = 1, **env: str) -> Iterator[tuple[str, Path]]:
    """`leadctl serve` on a fresh SQLite database in a temporary folder; yields (url, folder)."""
    folder = Path(tempfile.mkdtemp(prefix="leadctl-bench-", dir=os.environ.get("BENCH_TMP")))
    port = free_port()
    full_env = {
        **os.environ,
        "LEADS_DATABASE_URL": f"sqlite:///{folder / 'leads.db'}",
        "LEADS_MAIL_DIR": str(folder / "mail"),
        "LEADS_RATE_LIMIT": "off",
        "LEADS_CONFIRMATIONS_PER_HOUR": "1000000000",
        **env,
    }
    with (folder / "server.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(BIN / "leadctl"), "serve", "--port", str(port), "--workers", str(workers)],
            cwd=folder,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.05)
        yield url, folder
    finally:
        proc.terminate()
        proc.wait(30)


def verify(db_file: Path, acknowledged: int, in_flight: int = 0) -> str:
    """Every 201 is a lead with its resume and two outbox rows. A load generator that stops with
    `in_flight` requests unanswered may see the server commit those too, unacknowledged."""
    with sqlite3.connect(db_file) as conn:
        leads, resumes, messages = (
            conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("lead", "resume", "outbox_message")
        )
    ok = (
        acknowledged <= leads <= acknowledged + in_flight
        and resumes == leads
        and messages == 2 * leads
    )
    return (
        f"{acknowledged} answers of 201; {leads} leads ({leads - acknowledged} committed unacknowledged), "
        f"{resumes} resumes, {messages} outbox rows: {'ok' if ok else 'MISMATCH'}"
    )
