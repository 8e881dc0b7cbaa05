"""Shared fixtures: databases (SQLite and PostgreSQL), settings, a real SMTP sink, a live server."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadctl import db
from leadctl.models import database
from leadctl.schema import ensure_schema
from leadctl.settings import Settings

PG_URL = os.environ.get("LEADS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def at_once(work: Callable[[], Any], count: int, timeout: float = 60.0) -> list[Any]:
    """Run `work` on `count` threads that start together (a barrier), each with its own
    database connection, closed at its end: their results, in no order. Raises the first
    exception a thread raised; fails if one has not ended within `timeout` seconds."""
    start = threading.Barrier(count)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait(timeout)
            results.append(work())
        except BaseException as exc:
            errors.append(exc)
        finally:
            db.close_connection()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), f"a thread ran past {timeout} s"
    if errors:
        raise errors[0]
    return results


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends on `sock` until it closes the connection (a reset too)."""
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def send_raw(port: int, data: bytes, timeout: float) -> bytes:
    """Send `data` on a fresh connection and read until the server closes it (or `timeout`);
    the server may close first: what it answered is still read."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        return read_until_closed(sock)


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> Any:
    """Poll `condition` until it is truthy and return its value; fail naming `what` after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def erase_while_another_erasure_holds_its_locks(first: list[int], second: list[int]) -> None:
    """PostgreSQL: erase `first` in a transaction held open, then `second`, which must wait on
    one of the first's row locks before it goes on (checked in pg_stat_activity); then let both
    finish. Fails on any error either raised. Both as ann@firm.example."""
    from leadctl import erasure
    from leadctl.names import keyed_hash

    keyed_hash("")  # made now: neither erasure waits on the other to make the secret
    first_done, release = threading.Event(), threading.Event()
    waiting: list[int] = []
    errors: list[BaseException] = []

    def erase_first() -> None:
        try:
            with database.atomic():  # held open after its erasure: its locks stay
                assert erasure.erase_ids(first, "ann@firm.example", "asked").changed
                first_done.set()
                release.wait(60)
        except BaseException as exc:
            errors.append(exc)
        finally:
            first_done.set()
            db.close_connection()

    def then_second() -> None:
        try:
            first_done.wait(60)
            waiting.append(database.execute_sql("SELECT pg_backend_pid()").fetchone()[0])
            assert erasure.erase_ids(second, "ann@firm.example", "asked").changed
        except BaseException as exc:
            errors.append(exc)
        finally:
            db.close_connection()

    def second_waits() -> bool:
        sql = "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s"
        return bool(waiting) and database.execute_sql(sql, (waiting[0],)).fetchone()[0] == "Lock"

    threads = [threading.Thread(target=erase_first), threading.Thread(target=then_second)]
    for t in threads:
        t.start()
    try:
        wait_until(second_waits, 30, "the second erasure to wait for the first's lock")
    finally:
        release.set()
        for t in threads:
            t.join(60)
    assert errors == []


def outbox_statuses(tmp_path: Path) -> list[str]:
    """The outbox's statuses in the SQLite database of `make_settings(tmp_path)`."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(tmp_path / "leads.db")) as conn:
        return [row[0] for row in conn.execute("SELECT status FROM outbox_message")]


_pg_status: dict[str, str | None] = {}


def postgres_unavailable() -> str | None:
    """None when PostgreSQL answers, else why not (checked once per test process)."""
    if "reason" not in _pg_status:
        try:
            import psycopg

            psycopg.connect(PG_URL, connect_timeout=3).close()
            _pg_status["reason"] = None
        except Exception as exc:
            _pg_status["reason"] = f"no PostgreSQL at {PG_URL}: {type(exc).__name__}"
    return _pg_status["reason"]


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh, private schema; yields a database URL whose search_path points at it."""
    reason = postgres_unavailable()
    if reason:
        if IN_CI:
            pytest.fail(f"{reason} — CI must run the PostgreSQL tests")
        pytest.skip(reason)
    import psycopg

    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        _drop_schema(schema)


def _drop_schema(schema: str) -> None:
    """Drop a test's schema even while servers of the test still use it: end the sessions that
    hold locks in it, and try again if the drop still meets one of them (a deadlock)."""
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        for attempt in range(5):
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND query LIKE %s",
                (f"%{schema}%",),
            )
            conn.execute(
                "SELECT pg_terminate_backend(l.pid) FROM pg_locks l "
                "JOIN pg_class c ON c.oid = l.relation "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND l.pid <> pg_backend_pid()",
                (schema,),
            )
            try:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")  # a test may drop it
                return
            except (psycopg.errors.DeadlockDetected, psycopg.errors.LockNotAvailable):
                if attempt == 4:
                    raise


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each storage test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/leads.db"
    else:
        with postgres_schema() as url:
            yield url


def make_settings(tmp_path: Path, url: str | None = None, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "database_url": url or f"sqlite:///{tmp_path}/leads.db",
        "mail_dir": str(tmp_path / "mail"),
        "mail_retry_seconds": 0.05,
        "rate_limit": "off",  # tests of the limit turn it on
        "refusal_delay_seconds": 0.0,
        "min_fill_seconds": 0.0,  # tests of the form timing turn it on
    }
    base.update(overrides)
    return Settings.from_env({}, **base)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def core(db_url: str, tmp_path: Path) -> Iterator[Settings]:
    """The core bound to a fresh database (SQLite and PostgreSQL)."""
    s = make_settings(tmp_path, db_url)
    db.bind(s.database_url)
    ensure_schema()
    yield s
    database.obj.close()


@pytest.fixture
def sqlite_core(settings: Settings) -> Iterator[Settings]:
    db.bind(settings.database_url)
    ensure_schema()
    yield settings
    database.obj.close()


# -- keyrings ------------------------------------------------------------------------------------


@pytest.fixture
def memory_keyring() -> Iterator[Any]:
    """An in-memory keyring backend for the test's duration."""
    import keyring

    from tests.keyrings import MemoryKeyring

    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def no_keyring() -> Iterator[None]:
    """No working keyring backend, as on headless Linux."""
    import keyring

    from tests.keyrings import NoKeyring

    previous = keyring.get_keyring()
    keyring.set_keyring(NoKeyring())
    yield
    keyring.set_keyring(previous)


# -- a real SMTP server ---------------------------------------------------------------------------


def closing_controller(factory: Any = None) -> Any:
    """An aiosmtpd Controller class whose stop() first closes every session still open.

    The delivery process keeps its SMTP connections open between messages; a sink stopped
    while one is open would leave its socket to the garbage collector (a ResourceWarning,
    an error under `-W error`). `factory(controller)` makes the SMTP instance, if given.
    """
    import asyncio

    from aiosmtpd.controller import Controller

    class ClosingController(Controller):  # type: ignore[misc]
        def factory(self) -> Any:
            smtp = factory(self) if factory is not None else super().factory()
            self.__dict__.setdefault("sessions", []).append(smtp)
            return smtp

        def stop(self, no_assert: bool = False) -> None:
            async def close_sessions() -> None:
                for smtp in self.__dict__.get("sessions", []):
                    if smtp.transport is not None:
                        smtp.transport.close()
                await asyncio.sleep(0)  # connection_lost runs: the sockets are closed
                await asyncio.sleep(0)

            if self.loop.is_running():
                asyncio.run_coroutine_threadsafe(close_sessions(), self.loop).result(10)
            super().stop(no_assert)

    return ClosingController


@dataclass
class SmtpSink:
    """aiosmtpd on 127.0.0.1; collects what it receives; can refuse chosen recipients."""

    port: int
    refuse: set[str] = field(default_factory=set)
    login: tuple[str, str] | None = None  # (user, password) to require AUTH
    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _controller: Any = None

    def start(self) -> None:
        sink = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
                if address in sink.refuse:
                    return "550 5.1.1 no such user here"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
                msg = message_from_bytes(
                    envelope.original_content or envelope.content, policy=policy.default
                )
                with sink._cond:
                    sink.received.append((list(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
                    sink._cond.notify_all()
                return "250 Message accepted"

        kwargs: dict[str, Any] = {}
        if self.login is not None:
            from aiosmtpd.smtp import AuthResult, LoginPassword

            def authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
                ok = (
                    isinstance(auth_data, LoginPassword)
                    and (
                        auth_data.login.decode(),
                        auth_data.password.decode(),
                    )
                    == self.login
                )
                if ok:
                    return AuthResult(success=True)
                return AuthResult(
                    success=False, handled=False, message="535 5.7.8 Authentication failed"
                )

            kwargs = {"authenticator": authenticator, "auth_require_tls": False}
        controller = closing_controller()
        self._controller = controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[list[str], EmailMessage]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self.received)


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink(free_port())
    sink.start()
    yield sink
    sink.stop()


def smtp_settings(base: Settings, sink_port: int, **overrides: Any) -> Settings:
    return base.replace(
        mail_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=sink_port,
        smtp_starttls=False,
        smtp_ssl=False,
        smtp_user="",
        smtp_timeout=5.0,
        **overrides,
    )


# -- a real server under uvicorn -----------------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    env: dict[str, str]
    cwd: Path
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, workers: int = 1, timeout: float = 20.0) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(BIN / "leadctl"),
                    "serve",
                    "--port",
                    str(self.port),
                    "--workers",
                    str(workers),
                ],
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log.read_text()[-2000:]}")

    def wait_log(self, text: str, timeout: float = 5.0) -> str:
        """The server's log once it contains `text` (lines are written after the response)."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.log.read_text(errors="replace")
            if text in log or time.monotonic() > deadline:
                return log
            time.sleep(0.05)

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def server_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADS_", "LEADCTL_"))}
    for f in settings.__dataclass_fields__.values():
        value = getattr(settings, f.name)
        env[f.metadata["env"]] = str(value).lower() if isinstance(value, bool) else str(value)
    env.update(extra)
    return env


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Any]:
    """Factory: start a real `leadctl serve` for these settings; stopped after the test."""
    servers: list[LiveServer] = []

    def start(s: Settings, workers: int = 1, **extra_env: str) -> LiveServer:
        port = free_port()
        server = LiveServer(
            url=f"http://127.0.0.1:{port}",
            env=server_env(s, **extra_env),
            cwd=tmp_path,
            port=port,
            log=tmp_path / f"server-{port}.log",
        )
        server.start(workers)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def submit(
    client: Any,
    *,
    first: str = "Jane",
    last: str = "Doe",
    email: str = "jane@example.com",
    resume: bytes | None = None,
    filename: str = "cv.pdf",
    content_type: str = "application/pdf",
    website: str | None = None,
    consent: str | None = "true",
    **kw: Any,
) -> Any:
    from tests import samples

    files = {"resume": (filename, samples.pdf() if resume is None else resume, content_type)}
    data = {"first_name": first, "last_name": last, "email": email}
    if consent is not None:  # the disclaimer accepted, as the form's box and API clients do
        data["consent"] = consent
    if website is not None:
        data["website"] = website
    return client.post("/api/v1/leads", data=data, files=files, **kw)


# -- the CLI --------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return {
        "LEADS_DATABASE_URL": f"sqlite:///{tmp_path}/leads.db",
        "LEADS_MAIL_DIR": str(tmp_path / "mail"),
        "LEADCTL_ACTOR": "ann@firm.example",
        "COLUMNS": "200",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, cli_env: dict[str, str]) -> Any:
    from tests.cli_harness import Cli

    return Cli(monkeypatch, cli_env)


class Seeded(list):  # type: ignore[type-arg]
    """The seeded leads, with each attorney's API token in `.tokens`."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: dict[str, str] = {}


@pytest.fixture
def seeded(cli_env: dict[str, str]) -> Iterator[Seeded]:
    """Two attorneys and three leads (Zoë, Paul, Li) in the CLI's database; yields the leads."""
    from leadctl import attorneys, submissions
    from leadctl.resumes import check_resume
    from leadctl.validation import check_prospect
    from tests import samples

    s = Settings.from_env(
        {}, database_url=cli_env["LEADS_DATABASE_URL"], mail_dir=cli_env["LEADS_MAIL_DIR"]
    )
    db.bind(s.database_url)
    ensure_schema()
    made = Seeded()
    for name, email, role in (
        ("Ann Lee", "ann@firm.example", "admin"),
        ("Bob Roe", "bob@firm.example", "attorney"),
    ):
        made.tokens[email] = attorneys.add(name, email, role)[1].secret
    for first, last, email in (
        ("Zoë", "Ñúñez", "zoe@example.com"),
        ("Paul", "Smith", "paul@example.com"),
        ("Li", "Lei", "li@example.com"),
    ):
        resume = check_resume("cv.pdf", samples.pdf(3000), s.max_resume_bytes)
        made.append(submissions.submit(check_prospect(first, last, email), resume, s).lead)
    database.obj.close()
    yield made
    database.obj.close()


@dataclass
class ThreadServer:
    """uvicorn serving create_app(settings) from a thread of the test process, on a free port."""

    url: str
    server: Any
    thread: threading.Thread


@contextlib.contextmanager
def serve_in_thread(settings: Settings) -> Iterator[ThreadServer]:
    import uvicorn

    from intake import create_app

    port = free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws="none",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the in-thread server did not start")
        time.sleep(0.01)
    try:
        yield ThreadServer(f"http://127.0.0.1:{port}", server, thread)
    finally:
        server.should_exit = True
        thread.join(10)


def _outbox_idle() -> bool:
    """No message waits: what the delivery process writes (events, statuses) is all written."""
    from leadctl.models import OutboxMessage

    try:
        return (
            not OutboxMessage.select()
            .where(OutboxMessage.status.in_(("pending", "sending")))
            .exists()
        )
    finally:
        database.obj.close()


@pytest.fixture(params=["local", "remote"])
def lead_cli(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, cli_env: dict[str, str]
) -> Iterator[Any]:
    """The CLI in local mode, or in remote mode against a real server on the same database.

    `lead_cli.acting_as(email)` gives the environment that makes a command act as that
    attorney: LEADCTL_ACTOR locally, their own token remotely.
    """
    with cli_in_mode(request, monkeypatch, cli_env) as cli:
        yield cli


@contextlib.contextmanager
def cli_in_mode(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    cli_env: dict[str, str],
    **settings: str,
) -> Iterator[Any]:
    """`lead_cli` for `request.param` ("local" or "remote"), with `settings` (Settings field
    names, e.g. attorney_scope="own") in both the local environment and the server's."""
    from tests.cli_harness import Cli

    if request.param == "local":
        named = {f"LEADS_{key.upper()}": value for key, value in settings.items()}
        cli = Cli(monkeypatch, {**cli_env, **named})
        cli.acting_as = lambda email: {"LEADCTL_ACTOR": email}  # type: ignore[attr-defined]
        yield cli
        return
    seeded: Seeded = request.getfixturevalue("seeded")
    server_settings = Settings.from_env(
        {},
        database_url=cli_env["LEADS_DATABASE_URL"],
        mail_dir=cli_env["LEADS_MAIL_DIR"],
        **settings,  # type: ignore[arg-type]
    )
    with serve_in_thread(server_settings) as server:
        wait_until(_outbox_idle, 15, "the server's delivery process to send the seeded mail")
        env = {
            **cli_env,
            "LEADCTL_SERVER": server.url,
            "LEADCTL_TOKEN": seeded.tokens["ann@firm.example"],
        }
        cli = Cli(monkeypatch, env)
        cli.acting_as = lambda email: {"LEADCTL_TOKEN": seeded.tokens[email]}  # type: ignore[attr-defined]
        yield cli


# -- a browser ------------------------------------------------------------------------------------

# Debian's Chromium, driven by Playwright (whose own browser download cannot work here).
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def page() -> Iterator[Any]:
    """A page in headless Chromium; skips, saying why, where there is none."""
    if CHROMIUM is None:
        pytest.skip("no Chromium here (.ci/run installs Debian's chromium package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser.new_page()
        browser.close()
