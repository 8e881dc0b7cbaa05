"""CPU per email in a delivery process, and what one message costs to build and serialize.

    python bench/mail_cpu.py [--leads 1000] [--concurrency 4 1] [--before DIR] [--profile]

Part 1 builds and serializes the two messages of a lead (confirmation, notification) and one
notification with a 200 KB PDF attached, with `build_message` and with the `email` package's
`EmailMessage` (what `build_message` did up to session 3). Part 2 fills a SQLite outbox with
the messages of `--leads` leads, then drains it through `LEADS_MAIL_CONCURRENCY` SMTP
connections to an aiosmtpd sink running in a process of its own (its CPU is not counted), and
reports the drainer's CPU (all threads) per message; with `--before DIR` also with the code in
DIR (`git archive HEAD leadctl intake | tar -x -C DIR`) first on the PYTHONPATH, in turn.
`--profile` prints the top of a CPU-time cProfile of the drain's main thread (all of it with
`--concurrency 1`; the profiler itself doubles the CPU, so read shares, not times).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from common import cpu_reference, free_port, pdf

HERE = Path(__file__).resolve().parent


def _email_package(composed, sender, message_id):  # type: ignore[no-untyped-def]
    """`build_message` as it was: EmailMessage and the header registry."""
    from email.message import EmailMessage
    from email.policy import SMTP, SMTPUTF8
    from email.utils import format_datetime

    from leadctl.mailer import transport_address
    from leadctl.timeutil import utcnow

    sender, sender_utf8 = transport_address(sender)
    recipient, recipient_utf8 = transport_address(composed.recipient)
    msg = EmailMessage(policy=SMTPUTF8 if sender_utf8 or recipient_utf8 else SMTP)
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = composed.subject
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = message_id
    msg.set_content(composed.text, charset="utf-8")
    msg.add_alternative(composed.html, subtype="html", charset="utf-8")
    return msg


def micro() -> None:
    from datetime import UTC, datetime

    from leadctl.mailer import build_message
    from leadctl.messages import confirmation, new_message_id, notification

    note = notification(
        lead_id=12,
        reference="K7QF-M2XD",
        first_name="Zoë",
        last_name="Ñúñez",
        email="zoe@example.com",
        submitted_at=datetime.now(UTC),
        resume_name="Zoë CV.pdf",
        resume_size=200_000,
        recipient="ann@firm.example",
        assigned=True,
    )
    cases = {
        "confirmation": (confirmation("K7QF-M2XD", "zoe@example.com"), ()),
        "notification": (note, ()),
        "notification + 200 KB PDF": (note, (("Zoë CV.pdf", "application/pdf", pdf(200_000)),)),
    }
    sender, mid = "leads@firm.example", new_message_id("leads@firm.example", "K7QF-M2XD.x")
    for name, (composed, files) in cases.items():
        timings = []
        builders = [("build_message", lambda c=composed, f=files: build_message(c, sender, mid, f))]
        if not files:
            builders.append(("EmailMessage", lambda c=composed: _email_package(c, sender, mid)))
        for label, build in builders:
            n = 200 if files else 2000
            best = float("inf")
            for _ in range(3):
                started = time.process_time()
                for _ in range(n):
                    build().as_bytes()
                best = min(best, (time.process_time() - started) / n)
            timings.append(f"{label} {best * 1e6:7.1f} µs")
        print(f"  build + serialize, {name:26}: " + "; ".join(timings))


@contextlib.contextmanager
def sink_process() -> Iterator[int]:
    """aiosmtpd's own discarding sink in a process of its own; yields its port."""
    port = free_port()
    command = [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink"]
    proc = subprocess.Popen([*command, "-l", f"127.0.0.1:{port}"])
    try:
        import socket

        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def child(args: argparse.Namespace) -> None:
    """One drain, in this process, of a fresh SQLite outbox; prints CPU per message."""
    from leadctl import db, logs, outbox, schema, submissions
    from leadctl.mailer import make_sender
    from leadctl.resumes import check_resume
    from leadctl.settings import Settings
    from leadctl.validation import check_prospect

    folder = Path(tempfile.mkdtemp(prefix="leadctl-mailcpu-"))
    settings = Settings.from_env().replace(
        database_url=f"sqlite:///{folder / 'leads.db'}",
        mail_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=args.port,
        smtp_starttls=False,
        smtp_ssl=False,
        smtp_user="",
        mail_concurrency=args.width,
        confirmations_per_hour=10**9,
    )
    logs.configure("text")  # a log line per message, as the delivery process writes them
    db.bind(settings.database_url)
    schema.ensure_schema()
    resume = check_resume("Zoë CV.pdf", pdf(4000), settings.max_resume_bytes)
    for i in range(args.leads):
        submissions.submit(check_prospect("Zoë", "Ñúñez", f"p{i}@example.com"), resume, settings)
    senders = [make_sender(settings) for _ in range(args.width)]
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU, not time spent waiting
        profiler.enable()
    started, wall = time.process_time(), time.perf_counter()
    result = _drain(outbox, senders, settings)
    cpu, wall = time.process_time() - started, time.perf_counter() - wall
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
    for sender in senders:
        sender.close()
    code = "before" if os.environ.get("BENCH_BEFORE") else "now"
    print(
        f"  drain {code:6} concurrency={args.width}: {result.sent} sent ({result.failed} failed) "
        f"in {wall:.2f} s = {result.sent / wall:.0f}/s; CPU {cpu * 1000 / result.sent:.2f} ms "
        "per message (all threads)",
        flush=True,
    )


def _drain(outbox, senders, settings):  # type: ignore[no-untyped-def]
    """Everything due, as the delivery loop sends it: batch after batch on one thread pool
    (code that has no `pool` parameter makes a pool per batch, as it did then)."""
    import inspect
    from concurrent.futures import ThreadPoolExecutor

    if len(senders) == 1 or "pool" not in inspect.signature(outbox.deliver_due).parameters:
        return outbox.drain(senders, settings)
    total = outbox.DrainResult()
    with ThreadPoolExecutor(len(senders)) as pool:
        while True:
            result = outbox.deliver_due(senders, settings, pool=pool)
            if result.sent + result.failed == 0:
                return total
            total.sent += result.sent
            total.failed += result.failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 1])
    parser.add_argument("--before", default=None, help="a folder holding the older code")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--width", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    print(cpu_reference())
    micro()
    codes: list[str | None] = [None] + ([args.before] if args.before else [])
    with sink_process() as port:
        for _ in range(args.rounds):
            for width in args.concurrency:
                for code in codes:
                    env = dict(os.environ)
                    if code:
                        env |= {"PYTHONPATH": code, "BENCH_BEFORE": "1"}
                    command = [sys.executable, str(HERE / "mail_cpu.py"), "--child"]
                    command += ["--port", str(port), "--width", str(width)]
                    command += ["--leads", str(args.leads)] + (["--profile"] * args.profile)
                    with tempfile.TemporaryFile() as log:  # the drainer's log lines
                        done = subprocess.run(command, env=env, stderr=log)
                        if done.returncode:
                            log.seek(0)
                            sys.exit(log.read()[-3000:].decode(errors="replace"))


if __name__ == "__main__":
    main()
