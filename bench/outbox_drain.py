"""Outbox drain to a local SMTP sink (aiosmtpd): messages per second, and submission-to-delivery
latency under a steady intake of 20 leads a second.

    python bench/outbox_drain.py [--messages 1000] [--rate 20] [--seconds 15] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import threading
import time
from pathlib import Path

import httpx
from aiosmtpd.controller import Controller
from common import cpu_reference, free_port, pdf, percentile, server

from leadctl import db, outbox, schema, submissions
from leadctl.mailer import make_sender
from leadctl.models import database
from leadctl.resumes import check_resume
from leadctl.settings import Settings
from leadctl.validation import check_prospect


class Sink:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        subject = next(
            (
                line
                for line in envelope.content.split(b"\r\n")
                if line.lower().startswith(b"subject:")
            ),
            b"",
        )
        now = time.perf_counter()
        with self.lock:
            self.count += 1
            for word in re.findall(
                r"\b[2-9A-Z]{4}-[2-9A-Z]{4}\b", subject.decode(errors="replace")
            ):
                self.arrived[word + "#" + str(self.count)] = now
        return "250 OK"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--concurrency", type=int, default=4, help="SMTP connections at once")
    args = parser.parse_args()
    print(cpu_reference())
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    smtp = {
        "mail_backend": "smtp",
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_starttls": False,
    }
    try:
        # 1. Drain: N queued messages, delivered by the outbox's loop over `concurrency` SMTP
        # connections (the delivery process's way; `outbox send` uses one).
        folder = Path(tempfile.mkdtemp(prefix="leadctl-drain-"))
        settings = Settings.from_env(
            {},
            database_url=f"sqlite:///{folder / 'leads.db'}",
            confirmations_per_hour=10**9,
            **smtp,
        )
        db.bind(settings.database_url)
        schema.ensure_schema()
        resume = check_resume("cv.pdf", pdf(2000), settings.max_resume_bytes)
        for i in range(args.messages // 2):
            submissions.submit(
                check_prospect("Drain", f"Test{i}", f"d{i}@example.com"), resume, settings
            )
        senders = [make_sender(settings) for _ in range(args.concurrency)]
        started = time.perf_counter()
        result = outbox.drain(senders, settings)
        elapsed = time.perf_counter() - started
        for sender in senders:
            sender.close()
        database.obj.close()
        print(
            f"drain over {args.concurrency} connection(s): {result.sent:,} messages in {elapsed:.2f} s = {result.sent / elapsed:,.0f} messages/s "
            f"(failed {result.failed}; sink received {sink.count:,})"
        )

        # 2. Steady intake at `rate` leads/s into a running server; time to both emails.
        sink.arrived.clear()  # only the steady phase's deliveries count below
        sent_at: dict[str, float] = {}
        env = {
            "LEADS_MAIL_BACKEND": "smtp",
            "LEADS_SMTP_HOST": "127.0.0.1",
            "LEADS_SMTP_PORT": str(port),
            "LEADS_SMTP_STARTTLS": "false",
            "LEADS_MAIL_CONCURRENCY": str(args.concurrency),
        }
        body = pdf(200_000)
        with server(workers=1, **env) as (url, _):
            with httpx.Client(base_url=url, timeout=10) as client:
                start = time.perf_counter()
                for i in range(args.rate * args.seconds):
                    target = start + i / args.rate
                    time.sleep(max(0.0, target - time.perf_counter()))
                    r = client.post(
                        "/api/v1/leads",
                        data={
                            "first_name": "Steady",
                            "last_name": f"S{i}",
                            "email": f"s{i}@example.com",
                        },
                        files={"resume": ("cv.pdf", body, "application/pdf")},
                    )
                    sent_at[r.json()["reference"]] = time.perf_counter()
            deadline = time.perf_counter() + 30
            while time.perf_counter() < deadline and sum(
                1 for k in sink.arrived if "#" in k
            ) < 2 * len(sent_at):
                time.sleep(0.1)
        both = []
        for reference, t0 in sent_at.items():
            times = [t for k, t in sink.arrived.items() if k.startswith(reference + "#")]
            if len(times) == 2:
                both.append((max(times) - t0) * 1000)
        print(
            f"steady intake {args.rate} leads/s for {args.seconds} s: {len(both)}/{len(sent_at)} leads had both emails; "
            f"submission-to-both-delivered p50 {percentile(both, 0.5):.0f} ms, p99 {percentile(both, 0.99):.0f} ms"
        )
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
