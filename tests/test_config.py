"""One set of sources for the server and every command (environment, then an env file), and
`leadctl config` / `leadctl config check`, through the real `leadctl` executable."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadctl.settings import Settings, SettingsError, read_sources
from tests.conftest import BIN, SmtpSink, free_port, postgres_schema, submit, wait_until

GOOD = {
    "LEADS_FROM_EMAIL": "leads@firm.example",
    "LEADS_INTAKE_EMAIL": "intake@firm.example",
}


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADS_", "LEADCTL_"))}
    env.update(
        {
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "LEADCTL_ACTOR": "ann@firm.example",
            "COLUMNS": "200",
        }
    )
    env.update(extra)
    return env


def leadctl(
    tmp_path: Path, *args: str, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """The real executable; a bound of 60 s only so that a hang fails instead of waiting."""
    return subprocess.run(
        [str(BIN / "leadctl"), *args],
        cwd=cwd or tmp_path,
        env=base_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def folder(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_env(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("leadctl: error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def problems(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("problem: ")]


def output_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def make_database(tmp_path: Path, url: str) -> None:
    result = leadctl(tmp_path, "--db", url, "db", "upgrade")
    assert result.returncode == 0, result.stderr


# -- one database, wherever the server and leadctl are started ----------------------------------


class Served:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[object]:
    started: list[subprocess.Popen[bytes]] = []

    def start(cwd: Path, *global_args: str, workers: int = 1, **env: str) -> Served:
        port = free_port()
        log = tmp_path / f"serve-{port}.log"
        args = ["serve", "--port", str(port), "--workers", str(workers)]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(BIN / "leadctl"), *global_args, *args],
                cwd=cwd,
                env=base_env(tmp_path, **env),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append(proc)
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                return httpx.get(f"{url}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 30, "the server to answer /health")
        return Served(proc, url, log)

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


SERVER_FILE = """\
# the firm's settings
LEADS_MAIL_DIR=mail
LEADS_RATE_LIMIT=off
LEADS_MIN_FILL_SECONDS=0
LEADS_MAIL_RETRY_SECONDS=0.05
LEADS_FROM_EMAIL=leads@firm.example
LEADS_INTAKE_EMAIL=intake@firm.example
"""


@pytest.mark.parametrize(
    "how",
    [
        "sqlite, ./.env beside the server",
        pytest.param("postgres, --env-file, 2 workers", marks=pytest.mark.postgres),
    ],
)
def test_the_server_and_leadctl_in_other_folders_use_the_env_files_database(
    tmp_path: Path, serve: object, how: str
) -> None:
    srv = folder(tmp_path, "srv")
    elsewhere = folder(tmp_path, "elsewhere")
    postgres = how.startswith("postgres")
    with postgres_schema() if postgres else contextlib.nullcontext("") as pg_url:
        database = f"LEADS_DATABASE_URL={pg_url or 'sqlite:///leads.db'}\n"
        env_file = write_env(srv / ".env", SERVER_FILE + database)
        if pg_url:
            make_database(tmp_path, pg_url)
            # Started in a third folder: only the exported LEADS_ENV_FILE tells the workers.
            server = serve(folder(tmp_path, "a"), "--env-file", "../srv/.env", workers=2)  # type: ignore[operator]
        else:
            server = serve(srv)  # type: ignore[operator]
        with httpx.Client(base_url=server.url) as client:
            assert submit(client, email="jane@example.com").status_code == 201

        by_option = leadctl(tmp_path, "--env-file", "../srv/.env", "list", "--json", cwd=elsewhere)
        by_variable = leadctl(
            tmp_path, "list", "--json", cwd=elsewhere, LEADS_ENV_FILE=str(env_file)
        )
        for result in (by_option, by_variable):
            assert result.returncode == 0, result.stderr
            assert [lead["email"] for lead in json.loads(result.stdout)] == ["jane@example.com"]
        # The relative mail folder is the file's too: both emails land beside it.
        wait_until(lambda: len(list((srv / "mail").glob("*.eml"))) == 2, 20, "two .eml files")
        shown = leadctl(tmp_path, "config", "--json", cwd=elsewhere, LEADS_ENV_FILE=str(env_file))
        if not pg_url:
            assert json.loads(shown.stdout)["database"] == str(srv / "leads.db")
            assert (srv / "leads.db").exists()
    assert not list(elsewhere.iterdir())
    assert not (tmp_path / "a").exists() or not list((tmp_path / "a").iterdir())


def test_a_relative_path_from_the_environment_stays_relative_to_the_working_folder(
    tmp_path: Path,
) -> None:
    write_env(tmp_path / "conf" / "leads.env", "LEADS_MAIL_DIR=mail\n")
    here = folder(tmp_path, "here")
    result = leadctl(
        tmp_path,
        "--env-file",
        "../conf/leads.env",
        "config",
        "--json",
        cwd=here,
        LEADS_DATABASE_URL="sqlite:///mine.db",
    )
    data = output_json(result)
    settings = data["settings"]
    assert settings["LEADS_DATABASE_URL"] == {
        "value": "sqlite:///mine.db",
        "source": "environment",
        "line": None,
    }
    assert data["database"] == str(here / "mine.db")
    assert settings["LEADS_MAIL_DIR"]["value"] == str(tmp_path / "conf" / "mail")
    assert data["env_file"] == str(tmp_path / "conf" / "leads.env")
    assert data["env_file_from"] == "--env-file"


# -- leadctl config ------------------------------------------------------------------------------


def test_the_environment_beats_the_file_and_config_names_each_source(tmp_path: Path) -> None:
    write_env(
        tmp_path / ".env",
        "LEADS_RATE_LIMIT=5/hour\nLEADS_METRICS=on\nLEADS_SMTP_PASSWORD='pw in file'\n",
    )
    result = leadctl(tmp_path, "config", "--json", LEADS_RATE_LIMIT="7/minute")
    data = output_json(result)
    settings = data["settings"]
    assert settings["LEADS_RATE_LIMIT"] == {
        "value": "7/minute",
        "source": "environment",
        "line": None,
    }
    assert settings["LEADS_METRICS"] == {"value": True, "source": "file", "line": 2}
    assert settings["LEADS_SMTP_PASSWORD"] == {"value": "***", "source": "file", "line": 3}
    assert settings["LEADS_MAIL_BACKEND"] == {"value": "file", "source": "default", "line": None}
    assert data["env_file_from"] == "./.env"
    assert "pw in file" not in result.stdout + result.stderr

    table = leadctl(tmp_path, "config", LEADS_RATE_LIMIT="7/minute")
    assert table.returncode == 0, table.stderr
    rows = {line.split("\t")[0]: line.split("\t")[1:] for line in table.stdout.splitlines()}
    assert rows["LEADS_RATE_LIMIT"] == ["7/minute", "environment"]
    assert rows["LEADS_METRICS"] == ["true", "file, line 2"]
    assert rows["LEADS_SMTP_PASSWORD"] == ["***", "file, line 3"]
    assert f"database: {tmp_path / 'leads.db'}" in table.stdout.splitlines()
    assert "pw in file" not in table.stdout + table.stderr

    check = leadctl(tmp_path, "config", "check", LEADS_RATE_LIMIT="7/minute")
    assert any(
        "LEADS_RATE_LIMIT is set in the environment, which wins" in line
        for line in check.stdout.splitlines()
    )


def test_config_masks_passwords_from_the_environment_and_in_a_database_url(tmp_path: Path) -> None:
    result = leadctl(
        tmp_path,
        "config",
        "--json",
        LEADS_SMTP_PASSWORD="hunter2",
        LEADS_DATABASE_URL="postgresql://leads:hunter2@db.firm.example:5432/leads",
    )
    data = output_json(result)
    settings = data["settings"]
    assert settings["LEADS_SMTP_PASSWORD"]["value"] == "***"
    assert settings["LEADS_DATABASE_URL"]["value"] == (
        "postgresql://leads:***@db.firm.example:5432/leads"
    )
    assert "hunter2" not in result.stdout + result.stderr
    # --db is a source of its own, and its password is masked too.
    by_option = leadctl(tmp_path, "--db", "postgresql://u:hunter2@127.0.0.1/x", "config", "--json")
    option = output_json(by_option)["settings"]
    assert option["LEADS_DATABASE_URL"] == {
        "value": "postgresql://u:***@127.0.0.1/x",
        "source": "option",
        "line": None,
    }
    assert "hunter2" not in by_option.stdout + by_option.stderr


def test_an_empty_password_is_shown_empty_not_masked(tmp_path: Path) -> None:
    settings = output_json(leadctl(tmp_path, "config", "--json"))["settings"]
    assert settings["LEADS_SMTP_PASSWORD"]["value"] == ""
    assert output_json(leadctl(tmp_path, "config", "--json"))["env_file"] is None


def test_the_env_file_format(tmp_path: Path) -> None:
    write_env(
        tmp_path / "leads.env",
        "\ufeff# a comment, then a blank line\n"
        "\n"
        "export LEADS_SMTP_USER=leads@firm.example\n"
        "LEADS_SMTP_HOST = smtp.firm.example   # an inline comment\n"
        "LEADS_FROM_EMAIL='a # is kept in quotes'\n"
        'LEADS_INTAKE_EMAIL="say \\"hi\\" \\\\ $HOME ${USER}"\n'
        "LEADS_FRAME_ANCESTORS=https://www.firm.example\r\n"
        "LEADS_SMTP_PORT=25\n"
        "LEADS_SMTP_PORT=2525\n"
        "LEADS_TRUSTED_PROXIES=\n"
        "OTHER_TOOL_SETTING=ignored\n",
    )
    data = output_json(leadctl(tmp_path, "--env-file", "leads.env", "config", "--json"))
    settings = data["settings"]
    values = {name: item["value"] for name, item in settings.items()}
    assert values["LEADS_SMTP_USER"] == "leads@firm.example"
    assert values["LEADS_SMTP_HOST"] == "smtp.firm.example"
    assert values["LEADS_FROM_EMAIL"] == "a # is kept in quotes"
    assert values["LEADS_INTAKE_EMAIL"] == 'say "hi" \\ $HOME ${USER}'  # nothing expanded
    assert values["LEADS_FRAME_ANCESTORS"] == "https://www.firm.example"
    assert values["LEADS_SMTP_PORT"] == 2525  # the last one counts
    assert settings["LEADS_SMTP_PORT"]["line"] == 9
    assert settings["LEADS_TRUSTED_PROXIES"]["source"] == "default"  # empty means unset
    check = leadctl(tmp_path, "--env-file", "leads.env", "config", "check")
    assert "LEADS_SMTP_PORT is set on lines 8, 9; the last one counts" in check.stdout


def test_leadctl_settings_in_an_env_file_are_not_read(tmp_path: Path) -> None:
    """LEADCTL_* are one person's (token, server): a shared settings file does not set them."""
    write_env(
        tmp_path / ".env",
        "LEADCTL_SERVER=http://127.0.0.1:9\nLEADCTL_TOKEN=secret-token\nLEADS_DATABSE_URL=x\n",
    )
    whoami = leadctl(tmp_path, "--db", f"sqlite:///{tmp_path}/none.db", "config", "--json")
    assert output_json(whoami)["settings"]
    check = leadctl(tmp_path, "config", "check")
    assert check.returncode == 1
    out = check.stdout
    assert "LEADCTL_SERVER is not read from an env file" in out
    assert "LEADCTL_TOKEN is not read from an env file" in out
    assert "secret-token" not in out + check.stderr
    assert "line 3: LEADS_DATABSE_URL is not a setting (a typo?)" in out


# -- leadctl config check ------------------------------------------------------------------------


def test_config_check_passes_on_a_good_setup(tmp_path: Path) -> None:
    srv = folder(tmp_path, "srv")
    write_env(srv / "leads.env", "LEADS_DATABASE_URL=sqlite:///leads.db\n" + SERVER_FILE)
    make_database(tmp_path, f"sqlite:///{srv}/leads.db")
    result = leadctl(tmp_path, "--env-file", "srv/leads.env", "config", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert problems(result) == []
    assert result.stderr.startswith("no problems; checked: ")
    assert str(srv / "leads.db") in result.stderr
    data = output_json(
        leadctl(tmp_path, "--env-file", "srv/leads.env", "config", "check", "--json")
    )
    assert data["ok"] is True and data["problems"] == []


def test_config_check_lists_one_line_per_problem(tmp_path: Path) -> None:
    write_env(
        tmp_path / ".env",
        "LEADS_RATE_LIMIT=lots\n"
        "LEADS_TRUSTED_PROXIES=not-a-network\n"
        "LEADS_MAIL_BACKEND=pigeon\n"
        "LEADS_MAX_RESUME_MB=-1\n"
        "LEADS_DATABASE_URL=sqlite://leads.db\n"
        "LEADS_FROM_EMAIL=not an address\n",
    )
    result = leadctl(tmp_path, "config", "check")
    assert result.returncode == 1, result
    found = problems(result)
    assert len(found) == 6, result.stdout
    expected = [
        "LEADS_RATE_LIMIT must look like 10/minute or be off, not 'lots'",
        "LEADS_TRUSTED_PROXIES: 'not-a-network' is not an address or network",
        "LEADS_MAIL_BACKEND must be file or smtp, not 'pigeon'",
        "LEADS_MAX_RESUME_MB must be a finite number, not negative, not '-1'",
        "is not a SQLite URL",
        "LEADS_FROM_EMAIL: 'not an address' is not a deliverable address",
    ]
    for text in expected:
        assert len([line for line in found if text in line]) == 1, text
    assert result.stderr.startswith("6 problem(s), 1 warning(s); checked: ")
    # The same settings stop any other command at once, in one line.
    first = one_error_line(leadctl(tmp_path, "list"))
    assert first.removeprefix("leadctl: error: ") in [p.removeprefix("problem: ") for p in found]
    # And `config` still shows them all, the bad ones as written.
    shown = leadctl(tmp_path, "config")
    assert shown.returncode == 1
    assert "LEADS_RATE_LIMIT\tlots\tfile, line 1" in shown.stdout
    assert "leadctl: error: LEADS_RATE_LIMIT must look like" in shown.stderr


def test_smtp_addresses_must_be_deliverable(tmp_path: Path) -> None:
    file_backend = leadctl(tmp_path, "config", "check")
    assert (
        "warning: LEADS_FROM_EMAIL: 'leads@localhost' is not a deliverable" in file_backend.stdout
    )
    assert not any("FROM_EMAIL" in line for line in problems(file_backend))
    smtp = leadctl(tmp_path, "config", "check", LEADS_MAIL_BACKEND="smtp")
    assert any("LEADS_FROM_EMAIL: 'leads@localhost'" in line for line in problems(smtp))
    assert any("LEADS_INTAKE_EMAIL: 'intake@localhost'" in line for line in problems(smtp))


def test_config_check_creates_no_database_and_no_mail_folder(tmp_path: Path) -> None:
    result = leadctl(tmp_path, "config", "check", LEADS_MAIL_DIR="outgoing/mail", **GOOD)
    assert result.returncode == 1
    assert problems(result) == [
        f"problem: no leadctl database: {tmp_path / 'leads.db'} does not exist; point leadctl at "
        "yours with --db URL or LEADS_DATABASE_URL (e.g. --db sqlite:////srv/leads/leads.db), or "
        "make a new one with leadctl db upgrade"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_config_check_reports_an_unreachable_postgresql(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    result = leadctl(tmp_path, "--db", url, "config", "check", **GOOD)
    assert result.returncode == 1
    (line,) = problems(result)
    assert line.startswith(f"problem: the database {url} cannot be used: ")


def test_config_check_reports_a_schema_behind(tmp_path: Path) -> None:
    from leadctl.schema import SCHEMA_VERSION

    url = f"sqlite:///{tmp_path}/old.db"
    make_database(tmp_path, url)
    with contextlib.closing(sqlite3.connect(tmp_path / "old.db")) as conn:
        conn.execute("UPDATE schema_version SET version = 1")
        conn.commit()
    result = leadctl(tmp_path, "--db", url, "config", "check", **GOOD)
    assert result.returncode == 1
    assert problems(result) == [
        f"problem: the database {tmp_path / 'old.db'} is at schema version 1, this leadctl needs "
        f"{SCHEMA_VERSION}: back it up, then run leadctl db upgrade"
    ]


def test_config_check_with_smtp_logs_in_and_reports_a_refused_login(tmp_path: Path) -> None:
    sink = SmtpSink(free_port(), login=("leads@firm.example", "right"))
    sink.start()
    try:
        make_database(tmp_path, f"sqlite:///{tmp_path}/leads.db")
        smtp = {
            **GOOD,
            "LEADS_MAIL_BACKEND": "smtp",
            "LEADS_SMTP_HOST": "127.0.0.1",
            "LEADS_SMTP_PORT": str(sink.port),
            "LEADS_SMTP_STARTTLS": "false",
            "LEADS_SMTP_USER": "leads@firm.example",
            "LEADS_SMTP_TIMEOUT": "5",
        }
        refused = leadctl(
            tmp_path, "config", "check", "--smtp", LEADS_SMTP_PASSWORD="wrong", **smtp
        )
        assert refused.returncode == 1
        (line,) = problems(refused)
        assert "SMTP authentication as 'leads@firm.example' failed" in line and "535" in line
        assert "wrong" not in refused.stdout + refused.stderr
        accepted = leadctl(
            tmp_path, "config", "check", "--smtp", LEADS_SMTP_PASSWORD="right", **smtp
        )
        assert accepted.returncode == 0, accepted.stdout
        assert "SMTP 127.0.0.1" in accepted.stderr
        # Without --smtp, no connection is made: a closed port is no problem then.
        closed = {**smtp, "LEADS_SMTP_PORT": str(free_port()), "LEADS_SMTP_PASSWORD": "x"}
        assert leadctl(tmp_path, "config", "check", **closed).returncode == 0
        assert sink.received == []
    finally:
        sink.stop()


# -- bad and hostile env files -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            b"LEADS_RATE_LIMIT=off\nthis is not a setting\n",
            "line 2: expected KEY=value, not 'this is not a setting'",
        ),
        (b"LEADS_FROM_EMAIL='open\n", "line 1: a value that opens with ' must close with it"),
        (b'LEADS_FROM_EMAIL="a" b\n', 'line 1: a value that opens with " must close with it'),
        (b"9LEADS=x\n", "line 1: expected KEY=value"),
        (b"LEADS_RATE_LIMIT=off\n\xff\xfe=1\n", "line 2: not UTF-8 text"),
        (b"#" * (1024 * 1024 + 1), "is over 1 MiB: not a settings file"),
    ],
)
def test_a_malformed_env_file_is_one_line_naming_the_file_and_line(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "bad.env"
    path.write_bytes(content)
    for args in (["list"], ["config"], ["config", "check"], ["serve", "--port", str(free_port())]):
        line = one_error_line(leadctl(tmp_path, "--env-file", "bad.env", *args))
        assert str(path) in line and expected in line, line


def test_an_env_file_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    missing = one_error_line(leadctl(tmp_path, "--env-file", "nope.env", "config"))
    assert f"env file {tmp_path / 'nope.env'} (from --env-file) cannot be read" in missing
    folder(tmp_path, "dir.env")
    by_variable = leadctl(tmp_path, "list", LEADS_ENV_FILE="dir.env")
    assert "(from LEADS_ENV_FILE) cannot be read: Is a directory" in one_error_line(by_variable)
    assert "needs the path of a file" in one_error_line(
        leadctl(tmp_path, "--env-file", "", "config")
    )


def test_hostile_values_in_an_env_file_print_escaped(tmp_path: Path) -> None:
    long = "A" * 200_000
    write_env(
        tmp_path / ".env",
        "LEADS_FROM_EMAIL=\x1b]8;;http://evil.example\x07click\x1b]8;;\x07\n"
        "LEADS_INTAKE_EMAIL=\u202eevil@firm.example\n"
        "LEADS_FRAME_ANCESTORS=[link=http://evil.example]x[/link]\n"
        f"LEADS_RATE_LIMIT=\x1b[2J{long}\n",
    )
    for args in (["config"], ["config", "--json"], ["config", "check"], ["list"]):
        for terminal in ("0", "1"):
            result = leadctl(tmp_path, *args, LEADCTL_FORCE_TTY=terminal)
            both = result.stdout + result.stderr
            assert "\x1b]8" not in both and "\x1b[2J" not in both and "\u202e" not in both, args
            assert "Traceback" not in both
            # An error never quotes a 200 kB value whole (`config` shows it, escaped, as data).
            assert long not in result.stderr
            if "check" in args:
                assert long not in result.stdout
    check = leadctl(tmp_path, "config", "check").stdout
    assert "\\x1b]8;;http://evil.example\\x07click" in check
    assert "not '\\x1b[2jaaaa" in check  # the rate is shown lowercased, escaped, cut short
    assert "[link=http://evil.example]x[/link]" in check  # shown as text, never a hyperlink
    # The bad line of a malformed file is escaped too.
    write_env(tmp_path / "bad.env", "\x1b[31mred\x1b[0m\n")
    line = one_error_line(leadctl(tmp_path, "--env-file", "bad.env", "config"))
    assert "\x1b" not in line and "\\x1b[31mred" in line


def test_the_asgi_app_started_by_hand_fails_in_one_line_on_a_bad_env_file(tmp_path: Path) -> None:
    write_env(tmp_path / "bad.env", "LEADS_RATE_LIMIT=lots\n")
    result = subprocess.run(
        [str(BIN / "uvicorn"), "intake.asgi:app", "--port", str(free_port())],
        cwd=tmp_path,
        env=base_env(tmp_path, LEADS_ENV_FILE=str(tmp_path / "bad.env")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "leadctl: error: LEADS_RATE_LIMIT must look like 10/minute or be off, not 'lots'" in (
        result.stderr.splitlines()
    )


# -- the sources, in-process ---------------------------------------------------------------------


def test_an_explicit_environ_reads_no_dot_env_of_its_own_accord(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("LEADS_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    write_env(tmp_path / ".env", "LEADS_RATE_LIMIT=3/hour\n")
    assert Settings.from_env({}).rate_limit == "10/minute"
    assert Settings.from_env().rate_limit == "3/hour"
    named = {"LEADS_ENV_FILE": str(tmp_path / ".env")}
    assert Settings.from_env(named).rate_limit == "3/hour"
    assert Settings.from_env(named, rate_limit="1/day").rate_limit == "1/day"
    assert read_sources({}, env_file=".env").origins["LEADS_RATE_LIMIT"].line == 1
    write_env(tmp_path / ".env", "nonsense\n")
    assert Settings.from_env({}).rate_limit == "10/minute"
    with pytest.raises(SettingsError, match="line 1: expected KEY=value"):
        Settings.from_env()


def test_a_folder_with_odd_characters_resolves_to_the_same_sqlite_file(tmp_path: Path) -> None:
    odd = folder(tmp_path, "my leads %41 #1")
    path = write_env(odd / ".env", "LEADS_DATABASE_URL=sqlite:///data/leads.db\n")
    settings = Settings.from_env({}, env_file=path)
    from leadctl.db import sqlite_path

    assert sqlite_path(settings.database_url) == str(odd / "data" / "leads.db")
