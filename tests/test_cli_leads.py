"""leadctl lead commands, locally and remotely, piped and on a terminal, JSON parsed.

Every test here runs twice from one parametrised fixture: local mode on the test's SQLite
database, and remote mode against a real uvicorn server on a free loopback port serving that
same database. The output must be identical.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests import samples

LEAD_FIELDS = {
    "id",
    "reference",
    "first_name",
    "last_name",
    "email",
    "state",
    "attorney",
    "created_at",
    "updated_at",
    "reached_out_at",
    "reached_out_by",
}


def test_list_json_has_the_api_field_names_newest_first(lead_cli: Any, seeded: list[Any]) -> None:
    result = lead_cli("list", "--json")
    assert result.code == 0, result.stderr
    items = result.json()
    assert [i["id"] for i in items] == [lead.id for lead in reversed(seeded)]
    assert all(set(i) == LEAD_FIELDS for i in items)
    assert items[-1]["first_name"] == "Zoë" and items[-1]["attorney"] == "ann@firm.example"
    assert items[0]["created_at"].endswith("Z")


def test_an_empty_list_prints_an_empty_json_array(lead_cli: Any, seeded: list[Any]) -> None:
    result = lead_cli("list", "--json", "--search", "nobody-matches-this")
    assert (result.code, result.stdout) == (0, "[]\n")


def test_piped_list_is_tab_separated_without_colour_or_boxes(
    lead_cli: Any, seeded: list[Any]
) -> None:
    result = lead_cli("list")
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    fields = lines[-1].split("\t")
    assert fields[:5] == [
        str(seeded[0].id),
        seeded[0].reference,
        "Zoë Ñúñez",
        "zoe@example.com",
        "PENDING",
    ]
    assert fields[6].endswith("Z")  # a full ISO time, not "5m"
    assert "\x1b[" not in result.stdout and "│" not in result.stdout and "━" not in result.stdout
    assert result.stderr == ""


def test_terminal_list_is_a_table_with_a_count_on_stderr(lead_cli: Any, seeded: list[Any]) -> None:
    result = lead_cli("list", "--limit", "2", tty=True)
    assert result.code == 0
    assert "REFERENCE" in result.stdout and "Zoë" not in result.stdout and "Li Lei" in result.stdout
    assert "just now" in result.stdout
    assert "Showing 2 of 3 leads" in result.stderr
    assert "\x1b[" in result.stdout  # colour on a terminal


def test_no_color_is_honoured_on_a_terminal(lead_cli: Any, seeded: list[Any]) -> None:
    result = lead_cli("list", tty=True, env={"NO_COLOR": "1"})
    assert "\x1b[" not in result.stdout
    assert "Paul Smith" in result.stdout


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (("--search", "ZOE"), ["Zoë"]),
        (("--search", "nunez"), ["Zoë"]),
        (("--attorney", "bob@firm.example"), ["Paul"]),
        (("--mine",), ["Li", "Zoë"]),
        (("--state", "reached-out"), []),
        (("--state", "pending", "--limit", "1"), ["Li"]),
        (("--overdue", "24h"), []),
        (("--since", "1d"), ["Li", "Paul", "Zoë"]),
        (("--until", "2000-01-01"), []),
    ],
)
def test_list_filters(
    lead_cli: Any, seeded: list[Any], args: tuple[str, ...], names: list[str]
) -> None:
    result = lead_cli("list", "--json", *args)
    assert result.code == 0, result.stderr
    assert [i["first_name"] for i in result.json()] == names


def test_bad_filter_values_are_usage_errors(lead_cli: Any, seeded: list[Any]) -> None:
    result = lead_cli("list", "--since", "last tuesday")
    assert result.code == 2
    assert result.stderr.startswith("leadctl: error: 'last tuesday' is neither")
    assert lead_cli("list", "--state", "done").code == 2
    assert lead_cli("list", "--json", "--csv").code == 2


def test_show_json_has_resume_and_history(lead_cli: Any, seeded: list[Any]) -> None:
    result = lead_cli("show", str(seeded[0].id), "--json")
    data = result.json()
    assert set(data) == LEAD_FIELDS | {
        "resume",
        "resume_url",
        "consent_at",
        "disclaimer_version",
        "events",
        "earlier_leads",
        "conflicts",
        "quarantined",
        "quarantine_reason",
        "erased_at",
    }
    assert (data["earlier_leads"], data["quarantined"]) == ([], False)
    assert (data["conflicts"], data["erased_at"], data["resume_url"]) == ([], None, None)
    assert data["resume"] == {
        "filename": "cv.pdf",
        "content_type": "application/pdf",
        "size": 3000,
        "sha256": __import__("hashlib").sha256(samples.pdf(3000)).hexdigest(),
    }
    assert [e["kind"] for e in data["events"]][:2] == ["submitted", "assigned"]
    assert set(data["events"][0]) == {"at", "actor", "kind", "details"}


def test_show_by_reference_in_plain_text(lead_cli: Any, seeded: list[Any]) -> None:
    result = lead_cli("show", seeded[1].reference.lower())
    assert result.code == 0
    assert f"Lead {seeded[1].id}  {seeded[1].reference}  PENDING" in result.stdout
    assert "cv.pdf (application/pdf, 3,000 bytes)" in result.stdout
    assert "History:" in result.stdout


def test_unknown_lead_is_one_error_line_and_exit_1(lead_cli: Any, seeded: list[Any]) -> None:
    result = lead_cli("show", "9999")
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr == "leadctl: error: no lead 9999\n"


def test_reach_out_batch_with_unknown_and_already_done(lead_cli: Any, seeded: list[Any]) -> None:
    first = lead_cli("reach-out", str(seeded[0].id), "--note", "phoned", "--json")
    assert first.json()["changed"][0]["state"] == "REACHED_OUT"
    reached_at = first.json()["changed"][0]["reached_out_at"]
    result = lead_cli("reach-out", str(seeded[0].id), "9999", str(seeded[1].id), "--json")
    assert result.code == 1
    body = result.json()
    assert [c["id"] for c in body["changed"]] == [seeded[1].id]
    assert [u["id"] for u in body["unchanged"]] == [seeded[0].id]
    assert body["unchanged"][0]["reached_out_at"] == reached_at
    assert body["failed"] == [{"id": "9999", "error": "no lead 9999"}]
    assert "leadctl: error: no lead 9999" in result.stderr
    history = lead_cli("show", str(seeded[0].id), "--json").json()["events"]
    change = [e for e in history if e["kind"] == "state_changed"]
    assert len(change) == 1 and change[0]["actor"] == "ann@firm.example"
    assert change[0]["details"]["note"] == "phoned"


def test_reach_out_reads_ids_and_ndjson_from_stdin(lead_cli: Any, seeded: list[Any]) -> None:
    ndjson = lead_cli("list", "--ndjson", "--search", "paul").stdout
    result = lead_cli("reach-out", "-", input=f"{seeded[0].id}\n\n{ndjson}{seeded[2].reference}\n")
    assert result.code == 0, result.stderr
    assert result.stdout.count("is now REACHED_OUT") == 3
    assert lead_cli("list", "--json", "--state", "pending").json() == []


def test_dry_run_changes_nothing(lead_cli: Any, seeded: list[Any]) -> None:
    result = lead_cli("reach-out", str(seeded[0].id), str(seeded[1].id), "--dry-run")
    assert result.stdout.count("would become REACHED_OUT") == 2
    assert len(lead_cli("list", "--json", "--state", "pending").json()) == 3


def test_a_batch_on_a_terminal_asks_first(lead_cli: Any, seeded: list[Any]) -> None:
    declined = lead_cli("reach-out", str(seeded[0].id), str(seeded[1].id), tty=True, input="n\n")
    assert declined.code == 1 and "Reach out to 2 leads?" in declined.stderr
    assert len(lead_cli("list", "--json", "--state", "pending").json()) == 3
    accepted = lead_cli("reach-out", str(seeded[0].id), str(seeded[1].id), tty=True, input="y\n")
    assert accepted.code == 0
    assert lead_cli("reach-out", str(seeded[2].id), tty=True).code == 0  # one lead: no question
    assert lead_cli("reopen", str(seeded[0].id), str(seeded[1].id), "--yes", tty=True).code == 0
    assert len(lead_cli("list", "--json", "--state", "pending").json()) == 2


def test_reopen_note_and_assign_are_recorded_with_the_actor(
    lead_cli: Any, seeded: list[Any]
) -> None:
    lead = str(seeded[0].id)
    lead_cli("reach-out", lead)
    assign = lead_cli("assign", lead, "bob@firm.example", "--json")
    assert assign.json()["changed"][0]["attorney"] == "bob@firm.example"
    again = lead_cli("assign", lead, "bob@firm.example", "--json")
    assert again.json()["unchanged"][0]["id"] == seeded[0].id
    assert lead_cli("assign", lead, "nobody@firm.example").code == 1
    bob = lead_cli.acting_as("bob@firm.example")  # the lead is bob's now: he may change it
    assert lead_cli("reopen", lead, "--note", "wrong person", env=bob).code == 0
    assert lead_cli("note", lead, "left a voicemail", env=bob).code == 0
    # The server's mail worker may record its email_sent events in between (remote mode).
    events = [
        e for e in lead_cli("show", lead, "--json").json()["events"] if e["actor"] != "system"
    ]
    assert [(e["kind"], e["actor"]) for e in events[-4:]] == [
        ("state_changed", "ann@firm.example"),
        ("assigned", "ann@firm.example"),
        ("state_changed", "bob@firm.example"),
        ("note", "bob@firm.example"),
    ]
    assert events[-1]["details"] == {"text": "left a voicemail"}


def test_open_save_and_print_path(lead_cli: Any, seeded: list[Any], tmp_path: Path) -> None:
    target = tmp_path / "out.pdf"
    saved = lead_cli("open", str(seeded[0].id), "--save", str(target))
    assert saved.code == 0 and saved.stdout.strip() == str(target)
    assert target.read_bytes() == samples.pdf(3000)
    assert (
        lead_cli("open", str(seeded[0].id), "--save", str(target)).code == 1
    )  # no silent overwrite
    printed = lead_cli("open", str(seeded[0].id), "--print-path")
    path = Path(printed.stdout.strip())
    assert path.read_bytes() == samples.pdf(3000)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_open_without_a_viewer_says_so_and_leaves_no_copy_behind(
    lead_cli: Any, seeded: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))  # where the private copy goes
    lead = str(seeded[0].id)
    result = lead_cli("open", lead, env={"PATH": str(empty), "DISPLAY": ""})
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr == (
        "leadctl: error: no viewer could be launched here (xdg-open is not installed); "
        f"save the resume instead: leadctl open {lead} --save DIR/\n"
    )
    assert list(private_tmp.iterdir()) == []  # the temporary copy is gone
    # xdg-open is there but finds no viewer for the type: it exits 3 at once, after printing.
    fake_opener(empty, "echo 'xdg-open: no method available for opening' >&2; exit 3")
    result = lead_cli("open", lead, env={"PATH": str(empty)})
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr == (
        "leadctl: error: no viewer could be launched here (xdg-open found no viewer for it "
        f"(exit 3)); save the resume instead: leadctl open {lead} --save DIR/\n"
    )
    assert list(private_tmp.iterdir()) == []


def test_open_hands_the_private_copy_to_the_viewer(
    lead_cli: Any, seeded: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir, private_tmp, seen = tmp_path / "bin", tmp_path / "tmp", tmp_path / "seen"
    bin_dir.mkdir()
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    fake_opener(bin_dir, f'cp "$1" {seen}; exit 0')
    result = lead_cli("open", str(seeded[0].id), env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    assert (result.code, result.stdout, result.stderr) == (0, "", "")
    assert seen.read_bytes() == samples.pdf(3000)  # the viewer got the resume itself
    (copy,) = private_tmp.glob("leadctl-*/*")  # and the copy stays for it to read
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600


def fake_opener(folder: Path, script: str) -> None:
    """An `xdg-open` in `folder` that runs `script` (POSIX sh) with the file as $1."""
    opener = folder / "xdg-open"
    opener.write_text(f"#!/bin/sh\n{script}\n")
    opener.chmod(0o755)


def test_saving_never_follows_a_planted_symbolic_link(
    lead_cli: Any, seeded: list[Any], tmp_path: Path
) -> None:
    shared, elsewhere = tmp_path / "shared", tmp_path / "elsewhere.pdf"
    shared.mkdir()
    (shared / "cv.pdf").symlink_to(elsewhere)  # dangling: `exists()` is false for it
    lead = str(seeded[0].id)
    for extra in ((), ("--force",)):
        result = lead_cli("open", lead, "--save", f"{shared}/", *extra)
        assert (result.code, result.stdout) == (1, "")
        assert (
            result.stderr
            == f"leadctl: error: cannot write {shared}/cv.pdf: it is a symbolic link\n"
        )
        assert not elsewhere.exists()


@pytest.mark.parametrize("fmt", ["csv", "json", "ndjson"])
def test_export_formats(lead_cli: Any, seeded: list[Any], tmp_path: Path, fmt: str) -> None:
    import csv
    import json

    target = tmp_path / f"leads.{fmt}"
    result = lead_cli("export", "--format", fmt, "--output", str(target))
    assert result.code == 0 and "Exported 3 leads" in result.stderr
    text = target.read_text()
    if fmt == "csv":
        rows = list(csv.DictReader(text.splitlines()))
    elif fmt == "json":
        rows = json.loads(text)
    else:
        rows = [json.loads(line) for line in text.splitlines()]
    assert len(rows) == 3 and set(rows[0]) == LEAD_FIELDS
    assert {r["first_name"] for r in rows} == {"Zoë", "Paul", "Li"}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # every lead's data: the owner's only


def test_export_to_stdout_with_filters(lead_cli: Any, seeded: list[Any]) -> None:
    result = lead_cli("export", "--format", "json", "--attorney", "ann@firm.example")
    assert [r["first_name"] for r in result.json()] == ["Li", "Zoë"]


def test_stats(lead_cli: Any, seeded: list[Any]) -> None:
    lead_cli("reach-out", str(seeded[0].id))
    data = lead_cli("stats", "--json").json()
    assert data["total"] == 3
    assert data["by_state"] == {"PENDING": 2, "REACHED_OUT": 1}
    assert data["overdue_24h"] == 0
    assert data["first_contact"]["reached_out"] == 1
    assert data["first_contact"]["median_seconds"] >= 0
    per = {a["attorney"]: a for a in data["per_attorney"]}
    assert per["ann@firm.example"]["leads"] == 2 and per["ann@firm.example"]["reached_out"] == 1
    text = lead_cli("stats").stdout
    assert "REACHED_OUT" in text and "ann@firm.example" in text


def test_piped_output_never_breaks_a_row_with_a_tab(lead_cli: Any, seeded: list[Any]) -> None:
    lead_cli("note", str(seeded[0].id), "a\tb")
    lines = lead_cli("list").stdout.splitlines()
    assert all(len(line.split("\t")) == 7 for line in lines)


def test_file_permissions_of_private_copies_do_not_depend_on_umask(
    lead_cli: Any, seeded: list[Any]
) -> None:
    old = os.umask(0)
    try:
        path = Path(lead_cli("open", str(seeded[0].id), "--print-path").stdout.strip())
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_erased_lead_leaves_the_queues_but_not_the_figures(
    lead_cli: Any, seeded: list[Any]
) -> None:
    """Erased, a pending lead takes no changes: no pending or overdue list, count or batch
    holds it, while the total (its state and dates stay) still counts it, apart."""
    from datetime import timedelta

    from leadctl.models import Lead, Resume, database
    from leadctl.timeutil import utcnow

    gone = seeded[1].id
    try:
        Lead.update(created_at=utcnow() - timedelta(days=3)).execute()  # all three overdue
        Resume.delete().where(Resume.lead == gone).execute()
        Lead.update(
            erased_at=utcnow(), first_name="", last_name="", email="", email_key="", name_key=""
        ).where(Lead.id == gone).execute()
    finally:
        database.obj.close()
    live = {seeded[0].id, seeded[2].id}
    for view in (("--state", "pending"), ("--overdue", "24h")):
        assert {row["id"] for row in lead_cli("list", *view, "--json").json()} == live
    everything = lead_cli("list").stdout.splitlines()
    assert f"{gone}\t{seeded[1].reference}\t(erased)\t\tPENDING" in "\n".join(everything)
    figures = lead_cli("stats", "--json").json()
    assert (figures["total"], figures["by_state"]["PENDING"], figures["erased"]) == (3, 2, 1)
    shown = lead_cli("stats").stdout
    assert "  PENDING         2\n" in shown and "  (erased)        1\n" in shown
    assert figures["overdue_24h"] == 2
    assert sum(row["pending"] for row in figures["per_attorney"]) == 2
    batch = lead_cli("list", "--overdue", "24h", "--ndjson").stdout
    done = lead_cli("reach-out", "-", "--dry-run", "--json", input=batch)
    assert done.code == 0, done.stderr


def test_a_long_name_stored_before_names_were_capped_still_saves(
    lead_cli: Any, seeded: list[Any], tmp_path: Path
) -> None:
    from leadctl.models import Resume, database

    long_name = "𝐀" * 100 + ".pdf"  # 404 bytes: over Linux's 255 for one file name
    try:
        Resume.update(filename=long_name).where(Resume.lead == seeded[0].id).execute()
    finally:
        database.obj.close()
    saved = lead_cli("open", str(seeded[0].id), "--save", f"{tmp_path}/dl/")
    assert saved.code == 0, saved.stderr
    (written,) = (tmp_path / "dl").iterdir()
    assert written.name.endswith(".pdf") and len(written.name.encode()) <= 150
    assert written.read_bytes() == samples.pdf(3000)
    printed = lead_cli("open", str(seeded[0].id), "--print-path")
    assert printed.code == 0 and Path(printed.stdout.strip()).read_bytes() == samples.pdf(3000)
