"""One renderer: Rich on a terminal, plain tab-separated text when piped, or JSON/CSV/NDJSON.

Every string that came from outside (a prospect, an attorney, the server) is printed through
`visible()`: a terminal never acts on it, and Rich never reads it as markup.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from leadctl.text import has_unsafe, visible
from leadctl.timeutil import humanize_age

FORMATS = ("table", "json", "csv", "ndjson")


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[dict[str, Any]], Any]
    # How a terminal shows the value (e.g. an age instead of a timestamp); piped output is raw.
    on_terminal: Callable[[dict[str, Any]], str] | None = None
    style: str | None = None

    def plain(self, item: dict[str, Any]) -> str:
        return visible(_plain(self.value(item)))

    def shown(self, item: dict[str, Any]) -> str:
        return visible(self.on_terminal(item)) if self.on_terminal else self.plain(item)


def age(value: Any) -> str:
    if not value:
        return ""
    return humanize_age(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


# What JSON text may carry raw but a terminal would act on; json.dumps escapes C0 itself.
_JSON_UNSAFE = "[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"  # compiled on use
# OWASP's list of cell openings a spreadsheet reads as a formula, plus LF.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def untrusted(value: Any) -> Any:
    """`value` with every string in it (keys too) made `visible` on one line, for renderers.

    A newline in a note then cannot start a line of its own that looks like another event.
    """
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, dict):
        return {untrusted(k): untrusted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [untrusted(v) for v in value]
    return value


def csv_row(values: Iterable[Any]) -> list[str]:
    """CSV cells a spreadsheet shows as text: a formula opening gets a leading `'` (OWASP), and
    control characters are made visible as everywhere else."""
    cells = [v if type(v) is str else _plain(v) for v in values]
    # One search over the whole row: an export of a million clean rows stays near its old speed.
    # Joined by a space, so a joiner at a cell's end is judged beside it, as `visible` judges it
    # (joined by nothing, "José\u200d" + "Émile" read as a joiner between two letters).
    shown = [visible(c) for c in cells] if has_unsafe(" ".join(cells)) else cells
    return [
        "'" + s if c.startswith(_FORMULA_START) else s for c, s in zip(cells, shown, strict=True)
    ]


def csv_cell(value: Any) -> str:
    return csv_row([value])[0]


def json_text(value: Any, indent: int | None = None) -> str:
    """JSON of the exact values, with C1, bidi and separator characters written as `\\uXXXX`.

    Still the same JSON value for any parser; a terminal showing it has nothing to act on.
    """
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    if (text.isascii() and "\x7f" not in text) or not re.search(_JSON_UNSAFE, text):
        return text
    return re.sub(_JSON_UNSAFE, lambda m: f"\\u{ord(m.group()):04x}", text)


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


@dataclass(frozen=True)
class Streams:
    """The process's streams and what each is, decided once per command (httpie's Environment).

    `LEADCTL_FORCE_TTY=1` makes stdout and stderr render as on a terminal (never stdin: only a
    person at one can answer a question); `NO_COLOR` turns colour off.
    """

    stdin: IO[str]
    stdout: IO[str]
    stderr: IO[str]
    stdin_tty: bool
    stdout_tty: bool
    stderr_tty: bool
    color: bool

    @classmethod
    def from_system(cls) -> Streams:
        forced = os.environ.get("LEADCTL_FORCE_TTY", "").lower() in {"1", "true", "yes"}
        stdout_tty = forced or _isatty(sys.stdout)
        return cls(
            stdin=sys.stdin,
            stdout=sys.stdout,
            stderr=sys.stderr,
            stdin_tty=_isatty(sys.stdin),  # forcing is for rendering; answers need a person
            stdout_tty=stdout_tty,
            stderr_tty=forced or _isatty(sys.stderr),
            color=stdout_tty and "NO_COLOR" not in os.environ,
        )

    @property
    def interactive(self) -> bool:
        """A person can be asked: both the question's stream and the answer's are a terminal."""
        return self.stdin_tty and self.stderr_tty


class Output:
    """Decides once how everything is shown; commands only hand it data.

    `target` replaces stdout for the data alone (`export --output FILE`); talk stays on stderr.
    """

    def __init__(
        self, fmt: str = "table", streams: Streams | None = None, target: IO[str] | None = None
    ) -> None:
        self.fmt = fmt
        self.streams = streams or Streams.from_system()
        self.stdout = target or self.streams.stdout
        self.stderr = self.streams.stderr
        self.is_tty = target is None and self.streams.stdout_tty
        self.stderr_tty = self.streams.stderr_tty
        self.color = self.is_tty and self.streams.color

    @property
    def machine(self) -> bool:
        return self.fmt != "table"

    def _console(self, stderr: bool = False) -> Any:
        from rich.console import Console

        return Console(
            file=self.stderr if stderr else self.stdout,
            force_terminal=self.stderr_tty if stderr else self.is_tty,
            no_color=not self.color,
            highlight=False,
            soft_wrap=False,
            width=None if self.is_tty and _isatty(self.stdout) else 120,
        )

    # -- talk (stderr) ------------------------------------------------------------------------

    def say(self, message: str) -> None:
        """A remark for the person at the terminal; never part of the data."""
        print(visible(message), file=self.stderr)

    def error(self, message: str) -> None:
        print(f"leadctl: error: {visible(message)}", file=self.stderr)

    def usage(self, text: str) -> None:
        """The parser's usage message, which quotes what was typed."""
        self.stderr.write(visible(text, multiline=True))

    def progress(
        self, items: Iterable[dict[str, Any]], total: Callable[[], int], label: str
    ) -> Iterator[dict[str, Any]]:
        """`items`, with a transient progress bar on a terminal's stderr (counted by `total`)."""
        if not self.stderr_tty:
            yield from items
            return
        from rich.progress import Progress

        with Progress(console=self._console(stderr=True), transient=True) as bar:
            task = bar.add_task(visible(label), total=total())
            for item in items:
                yield item
                bar.advance(task)

    def line(self, message: str) -> None:
        """One human line of data on stdout (a batch command's answer for one lead)."""
        self.stdout.write(visible(message) + "\n")

    # -- data (stdout) ------------------------------------------------------------------------

    def rows(
        self, items: Iterable[dict[str, Any]], columns: list[Column], title: str | None = None
    ) -> int:
        """Print a list in the chosen format; returns how many rows were written."""
        if self.fmt == "json":
            return self._json_array(items)
        if self.fmt == "ndjson":
            n = 0
            for item in items:
                self.stdout.write(json_text(item) + "\n")
                n += 1
            return n
        if self.fmt == "csv":
            return self._csv(items)
        if self.is_tty:
            return self._table(list(items), columns, title)
        n = 0
        for item in items:
            self.stdout.write("\t".join(c.plain(item) for c in columns) + "\n")
            n += 1
        return n

    def _json_array(self, items: Iterable[dict[str, Any]]) -> int:
        # Streamed element by element: `export --format json` stays constant in memory.
        n = 0
        self.stdout.write("[")
        for item in items:
            self.stdout.write(("," if n else "") + "\n  " + json_text(item))
            n += 1
        self.stdout.write("\n]\n" if n else "]\n")
        return n

    def _csv(self, items: Iterable[dict[str, Any]]) -> int:
        writer = csv.writer(self.stdout)
        fields: list[str] = []
        n = 0
        for item in items:
            if not fields:
                fields = list(item)
                writer.writerow(fields)
            writer.writerow(csv_row(item.get(k) for k in fields))
            n += 1
        return n

    def _table(self, items: list[dict[str, Any]], columns: list[Column], title: str | None) -> int:
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, header_style="bold" if self.color else "")
        for c in columns:
            table.add_column(c.header, style=c.style if self.color else None, overflow="fold")
        for item in items:
            # Text, never a str: Rich would read `[/]` or `[link=…]` in a name as markup.
            table.add_row(*(Text(c.shown(item)) for c in columns))
        self._console().print(table)
        return len(items)

    def obj(
        self, data: dict[str, Any], human: Callable[[dict[str, Any]], str] | None = None
    ) -> None:
        """One object: JSON in machine formats; otherwise the human rendering (or key: value)."""
        if self.machine:
            self.stdout.write(json_text(data, indent=2) + "\n")
            return
        # The renderer sees one-line visible values, and what it makes is checked once more for
        # text it took from elsewhere (a URL, a path); its own newlines and tabs are its layout.
        shown = untrusted(data)
        text = human(shown) if human else "\n".join(f"{k}: {_plain(v)}" for k, v in shown.items())
        self.stdout.write(visible(text.rstrip("\n"), multiline=True) + "\n")


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def batch_ids(values: Iterable[str]) -> Iterator[str]:
    """Ids from arguments or stdin lines: plain ids, references, or `list --ndjson` objects."""
    for raw in values:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                yield line
                continue
            yield str(obj.get("id") or obj.get("reference") or line)
        else:
            yield line.split("\t", 1)[0]
