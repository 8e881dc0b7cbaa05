"""Webhooks: lead events queued in the outbox as signed JSON (or Slack text) and POSTed by a lane
of the delivery worker, with the outbox's retries, backoff and dead letters.

What a webhook says: the event's id (the outbox `message_id`, for de-duplication), its type, when,
who, and the lead's id and reference. Only `lead.created` names the prospect (first name, last
name, email: what a CRM needs to make a contact), added at send time from the lead itself, so a
lead erased before its webhook goes out sends no personal data. Notes are not sent: they are free
text that may hold privileged advice, and a note without its text tells a receiver nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from leadctl import __version__
from leadctl.chat_text import slack_text
from leadctl.models import Lead, OutboxMessage
from leadctl.settings import Settings
from leadctl.text import visible
from leadctl.timeutil import iso, utcnow

log = logging.getLogger("leadctl.outbox")

PURPOSE = "webhook"
DEADLINE_SECONDS = 10.0  # one POST, connecting to the last byte read: a hung receiver is cut off
MAX_RESPONSE_BYTES = 64 * 1024  # read of an answer; the rest is never read
BATCH = 16  # webhooks claimed per pass, POSTed at once
MAX_TEXT = 200  # characters of any outside text (a reason) a webhook carries
LEASE = timedelta(seconds=2 * DEADLINE_SECONDS + 5)  # a claim outlasts two POSTs of a lead
LEFT = "left"  # not tried: the lease ran short (see deliver_due)

# Event kind → webhook type; `state_changed` is split by the state it reached.
_TYPES = {
    "submitted": "lead.created",
    "released": "lead.created",  # a held lead let in is new to the firm
    "assigned": "lead.assigned",
    "reassigned": "lead.assigned",
    "erased": "lead.erased",
    "purged": "lead.purged",
}
_STATE_TYPES = {"REACHED_OUT": "lead.reached_out", "PENDING": "lead.reopened"}


# -- queueing (inside the transaction of the event) --------------------------------------------


def outbox_rows(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The outbox rows of the webhooks that `events` (rows of `Event.row`) cause.

    A new lead's automatic assignment, recorded with it, is part of its `lead.created` (one
    webhook per new lead, not two). A quarantined lead causes none: it is outside every list.
    """
    wanted = [e for e in events if e["kind"] in _TYPES or e["kind"] == "state_changed"]
    if not wanted:
        return []
    ids = {int(e["lead"]) for e in wanted}
    query = Lead.select(Lead.id, Lead.reference, Lead.quarantined).where(Lead.id.in_(ids))
    rows: list[tuple[int, str, bool]] = list(query.tuples())  # type: ignore[arg-type]
    leads = {lead_id: (reference, bool(held)) for lead_id, reference, held in rows}
    created: dict[int, dict[str, Any]] = {}
    payloads: list[dict[str, Any]] = []
    for event in wanted:
        lead_id = int(event["lead"])
        reference, quarantined = leads.get(lead_id, ("", True))
        if quarantined:
            continue
        kind, details = event["kind"], event.get("details") or {}
        if kind == "assigned" and lead_id in created:
            created[lead_id]["data"]["attorney"] = details.get("attorney")
            continue
        kind_type = _event_type(kind, details)
        if kind_type is None:
            continue
        payload = {
            "id": str(uuid.uuid4()),
            "type": kind_type,
            "occurred_at": iso(event["at"]),
            "actor": _short(event["actor"]),
            "lead": {"id": lead_id, "reference": reference},
            "data": _data(kind_type, details),
        }
        if kind_type == "lead.created":
            created[lead_id] = payload
        payloads.append(payload)
    now = utcnow()
    return [_row(payload, now) for payload in payloads]


def _event_type(kind: str, details: dict[str, Any]) -> str | None:
    if kind == "state_changed":
        return _STATE_TYPES.get(str(details.get("to")))
    return _TYPES.get(kind)


def _short(value: Any) -> str | None:
    return None if value is None else str(value)[:MAX_TEXT]


def _data(kind_type: str, details: dict[str, Any]) -> dict[str, Any]:
    """The few details a receiver needs; never a note's text."""
    if kind_type == "lead.created":
        return {"attorney": None}
    if kind_type in ("lead.reached_out", "lead.reopened"):
        return {"from": details.get("from"), "to": details.get("to")}
    if kind_type == "lead.assigned":
        # `assigned` says attorney/previous; a `reassigned` event from/to.
        return {
            "attorney": _short(details.get("attorney", details.get("to"))),
            "previous": _short(details.get("previous", details.get("from"))),
            "reason": _short(details.get("reason")),
        }
    return {}


def _row(payload: dict[str, Any], now: Any) -> dict[str, Any]:
    return {
        "lead": None,  # the lead's id is in the body: erasing the lead leaves its webhooks be
        "purpose": PURPOSE,
        "message_id": payload["id"],
        "recipient": PURPOSE,  # the URL is the setting's at send time
        "subject": f"{payload['type']} {payload['lead']['reference']}",
        "body_text": _dumps(payload),
        "body_html": "",
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "mailbox": None,
    }


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


# -- what is sent ---------------------------------------------------------------------------


def payload_of(msg: OutboxMessage) -> dict[str, Any]:
    """The event as sent: the stored one, and for `lead.created` the prospect, unless erased."""
    payload: dict[str, Any] = json.loads(msg.body_text)
    if payload.get("type") == "lead.created":
        lead = (
            Lead.select(Lead.first_name, Lead.last_name, Lead.email)
            .where((Lead.id == payload["lead"]["id"]) & Lead.erased_at.is_null())
            .first()
        )
        if lead is not None:
            payload["data"]["prospect"] = {
                "first_name": lead.first_name,
                "last_name": lead.last_name,
                "email": lead.email,
            }
    return payload


def body(payload: dict[str, Any], fmt: str) -> bytes:
    """The exact bytes POSTed (and signed): the event as JSON, or Slack's `{"text": …}`."""
    if fmt == "slack":
        return _dumps({"text": slack_text(payload)}).encode()
    return _dumps(payload).encode()


def signature(data: bytes, secret: str) -> str:
    """`X-Leadctl-Signature`: `sha256=` and the hex HMAC-SHA256 of the exact body."""
    return "sha256=" + hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def headers(
    msg: OutboxMessage, payload: dict[str, Any], data: bytes, secret: str
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": f"leadctl-webhook/{__version__}",
        "X-Leadctl-Event-Id": msg.message_id,
        "X-Leadctl-Event": payload["type"],
        "X-Leadctl-Signature": signature(data, secret),
    }


def where(url: str) -> str:
    """The receiver as a log line or an error may name it: scheme, host and port only. A Slack
    URL's path is its secret, and a URL may carry a user and password."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


# -- sending (in the delivery worker) ---------------------------------------------------------


def _client() -> Any:
    import httpx  # only the delivery worker posts: the CLI's start-up stays light

    # httpx logs every request's full URL at INFO: a Slack URL's path is its secret, and a URL
    # may carry a password. Our own log lines name the receiver by `where()` only.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return httpx.AsyncClient(
        follow_redirects=False,  # a redirect is a failure: the body never goes elsewhere
        trust_env=False,  # no proxy or ~/.netrc credentials picked up from the environment
        timeout=httpx.Timeout(DEADLINE_SECONDS, connect=5.0),
        limits=httpx.Limits(max_connections=BATCH, max_keepalive_connections=4),
    )


async def post(client: Any, url: str, head: dict[str, str], data: bytes) -> str | None:
    """POST one webhook; None when the receiver took it (2xx), else why not, in one line."""
    import httpx

    try:
        async with asyncio.timeout(DEADLINE_SECONDS):
            async with client.stream("POST", url, content=data, headers=head) as response:
                answer = bytearray()
                async for chunk in response.aiter_raw():  # bounded: a 10 GB answer is cut off
                    answer += chunk[: MAX_RESPONSE_BYTES - len(answer)]
                    if len(answer) >= MAX_RESPONSE_BYTES:
                        break
                status = response.status_code
    except TimeoutError:
        return f"{where(url)} did not answer within {DEADLINE_SECONDS:.0f} s"
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, OSError, ValueError) as exc:
        return f"{where(url)}: {type(exc).__name__}"  # its text may quote the URL
    if 200 <= status < 300:
        return None
    said = visible(bytes(answer[:100]).decode("utf-8", "replace").strip())
    hint = " (a redirect: webhooks never follow one)" if 300 <= status < 400 else ""
    return f"{where(url)} answered {status}{hint}" + (f": {said}" if said else "")


def _lead_of(msg: OutboxMessage) -> Any:
    try:
        return json.loads(msg.body_text)["lead"]["id"]
    except (ValueError, KeyError, TypeError):
        return msg.id  # not ours to understand: on its own


async def _send(client: Any, msg: OutboxMessage, settings: Settings) -> str | None:
    if not settings.webhook_url:
        return "LEADS_WEBHOOK_URL is not set"
    payload = payload_of(msg)
    data = body(payload, settings.webhook_format)
    head = headers(msg, payload, data, settings.webhook_secret)
    return await post(client, settings.webhook_url, head, data)


async def deliver_due(client: Any, settings: Settings, batch: int = BATCH) -> tuple[int, int]:
    """Claim and POST one batch of due webhooks at once: (sent, failed)."""
    from leadctl import outbox
    from leadctl.states import MessageStatus

    claimed = outbox.claim(batch, LEASE, webhooks=True)
    if not claimed:
        return 0, 0
    # One lead's events one after the other, in the order they happened (a receiver usually
    # sees `lead.created` before `lead.erased`); different leads' at once. A retry can still
    # bring one late: receivers order by `occurred_at`.
    by_lead: dict[Any, list[OutboxMessage]] = {}
    for msg in claimed:
        by_lead.setdefault(_lead_of(msg), []).append(msg)

    async def in_turn(messages: list[OutboxMessage]) -> list[str | None]:
        errors: list[str | None] = []
        for msg in messages:
            if any(errors):  # the rest wait with the one that failed, keeping their order
                errors.append(f"not sent: an earlier event of lead {_lead_of(msg)} failed")
            elif utcnow() + timedelta(seconds=DEADLINE_SECONDS) > msg.lease_until:
                errors.append(LEFT)  # slow receiver: handed back before another worker takes it
            else:
                errors.append(await _send(client, msg, settings))
        return errors

    outcomes = await asyncio.gather(*(in_turn(group) for group in by_lead.values()))
    results = dict(
        zip(
            [m.id for group in by_lead.values() for m in group],
            [error for group in outcomes for error in group],
            strict=True,
        )
    )
    sent, left = [], []
    for msg in claimed:
        error = results[msg.id]
        if error == LEFT:
            left.append(msg)
        elif error is None:
            sent.append(msg)
            log.info("webhook sent event=%s attempt=%d", msg.subject, msg.attempts)
        else:
            status = outbox.mark_failed(msg, error, settings)
            level = logging.ERROR if status == MessageStatus.DEAD else logging.WARNING
            log.log(level, "webhook %s %s attempt=%d: %s", status, msg.subject, msg.attempts, error)
    outbox.mark_sent(sent)
    outbox.release(left)
    return len(sent), len(claimed) - len(sent) - len(left)


def drain(settings: Settings) -> tuple[int, int]:
    """POST every webhook due now, one pass over each (`leadctl outbox send`): (sent, failed)."""

    async def run() -> tuple[int, int]:
        total_sent = total_failed = 0
        async with _client() as client:
            while True:
                sent, failed = await deliver_due(client, settings)
                if not sent + failed:
                    return total_sent, total_failed
                total_sent, total_failed = total_sent + sent, total_failed + failed

    return asyncio.run(run())


class Lane:
    """The delivery worker's webhook lane: a thread of its own, so a receiver that hangs never
    holds up the email behind it. `wake()` sends now; `stop()` ends it after the POSTs in hand."""

    def __init__(self, settings: Settings, poll_seconds: float) -> None:
        self.settings, self.poll_seconds = settings, poll_seconds
        self._rung, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-lane", daemon=True)

    def start(self) -> Lane:
        self._thread.start()
        return self

    def wake(self) -> None:
        self._rung.set()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop after the POSTs in hand, waiting at most `timeout` seconds: a webhook still in
        flight then stays claimed until its lease lapses, and is sent again (receivers
        de-duplicate by its id)."""
        self._stop.set()
        self._rung.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        from leadctl.db import close_connection

        try:
            asyncio.run(self._loop(self._stop.is_set))
        finally:
            close_connection()

    async def _loop(self, stopped: Callable[[], bool]) -> None:
        async with _client() as client:
            while not stopped():
                self._rung.clear()
                tried = 0
                try:
                    tried = sum(await deliver_due(client, self.settings))
                except Exception:
                    log.exception("webhook pass failed; retrying in %.0f s", self.poll_seconds)
                if not tried and not stopped():
                    await asyncio.to_thread(self._rung.wait, self.poll_seconds)
