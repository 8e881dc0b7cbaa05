"""Intake under abuse: rate limits, honeypots, form timing, idempotency, the confirmation cap."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from intake import create_app
from intake.ratelimit import UNREADABLE, RateLimiter, client_address, client_key
from leadctl import attorneys, submissions
from leadctl.models import Event, IdempotencyKey, Lead, OutboxMessage
from leadctl.settings import Settings, parse_proxies, parse_rate
from tests import samples
from tests.conftest import serve_in_thread, submit


def _client(settings: Settings) -> Any:
    return TestClient(create_app(settings, run_worker=False))


@pytest.fixture
def client(settings: Settings) -> Iterator[Any]:
    with _client(settings) as c:
        yield c


# -- rate limit -----------------------------------------------------------------------------------


def test_parse_rate() -> None:
    assert parse_rate("10/minute") == (10, 60.0)
    assert parse_rate("100 / hours") == (100, 3600.0)
    assert parse_rate("off") is None
    with pytest.raises(ValueError, match="10/minute"):
        parse_rate("lots")


def test_only_accepted_submissions_use_up_the_allowance(settings: Settings) -> None:
    with _client(settings.replace(rate_limit="3/minute")) as c:
        for _ in range(5):  # refused submissions cost nothing
            assert submit(c, email="bad").status_code == 422
        assert submit(c, resume=samples.pdf(11 * 1024 * 1024)).status_code == 413
        for i in range(3):
            assert submit(c, email=f"p{i}@example.com").status_code == 201
        refused = submit(c, email="p9@example.com")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.json()["errors"][0]["message"].startswith("too many submissions")
        assert refused.headers["connection"] == "close"  # its body is never read
        assert Lead.select().count() == 3
        page = c.post("/", data={"first_name": "A"}, files={"resume": ("cv.pdf", samples.pdf())})
        assert page.status_code == 429 and "try again in" in page.text


def test_the_limiter_window_slides_and_forgets_idle_clients() -> None:
    limiter = RateLimiter(2, 60.0, max_clients=2)
    a, b, c = "203.0.113.1", "203.0.113.2", "2001:db8::1"
    limiter.record(a, now=0)
    limiter.record(a, now=10)
    assert limiter.retry_after(a, now=20) == 40
    assert limiter.retry_after(a, now=60.5) is None
    limiter.record(b, now=1)
    limiter.record(c, now=2)  # a is forgotten: memory stays bounded under a flood
    assert limiter.retry_after(a, now=21) is None


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() -> None:
    scope: Any = {
        "client": ("10.0.0.5", 1234),
        "headers": [(b"x-forwarded-for", b"1.2.3.4, 10.0.0.9")],
    }
    assert client_address(scope, []) == "10.0.0.5"
    assert client_address(scope, parse_proxies("192.168.0.1")) == "10.0.0.5"
    assert client_address(scope, parse_proxies("10.0.0.0/8")) == "1.2.3.4"
    spoofed: Any = {"client": ("10.0.0.5", 1), "headers": [(b"x-forwarded-for", b"10.0.0.7")]}
    assert client_address(spoofed, parse_proxies("10.0.0.0/8")) == "10.0.0.5"
    with pytest.raises(ValueError, match="LEADS_TRUSTED_PROXIES"):
        parse_proxies("not-an-ip")


def test_a_client_is_counted_by_its_ipv4_address_or_its_ipv6_64() -> None:
    same = ["2001:db8:1:2::1", "2001:0db8:1:2:0:0:0:1", "2001:db8:1:2:0::a1", "2001:db8:1:2:ff::"]
    assert {client_key(a) for a in same} == {"2001:db8:1:2::/64"}
    assert client_key("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert client_key("fe80::1%eth0") == "fe80::/64"
    assert client_key("::ffff:203.0.113.7") == client_key("203.0.113.7") == "203.0.113.7"
    # A proxy's port, brackets, and IPv6 addresses that carry an IPv4 one (an outsider's
    # second look got a fresh allowance for each).
    for spelt in ("203.0.113.5:5000", "::203.0.113.5", "2002:cb00:7105:1::1", "2002:cb00:7105:2::"):
        assert client_key(spelt) == "203.0.113.5", spelt
    assert client_key("2001:0:4136:e378:8000:63bf:3fff:fdd2") == "192.0.2.45"  # Teredo's client
    assert client_key("[2001:db8:5::1]:443") == client_key("[2001:db8:5::2]") == "2001:db8:5::/64"
    # What no parser reads is one client, however it is written.
    spellings = ("0203.0.113.5", "0xcb.0.113.5", "3405803781", "203.0.29957", "unknown", "x:y")
    assert {client_key(a) for a in spellings} == {UNREADABLE}


def test_an_ipv6_client_gets_one_allowance_for_its_whole_64(settings: Settings) -> None:
    """The outsider's finding: every address of a /64 (or another spelling of one address) was
    a fresh allowance. Through a real server behind a trusted proxy."""
    s = settings.replace(rate_limit="2/minute", trusted_proxies="127.0.0.1/32")

    def as_(address: str, n: int) -> int:
        headers = {"X-Forwarded-For": address}
        return int(submit(c, email=f"p{n}@example.com", headers=headers).status_code)

    with serve_in_thread(s) as server, httpx.Client(base_url=server.url, timeout=10) as c:
        assert [as_("2001:db8:1:2::1", 0), as_("2001:db8:1:2::a1", 1)] == [201, 201]
        for n, other in enumerate(
            ["2001:db8:1:2::a2", "2001:0db8:1:2:0:0:0:1", "2001:db8:1:2:ffff::"]
        ):
            assert as_(other, 2 + n) == 429, other
        assert as_("2001:db8:1:3::1", 9) == 201  # the next /64 is another client
        assert as_("::ffff:203.0.113.7", 10) == as_("203.0.113.7", 11) == 201
        assert as_("203.0.113.7", 12) == 429  # the mapped spelling counted as the same client


# -- honeypot, form timing, quarantine ------------------------------------------------------------


def test_a_filled_honeypot_looks_accepted_but_is_quarantined(client: Any) -> None:
    attorneys.add("Ann Lee", "ann@firm.example")
    response = client.post(
        "/api/v1/leads",
        data={
            "first_name": "Bot",
            "last_name": "Net",
            "email": "bot@example.com",
            "consent": "true",
            "website": "http://spam",
        },
        files={"resume": ("cv.pdf", samples.pdf(), "application/pdf")},
    )
    assert response.status_code == 201 and set(response.json()) == {
        "reference",
        "state",
        "created_at",
    }
    lead = Lead.get(Lead.reference == response.json()["reference"])
    assert lead.quarantined and lead.attorney_id is None
    assert OutboxMessage.select().count() == 0
    assert [e.kind for e in Event.select().where(Event.lead == lead.id)] == [
        "submitted",
        "quarantined",
    ]
    from leadctl import leads, stats

    assert list(leads.iter_lead_dicts(leads.LeadQuery())) == []
    assert stats.compute()["total"] == 0
    assert [x["id"] for x in leads.iter_lead_dicts(leads.LeadQuery(quarantined=True))] == [lead.id]


def _form_token(page: str) -> str:
    match = re.search(r'name="form_token" value="([^"]+)"', page)
    assert match
    return match.group(1)


def _post_form(c: Any, token: str | None, **extra: str) -> Any:
    data = {
        "first_name": "Jane",
        "last_name": "Doe",
        "email": "jane@example.com",
        "consent": "true",
        **extra,
    }
    if token is not None:
        data["form_token"] = token
    return c.post("/", data=data, files={"resume": ("cv.pdf", samples.pdf(), "application/pdf")})


def test_a_form_sent_back_too_fast_is_quarantined(settings: Settings) -> None:
    with _client(settings.replace(min_fill_seconds=3)) as client:
        token = _form_token(client.get("/").text)
        response = _post_form(client, token)
        assert response.status_code == 201 and "Thank you" in response.text
    lead = Lead.get()
    assert lead.quarantined and "after it was shown" in lead.quarantine_reason


@pytest.mark.parametrize("token", [None, "123.abc.forged", "garbage"])
def test_a_missing_or_forged_form_token_is_quarantined(client: Any, token: str | None) -> None:
    assert _post_form(client, token).status_code == 201
    assert Lead.get().quarantined


def test_a_person_is_not_quarantined_and_a_double_click_is_one_lead(settings: Settings) -> None:
    with _client(settings.replace(min_fill_seconds=0.2)) as c:
        page = c.get("/").text
        time.sleep(0.3)  # a person takes a moment
        token = _form_token(page)
        first, second = _post_form(c, token), _post_form(c, token)
        assert first.status_code == second.status_code == 201
        lead = Lead.get()
        assert not lead.quarantined
        assert lead.reference in first.text and lead.reference in second.text
        assert Lead.select().count() == 1 and OutboxMessage.select().count() == 2


def test_release_and_purge(
    client: Any, cli: Any, settings: Settings, cli_env: dict[str, str]
) -> None:
    attorneys.add("Ann Lee", "ann@firm.example", "admin")
    attorneys.add("Bob Roe", "bob@firm.example")
    old, new = (
        submit(client, email=f"{n}@example.com", website="x").json()["reference"]
        for n in ("old", "new")
    )
    stale = Lead.get(Lead.reference == old)
    Lead.update(created_at=stale.created_at - timedelta(days=31)).where(
        Lead.id == stale.id
    ).execute()
    # Suspected spam is an admin's to see and let through, as through the staff API.
    for who in ("bob@firm.example", "root"):
        as_who = {"LEADS_DATABASE_URL": settings.database_url, "LEADCTL_ACTOR": who}
        for args in (("list", "--quarantined"), ("release", new)):
            refused = cli(*args, env=as_who)
            assert (refused.code, refused.stdout) == (1, ""), args
            assert "needs an admin" in refused.stderr and refused.stderr.count("\n") == 1
    env = {"LEADS_DATABASE_URL": settings.database_url, "LEADCTL_ACTOR": "ann@firm.example"}
    listed = cli("list", "--quarantined", "--json", env=env).json()
    assert [x["reference"] for x in listed] == [new, old]
    assert cli("list", "--json", env=env).json() == []
    shown = cli("show", old, "--json", env=env).json()
    assert shown["quarantined"] is True and "website" in shown["quarantine_reason"]
    released = cli("release", new, "--json", env=env)
    assert released.code == 0 and released.json()["attorney"] in (
        "ann@firm.example",
        "bob@firm.example",
    )
    assert Event.get(Event.kind == "released").actor == "ann@firm.example"
    assert OutboxMessage.select().count() == 2
    assert cli("release", new, env=env).code == 1
    assert cli("purge-quarantine", "--dry-run", "--json", env=env).json()["would_delete"] == 1
    assert cli("purge-quarantine", env=env).code == 2  # destructive: --yes off a terminal
    assert cli("purge-quarantine", "--yes", "--json", env=env).json()["deleted"] == 1
    assert [x.reference for x in Lead.select()] == [new]


# -- idempotency, double clicks, returning prospects ---------------------------------------------


def test_idempotency_key_replays_the_first_answer(client: Any) -> None:
    headers = {"Idempotency-Key": "retry-123"}
    first = submit(client, headers=headers)
    again = submit(client, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert Lead.select().count() == 1 and OutboxMessage.select().count() == 2
    other = submit(client, headers=headers, first="Someone", email="else@example.com")
    assert other.status_code == 409 and "Idempotency-Key" in other.json()["errors"][0]["message"]
    assert submit(client, headers={"Idempotency-Key": "x" * 500}).status_code == 422


def test_idempotency_keys_expire_after_a_day(client: Any) -> None:
    submit(client, headers={"Idempotency-Key": "k"})
    row = IdempotencyKey.get()
    IdempotencyKey.update(created_at=row.created_at - timedelta(hours=25)).execute()
    assert submissions.forget_old_keys() == 1
    assert IdempotencyKey.select().count() == 0


def test_an_identical_submission_without_a_key_is_a_double_click(client: Any) -> None:
    first, second = submit(client), submit(client)
    assert first.json()["reference"] == second.json()["reference"]
    assert Lead.select().count() == 1


def test_a_returning_prospect_is_a_new_lead_with_the_same_attorney(
    client: Any, cli: Any, settings: Settings
) -> None:
    attorneys.add("Ann Lee", "ann@firm.example")
    attorneys.add("Bob Roe", "bob@firm.example")
    first = Lead.get(Lead.reference == submit(client).json()["reference"])
    submit(client, email="other@example.com")
    second_ref = submit(client, resume=samples.pdf(5000)).json()["reference"]
    second = Lead.get(Lead.reference == second_ref)
    assert second.id != first.id and second.attorney_id == first.attorney_id
    shown = cli(
        "show", str(second.id), "--json", env={"LEADS_DATABASE_URL": settings.database_url}
    ).json()
    assert [earlier["id"] for earlier in shown["earlier_leads"]] == [first.id]
    text = cli("show", str(second.id), env={"LEADS_DATABASE_URL": settings.database_url}).stdout
    assert f"Returning:    earlier lead {first.id}" in text


# -- the confirmation cap -------------------------------------------------------------------------


def test_confirmations_are_capped_but_attorneys_are_always_notified(settings: Settings) -> None:
    with _client(settings.replace(confirmations_per_hour=2)) as c:
        for i in range(3):
            assert submit(c, email=f"p{i}@example.com").status_code == 201
        assert submit(c, email="p0@example.com", resume=samples.pdf(3000)).status_code == 201
        purposes = [m.purpose for m in OutboxMessage.select().order_by(OutboxMessage.id)]
        assert purposes.count("confirmation") == 2 and purposes.count("notification") == 4
        skipped = Event.select().where(Event.kind == "confirmation_skipped")
        assert skipped.count() == 2
        reasons = sorted(e.details["reason"] for e in skipped)
        assert "within the hour" in reasons[0] and "this address" in reasons[0] + reasons[1]


def test_a_form_shown_again_after_an_error_keeps_its_first_render_time(settings: Settings) -> None:
    with _client(settings.replace(min_fill_seconds=0.5)) as c:
        token = _form_token(c.get("/").text)
        time.sleep(0.6)  # the person fills the form
        again = _post_form(c, token, email="typo")
        assert again.status_code == 422
        fixed = _post_form(c, _form_token(again.text))  # and fixes the typo at once
        assert fixed.status_code == 201
        assert not Lead.get().quarantined
