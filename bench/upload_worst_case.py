"""Worst-case uploads against a real `leadctl serve`: server CPU, extra peak memory, /health delay.

    python bench/upload_worst_case.py [--repeat 3]

Sends each hostile shape of tests/test_upload_attacks.py (zip bombs, a 118,000-entry directory,
10 MiB texts) plus a plain 10 MiB PDF for comparison, one at a time, to a server of its own on
a temporary SQLite database, while another client polls `/health`. Per shape: the answer, the
server process's CPU for it (utime + stime from /proc/<pid>/stat, before and after), its extra
peak memory (VmHWM reset through /proc/<pid>/clear_refs, minus VmRSS before) and the worst
`/health` latency seen meanwhile. Targets: <= 100 ms CPU, <= 32 MiB, /health <= 50 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
from common import cpu_reference, pdf, server

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# The repository root is on the path now: the shapes are the attack test's own.
from tests.test_upload_attacks import (
    SHAPES,
    MiB,
    peak_bytes,
    post_resume,
    start_peak_window,
    warm_up,
)

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def server_pid(port: str) -> int:
    """The `leadctl serve` process listening on `port` (its delivery process is a child)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"serve" in cmdline and port.encode() in cmdline and b"--port" in cmdline:
                parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
                if parent == os.getpid():
                    return int(entry.name)
    raise SystemExit(f"no leadctl serve on port {port}")


def poll_health(url: str, conn: Connection) -> None:
    """In a process of its own, so the uploading client's GIL never delays a poll."""
    answers: list[tuple[int, float]] = []
    with httpx.Client(base_url=url, timeout=15) as client:
        while not conn.poll():
            started = time.perf_counter()
            status = client.get("/health").status_code
            answers.append((status, time.perf_counter() - started))
            if len(answers) == 1:
                conn.send("polling")
    conn.send(answers)


@contextlib.contextmanager
def health_poller(url: str) -> Iterator[list[tuple[int, float]]]:
    """Another client polling `/health` for the duration; yields its (status, seconds) answers."""
    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.get_context("spawn").Process(target=poll_health, args=(url, theirs))
    child.start()
    if not ours.poll(30) or ours.recv() != "polling":
        raise SystemExit("the /health poller did not start")
    answers: list[tuple[int, float]] = []
    try:
        yield answers
    finally:
        ours.send("stop")
        if ours.poll(30):
            answers.extend(ours.recv())
        child.join(30)


def measure(name: str, build: Callable[[], bytes], filename: str, repeat: int) -> None:
    data = build()
    rows = []
    for _ in range(repeat):
        with server() as (url, _folder):
            pid = server_pid(url.rpartition(":")[2])
            warm_up(url)
            rss = start_peak_window(pid)
            cpu = cpu_seconds(pid)
            with health_poller(url) as health:
                started = time.perf_counter()
                response = post_resume(url, data, filename)
                wall = time.perf_counter() - started
            time.sleep(0.2)  # the server's own bookkeeping after the answer is its cost too
            rows.append(
                (
                    response.status_code,
                    (cpu_seconds(pid) - cpu) * 1000,
                    (peak_bytes(pid) - rss) / MiB,
                    max(seconds for _, seconds in health) * 1000,
                    len(health),
                    wall * 1000,
                    max(code for code, _ in health),
                )
            )
    status = "/".join(sorted({str(r[0]) for r in rows}))
    if any(r[6] != 200 for r in rows):
        status += " (a /health answer was not 200!)"
    cpu_ms = [r[1] for r in rows]
    mem = [r[2] for r in rows]
    worst = [r[3] for r in rows]
    print(
        f"| {name} | {len(data) / MiB:.1f} MiB | {status} | {min(cpu_ms):.0f}-{max(cpu_ms):.0f} ms "
        f"| {min(mem):.1f}-{max(mem):.1f} MiB | {min(worst):.0f}-{max(worst):.0f} ms "
        f"({sum(r[4] for r in rows)} polls) | {min(r[5] for r in rows):.0f} ms |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="fresh servers per shape")
    args = parser.parse_args()
    print(cpu_reference())
    print(
        "| upload | size | answer | server CPU | extra peak memory | worst /health "
        "| wall (client) |\n| --- | --- | --- | --- | --- | --- | --- |"
    )
    measure("10 MiB PDF (baseline)", lambda: pdf(10 * MiB - 4096), "cv.pdf", args.repeat)
    for shape in SHAPES:
        measure(shape.name, shape.build, shape.filename, args.repeat)


if __name__ == "__main__":
    main()
