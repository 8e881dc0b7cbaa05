"""Running `leadctl` in-process with captured streams, piped or on a (forced) terminal."""

from __future__ import annotations

import io
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

import pytest

from leadctl.cli.main import run


class TtyStringIO(io.StringIO):
    def isatty(self) -> bool:
        return True


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class Cli:
    """Call as cli("list", "--json"); `tty=True` makes stdin, stdout and stderr terminals."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
        self.monkeypatch = monkeypatch
        self.env = env

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        tty: bool = False,
        env: dict[str, str] | None = None,
    ) -> Result:
        stream = TtyStringIO if tty else io.StringIO
        out, err = stream(), stream()
        stdin = stream(input or "")
        with self.monkeypatch.context() as m:
            for key in [k for k in os.environ if k.startswith(("LEADS_", "LEADCTL_"))] + [
                "NO_COLOR"
            ]:
                m.delenv(key, raising=False)
            for key, value in {**self.env, **(env or {})}.items():
                m.setenv(key, value)
            m.setattr(sys, "stdin", stdin)
            m.setattr(sys, "stdout", out)
            m.setattr(sys, "stderr", err)
            try:
                run(list(args))
                code = 0
            except SystemExit as exc:
                code = int(exc.code or 0)
        return Result(code, out.getvalue(), err.getvalue())
