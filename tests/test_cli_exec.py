"""The installed `leadctl` executable: piped output, exit codes, stdin batches, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

LEADCTL = str(Path(sys.executable).parent / "leadctl")


def run(
    args: list[str], env: dict[str, str], input: str | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADS_", "LEADCTL_"))}
    full_env.update(env)
    return subprocess.run(
        [LEADCTL, *args], env=full_env, input=input, capture_output=True, text=True, timeout=60
    )


def test_piped_list_and_stdin_batch(cli_env: dict[str, str], seeded: list[Any]) -> None:
    listed = run(["list", "--ndjson", "--state", "pending"], cli_env)
    assert listed.returncode == 0
    assert len(listed.stdout.splitlines()) == 3
    done = run(["reach-out", "-", "--json"], cli_env, input=listed.stdout)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["changed"]) == 3
    plain = run(["list"], cli_env)
    assert all(line.split("\t")[4] == "REACHED_OUT" for line in plain.stdout.splitlines())
    assert "\x1b[" not in plain.stdout


def test_exit_codes(cli_env: dict[str, str], seeded: list[Any]) -> None:
    assert run(["show", str(seeded[0].id)], cli_env).returncode == 0
    missing = run(["show", "424242"], cli_env)
    assert (missing.returncode, missing.stderr) == (1, "leadctl: error: no lead 424242\n")
    usage = run(["list", "--limit", "zero"], cli_env)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
    assert run(["no-such-command"], cli_env).returncode == 2
    partial = run(["reach-out", str(seeded[0].id), "424242"], cli_env)
    assert partial.returncode == 1 and "is now REACHED_OUT" in partial.stdout


def test_closing_the_pipe_early_is_not_an_error(cli_env: dict[str, str], seeded: list[Any]) -> None:
    env = {**os.environ, **cli_env}
    proc = subprocess.run(
        f"'{LEADCTL}' list --all | head -n 1",
        shell=True,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_a_reader_that_stops_early_gets_no_traceback(
    cli_env: dict[str, str], seeded: list[Any]
) -> None:
    """`export | head`: the stream's cursor is closed before the database, not after it."""
    _more_leads(cli_env, 40)
    env = {**os.environ, **cli_env}
    for args in (["export"], ["export", "--ndjson"], ["export", "--json"], ["list", "--all"]):
        with subprocess.Popen(
            [LEADCTL, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            proc.stdout.close()  # the reader is gone before the first row is written
            stderr = proc.stderr.read().decode()
            proc.wait(timeout=60)
        assert "Traceback" not in stderr and "Exception ignored" not in stderr, (args, stderr)


def _more_leads(cli_env: dict[str, str], count: int) -> None:
    from leadctl import db, submissions
    from leadctl.models import database
    from leadctl.resumes import check_resume
    from leadctl.settings import Settings
    from leadctl.validation import check_prospect
    from tests import samples

    s = Settings.from_env({}, database_url=cli_env["LEADS_DATABASE_URL"])
    db.bind(s.database_url)
    resume = check_resume("cv.pdf", samples.pdf(3000), s.max_resume_bytes)
    for n in range(count):
        submissions.submit(check_prospect("Ann", f"Doe {n}", f"ann{n}@example.com"), resume, s)
    database.obj.close()


def test_completion_can_be_shown(cli_env: dict[str, str]) -> None:
    # Typer finds the shell among the parent processes, which a detached run (CI) may not have.
    env = {**cli_env, "SHELL": "/bin/bash", "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    result = run(["--show-completion", "bash"], env)
    assert result.returncode == 0 and "complete" in result.stdout


def test_the_list_path_does_not_import_the_heavy_server_and_mail_libraries(
    cli_env: dict[str, str], seeded: list[Any]
) -> None:
    code = (
        "import sys; from leadctl.cli.main import run\n"
        "try:\n    run(['list'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('litestar', 'uvicorn', 'yagmail', 'email_validator', 'psycopg', 'pydantic', 'rich', 'leadctl.resumes', 'zipfile') if m in sys.modules]\n"
        "print(','.join(heavy), file=sys.stderr)\n"
    )
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LEADS_")}, **cli_env}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stderr.strip().splitlines()[-1:] in ([], [""])
