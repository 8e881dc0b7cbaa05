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


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@contextlib.contextmanager
def pg_schema(admin_url: str = PG_ADMIN) -> Iterator[str]:
    """A fresh PostgreSQL schema for one run, dropped after it; yields its database URL."""
    import psycopg

    name = f"bench_{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield f"{admin_url}?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


@contextlib.contextmanager
def scratch_database(kind: str) -> Iterator[str]:
    """The URL of an empty database for a bench that works in its own process: a PostgreSQL
    schema, or a SQLite file in a temporary folder; gone after the run."""
    if kind == "postgres":
        with pg_schema() as url:
            yield url
        return
    with tempfile.TemporaryDirectory(prefix="leadctl-bench-") as folder:
        yield f"sqlite:///{folder}/leads.db"


@contextlib.contextmanager
def fresh_database(kind: str, **env: str) -> Iterator[str | None]:
    """None for SQLite (`server` makes its own file), or the URL of a fresh PostgreSQL schema
    with leadctl's tables already made: two server processes starting at once on an empty
    database would both create them."""
    if kind == "sqlite":
        yield None
        return
    with pg_schema() as url:
        subprocess.run(
            [str(BIN / "leadctl"), "db", "upgrade"],
            env={**os.environ, **env, "LEADS_DATABASE_URL": url},
            check=True,
            capture_output=True,
        )
        yield url


def count_rows(database_url: str, tables: tuple[str, ...]) -> list[int]:
    """Row counts of `tables` in a SQLite file URL or a PostgreSQL URL."""
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            return [conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables]
    import psycopg

    with psycopg.connect(database_url) as conn:
        return [conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables]  # type: ignore[index]


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """utime + stime of each of these processes still running, in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            found[pid] = (int(fields[11]) + int(fields[12])) / tick
    return found


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two `cpu_seconds` readings by the processes of the second
    (one that started in between counts all of its own; one that ended is lost)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def delivery_processes(tree: list[int]) -> list[int]:
    """The delivery processes among a server's processes: spawned children (as `--workers`
    server processes are too) with no spawned child of their own."""

    def spawned(pid: int) -> bool:
        with contextlib.suppress(OSError):
            return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        return False

    return [pid for pid in tree if spawned(pid) and not any(map(spawned, process_tree(pid)[1:]))]


def process_tree(root: int) -> list[int]:
    """`root` and every descendant (the server, its workers, their delivery processes)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rpartition(")")[2].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def postgres_pids() -> list[int]:
    """Every PostgreSQL process on this machine (backends come and go: sum them all)."""
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        with contextlib.suppress(OSError):
            if comm.read_text().strip() in ("postgres", "postmaster"):
                pids.append(int(comm.parent.name))
    return pids


@contextlib.contextmanager
def server(
    workers: int = 1, database_url: str | None = None, **env: str
) -> Iterator[tuple[str, Path]]:
    """`leadctl serve` on a fresh database (SQLite in a temporary folder unless `database_url`
    names one); yields (url, folder). Its process id is in `folder / "server.pid"`."""
    folder = Path(tempfile.mkdtemp(prefix="leadctl-bench-", dir=os.environ.get("BENCH_TMP")))
    port = free_port()
    full_env = {
        **os.environ,
        "LEADS_DATABASE_URL": database_url or f"sqlite:///{folder / 'leads.db'}",
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
    (folder / "server.pid").write_text(str(proc.pid))
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


def verify(db: Path | str, acknowledged: int, in_flight: int = 0) -> str:
    """Every 201 is a lead with its resume and two outbox rows. A load generator that stops with
    `in_flight` requests unanswered may see the server commit those too, unacknowledged.
    `db` is a SQLite file or a database URL."""
    url = db if isinstance(db, str) else f"sqlite:///{db}"
    leads, resumes, messages = count_rows(url, ("lead", "resume", "outbox_message"))
    ok = (
        acknowledged <= leads <= acknowledged + in_flight
        and resumes == leads
        and messages == 2 * leads
    )
    return (
        f"{acknowledged} answers of 201; {leads} leads ({leads - acknowledged} committed unacknowledged), "
        f"{resumes} resumes, {messages} outbox rows: {'ok' if ok else 'MISMATCH'}"
    )
