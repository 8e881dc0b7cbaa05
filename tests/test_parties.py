"""The firm's parties: CSV import (all or nothing, errors naming the line), list, remove."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest

from leadctl import conflicts, parties
from leadctl.models import NameToken, Party
from leadctl.parties import PartyFileError
from leadctl.settings import Settings


def tokens() -> set[tuple[str, int]]:
    rows = NameToken.select(NameToken.token, NameToken.party).where(NameToken.party.is_null(False))
    return {(t, p) for t, p in rows.tuples()}


def test_import_keeps_name_key_and_words_in_step(core: Settings) -> None:
    data = 'matter,Name,ROLE\nM-1,"ACME Holdings, LLC",Adverse\nM-2,Zoë Ñúñez,client\n'.encode()
    assert parties.import_rows(parties.parse(data)) == {
        "added": 2, "skipped": 0, "removed": 0, "dry_run": False,
    }  # fmt: skip
    listed = list(parties.iter_parties())
    assert [(p["name"], p["role"], p["matter"]) for p in listed] == [
        ("ACME Holdings, LLC", "adverse", "M-1"),
        ("Zoë Ñúñez", "client", "M-2"),
    ]
    keys = dict(Party.select(Party.id, Party.name_key).tuples())
    acme, zoe = (p["id"] for p in listed)
    assert keys == {acme: "acme holdings", zoe: "nunez zoe"}
    assert tokens() == {("acme", acme), ("holdings", acme), ("zoe", zoe), ("nunez", zoe)}
    # The same file again adds nothing; --replace starts the list afresh.
    again = parties.import_rows(parties.parse(data))
    assert (again["added"], again["skipped"]) == (0, 2)
    replaced = parties.import_rows(parties.parse(b"name,role\nOther Co,other\n"), replace=True)
    assert (replaced["added"], replaced["removed"]) == (1, 2)
    assert [p["name"] for p in parties.iter_parties()] == ["Other Co"]
    assert {t for t, _ in tokens()} == {"other"}


def test_remove_takes_the_words_along_and_reports_missing(core: Settings) -> None:
    parties.import_rows(parties.parse(b"name,role\nAcme Holdings,client\nBeta Labs,other\n"))
    acme, beta = (p["id"] for p in parties.iter_parties())
    assert parties.remove([acme, 999_999, acme]) == {"removed": [acme], "missing": [999_999]}
    assert {p for _, p in tokens()} == {beta}
    assert conflicts.check(["Acme Holdings"]) == []


def test_dry_run_writes_nothing(core: Settings) -> None:
    result = parties.import_rows(parties.parse(b"name,role\nAcme,client\n"), dry_run=True)
    assert result["added"] == 1 and result["dry_run"] is True
    assert Party.select().count() == 0 and tokens() == set()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is empty"),
        (b"Acme,client,M-1\n", "line 1: unknown column 'acme'"),
        (b"name,matter\nAcme,M-1\n", "the column 'role' is missing"),
        (b"name,role,name\n", "the column 'name' appears twice"),
        (
            b"name,role\nAcme,client\nBeta,enemy\n",
            "line 3: the role must be client, adverse or other",
        ),
        (b"name,role\n,client\n", "line 2: the name is empty"),
        (b"name,role\nLLC,client\n", "line 2: the name 'LLC' has no words to compare"),
        (b"name,role\n!!!,client\n", "has no words to compare"),
        (b"name,role\nAcme,client,extra\n", "line 2: 3 cells, but the header has 2"),
        (b"name,role\n" + b"A" * 301 + b",client\n", "line 2: the name is longer than 300"),
        (b"name,role,matter\nAcme,client,\x1b[31mred\n", "line 2: the matter holds a control"),
        (b'name,role\n"Acme\nCorp",client\n', "the name holds a control character"),
        (b"name,role\nAc\xe2\x80\xaeme,client\n", "text-direction"),
        (b"name,role\nAcme,client\nBad\x00Co,client\n", "not a CSV text file: line 3 holds a NUL"),
        (b"name,role\nZo\xc3\xab,client\nM\xfcller,client\n", "line 3 of the file is not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV text file"),
        (b'name,role\n"Acme,client\n', "not valid CSV"),
        (b"name,role\n" + b"x" * 200_000 + b",client\n", "not valid CSV"),
    ],
)
def test_a_bad_file_names_its_line_and_imports_nothing(
    core: Settings, data: bytes, message: str
) -> None:
    parties.import_rows(parties.parse(b"name,role\nKept Party,client\n"))
    with pytest.raises(PartyFileError, match=message):
        parties.import_rows(parties.parse(data))
    assert [p["name"] for p in parties.iter_parties()] == ["Kept Party"]


def test_formula_cells_and_markup_are_stored_as_text(core: Settings) -> None:
    data = (
        '\ufeffname,role,matter\n"=HYPERLINK(""http://x"",""y"")",other,@SUM(A1)\n'
        "[bold]Acme[/],client,[link=http://x]m[/link]\n"
    )
    parties.import_rows(parties.parse(data.encode()))
    assert [(p["name"], p["matter"]) for p in parties.iter_parties()] == [
        ('=HYPERLINK("http://x","y")', "@SUM(A1)"),
        ("[bold]Acme[/]", "[link=http://x]m[/link]"),
    ]


def test_a_huge_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    huge = tmp_path / "huge.csv"
    with huge.open("wb") as handle:  # a sparse gigabyte: nothing is written, nothing read
        handle.truncate(1024**3)
    with pytest.raises(PartyFileError, match="larger than 32 MB"):
        parties.read_file(str(huge))
    with pytest.raises(PartyFileError, match="is a folder"):
        parties.read_file(str(tmp_path))
    with pytest.raises(PartyFileError, match="cannot read"):
        parties.read_file(str(tmp_path / "missing.csv"))


def test_a_device_is_read_only_up_to_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parties, "MAX_FILE_BYTES", 1024 * 1024)
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    with pytest.raises(PartyFileError, match="not a CSV text file: line 1 holds a NUL"):
        parties.read_file("/dev/zero")  # its first chunk says so: nothing more is read


class Endless(io.RawIOBase):
    """A stream of valid rows that never ends (a pipe from `yes`), counting what was read."""

    def __init__(self) -> None:
        self.given = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = (b"name,role\n" if self.given == 0 else b"") + b"Acme Holdings,client\n" * 400
        chunk = chunk[: len(buffer)]
        buffer[: len(chunk)] = chunk
        self.given += len(chunk)
        return len(chunk)


def test_an_endless_stream_is_read_up_to_the_limits_only(monkeypatch: pytest.MonkeyPatch) -> None:
    endless = Endless()
    with pytest.raises(PartyFileError, match=r"more than 200,000 parties, the most one import"):
        parties.parse_stream(io.BufferedReader(endless), "stdin")
    assert endless.given < 5 * 1024 * 1024  # 200,000 short rows, not 32 MB
    monkeypatch.setattr(parties, "MAX_FILE_BYTES", 64 * 1024)
    endless = Endless()
    with pytest.raises(PartyFileError, match="stdin is larger than"):
        parties.parse_stream(io.BufferedReader(endless), "stdin")
    assert endless.given < 256 * 1024


def test_the_row_cap_counts_parties_not_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parties, "MAX_PARTIES", 3)
    three = b"name,role\nA a,client\n\nB b,client\n,\nC c,other\n"
    assert [r.name for r in parties.parse(three)] == ["A a", "B b", "C c"]
    with pytest.raises(PartyFileError, match="more than 3 parties"):
        parties.parse(three + b"D d,other\n")


def test_lines_are_named_right_far_into_a_file() -> None:
    """Errors found in the bytes (a NUL, bad UTF-8) name their line in a file read in chunks;
    a line ending in CR alone (old Mac CSV) is a line."""
    body = b"name,role\n" + b"Acme Holdings,client\n" * 5000
    with pytest.raises(PartyFileError, match="line 5002 holds a NUL"):
        parties.parse(body + b"Bad\x00Co,client\n")
    with pytest.raises(PartyFileError, match="line 5002 of the file is not UTF-8"):
        parties.parse(body + b"M\xfcller,client\n")
    with pytest.raises(PartyFileError, match="line 5002 of the file is not valid CSV: longer"):
        parties.parse(body + b"x" * 20_000 + b",client\n")
    mac = parties.parse(b"\xef\xbb\xbfname,role\rZo\xc3\xab Ann,client\rBeta Co,other\r")
    assert [(r.line, r.name) for r in mac] == [(2, "Zoë Ann"), (3, "Beta Co")]


def test_read_file_closes_what_it_opened(tmp_path: Path) -> None:
    good = tmp_path / "p.csv"
    good.write_bytes(b"name,role\nAcme,client\n")
    assert [r.name for r in parties.read_file(str(good))] == ["Acme"]


def test_a_quote_left_open_is_refused_before_the_rest_of_the_file_is_one_row() -> None:
    """A cell may not hold a line break anyway; a row running on past 20 lines (a quote left
    open, or millions of quoted cells) is refused there, not held whole until its end."""
    from leadctl import parties

    endless = b'name,role\na,"' + b'x\n","' * 200_000 + b'"\n'
    with pytest.raises(parties.PartyFileError) as refused:
        parties.parse(endless)
    assert str(refused.value) == (
        "line 2 of the file is not valid CSV: its row runs past 20 lines (a quote left open?)"
    )
