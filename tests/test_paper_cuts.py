"""The paper cuts of issue 14 and `show`'s new facts, each through the real CLI, locally and
against a real server: `--state` spellings, `export --json`, global options after the command,
`open --save DIR/`, a link lead's `open`, and what `show` says about consent, earlier leads,
conflicts found at intake and erasure."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from leadctl import events, submissions
from leadctl.models import Event, Lead, Resume, database
from leadctl.resumes import check_resume
from leadctl.settings import Settings
from leadctl.timeutil import iso, utcnow
from leadctl.validation import check_prospect
from tests import samples
from tests.conftest import free_port, serve_in_thread

ANN = "ann@firm.example"


@pytest.mark.parametrize("spelling", ["REACHED_OUT", "reached_out", "reached-out", "Reached-Out"])
def test_state_takes_any_spelling(lead_cli: Any, seeded: list[Any], spelling: str) -> None:
    assert lead_cli("reach-out", str(seeded[1].id)).code == 0
    listed = lead_cli("list", "--json", "--state", spelling)
    assert [i["id"] for i in listed.json()] == [seeded[1].id]
    pending = lead_cli("export", "--json", "--state", spelling.replace("REACHED_OUT", "PENDING"))
    assert pending.code == 0
    assert {i["state"] for i in lead_cli("list", "--json", "--state", "ALL").json()} == {
        "PENDING",
        "REACHED_OUT",
    }


def test_a_bad_state_names_the_choices(lead_cli: Any, seeded: list[Any]) -> None:
    result = lead_cli("list", "--state", "done")
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr == (
        "leadctl: error: --state must be one of pending, reached-out, all, not 'done'\n"
    )


@pytest.mark.parametrize("flag", ["--json", "--csv", "--ndjson"])
def test_export_takes_the_format_flags_of_every_command(
    lead_cli: Any, seeded: list[Any], flag: str, tmp_path: Path
) -> None:
    result = lead_cli("export", flag)
    assert result.code == 0, result.stderr
    text = result.stdout
    if flag == "--json":
        rows = json.loads(text)
    elif flag == "--csv":
        rows = list(csv.DictReader(io.StringIO(text)))
    else:
        rows = [json.loads(line) for line in text.splitlines()]
    assert sorted(r["first_name"] for r in rows) == ["Li", "Paul", "Zoë"]
    same = lead_cli("export", flag, "--format", flag.lstrip("-"))
    assert same.stdout == text
    clash = lead_cli("export", flag, "--format", "csv" if flag != "--csv" else "json")
    assert clash.code == 2 and "choose one of" in clash.stderr
    assert lead_cli("export", "--json", "--csv").code == 2
    saved = lead_cli("export", flag, "--output", str(tmp_path / "out"))
    assert saved.code == 0 and "Exported 3 leads" in saved.stderr


def test_global_options_after_the_command_reach_a_real_server(
    cli: Any, seeded: Any, cli_env: dict[str, str]
) -> None:
    settings = Settings.from_env({}, database_url=cli_env["LEADS_DATABASE_URL"])
    with serve_in_thread(settings) as server:
        token = {"LEADCTL_TOKEN": seeded.tokens["bob@firm.example"]}
        listed = cli("list", "--json", "--server", server.url, env=token)
        assert listed.code == 0, listed.stderr
        assert len(listed.json()) == 3
        me = cli("whoami", "--json", "--server", server.url, env=token)
        assert me.json()["attorney"]["email"] == "bob@firm.example"
        refused = cli("list", "--server", server.url, "--as", ANN, env=token)
        assert refused.code == 2 and "--as is for local mode" in refused.stderr


def test_an_unreachable_server_asks_whether_it_is_running(cli: Any) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = cli("list", "--server", url, env={"LEADCTL_TOKEN": "lct_x"})
    assert result.code == 1
    assert result.stderr.count("\n") == 1 and "is the server running?" in result.stderr


def test_open_save_into_a_folder_in_both_modes(
    lead_cli: Any, seeded: list[Any], tmp_path: Path
) -> None:
    into = lead_cli("open", str(seeded[0].id), "--save", f"{tmp_path}/a/b/")
    assert into.code == 0, into.stderr
    assert into.stdout == f"{tmp_path}/a/b/cv.pdf\n"
    assert (tmp_path / "a" / "b" / "cv.pdf").read_bytes() == samples.pdf(3000)
    missing = lead_cli("open", str(seeded[0].id), "--save", f"{tmp_path}/none/x.pdf")
    assert missing.code == 1 and missing.stderr.count("\n") == 1
    assert "does not exist" in missing.stderr and "Traceback" not in missing.stderr


# -- show's new facts ------------------------------------------------------------------------------


def _make_link_lead(lead_id: int, url: str) -> None:
    try:
        Resume.delete().where(Resume.lead == lead_id).execute()
        Lead.update(resume_url=url).where(Lead.id == lead_id).execute()
    finally:
        database.obj.close()


def test_a_link_leads_resume_is_named_not_opened(
    lead_cli: Any, seeded: list[Any], tmp_path: Path
) -> None:
    lead = seeded[0].id
    url = "https://cv.example/zoe?[bold]x[/]\x1b[2J"
    _make_link_lead(lead, url)
    shown = lead_cli("show", str(lead))
    assert "Resume:       a link (not fetched): https://cv.example/zoe?[bold]x[/]\\x1b[2J" in (
        shown.stdout
    )
    assert lead_cli("show", str(lead), "--json").json()["resume_url"] == url
    for args in (("open", str(lead)), ("open", str(lead), "--save", str(tmp_path / "x.pdf"))):
        result = lead_cli(*args, tty=True)
        assert (result.code, result.stdout) == (1, "")
        assert result.stderr == (
            f"leadctl: error: lead {lead}'s resume is a link, not a file: "
            "https://cv.example/zoe?[bold]x[/]\\x1b[2J (open it in a browser if you trust it)\n"
        )
    assert not (tmp_path / "x.pdf").exists()


def test_show_says_consent_earlier_leads_and_conflicts(
    lead_cli: Any, seeded: list[Any], cli_env: dict[str, str]
) -> None:
    s = Settings.from_env(
        {}, database_url=cli_env["LEADS_DATABASE_URL"], mail_dir=cli_env["LEADS_MAIL_DIR"]
    )
    try:
        resume = check_resume("cv.pdf", samples.pdf(4321), s.max_resume_bytes)
        again = submissions.submit(check_prospect("Zoë", "Ñúñez", "ZOE@Example.com"), resume, s)
        lead = again.lead
        now = utcnow()  # after intake's own check: this one is the latest
        Lead.update(consent_at=now, disclaimer_version="ab" * 32).where(
            Lead.id == lead.id
        ).execute()
        hits = [
            {
                "source": "party",
                "id": 7,
                "name": "[link=https://evil.example]Zoe[/link] Nunez",
                "role": "adverse",
                "matter": "Smith v. [red]Jones[/]",
                "reference": None,
                "date": "2026-01-02T00:00:00Z",
                "score": 1.0,
                "matched": "name",
            },
            {
                "source": "erased",
                "id": 3,
                "name": "",
                "role": None,
                "matter": None,
                "reference": None,
                "date": "2025-05-05T00:00:00Z",
                "score": 1.0,
                "matched": "email",
            },
        ]
        events.record(Event.row(lead.id, now, "system", "conflicts_found", {"hits": hits}))
    finally:
        database.obj.close()
    data = lead_cli("show", str(lead.id), "--json").json()
    assert data["consent_at"] == iso(now) and data["disclaimer_version"] == "ab" * 32
    first = seeded[0]
    assert data["earlier_leads"] == [
        {
            "id": first.id,
            "reference": first.reference,
            "state": "PENDING",
            "created_at": iso(Lead.get_by_id(first.id).created_at),
        }
    ]
    database.obj.close()
    assert data["conflicts"] == hits
    for tty in (False, True):
        text = lead_cli("show", str(lead.id), tty=tty).stdout
        assert f"Consent:      {iso(now)} (disclaimer abababababab)" in text
        assert f"Returning:    earlier lead {first.id}  {first.reference}" in text
        assert "Conflicts:    2 possible, found at intake:" in text
        assert "party 7  [link=https://evil.example]Zoe[/link] Nunez  adverse  Smith v. " in text
        assert "[red]Jones[/]" in text and "\x1b]8" not in text  # markup shown, never a link
        assert "an erased lead of 2025-05-05T00:00:00Z (email, score 1.00)" in text
        # The history's line for the same event reads the same way, never a Python repr.
        found = [line for line in text.splitlines() if "conflicts_found" in line][-1]
        assert "hits=[party 7  [link=https://evil.example]Zoe[/link] Nunez  adverse" in found
        assert "; an erased lead of 2025-05-05T00:00:00Z (email, score 1.00)]" in found
        assert "{'" not in found
    plain = lead_cli("show", str(seeded[1].id)).stdout
    assert "Consent:      not recorded" in plain and "Conflicts" not in plain


def test_an_erased_lead_shows_a_tombstone(lead_cli: Any, seeded: list[Any]) -> None:
    lead = seeded[1]
    when = utcnow()
    try:
        Resume.delete().where(Resume.lead == lead.id).execute()
        Lead.update(
            erased_at=when, first_name="", last_name="", email="", email_key="", name_key=""
        ).where(Lead.id == lead.id).execute()
    finally:
        database.obj.close()
    shown = lead_cli("show", str(lead.id))
    assert shown.code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"Lead {lead.id}  {lead.reference}  PENDING  (erased)"
    assert "Attorney:     bob@firm.example" in lines
    assert f"Erased:       erased on {iso(when)}; the person's data is gone" in lines
    assert not any(line.startswith(("Name:", "Email:", "Resume:")) for line in lines)
    assert lead_cli("show", str(lead.id), "--json").json()["erased_at"] == iso(when)
    gone = lead_cli("open", str(lead.id))
    assert gone.code == 1
    assert gone.stderr == (
        f"leadctl: error: lead {lead.id} was erased on {iso(when)}; its resume is gone\n"
    )
    for args in (("note", str(lead.id), "Paul called"), ("reach-out", str(lead.id))):
        refused = lead_cli(*args)  # a note would bring personal data back to the tombstone
        assert refused.stderr == (
            f"leadctl: error: lead {lead.id} was erased on {iso(when)}; it takes no changes\n"
        )
