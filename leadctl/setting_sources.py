"""Where each setting's raw text comes from: the environment first, then the env file.

The env file is `--env-file PATH`, else `LEADS_ENV_FILE`, else `./.env` when present; a relative
SQLite path or folder given in it is resolved against the file's folder. What the text means is
`setting_values`' business, and which settings there are is `settings`'.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from leadctl.envfile import EnvFile, EnvFileError, find_env_file, read_env_file
from leadctl.setting_values import SettingsError


@dataclass(frozen=True)
class Origin:
    """Where a setting's value came from: `default`, `environment`, `file` (with its line) or
    `option` (a command-line option such as `--db`)."""

    source: str
    line: int | None = None

    def __str__(self) -> str:
        return f"file, line {self.line}" if self.line else self.source


@dataclass(frozen=True)
class Sources:
    """The raw text of every setting that is not left at its default, and where each came from."""

    raw: dict[str, str]
    origins: dict[str, Origin]
    env_file: EnvFile | None


def read(
    fields: Iterable[dataclasses.Field[Any]],
    environ: Mapping[str, str] | None = None,
    /,
    *,
    env_file: str | os.PathLike[str] | None = None,
) -> Sources:
    """The raw text of each setting (`fields` of `Settings`, each naming its variable): the
    environment first (an empty variable counts as unset), then the env file. With `environ`
    given, `./.env` is read only when it names it."""
    cwd = environ is None
    environ = os.environ if environ is None else environ
    try:
        found = find_env_file(environ, env_file, cwd=cwd)
        parsed = read_env_file(*found) if found else None
    except EnvFileError as exc:
        raise SettingsError(str(exc)) from None
    raw: dict[str, str] = {}
    origins: dict[str, Origin] = {}
    for f in fields:
        env = f.metadata["env"]
        from_env = environ.get(env, "").strip()
        from_file = parsed.values[env] if parsed and env in parsed.values else ("", 0)
        if from_env:
            raw[env], origins[env] = from_env, Origin("environment")
        elif parsed and from_file[0].strip():
            raw[env] = _resolved(f, from_file[0].strip(), parsed.path.parent)
            origins[env] = Origin("file", from_file[1])
        else:
            origins[env] = Origin("default")
    return Sources(raw, origins, parsed)


def _resolved(f: dataclasses.Field[Any], text: str, folder: Path) -> str:
    """A relative SQLite path or folder from an env file, made absolute against its folder: the
    server and `leadctl` then agree wherever each is started."""
    if f.metadata["env"] == "LEADS_DATABASE_URL" and text.startswith("sqlite:///"):
        path = unquote(text[len("sqlite:///") :])
        if path and path != ":memory:" and not os.path.isabs(path):
            return "sqlite:///" + quote(os.path.normpath(folder / path), safe="/")
    elif f.metadata.get("path") and not os.path.isabs(text):
        return os.path.normpath(folder / text)
    return text
