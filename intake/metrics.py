"""`/metrics` (LEADS_METRICS=on): Prometheus text from this process's counters and the outbox.

Two kinds of numbers, kept where they are true for every process:
- submissions and request latency are counted by the process that answered. With
  `leadctl serve --workers N` each worker counts in files of a shared folder (prometheus-client's
  multiprocess mode, set up by `serve`), so any worker's `/metrics` gives the sum of them all;
- the outbox and its deliveries are read from the database at scrape time: the delivery process,
  `leadctl outbox send` from cron and other servers on the same PostgreSQL all write there, and
  none of them shares memory with the process being scraped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

from litestar import Response, get
from litestar.datastructures import State
from peewee import fn
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from intake.readiness import oldest_pending_age, outbox_due_for
from leadctl.models import OutboxMessage
from leadctl.states import MessageStatus

log = logging.getLogger("intake")
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # set by `leadctl serve --workers N`
# From a few milliseconds for a submission to seconds for a 10 MiB resume over a slow line.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class OutboxCollector(Collector):
    """Outbox messages by state, the age of the oldest pending one, and deliveries by result,
    read from the database when scraped (one grouped count; two look-ups in the status index)."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("leads_database_up", "1 when the database answered this scrape")
        try:
            rows: list[tuple[str, int, int]] = list(
                OutboxMessage.select(
                    OutboxMessage.status,
                    fn.COUNT(OutboxMessage.id),
                    fn.COALESCE(fn.SUM(OutboxMessage.attempts), 0),
                )
                .group_by(OutboxMessage.status)
                .tuples()  # type: ignore[arg-type]
            )
            pending_age = oldest_pending_age()
            due_for = outbox_due_for()
        except Exception as exc:  # noqa: BLE001 - a scrape reports a database it cannot read
            log.warning("metrics: the outbox could not be read (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        counts = {status.value: 0 for status in MessageStatus}
        attempts = 0
        for status, count, tried in rows:
            counts[status] = counts.get(status, 0) + int(count)
            attempts += int(tried)
        messages = GaugeMetricFamily(
            "leads_outbox_messages", "Outbox messages by state", labels=["state"]
        )
        for status, count in counts.items():
            messages.add_metric([status], count)
        yield messages
        yield GaugeMetricFamily(
            "leads_outbox_oldest_pending_age_seconds",
            "Age of the oldest message not yet sent (0 when none waits)",
            value=pending_age,
        )
        yield GaugeMetricFamily(
            "leads_outbox_due_seconds",
            "How long the longest-due pending message has waited past its time (0 when none)",
            value=due_for,
        )
        # Every attempt is counted on its message: one success for a sent message, one in
        # flight for a message being sent, a failure for each of the others.
        failed = attempts - counts[MessageStatus.SENT] - counts[MessageStatus.SENDING]
        deliveries = CounterMetricFamily(
            "leads_deliveries",
            "Delivery attempts by result (from the outbox: `outbox retry` resets a message's)",
            labels=["result"],
        )
        deliveries.add_metric(["sent"], counts[MessageStatus.SENT])
        deliveries.add_metric(["failed"], max(failed, 0))
        deliveries.add_metric(["dead"], counts[MessageStatus.DEAD])
        yield deliveries


class Metrics:
    """This app's counters, in a registry of its own (several apps may share a test process)."""

    def __init__(self) -> None:
        disable_created_metrics()  # no `_created` series: timestamps nobody graphs
        self.registry = CollectorRegistry()
        self._submissions = Counter(
            "leads_submissions",
            "Submissions by channel (api, form) and outcome; refusals by reason",
            ["channel", "outcome", "reason"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "leads_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(OutboxCollector())

    def request(self, route: str, method: str, seconds: float) -> None:
        self._latency.labels(route, method).observe(seconds)

    def submission(self, channel: str, outcome: str, reason: str) -> None:
        self._submissions.labels(channel, outcome, reason).inc()

    def exposition(self) -> bytes:
        registry = self.registry
        if os.environ.get(MULTIPROCESS_DIR):
            # Every worker's counters, summed from the shared folder, and the outbox once.
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            registry.register(OutboxCollector())
        return generate_latest(registry)


@get("/metrics", sync_to_thread=True, include_in_schema=False)
def metrics(state: State) -> Response[bytes]:
    """Prometheus text format; only routed when LEADS_METRICS is on (else 404)."""
    collected: Metrics = state.metrics
    # Litestar adds the charset to a text media type itself.
    media_type = CONTENT_TYPE_LATEST.replace("; charset=utf-8", "")
    return Response(collected.exposition(), media_type=media_type)
