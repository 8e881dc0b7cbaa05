"""Mail under saturation: intake rate, drain rate and the lag from the end of the load to the
last email at an SMTP sink, with CPU per lead (server, delivery and PostgreSQL processes).

    python bench/mail_lag.py [--duration 20] [--rounds 2] [--concurrency 4 1] [--before DIR]
                             [--after DIR]

Needs `wrk`. Each round runs every configuration once, in turn, so that a noisy neighbour
touches them alike: SQLite with one server process, PostgreSQL (127.0.0.1:5432, db `test`,
a fresh schema per run) with one and two; each with every LEADS_MAIL_CONCURRENCY given, and
with `--before DIR` also with the code in DIR (e.g. `git archive HEAD leadctl intake | tar -x
-C DIR`), put first on the server's PYTHONPATH. `--after DIR` does the same for the code
under test (HEAD plus the change alone, while the working tree holds other unfinished work).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller
from common import (
    count_rows,
    cpu_reference,
    cpu_seconds,
    cpu_used,
    delivery_processes,
    free_port,
    fresh_database,
    pdf,
    postgres_pids,
    process_tree,
    server,
    verify,
)
from intake_load import LUA, wrk

SELF = resource.RUSAGE_SELF


class Sink:
    """Counts messages and notes when the last one arrived."""

    def __init__(self) -> None:
        self.count = 0
        self.last = 0.0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        with self.lock:
            self.count += 1
            self.last = time.perf_counter()
        return "250 OK"

    def seen(self) -> tuple[int, float]:
        with self.lock:
            return self.count, self.last


def run(
    kind: str,
    workers: int,
    concurrency: int,
    args: argparse.Namespace,
    env: dict[str, str],
    code: str | None = None,
    label: str | None = None,
) -> str:
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    smtp = {
        "LEADS_MAIL_BACKEND": "smtp",
        "LEADS_SMTP_HOST": "127.0.0.1",
        "LEADS_SMTP_PORT": str(port),
        "LEADS_SMTP_STARTTLS": "false",
        "LEADS_MAIL_CONCURRENCY": str(concurrency),
    }
    older = {"PYTHONPATH": code} if code else {}
    try:
        with (
            fresh_database(kind, **older) as url,
            server(workers=workers, database_url=url, **smtp, **older) as (
                base,
                folder,
            ),
        ):
            db_url = url or f"sqlite:///{folder / 'leads.db'}"
            root = int((folder / "server.pid").read_text())
            time.sleep(1.0)  # the delivery processes start after /health answers
            tree = process_tree(root)
            before = cpu_seconds(tree), cpu_seconds(postgres_pids()), resource.getrusage(SELF)
            started = time.perf_counter()
            result = wrk(base, 32, args.duration, args.script, env)
            ended = time.perf_counter()
            at_end, _ = sink.seen()
            deadline, expected, settled = ended + 180, -1, ended
            while time.perf_counter() < deadline:
                # Requests wrk left unanswered may still commit: the count must hold for 1 s.
                now_expected = count_rows(db_url, ("outbox_message",))[0]
                if now_expected != expected:
                    expected, settled = now_expected, time.perf_counter()
                if sink.seen()[0] >= expected and time.perf_counter() - settled > 1.0:
                    break
                time.sleep(0.05)
            count, last = sink.seen()
            tree = process_tree(root)
            delivery = delivery_processes(tree)
            cpu_delivery = cpu_used(before[0], cpu_seconds(delivery))
            cpu_server = cpu_used(before[0], cpu_seconds([p for p in tree if p not in delivery]))
            cpu_pg = cpu_used(before[1], cpu_seconds(postgres_pids()))
            usage = resource.getrusage(SELF)
            cpu_sink = usage.ru_utime + usage.ru_stime - before[2].ru_utime - before[2].ru_stime
            leads = count_rows(db_url, ("lead",))[0]
            checked = verify(db_url, int(result["ok"]), in_flight=32)
        load = ended - started
        lag = max(0.0, last - ended) if count >= expected else float("inf")
        after = (count - at_end) / lag if lag and lag != float("inf") else float("nan")
        cpu = cpu_server + cpu_delivery + cpu_pg
        per = 1000 / max(leads, 1)
        return (
            f"{kind:10} workers={workers} {label or ''} concurrency={concurrency}: "
            f"intake {result['rps']:6.1f} leads/s "
            f"(p99 {result['p99']:.0f} ms, errors {result['errors']}); mail during load "
            f"{at_end / load:6.1f}/s vs {2 * leads / load:6.1f}/s written; after: {count - at_end} more "
            f"at {after:6.1f}/s; LAG {lag:5.2f} s; {count}/{expected} emails; "
            f"CPU {cpu * per:.2f} ms/lead = server {cpu_server * per:.2f} + delivery "
            f"{cpu_delivery * per:.2f} + postgres {cpu_pg * per:.2f} (sink and bench "
            f"{cpu_sink * per:.2f}, not counted)\n"
            f"    {checked}"
        )
    finally:
        controller.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 1])
    parser.add_argument("--only", choices=["sqlite", "postgresql"], default=None)
    parser.add_argument("--before", default=None, help="a folder holding the older code")
    parser.add_argument("--after", default=None, help="a folder holding the code under test")
    args = parser.parse_args()
    print(cpu_reference())
    scratch = Path(tempfile.mkdtemp(prefix="leadctl-lag-"))
    (scratch / "cv.pdf").write_bytes(pdf(200_000))
    args.script = scratch / "submit.lua"
    args.script.write_text(LUA)
    env = {**os.environ, "BENCH_PDF": str(scratch / "cv.pdf")}
    configs = [("sqlite", 1), ("postgresql", 1), ("postgresql", 2)]
    if args.only:
        configs = [c for c in configs if c[0] == args.only]
    for round_ in range(args.rounds):
        print(f"round {round_ + 1}: {cpu_reference()}", flush=True)
        for kind, workers in configs:
            for concurrency in args.concurrency:
                now = "AFTER" if args.after else "now"
                print(run(kind, workers, concurrency, args, env, args.after, now), flush=True)
                if args.before:
                    print(
                        run(kind, workers, concurrency, args, env, args.before, "BEFORE"),
                        flush=True,
                    )


if __name__ == "__main__":
    main()
