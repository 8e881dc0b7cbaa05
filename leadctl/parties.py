"""The firm's list of parties (clients, adverse parties, others) for the conflict check:
import from CSV, list, remove; each party's name key and name words kept in step."""

from __future__ import annotations

import csv
import io
import os
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from leadctl.errors import InvalidInput, LeadctlError
from leadctl.models import NameToken, Party
from leadctl.names import words
from leadctl.timeutil import iso, utcnow
from leadctl.transactions import write_transaction

ROLES = ("client", "adverse", "other")
COLUMNS = ("name", "role", "matter")
MAX_NAME = 300  # Party.name
MAX_MATTER = 300  # Party.matter
MAX_FILE_BYTES = 32 * 1024 * 1024  # 100,000 parties are a few MB
# Parties one import takes: a firm's list is thousands to tens of thousands. Checked while
# reading, so memory follows this, not the file (32 MB of short rows were 2.6 million rows and
# 1.7 GB of memory). MAX_LINE bounds one line: a row is at most ~610 characters unquoted.
MAX_PARTIES = 200_000
MAX_ROW_LINES = 20  # lines one row may span: a matter's cell may hold a few line breaks
MAX_LINE = 10_000
BATCH = 2000  # rows per INSERT: well under SQLite's and PostgreSQL's parameter limits
_FORBIDDEN = {"Cc", "Cs", "Co", "Zl", "Zp"}
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class PartyFileError(LeadctlError):
    """The file cannot be imported; the message names the line. Nothing was written."""

    code = "invalid_input"
    http_status = 422


@dataclass(frozen=True, slots=True)
class Row:
    """One checked row of an import file."""

    line: int
    name: str
    role: str
    matter: str
    words: tuple[str, ...]

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.name, self.role, self.matter)


def read_file(path: str) -> list[Row]:
    """The checked rows of the file at `path` (see `parse_stream`), refused before reading when
    it is larger than MAX_FILE_BYTES; a file whose size the system does not know (a pipe, a
    device) is read up to the limit only."""
    try:
        size = os.stat(path).st_size
        if size > MAX_FILE_BYTES:
            raise PartyFileError(_too_big(path))
        handle = open(path, "rb")  # noqa: SIM115 - closed below, once parsed
    except IsADirectoryError:
        raise PartyFileError(f"{path} is a folder, not a CSV file") from None
    except OSError as exc:
        raise PartyFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        try:
            return parse_stream(handle, path)
        except OSError as exc:
            raise PartyFileError(f"cannot read {path}: {exc.strerror or exc}") from None


def _too_big(path: str) -> str:
    return f"{path} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; split it into parts"


def parse(data: bytes, source: str = "the file") -> list[Row]:
    """`parse_stream` of bytes in memory."""
    return parse_stream(io.BytesIO(data), source)


def parse_stream(stream: BinaryIO, source: str = "the file") -> list[Row]:
    """Every row of a CSV file with the header `name,role,matter` (any order; matter may be
    left out), checked, read as a stream: at most MAX_FILE_BYTES, MAX_PARTIES rows and
    MAX_LINE characters a line, so memory follows MAX_PARTIES, not the file. The first
    problem raises PartyFileError naming its line."""
    counted = _Counted(stream, source)
    text = io.TextIOWrapper(counted, encoding="utf-8-sig", newline="")
    ended = [0]  # the line the last row ended on: a row is read whole before it is seen
    reader = csv.reader(_lines(text, source, ended), strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise PartyFileError(f"{source} is empty; its first line must be: name,role,matter")
        columns = _columns(header)
        rows: list[Row] = []
        ended[0] = reader.line_num
        for cells in reader:
            ended[0] = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) == MAX_PARTIES:
                raise PartyFileError(
                    f"{source} holds more than {MAX_PARTIES:,} parties, the most one import "
                    "takes; split it into files of fewer and import them one after another"
                )
            rows.append(_row(reader.line_num, cells, columns))
    except csv.Error as exc:
        raise PartyFileError(
            f"line {reader.line_num} of {source} is not valid CSV: {exc}"
        ) from None
    except UnicodeDecodeError as exc:
        raise PartyFileError(
            f"line {counted.line_of(exc)} of {source} is not UTF-8 text; save the file as UTF-8 "
            "(in Excel: CSV UTF-8)"
        ) from None
    finally:
        text.detach()  # the caller's stream stays open (and is the caller's to close)
    return rows


def _lines(text: io.TextIOWrapper, source: str, ended: list[int]) -> Iterator[str]:
    """The file's lines (CR, LF or CRLF ended), each at most MAX_LINE characters, and at most
    MAX_ROW_LINES of them in one row (a quoted cell may hold line breaks; a quote left open
    would make the rest of the file one row, held whole). `ended[0]`: the last row's end."""
    number = 0
    while True:
        line = text.readline(MAX_LINE + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE:
            raise PartyFileError(
                f"line {number} of {source} is not valid CSV: longer than {MAX_LINE:,} characters"
            )
        if number - ended[0] > MAX_ROW_LINES:
            raise PartyFileError(
                f"line {ended[0] + 1} of {source} is not valid CSV: its row runs past "
                f"{MAX_ROW_LINES} lines (a quote left open?)"
            )
        yield line


class _Counted(io.BufferedIOBase):
    """The bytes under the text: counted (more than MAX_FILE_BYTES is refused), checked for NUL
    (a binary file, named by its line), their line breaks counted so that a UTF-8 error can
    name its line."""

    def __init__(self, stream: BinaryIO, source: str) -> None:
        super().__init__()
        self._stream = stream
        self._source = source
        self._read = 0
        self._lines = 0  # line breaks before the last chunk
        self._last = b""

    @property
    def name(self) -> str:
        return self._source

    def readable(self) -> bool:
        return True

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def read(self, size: int | None = -1) -> bytes:
        # At most the limit and one byte more, whatever was asked for (-1: everything).
        want = MAX_FILE_BYTES + 1 - self._read
        chunk = self._stream.read(want if size is None or size < 0 else min(size, want))
        if not chunk:
            return b""
        self._lines += self._last.count(b"\n")
        self._last = chunk
        self._read += len(chunk)
        if self._read > MAX_FILE_BYTES:
            raise PartyFileError(_too_big(self._source))
        nul = chunk.find(b"\x00")
        if nul >= 0:
            line = self._lines + chunk.count(b"\n", 0, nul) + 1
            raise PartyFileError(
                f"{self._source} is not a CSV text file: line {line} holds a NUL byte"
            )
        return chunk

    def line_of(self, exc: UnicodeDecodeError) -> int:
        """The line of a decoding error, which is in the last chunk: the decoder's input is that
        chunk, after at most the first bytes of a character from the chunk before (no line
        break among them)."""
        return self._lines + bytes(exc.object[: exc.start]).count(b"\n") + 1


def _columns(header: list[str]) -> dict[str, int]:
    names = [unicodedata.normalize("NFKC", cell).strip().lower() for cell in header]
    for name in names:
        if name not in COLUMNS:
            shown = name if len(name) <= 40 else name[:40] + "…"
            raise PartyFileError(
                f"line 1: unknown column {shown!r}; the columns are name, role and matter "
                "(a header line is required)"
            )
    for name in set(names):
        if names.count(name) > 1:
            raise PartyFileError(f"line 1: the column {name!r} appears twice")
    for needed in ("name", "role"):
        if needed not in names:
            raise PartyFileError(
                f"line 1: the column {needed!r} is missing (header: name,role,matter)"
            )
    return {name: names.index(name) for name in names}


def _row(line: int, cells: list[str], columns: dict[str, int]) -> Row:
    if len(cells) != len(columns):
        raise PartyFileError(f"line {line}: {len(cells)} cells, but the header has {len(columns)}")
    name = _text(line, "name", cells[columns["name"]], MAX_NAME)
    if not name:
        raise PartyFileError(f"line {line}: the name is empty")
    found = words(name)
    if not found:
        raise PartyFileError(
            f"line {line}: the name {name[:40]!r} has no words to compare (only punctuation or "
            "words like LLC and Inc)"
        )
    role = cells[columns["role"]].strip().lower()
    if role not in ROLES:
        raise PartyFileError(
            f"line {line}: the role must be client, adverse or other, not {role[:40]!r}"
        )
    matter = (
        _text(line, "matter", cells[columns["matter"]], MAX_MATTER) if "matter" in columns else ""
    )
    return Row(line, name, role, matter, tuple(found))


def _text(line: int, field: str, value: str, limit: int) -> str:
    text = unicodedata.normalize("NFC", value).strip()
    if len(text) > limit:
        raise PartyFileError(f"line {line}: the {field} is longer than {limit} characters")
    if any(unicodedata.category(ch) in _FORBIDDEN for ch in text) or not _BIDI.isdisjoint(text):
        raise PartyFileError(
            f"line {line}: the {field} holds a control character (a line break, tab, escape or "
            "text-direction code)"
        )
    return text


def import_rows(rows: list[Row], *, replace: bool = False, dry_run: bool = False) -> dict[str, Any]:
    """Add the rows in one transaction (all or nothing), skipping any that repeat a party
    already listed (same name, role and matter) or an earlier row; `replace` first removes
    every listed party. Returns {"added", "skipped", "removed", "dry_run"}."""
    with write_transaction():
        removed = Party.select().count() if replace else 0
        listed: Any = Party.select(Party.name, Party.role, Party.matter).tuples()
        known: set[tuple[str, str, str]] = set() if replace else set(listed)
        fresh: list[Row] = []
        for row in rows:
            if row.identity not in known:
                known.add(row.identity)
                fresh.append(row)
        if not dry_run:
            if replace:
                NameToken.delete().where(NameToken.party.is_null(False)).execute()
                Party.delete().execute()
            _insert(fresh)
    return {
        "added": len(fresh),
        "skipped": len(rows) - len(fresh),
        "removed": removed,
        "dry_run": dry_run,
    }


def _insert(rows: list[Row]) -> None:
    now = utcnow()
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        values = [
            {
                "name": r.name,
                "role": r.role,
                "matter": r.matter,
                "name_key": " ".join(sorted(r.words)),
                "created_at": now,
            }
            for r in batch
        ]
        made = Party.insert_many(values).returning(Party.id, Party.name_key).execute()
        # The key is the sorted words joined by spaces (a word never holds one): its words are
        # the party's tokens, whatever order the database returned the new rows in.
        tokens = [{"token": w, "party": pid} for pid, key in _pairs(made) for w in key.split()]
        for first in range(0, len(tokens), BATCH):
            NameToken.insert_many(tokens[first : first + BATCH]).execute()


def _pairs(made: Any) -> Iterator[tuple[int, str]]:
    for row in made:
        if isinstance(row, dict):
            yield row["id"], row["name_key"]
        elif isinstance(row, Party):
            yield row.id, row.name_key
        else:
            yield row[0], row[1]


def party_dict(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "role": row["role"],
        "matter": row["matter"],
        "created_at": iso(row["created_at"]),
    }


def iter_parties(role: str | None = None) -> Iterator[dict[str, Any]]:
    """Every listed party (or those of one role), oldest first, streamed."""
    query = Party.select(Party.id, Party.name, Party.role, Party.matter, Party.created_at)
    if role is not None:
        if role not in ROLES:
            raise InvalidInput([("role", "the role must be client, adverse or other")])
        query = query.where(Party.role == role)
    for row in query.order_by(Party.id).dicts().iterator():
        yield party_dict(row)


def remove(ids: Iterable[int]) -> dict[str, list[int]]:
    """Remove these parties and their name words in one transaction; ids not listed are
    reported as missing."""
    wanted = list(dict.fromkeys(ids))
    removed: list[int] = []
    with write_transaction():
        for start in range(0, len(wanted), BATCH):
            chunk = wanted[start : start + BATCH]
            query: Any = Party.select(Party.id).where(Party.id.in_(chunk)).tuples()
            found: list[int] = [p for (p,) in query]
            if found:
                NameToken.delete().where(NameToken.party.in_(found)).execute()
                Party.delete().where(Party.id.in_(found)).execute()
            removed += found
    gone = set(removed)
    return {"removed": sorted(gone), "missing": [i for i in wanted if i not in gone]}
