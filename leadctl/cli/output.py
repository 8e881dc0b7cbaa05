"""One renderer: Rich on a terminal, plain tab-separated text when piped, or JSON/CSV/NDJSON."""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

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
        return _plain(self.value(item))

    def shown(self, item: dict[str, Any]) -> str:
        return self.on_terminal(item) if self.on_terminal else self.plain(item)


def age(value: Any) -> str:
    if not value:
        return ""
    return humanize_age(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    # Tabs and newlines would break the one-row-per-line contract of piped output.
    return str(value).replace("\t", " ").replace("\n", " ")


class Output:
    """Decides once how everything is shown; commands only hand it data."""

    def __init__(
        self,
        fmt: str = "table",
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
    ) -> None:
        self.fmt = fmt
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        forced = os.environ.get("LEADCTL_FORCE_TTY", "").lower() in {"1", "true", "yes"}
        self.is_tty = forced or _isatty(self.stdout)
        self.stderr_tty = forced or _isatty(self.stderr)
        self.color = self.is_tty and "NO_COLOR" not in os.environ

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
        print(message, file=self.stderr)

    def error(self, message: str) -> None:
        print(f"leadctl: error: {message}", file=self.stderr)

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
                self.stdout.write(json.dumps(item, ensure_ascii=False) + "\n")
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
            self.stdout.write(("," if n else "") + "\n  " + json.dumps(item, ensure_ascii=False))
            n += 1
        self.stdout.write("\n]\n" if n else "]\n")
        return n

    def _csv(self, items: Iterable[dict[str, Any]]) -> int:
        writer: Any = None
        n = 0
        for item in items:
            if writer is None:
                writer = csv.DictWriter(self.stdout, fieldnames=list(item), extrasaction="ignore")
                writer.writeheader()
            writer.writerow({k: _plain(v) for k, v in item.items()})
            n += 1
        return n

    def _table(self, items: list[dict[str, Any]], columns: list[Column], title: str | None) -> int:
        from rich.table import Table

        table = Table(title=title, header_style="bold" if self.color else "")
        for c in columns:
            table.add_column(c.header, style=c.style if self.color else None, overflow="fold")
        for item in items:
            table.add_row(*(c.shown(item) for c in columns))
        self._console().print(table)
        return len(items)

    def obj(
        self, data: dict[str, Any], human: Callable[[dict[str, Any]], str] | None = None
    ) -> None:
        """One object: JSON in machine formats; otherwise the human rendering (or key: value)."""
        if self.machine:
            self.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
            return
        text = human(data) if human else "\n".join(f"{k}: {_plain(v)}" for k, v in data.items())
        self.stdout.write(text.rstrip("\n") + "\n")


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
