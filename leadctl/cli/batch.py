"""Batch commands' ids (arguments, or `-` for standard input) and their per-lead results.

Standard input is read whole and checked before anything changes: a line that is not a lead id,
a reference or a `list --ndjson` object, a NUL or other control character, an endless line or
too many lines stop the command with one line naming the line, and nothing is done. Then each
lead succeeds or fails on its own, as `reach-out` always has.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import count
from typing import IO, TYPE_CHECKING

import typer

from leadctl.cli.backend import BatchResult
from leadctl.cli.context import UsageError
from leadctl.cli.exitcodes import ExitCode
from leadctl.cli.output import Output, batch_ids
from leadctl.errors import LeadctlError
from leadctl.text import visible

if TYPE_CHECKING:
    from leadctl.cli.context import Env
    from leadctl.leads import Outcome

MAX_IDS = 10_000  # leads in one batch; more is split by the caller (e.g. `xargs -n`/`split`)
MAX_LINE = 4_096  # characters in one input line; a `list --ndjson` line is well under 2,000
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")  # tab separates `list`'s plain columns
SPLIT = "e.g. split -l 10000"  # how to give more than MAX_IDS, unless a command knows better


@dataclass(frozen=True)
class Noun:
    """What a command's ids name: the word its messages use, and what one id looks like."""

    word: str
    pattern: re.Pattern[str]
    shape: str


LEADS = Noun("lead", re.compile(r"\d{1,15}|[A-Za-z0-9]{4}-?[A-Za-z0-9]{4}"), "lead id or reference")
PARTIES = Noun("party", re.compile(r"\d{1,15}"), "party id")


def read_ids(env: Env, ids: list[str], noun: Noun = LEADS, more: str = SPLIT) -> list[str]:
    """The ids a batch command works on: its arguments, or standard input for `-`; at most
    MAX_IDS, else a usage error that ends with `more` (what to do instead)."""
    if ids == ["-"]:
        if env.streams.stdin_tty:
            raise UsageError(f"'-' reads {noun.word} ids from standard input; pipe them in")
        return ids_from(env.streams.stdin, noun, more)
    if "-" in ids:
        raise UsageError("'-' must be the only id when reading from standard input")
    if len(ids) > MAX_IDS:
        raise UsageError(f"{len(ids):,} ids; give at most {MAX_IDS:,} at once ({more})")
    return list(batch_ids(ids))


def ids_from(stream: IO[str], noun: Noun = LEADS, more: str = SPLIT) -> list[str]:
    """Every id on `stream`, checked before any is used (see the module's docstring)."""
    found: list[str] = []
    for number in count(1):
        line = stream.readline(MAX_LINE + 1)  # bounded: an endless line is never held whole
        if not line:
            return found
        if len(line) > MAX_LINE and not line.endswith("\n"):
            raise UsageError(
                f"line {number} of standard input is longer than {MAX_LINE:,} characters; "
                f"give one {noun.word} id per line"
            )
        ident = _id_of(line.rstrip("\r\n"), number, noun)
        if ident is None:
            continue
        found.append(ident)
        if len(found) > MAX_IDS:
            raise UsageError(
                f"more than {MAX_IDS:,} ids on standard input; give at most {MAX_IDS:,} at once "
                f"({more})"
            )
    return found


def _id_of(line: str, number: int, noun: Noun) -> str | None:
    """The id on one input line: a plain id or reference (the first column of `list`'s plain
    output), or a `list --ndjson` object's id; None for a blank or `#` comment line."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    where = f"line {number} of standard input"
    if _CONTROL.search(text):
        raise UsageError(f"{where} holds a control character: {_quoted(text)}")
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            raise UsageError(f"{where} is not valid JSON: {_quoted(text)}") from None
        value = obj.get("id") or obj.get("reference") if isinstance(obj, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise UsageError(f"{where} is a JSON object without an id: {_quoted(text)}")
        text = str(value)
    else:
        text = text.split("\t", 1)[0].strip()
    if not noun.pattern.fullmatch(text):
        raise UsageError(f"{where} is not a {noun.shape}: {_quoted(text)}")
    return text


def _quoted(text: str) -> str:
    shown = visible(text)
    return f"'{shown if len(shown) <= 40 else shown[:40] + '…'}'"


def say_nothing_read(out: Output, noun: Noun = LEADS) -> None:
    """An empty standard input is no error (a filter may rightly match nothing), but one that
    failed upstream looks the same: say so on stderr. A machine format prints its empty
    result instead, which says it already."""
    if not out.machine:
        out.say(f"no {noun.word} ids on standard input; nothing done")


def run_batch(out: Output, idents: Iterable[str], apply: Callable[[str], Outcome]) -> None:
    """Apply to each lead: the rest go on when one fails; exit 1 when any failed.

    One error said for many leads (an unknown attorney to assign them to) is printed once, with
    how many more leads it stopped; `--json` lists every failure.
    """
    idents = list(idents)
    if not idents:  # arguments are required, so this was an empty `-`
        say_nothing_read(out)
    result = BatchResult()
    repeats: dict[str, int] = {}
    for ident in idents:
        try:
            change = apply(ident)
        except LeadctlError as exc:
            message = str(exc)
            result.failed.append({"id": ident, "error": message})
            if message in repeats:
                repeats[message] += 1
            else:
                repeats[message] = 0
                out.error(message)
            continue
        (result.changed if change.changed else result.unchanged).append(
            change.lead or {"id": ident}
        )
        if not out.machine:
            out.line(change.message)
    for message, more in repeats.items():
        if more:
            out.error(f"{message} (and {more:,} more lead{'s' if more > 1 else ''} the same)")
    if out.machine:
        out.obj(result.as_dict())
    if result.failed:
        raise typer.Exit(ExitCode.FAILURE)
