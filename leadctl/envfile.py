"""The env file: finding it (`--env-file`, `LEADS_ENV_FILE`, `./.env`) and reading its lines."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class EnvFileError(ValueError):
    """The env file cannot be read, or a line of it is not `KEY=value`."""


ENV_FILE_VARIABLE = "LEADS_ENV_FILE"
ENV_FILE_DOC = (
    "Env file read after the environment (`KEY=value` lines); `--env-file` wins over it; "
    "empty: `./.env` when present."
)
MAX_ENV_FILE_BYTES = 1024 * 1024  # a settings file is a few hundred bytes; /dev/zero is not one
# Patterns as text, compiled by `re` on first use: most runs have no env file to read.
_ASSIGNMENT = r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)"
_QUOTED = {"'": r"'([^']*)'", '"': r'"((?:\\.|[^"\\])*)"'}
_AFTER_QUOTE = r"\s*(#.*)?"


@dataclass(frozen=True)
class EnvFile:
    """A parsed env file: each key's last value and line, and every line that set it."""

    path: Path  # absolute
    chosen_by: str  # "--env-file", "LEADS_ENV_FILE" or "./.env"
    values: dict[str, tuple[str, int]]
    lines: dict[str, list[int]]


def find_env_file(
    environ: Mapping[str, str], env_file: str | os.PathLike[str] | None = None, *, cwd: bool = True
) -> tuple[Path, str] | None:
    """The env file to read and what chose it: `env_file`, `LEADS_ENV_FILE`, `./.env` (only
    with `cwd`, and only when it is there); None when there is none."""
    if env_file is not None:
        if not str(env_file).strip():
            raise EnvFileError("--env-file needs the path of a file")
        return Path(os.path.abspath(env_file)), "--env-file"
    named = environ.get(ENV_FILE_VARIABLE, "").strip()
    if named:
        return Path(os.path.abspath(named)), ENV_FILE_VARIABLE
    if cwd and Path(".env").is_file():
        return Path(os.path.abspath(".env")), "./.env"
    return None


def read_env_file(path: Path, chosen_by: str = "--env-file") -> EnvFile:
    """Parse the file: `KEY=value` lines, `#` comments, blank lines, an optional `export `, and
    single quotes (literal) or double quotes (`\\"` and `\\\\` escaped) around a value.

    No `${VAR}` expansion and no multi-line values, so systemd's EnvironmentFile= reads the
    same file the same way. EnvFileError names the file and the line of anything else.
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_ENV_FILE_BYTES + 1)
    except OSError as exc:
        raise EnvFileError(
            f"env file {path} (from {chosen_by}) cannot be read: {exc.strerror}"
        ) from None
    if len(data) > MAX_ENV_FILE_BYTES:
        raise EnvFileError(f"env file {path} is over 1 MiB: not a settings file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad_line = data[: exc.start].count(b"\n") + 1
        raise EnvFileError(f"{path}, line {bad_line}: not UTF-8 text") from None
    values: dict[str, tuple[str, int]] = {}
    lines: dict[str, list[int]] = {}
    # split("\n"), not splitlines(): U+2028 or a form feed inside a value does not end a line.
    for number, line in enumerate(text.split("\n"), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = re.fullmatch(_ASSIGNMENT, stripped)
        if not match:
            raise EnvFileError(f"{path}, line {number}: expected KEY=value, not {quoted(stripped)}")
        key = match.group(1)
        values[key] = (_unquote(match.group(2), path, number), number)
        lines.setdefault(key, []).append(number)
    return EnvFile(path, chosen_by, values, lines)


def _unquote(rest: str, path: Path, number: int) -> str:
    quote_mark = rest[:1]
    if quote_mark not in _QUOTED:
        return re.split(r"\s#", rest, maxsplit=1)[0].strip()  # `value # comment`
    match = re.match(_QUOTED[quote_mark], rest)
    if not match or not re.fullmatch(_AFTER_QUOTE, rest[match.end() :]):
        raise EnvFileError(
            f"{path}, line {number}: a value that opens with {quote_mark} must close with it, "
            "with nothing but a # comment after it"
        )
    value = match.group(1)
    return re.sub(r'\\(["\\])', r"\1", value) if quote_mark == '"' else value


def quoted(text: str, limit: int = 60) -> str:
    """`text` quoted for an error message, cut short: a hostile value may be a megabyte."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "…"
