"""Remote mode: the Backend over the staff API, the saved server URL, where the token is from."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Generator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from leadctl.cli.backend import ResumeFile
from leadctl.errors import AuthError, LeadctlError, StorageUnavailable, from_answer
from leadctl.leads import LeadQuery, Outcome
from leadctl.states import Action
from leadctl.timeutil import iso

PAGE = 1000
TIMEOUT_SECONDS = 15.0


# -- where the server URL and the token come from ------------------------------------------------


def config_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "leadctl" / "config.json"


def saved_server() -> str | None:
    try:
        data = json.loads(config_file().read_text())
    except (OSError, ValueError):
        return None
    server = data.get("server") if isinstance(data, dict) else None
    return server if isinstance(server, str) and server else None


def save_server(server: str | None) -> None:
    """Remember (or forget) the server URL; never the token."""
    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = {"server": server} if server else {}
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)


def normalize_server(url: str) -> str:
    url = url.strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", url):
        raise LeadctlError(f"the server must be an http:// or https:// URL, not {url!r}")
    return url


def token_key(server: str) -> str:
    return f"token:{server}"


def find_token(server: str) -> tuple[str, str]:
    """(token, source): `LEADCTL_TOKEN`, else the OS keyring entry for this server."""
    from leadctl.secrets import KeyringUnavailable, get_secret

    env = os.environ.get("LEADCTL_TOKEN", "").strip()
    if env:
        return env, "LEADCTL_TOKEN"
    try:
        stored = get_secret(token_key(server))
    except KeyringUnavailable as exc:
        # No keyring at all means "authenticate another way" (exit 4); one that is locked or
        # does not answer is a fault of this machine (exit 1).
        kind = AuthError if exc.absent else LeadctlError
        raise kind(f"no token for {server}: {exc.advice('LEADCTL_TOKEN')}") from None
    if not stored:
        raise AuthError(
            f"not logged in to {server}; run: leadctl login --server {server} "
            "(or set LEADCTL_TOKEN)"
        )
    return stored, "keyring"


# -- the Backend over HTTP -----------------------------------------------------------------------


def _query_params(q: LeadQuery) -> dict[str, str]:
    params: dict[str, str] = {}
    if q.state is not None:
        params["state"] = q.state.value
    if q.attorney:
        params["attorney"] = q.attorney
    if q.search:
        params["q"] = q.search
    if q.since is not None:
        params["since"] = iso(q.since) or ""
    if q.until is not None:
        params["until"] = iso(q.until) or ""
    if q.overdue is not None:
        params["overdue"] = f"{int(q.overdue.total_seconds())}s"
    if q.quarantined:
        params["quarantined"] = "true"
    return params


class RemoteBackend:
    """The same answers as LocalBackend, fetched from an intake server's staff API."""

    def __init__(self, server: str, token: str) -> None:
        import httpx  # only remote mode pays for the HTTP client

        self.server = server
        self._httpx = httpx
        self._client = httpx.Client(
            base_url=server,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "leadctl"},
            timeout=TIMEOUT_SECONDS,
        )

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        httpx = self._httpx
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise LeadctlError(
                f"{self.server} did not answer within {TIMEOUT_SECONDS:.0f} s"
            ) from None
        except httpx.ConnectError:
            raise LeadctlError(f"cannot reach {self.server}: is the server running?") from None
        except httpx.HTTPError as exc:
            raise LeadctlError(f"cannot reach {self.server}: {type(exc).__name__}") from None
        if response.status_code < 400:
            return response
        raise self._error(response.status_code, response)

    def _error(self, status: int, response: Any) -> LeadctlError:
        """The core error the server answered with (leadctl.errors.KINDS, by code or status)."""
        try:
            body = response.json()
            code = body.get("code") if isinstance(body.get("code"), str) else None
            pairs = [(e.get("field"), str(e.get("message"))) for e in body.get("errors") or []]
        except (ValueError, AttributeError, TypeError):
            code, pairs = None, []
        exc = from_answer(status, code, pairs)
        if isinstance(exc, AuthError):
            return AuthError(
                f"{self.server} refused the token ({exc}); "
                f"run: leadctl login --server {self.server}"
            )
        if status >= 500 and not isinstance(exc, StorageUnavailable):
            return LeadctlError(f"{self.server} failed ({exc}); try again later")
        return exc

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    @staticmethod
    def _lead_path(ident: str, suffix: str = "") -> str:
        return f"/api/v1/leads/{quote(str(ident).strip(), safe='')}{suffix}"

    def close(self) -> None:
        self._client.close()

    def me(self) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", "/api/v1/me")
        return result

    def _pages(self, query: LeadQuery, with_total: bool = False) -> Iterator[dict[str, Any]]:
        params = _query_params(query)
        if with_total:
            params["total"] = "true"
        cursor: str | None = None
        remaining = query.limit
        while remaining is None or remaining > 0:
            page_size = PAGE if remaining is None else min(PAGE, remaining)
            page_params = {**params, "limit": str(page_size)}
            if cursor:
                page_params["cursor"] = cursor
            body = self._json("GET", "/api/v1/leads", params=page_params)
            yield body
            params.pop("total", None)  # counted once, on the first page
            if remaining is not None:
                remaining -= len(body["items"])
            cursor = body.get("next_cursor")
            if not cursor:
                return

    def list_leads(
        self, query: LeadQuery, with_total: bool = False
    ) -> tuple[list[dict[str, Any]], int | None]:
        items: list[dict[str, Any]] = []
        total = None
        for page in self._pages(query, with_total):
            total = page["total"] if total is None else total
            items.extend(page["items"])
        return items, total

    def iter_leads(self, query: LeadQuery) -> Generator[dict[str, Any], None, None]:
        for page in self._pages(query):
            yield from page["items"]

    def count_leads(self, query: LeadQuery) -> int:
        params = {**_query_params(query), "limit": "1", "total": "true"}
        return int(self._json("GET", "/api/v1/leads", params=params)["total"])

    def show(self, ident: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", self._lead_path(ident))
        return result

    def resume(self, ident: str) -> ResumeFile:
        response = self._request("GET", self._lead_path(ident, "/resume"))
        disposition = response.headers.get("content-disposition", "")
        match = re.search(r"filename\*=UTF-8''([^;]+)", disposition)
        name = unquote(match.group(1)) if match else "resume"
        name = re.split(r"[\\/]", name)[-1].strip(". ") or "resume"  # never a path
        content_type = response.headers.get("content-type", "application/octet-stream")
        return ResumeFile(name, content_type.split(";")[0], response.content)

    def _change(self, ident: str, suffix: str, body: dict[str, Any]) -> Outcome:
        data = self._json("POST", self._lead_path(ident, suffix), json=body)
        return Outcome(data["lead"], data["changed"], data["message"])

    def change_state(self, ident: str, action: Action, note: str | None, dry_run: bool) -> Outcome:
        return self._change(ident, f"/{action.value}", {"note": note, "dry_run": dry_run})

    def add_note(self, ident: str, text: str) -> Outcome:
        return self._change(ident, "/notes", {"text": text})

    def assign(self, ident: str, attorney_email: str) -> Outcome:
        return self._change(ident, "/assign", {"attorney": attorney_email})

    def stats(self, since: datetime | None) -> dict[str, Any]:
        params = {"since": iso(since) or ""} if since else {}
        result: dict[str, Any] = self._json("GET", "/api/v1/stats", params=params)
        return result

    def conflicts(self, names: list[str], lead: str | None, limit: int) -> dict[str, Any]:
        # POST: the names a firm checks stay out of URLs and so out of every access log.
        body = {"names": names, "lead": lead, "limit": limit}
        result: dict[str, Any] = self._json("POST", "/api/v1/conflicts", json=body)
        return result
