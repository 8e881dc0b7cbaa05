"""Outside text prints as text: never markup, never terminal control, never a spreadsheet formula.

Hostile values reach the database through intake (markup in names) and through routes only the
database knows (escape sequences, C1, bidi overrides written with peewee); every command then
shows them, locally and remotely, piped and on a terminal, and once on a real pseudo-terminal.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import TestClient

from intake import create_app
from leadctl import attorneys, db, submissions
from leadctl.cli.output import csv_cell, csv_row, json_text, visible
from leadctl.models import Attorney, Event, Lead, NameToken, Party, Resume, database
from leadctl.names import name_key
from leadctl.resumes import check_resume
from leadctl.settings import Settings
from leadctl.timeutil import utcnow
from leadctl.validation import check_name, check_prospect
from tests import samples
from tests.conftest import submit
from tests.pty_harness import run_on_a_pty

OSC8 = "\x1b]8;;https://evil.example\x07"  # starts a terminal hyperlink
CLEAR = "\x1b[2J"  # clears the screen
RLO = "\u202e"  # right-to-left override
CSI1 = "\x9b"  # the one-byte C1 form of ESC [
# None of these may reach stdout or stderr from the data; Rich's own styling uses ESC [ … m only.
RAW = (OSC8, CLEAR, RLO, CSI1, "\x07", "\x1b]8;", "\x1b[31m")
MARKUP_FIRST, MARKUP_LAST = "[/]", "[link=https://evil.example]click[/link]"
BOLD = "[bold red]x"
FORMULAS = ['=HYPERLINK("http://evil.example")', "+1", "-2", "@SUM(A1)"]
RAW_FORMULAS = ["\tTab", "\rCr"]  # refused by intake; only the database can hold them


@dataclass
class Hostile:
    markup: int  # [/] [link=…]
    bold: int  # [bold red]x
    raw: int  # escape sequences, C1 and bidi written into the database
    formulas: dict[str, str]  # first name → email


def _add(first: str, last: str, email: str, size: int, s: Settings) -> Lead:
    resume = check_resume("cv.pdf", samples.pdf(size), s.max_resume_bytes)
    return submissions.submit(check_prospect(first, last, email), resume, s).lead


@pytest.fixture
def hostile(cli_env: dict[str, str], seeded: list[Any]) -> Iterator[Hostile]:
    s = Settings.from_env(
        {}, database_url=cli_env["LEADS_DATABASE_URL"], mail_dir=cli_env["LEADS_MAIL_DIR"]
    )
    db.bind(s.database_url)
    markup = _add(MARKUP_FIRST, MARKUP_LAST, "markup@example.com", 3100, s)
    bold = _add(BOLD, "Doe", "bold@example.com", 3200, s)
    raw = _add("Eve", "Raw", "raw@example.com", 3300, s)
    formulas: dict[str, str] = {}
    for i, first in enumerate(FORMULAS):
        formulas[first] = f"formula{i}@example.com"
        _add(first, "Calc", formulas[first], 4000 + i, s)
    for i, first in enumerate(RAW_FORMULAS):
        formulas[first] = f"rawformula{i}@example.com"
        lead = _add("Placeholder", "Calc", formulas[first], 5000 + i, s)
        Lead.update(first_name=first).where(Lead.id == lead.id).execute()
    formulas["Sum"] = "=sum+1@example.com"  # a valid address can open a formula too
    _add("Sum", "Calc", formulas["Sum"], 6000, s)
    # Eve comes last: no lead is assigned her by round robin, so no notification waits for an
    # address no mail server takes (the remote CLI's fixture waits for an idle outbox).
    eve = attorneys.add("Eve Evil", "eve@firm.example")[0]
    Attorney.update(name=f"Eve{OSC8}{CLEAR}{RLO}{CSI1}", email=f"eve{CSI1}@firm.example").where(
        Attorney.id == eve.id
    ).execute()
    Lead.update(
        first_name=f"Eve{OSC8}click",
        last_name=f"{CLEAR}{RLO}Raw{CSI1}31m",
        email=f"raw{CLEAR}@example.com",
        attorney=eve.id,
    ).where(Lead.id == raw.id).execute()
    Resume.update(filename=f"cv{CLEAR}{RLO}fdp.exe").where(Resume.lead == raw.id).execute()
    Event.create(
        lead=raw.id,
        at=utcnow(),
        actor=f"eve{OSC8}@firm.example",
        kind="note",
        details={"text": f"called {CLEAR}{RLO}back", f"k{CSI1}": "\x1b[31m"},
    )
    database.obj.close()
    yield Hostile(markup.id, bold.id, raw.id, formulas)


def _no_raw(text: str) -> None:
    for seq in RAW:
        assert seq not in text, f"{seq!r} reached the output: {text!r}"


@pytest.mark.parametrize("tty", [False, True], ids=["piped", "terminal"])
def test_list_shows_markup_literally_and_control_characters_escaped(
    hostile: Hostile, lead_cli: Any, tty: bool
) -> None:
    result = lead_cli("list", "--all", tty=tty)
    assert result.code == 0, result.stderr
    out = result.stdout + result.stderr
    _no_raw(out)
    assert f"{MARKUP_FIRST} {MARKUP_LAST}" in out and BOLD in out
    assert "Eve\\x1b]8;;https://evil.example\\x07click" in out
    assert "\\x1b[2J\\u202eRaw\\x9b31m" in out and "eve\\x9b@firm.example" in out
    if not tty:
        assert all(len(line.split("\t")) == 7 for line in result.stdout.splitlines())


@pytest.mark.parametrize("tty", [False, True], ids=["piped", "terminal"])
def test_show_and_stats_escape_every_outside_string(
    hostile: Hostile, lead_cli: Any, tty: bool
) -> None:
    shown = lead_cli("show", str(hostile.raw), tty=tty)
    assert shown.code == 0, shown.stderr
    _no_raw(shown.stdout + shown.stderr)
    assert "cv\\x1b[2J\\u202efdp.exe" in shown.stdout  # the resume's file name
    assert "eve\\x1b]8;;https://evil.example\\x07@firm.example" in shown.stdout  # the actor
    assert "text=called \\x1b[2J\\u202eback" in shown.stdout and "k\\x9b=\\x1b[31m" in shown.stdout
    markup = lead_cli("show", str(hostile.markup), tty=tty)
    assert f"Name:         {MARKUP_FIRST} {MARKUP_LAST}" in markup.stdout
    stats = lead_cli("stats", tty=tty)
    assert stats.code == 0, stats.stderr
    _no_raw(stats.stdout + stats.stderr)
    assert "eve\\x9b@firm.example" in stats.stdout


def test_json_keeps_the_exact_values(hostile: Hostile, lead_cli: Any) -> None:
    shown = lead_cli("show", str(hostile.raw), "--json")
    _no_raw(shown.stdout)  # C1 and bidi are written as \\uXXXX: the same JSON value
    data = shown.json()
    assert data["first_name"] == f"Eve{OSC8}click"
    assert data["last_name"] == f"{CLEAR}{RLO}Raw{CSI1}31m"
    assert data["resume"]["filename"] == f"cv{CLEAR}{RLO}fdp.exe"
    listed = lead_cli("list", "--all", "--ndjson")
    _no_raw(listed.stdout)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {r["first_name"] for r in rows} >= {MARKUP_FIRST, BOLD, f"Eve{OSC8}click"}


@pytest.mark.parametrize("tty", [False, True], ids=["piped", "terminal"])
def test_errors_show_typed_and_server_text_escaped(lead_cli: Any, seeded: Any, tty: bool) -> None:
    result = lead_cli("show", "<\x1b[31m>", tty=tty)
    assert result.code == 1
    assert result.stderr == "leadctl: error: no lead <\\x1b[31m>\n"
    usage = lead_cli("list", "--state", f"x{RLO}{CLEAR}", tty=tty)
    assert usage.code == 2
    _no_raw(usage.stderr)
    batch = lead_cli("reach-out", f"9{CLEAR}{RLO}{CSI1}", tty=tty)
    assert batch.code == 1
    assert batch.stderr == "leadctl: error: no lead 9\\x1b[2J\\u202e\\x9b\n"


@pytest.mark.parametrize("tty", [False, True], ids=["piped", "terminal"])
def test_attorney_list_escapes_names(hostile: Hostile, cli: Any, tty: bool) -> None:
    result = cli("attorney", "list", tty=tty)
    assert result.code == 0, result.stderr
    _no_raw(result.stdout)
    assert "Eve\\x1b]8;;https://evil.example\\x07\\x1b[2J\\u202e\\x9b" in result.stdout


def test_a_real_terminal_gets_no_control_sequence_from_the_data(
    hostile: Hostile, cli_env: dict[str, str]
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LEADS_", "LEADCTL_"))},
        **cli_env,
        "TERM": "xterm-256color",
    }
    env.pop("NO_COLOR", None)
    code, listed = run_on_a_pty(["list", "--all"], env)
    assert code == 0, listed
    assert "\x1b[" in listed  # Rich's own colours: it really was a terminal
    _no_raw(listed)
    assert MARKUP_FIRST in listed and "[link=https://evil.example]click[/link]" in listed
    assert "\\x1b[2J\\u202eRaw\\x9b31m" in listed
    code, shown = run_on_a_pty(["show", str(hostile.raw)], env)
    assert code == 0, shown
    _no_raw(shown)
    assert "cv\\x1b[2J\\u202efdp.exe" in shown
    code, failed = run_on_a_pty(["show", f"<{CLEAR}{RLO}>"], env)
    assert code == 1
    _no_raw(failed)
    assert "no lead <\\x1b[2J\\u202e>" in failed


def test_this_sessions_commands_on_a_real_terminal_show_outside_text_as_text(
    hostile: Hostile, cli_env: dict[str, str]
) -> None:
    """conflicts, parties list, history and person show print names, matters, actors and event
    details that strangers (or a hostile import) wrote: on a real terminal, none of it may act."""
    db.bind(cli_env["LEADS_DATABASE_URL"])
    party = Party.create(
        name=f"Eve{OSC8}Raw{CLEAR}",
        role="adverse",
        matter=f"[link=https://evil.example]m[/link]{RLO}{CSI1}",
        name_key=name_key("Eve Raw"),
        created_at=utcnow(),
    )
    NameToken.insert_many([{"token": w, "party": party.id} for w in ("eve", "raw")]).execute()
    database.obj.close()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LEADS_", "LEADCTL_"))},
        **cli_env,
        "TERM": "xterm-256color",
    }
    env.pop("NO_COLOR", None)
    for args, expected in (
        (["conflicts", "Eve Raw"], "[link=https://evil.example]m[/link]\\u202e\\x9b"),
        (["parties", "list"], "Eve\\x1b]8;;https://evil.example\\x07Raw\\x1b[2J"),
        (["history", "--lead", str(hostile.raw)], "text=called \\x1b[2J\\u202eback"),
        (["person", "show", "raw@example.com"], "\\x1b[2J\\u202eRaw\\x9b31m"),
    ):
        code, shown = run_on_a_pty(args, env)
        assert code == 0, (args, shown)
        _no_raw(shown)
        assert expected in shown, (args, shown)


def test_session_six_outputs_on_a_real_terminal_show_outside_text_as_text(
    hostile: Hostile, cli_env: dict[str, str]
) -> None:
    """What session 6 added that can print typed or stored text: one-line usage errors (what
    was typed), history as CSV, stats with an erased lead apart, an empty `-`."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LEADS_", "LEADCTL_"))},
        **cli_env,
        "TERM": "xterm-256color",
    }
    env.pop("NO_COLOR", None)
    code, shown = run_on_a_pty(["list", f"--{OSC8}{CLEAR}{RLO}x"], env)
    assert code == 2, shown
    _no_raw(shown)
    assert "no such option: --\\x1b]8;;https://evil.example\\x07\\x1b[2J\\u202ex" in shown
    code, shown = run_on_a_pty([f"no{CLEAR}such{CSI1}"], env)
    assert code == 2 and "no such command 'no\\x1b[2Jsuch\\x9b'" in shown, shown
    _no_raw(shown)
    code, shown = run_on_a_pty(["history", "--lead", str(hostile.raw), "--csv"], env)
    assert code == 0, shown
    _no_raw(shown)
    assert "called \\u001b[2J\\u202eback" in shown  # a details cell is JSON, escaped as JSON
    code, shown = run_on_a_pty(["stats"], env)
    assert code == 0 and "PENDING" in shown, shown
    _no_raw(shown)


# -- CSV -------------------------------------------------------------------------------------------


def _csv_rows(text: str) -> dict[str, dict[str, str]]:
    return {row["email"]: row for row in csv.DictReader(io.StringIO(text, newline=""))}


@pytest.mark.parametrize(
    "args", [("list", "--all", "--csv"), ("export", "--format", "csv")], ids=["list", "export"]
)
def test_csv_cells_that_would_start_a_formula_get_a_quote(
    hostile: Hostile, lead_cli: Any, args: tuple[str, ...]
) -> None:
    result = lead_cli(*args)
    assert result.code == 0, result.stderr
    _no_raw(result.stdout)
    rows = _csv_rows(result.stdout)
    for first, email in hostile.formulas.items():
        if first == "Sum":
            assert "'" + email in rows
            continue
        cell = rows[email]["first_name"]
        assert cell.startswith("'") and cell[1:] in (first, visible(first)), cell
    assert rows["markup@example.com"]["first_name"] == MARKUP_FIRST  # nothing else changes
    assert rows["bold@example.com"]["first_name"] == BOLD


@pytest.mark.parametrize(
    "cells",
    [["José\u200d", "Émile"], ["x\u200c", "ÿ"], ["क्\u200dष", "Lee"], ["Ann", "\u200dÉ"]],
)
def test_each_csv_cell_is_judged_alone_as_the_table_judges_it(cells: list[str]) -> None:
    """A joiner at a cell's end was judged beside the next cell's first letter: kept raw in CSV
    while the table and the TSV showed it escaped."""
    assert csv_row(cells) == [visible(c) for c in cells]


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_json_exports_keep_formula_openings_exact(
    hostile: Hostile, lead_cli: Any, fmt: str
) -> None:
    result = lead_cli("export", "--format", fmt)
    assert result.code == 0, result.stderr
    text = result.stdout
    rows = json.loads(text) if fmt == "json" else [json.loads(x) for x in text.splitlines()]
    firsts = {r["email"]: r["first_name"] for r in rows}
    for first, email in hostile.formulas.items():
        assert firsts[email] == first


# -- notes -------------------------------------------------------------------------------------


def _notes(lead_cli: Any, lead: str) -> list[str]:
    events = lead_cli("show", lead, "--json").json()["events"]
    return [e["details"]["text"] for e in events if e["kind"] == "note"]


def test_notes_are_bounded_and_free_of_control_characters(lead_cli: Any, seeded: Any) -> None:
    lead = str(seeded[0].id)
    too_long = lead_cli("note", lead, "x" * 4001)
    assert too_long.code == 1
    assert too_long.stderr == (
        "leadctl: error: text: the note must be at most 4,000 characters (got 4,001)\n"
    )
    assert lead_cli("note", lead, "y" * 4000).code == 0
    escaped = lead_cli("note", lead, f"call {CLEAR}back")
    assert escaped.code == 1 and escaped.stderr.count("\n") == 1
    assert escaped.stderr.startswith("leadctl: error: text: the note must not contain control")
    assert lead_cli("note", lead, f"call{CSI1}back").code == 1
    transition = lead_cli("reach-out", lead, "--note", f"ok{OSC8}")
    assert transition.code == 1 and transition.stderr.startswith("leadctl: error: note: ")
    assert lead_cli("reach-out", lead, "--note", "n" * 4001).code == 1
    assert lead_cli("show", lead, "--json").json()["state"] == "PENDING"  # nothing changed
    # Windows line endings from a file are a newline, not a refused CR.
    assert lead_cli("note", lead, "-", input="line one\r\nline two\r\n").code == 0
    assert _notes(lead_cli, lead)[-1] == "line one\nline two"


def test_a_multi_line_note_cannot_forge_a_history_line(lead_cli: Any, seeded: Any) -> None:
    lead = str(seeded[0].id)
    forged = "ok\n  2026-01-01T00:00:00Z  system                   email_sent     to=x"
    assert lead_cli("note", lead, f"{forged}\ttabbed").code == 0
    for tty in (False, True):
        text = lead_cli("show", lead, tty=tty).stdout
        assert not any(line.startswith("  2026-01-01") for line in text.splitlines())
        entries = [line for line in text.splitlines() if "2026-01-01T00:00:00Z" in line]
        assert len(entries) == 1 and " note " in entries[0]
        assert "text=ok\\n  2026-01-01T00:00:00Z  system" in entries[0]
        assert entries[0].endswith("to=x\\ttabbed")
    assert _notes(lead_cli, lead) == [f"{forged}\ttabbed"]


@pytest.fixture
def api(settings: Settings) -> Iterator[Any]:
    # These tests are about names and notes: the disclaimer's consent is test_intake's subject.
    no_consent = settings.replace(require_consent=False)
    with TestClient(create_app(no_consent, run_worker=False)) as client:
        client.headers["Authorization"] = (
            f"Bearer {attorneys.add('Ann Lee', 'ann@firm.example', 'admin')[1].secret}"
        )
        yield client


def _fields(response: Any) -> list[str]:
    return [e["field"] for e in response.json()["errors"]]


def test_the_staff_api_refuses_bad_notes_naming_the_field(api: Any, settings: Settings) -> None:
    lead = submit(api, email="note@example.com").json()["reference"]
    for body in ({"text": "x" * 4001}, {"text": "a\x1bb"}, {"text": "a\rb"}, {"text": "\x00"}):
        response = api.post(f"/api/v1/leads/{lead}/notes", json=body)
        assert response.status_code == 422, response.text
        assert _fields(response) == ["text"]
    for body in ({"note": "x" * 4001}, {"note": f"ok{CSI1}"}):
        response = api.post(f"/api/v1/leads/{lead}/reach-out", json=body)
        assert (response.status_code, _fields(response)) == (422, ["note"])
    surrogate = api.post(
        f"/api/v1/leads/{lead}/notes",
        content=b'{"text": "\\ud800"}',
        headers={"Content-Type": "application/json"},
    )
    assert 400 <= surrogate.status_code < 500
    ok = api.post(f"/api/v1/leads/{lead}/notes", json={"text": "tab\there\nnext"})
    assert ok.status_code == 200, ok.text
    assert Event.select().where(Event.kind == "state_changed").count() == 0


# -- names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "last", "field"),
    [
        (f"Eve{RLO}", "Doe", "first_name"),
        ("Eve", "\u2066Doe\u2069", "last_name"),
        ("\u202aEve", "Doe", "first_name"),
    ],
)
def test_intake_refuses_bidi_controls_in_names(api: Any, first: str, last: str, field: str) -> None:
    response = submit(api, first=first, last=last, email="bidi@example.com")
    assert response.status_code == 422, response.text
    assert _fields(response) == [field]
    assert "bidirectional" in response.json()["errors"][0]["message"]
    assert Lead.select().count() == 0


@pytest.mark.parametrize(
    "name",
    [
        "क्\u200dष",  # Devanagari with a zero-width joiner
        "👩\u200d💻",  # an emoji sequence joined by ZWJ
        "می\u200cخواهم",  # Persian with a zero-width non-joiner
        "\u200fعلي",  # Arabic with a right-to-left mark
    ],
)
def test_names_that_real_scripts_write_with_joiners_are_accepted(api: Any, name: str) -> None:
    response = submit(api, first=name, email="joiner@example.com")
    assert response.status_code == 201, response.text
    assert Lead.get().first_name == check_name(name, "first name")


# -- the functions themselves ------------------------------------------------------------------


UNSAFE = {*map(chr, range(0x20)), *map(chr, range(0x7F, 0xA0)), "\u2028", "\u2029"}
UNSAFE |= {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
# The invisible characters no name needs (leadctl.text): soft hyphen, zero width space, word
# joiner and invisible operators, BOM, tag characters.
UNSAFE |= {"\u00ad", "\u200b", "\ufeff", *map(chr, range(0x2060, 0x2065))}
UNSAFE |= set(map(chr, range(0xE0000, 0xE0080)))


@given(st.text())
def test_visible_leaves_nothing_a_terminal_would_act_on(text: str) -> None:
    one_line = visible(text)
    assert not UNSAFE & set(one_line)
    assert not (UNSAFE - {"\n", "\t"}) & set(visible(text, multiline=True))
    assert json.loads(json_text(text)) == text and not UNSAFE & set(json_text(text))
    assert not csv_cell(text).startswith(("=", "+", "-", "@", "\t", "\r", "\n"))


def test_visible_keeps_joiners_and_marks_and_escapes_the_rest() -> None:
    # Joiners stay between the letters of scripts that need them; beside ASCII they join
    # nothing and hide a word break ("Nu\u200dnez"): shown escaped, as the other invisibles.
    assert visible("क्\u200dष می\u200cخواهم 👩\u200d💻 c\u200ed") == (
        "क्\u200dष می\u200cخواهم 👩\u200d💻 c\u200ed"
    )
    assert visible("a\u200db\u200cc") == "a\\u200db\\u200cc"
    assert visible("Nu\u00adnez\u200b\u2060\ufeff\U000e0041") == (
        "Nu\\xadnez\\u200b\\u2060\\ufeff\\U000e0041"
    )
    assert visible("\x1b[2J\x9b\x7f\u202e\u2066\r\n\t\x00") == (
        "\\x1b[2J\\x9b\\x7f\\u202e\\u2066\\r\\n\\t\\x00"
    )
    assert visible("a\nb\tc\rd", multiline=True) == "a\nb\tc\\rd"
    assert csv_cell(-2) == "'-2" and csv_cell(None) == "" and csv_cell("a=b") == "a=b"
