"""The staff API: every route needs a token (found by walking the OpenAPI document), pagination."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from intake import create_app
from leadctl import attorneys, submissions
from leadctl.models import ApiToken, Lead
from leadctl.resumes import check_resume
from leadctl.settings import Settings
from leadctl.validation import check_prospect
from tests import samples


@pytest.fixture
def api(settings: Settings) -> Iterator[Any]:
    with TestClient(create_app(settings, run_worker=False)) as client:
        ann = attorneys.add("Ann Lee", "ann@firm.example", "admin")[1].secret
        bob = attorneys.add("Bob Roe", "bob@firm.example")[1].secret
        client.tokens = {"ann": ann, "bob": bob}
        yield client


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _lead(settings: Settings, i: int, filename: str = "cv.pdf") -> Any:
    return submissions.submit(
        check_prospect("Zoë", f"Ñúñez{i}", f"p{i}@example.com"),
        check_resume(filename, samples.pdf(1000 + i), settings.max_resume_bytes),
        settings,
    ).lead


def _staff_operations(client: Any) -> list[tuple[str, str]]:
    schema = client.get("/schema/openapi.json").json()
    operations = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if operation.get("security"):
                operations.append((method.upper(), re.sub(r"\{[^}]+\}", "1", path)))
    return operations


def test_the_openapi_document_lists_every_staff_route_with_its_security_scheme(api: Any) -> None:
    schema = api.get("/schema/openapi.json").json()
    assert schema["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    ops = _staff_operations(api)
    assert {
        ("GET", "/api/v1/leads"),
        ("GET", "/api/v1/leads/1"),
        ("GET", "/api/v1/leads/1/resume"),
        ("POST", "/api/v1/leads/1/reach-out"),
        ("POST", "/api/v1/leads/1/reopen"),
        ("POST", "/api/v1/leads/1/notes"),
        ("POST", "/api/v1/leads/1/assign"),
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/stats"),
    } <= set(ops)
    assert "security" not in schema["paths"]["/api/v1/leads"]["post"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer lct_not-a-real-token"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer "},
    ],
)
def test_every_staff_route_refuses_without_a_valid_token(api: Any, headers: dict[str, str]) -> None:
    for method, path in _staff_operations(api):
        response = api.request(method, path, headers=headers, json={})
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.json()["errors"][0]["message"]
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_revoked_token_is_401_and_a_deactivated_attorney_403(api: Any) -> None:
    assert api.get("/api/v1/me", headers=_auth(api.tokens["bob"])).status_code == 200
    token = ApiToken.get(
        ApiToken.name == "initial", ApiToken.attorney == attorneys.get("bob@firm.example")
    )
    attorneys.revoke_token(token.id)
    assert api.get("/api/v1/me", headers=_auth(api.tokens["bob"])).status_code == 401
    fresh = attorneys.create_token("bob@firm.example").secret
    attorneys.deactivate("bob@firm.example")
    response = api.get("/api/v1/me", headers=_auth(fresh))
    assert response.status_code == 403 and "deactivated" in response.json()["errors"][0]["message"]


def test_me_and_last_used_at(api: Any) -> None:
    response = api.get("/api/v1/me", headers=_auth(api.tokens["ann"]))
    assert response.json()["email"] == "ann@firm.example" and response.json()["role"] == "admin"
    assert "token" not in response.text
    assert ApiToken.get(ApiToken.hint == api.tokens["ann"][:8] + "…").last_used_at is not None


def test_the_cursor_stays_correct_while_leads_arrive(api: Any, settings: Settings) -> None:
    made = [_lead(settings, i).id for i in range(7)]
    h = _auth(api.tokens["ann"])
    first = api.get("/api/v1/leads", params={"limit": 3}, headers=h).json()
    assert [i["id"] for i in first["items"]] == made[::-1][:3]
    assert first["total"] is None
    assert (
        api.get("/api/v1/leads", params={"limit": 1, "total": "true"}, headers=h).json()["total"]
        == 7
    )
    _lead(settings, 100)  # a newer lead arrives between pages
    second = api.get(
        "/api/v1/leads", params={"limit": 3, "cursor": first["next_cursor"]}, headers=h
    ).json()
    third = api.get(
        "/api/v1/leads", params={"limit": 3, "cursor": second["next_cursor"]}, headers=h
    ).json()
    seen = [i["id"] for page in (first, second, third) for i in page["items"]]
    assert seen == made[::-1]
    assert third["next_cursor"] is None


def test_filters_and_bad_parameters(api: Any, settings: Settings) -> None:
    _lead(settings, 1)
    h = _auth(api.tokens["ann"])
    assert (
        len(
            api.get("/api/v1/leads", params={"state": "pending", "q": "NUNEZ1"}, headers=h).json()[
                "items"
            ]
        )
        == 1
    )
    assert (
        api.get("/api/v1/leads", params={"state": "REACHED_OUT"}, headers=h).json()["items"] == []
    )
    for params, field in (
        ({"state": "done"}, "state"),
        ({"limit": "0"}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"since": "soon"}, "since"),
        ({"overdue": "1 day"}, "overdue"),
        ({"cursor": "-4"}, "cursor"),
    ):
        response = api.get("/api/v1/leads", params=params, headers=h)
        assert response.status_code == 422, params
        assert response.json()["errors"][0]["field"] == field


def test_transitions_and_unknown_leads(
    api: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leadctl import states

    lead = _lead(settings, 1)
    owner = Lead.get_by_id(lead.id).attorney.email.split("@")[0]  # round robin chose them
    h = _auth(api.tokens[owner])
    done = api.post(
        f"/api/v1/leads/{lead.reference}/reach-out", json={"note": "called"}, headers=h
    ).json()
    assert done["changed"] is True and done["lead"]["reached_out_by"] == f"{owner}@firm.example"
    again = api.post(f"/api/v1/leads/{lead.id}/reach-out", headers=h)
    assert again.status_code == 200 and again.json()["changed"] is False
    assert api.post("/api/v1/leads/999/reach-out", headers=h).status_code == 404
    monkeypatch.setitem(
        states.TRANSITIONS, states.Action.REOPEN, (frozenset(), states.State.PENDING)
    )
    refused = api.post(f"/api/v1/leads/{lead.id}/reopen", headers=h)
    assert refused.status_code == 409 and refused.json()["errors"][0]["message"]
    assert (
        api.post(f"/api/v1/leads/{lead.id}/notes", json={"text": "  "}, headers=h).status_code
        == 422
    )
    assert (
        api.post(
            f"/api/v1/leads/{lead.id}/assign", json={"attorney": "nobody@x.example"}, headers=h
        ).status_code
        == 404
    )


def test_the_resume_download_is_safe(api: Any, settings: Settings) -> None:
    lead = _lead(settings, 1, filename='<script>"Zoë";CV.pdf')
    response = api.get(f"/api/v1/leads/{lead.id}/resume", headers=_auth(api.tokens["ann"]))
    assert response.status_code == 200
    assert response.content == samples.pdf(1001)
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["x-content-type-options"] == "nosniff"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment; ")
    assert (
        "<" not in disposition
        and '";' not in disposition.split("filename=", 1)[1][1:-1].split('"')[0]
    )
    assert "filename*=UTF-8''" in disposition


def test_tokens_never_reach_the_logs(
    api: Any, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _lead(settings, 1)
    api.get("/api/v1/leads", headers=_auth(api.tokens["ann"]))
    api.get("/api/v1/me", headers=_auth("lct_wrong-secret-value"))
    assert api.tokens["ann"] not in caplog.text
    assert "lct_wrong-secret-value" not in caplog.text


def test_stats_route(api: Any, settings: Settings) -> None:
    _lead(settings, 1)
    body = api.get("/api/v1/stats", headers=_auth(api.tokens["ann"])).json()
    assert body["by_state"] == {"PENDING": 1, "REACHED_OUT": 0}


def test_the_access_log_names_the_lead_of_staff_requests(
    api: Any, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    lead = _lead(settings, 1)
    caplog.set_level(logging.INFO, logger="intake.access")
    api.get(f"/api/v1/leads/{lead.id}", headers=_auth(api.tokens["ann"]))
    api.post(f"/api/v1/leads/{lead.id}/reach-out", headers=_auth(api.tokens["ann"]))
    lines = [r.getMessage() for r in caplog.records if r.name == "intake.access"]
    assert any(
        f"GET /api/v1/leads/{lead.id} 200" in line and f"lead={lead.reference}" in line
        for line in lines
    )
    assert any("reach-out 200" in line and f"lead={lead.reference}" in line for line in lines)


def test_the_resume_of_a_link_lead_is_404_naming_the_link(api: Any, settings: Settings) -> None:
    from leadctl.models import Resume, database

    lead = _lead(settings, 1)
    Resume.delete().where(Resume.lead == lead.id).execute()
    Lead.update(resume_url="https://cv.example/zoe").where(Lead.id == lead.id).execute()
    database.obj.close()
    response = api.get(f"/api/v1/leads/{lead.id}/resume", headers=_auth(api.tokens["ann"]))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert response.json()["errors"][0]["message"] == (
        f"lead {lead.id}'s resume is a link, not a file: https://cv.example/zoe "
        "(open it in a browser if you trust it)"
    )
    shown = api.get(f"/api/v1/leads/{lead.id}", headers=_auth(api.tokens["ann"])).json()
    assert (shown["resume"], shown["resume_url"]) == (None, "https://cv.example/zoe")
