"""Docs that the tests keep honest: every command has help and is in the README, every setting too."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from leadctl.cli.main import register
from leadctl.settings import setting_docs

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _commands() -> list[tuple[str, object]]:
    root = typer.main.get_command(register())  # every command
    found: list[tuple[str, object]] = []

    def walk(prefix: str, command: object) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(f"{prefix} {name}".strip(), sub)
        else:
            found.append((prefix, command))

    walk("", root)
    return found


def test_there_are_commands_to_check() -> None:
    names = [name for name, _ in _commands()]
    assert {"list", "show", "reach-out", "attorney add", "outbox retry", "db backup"} <= set(names)


def test_every_command_has_help_text() -> None:
    missing = [name for name, cmd in _commands() if not (getattr(cmd, "help", None) or "").strip()]
    assert missing == []


def test_every_command_is_in_the_readme() -> None:
    missing = [name for name, _ in _commands() if f"`leadctl {name}" not in README]
    assert missing == []


def test_every_parameter_has_help_text() -> None:
    missing = []
    for name, cmd in _commands():
        for param in getattr(cmd, "params", []):
            if param.param_type_name == "option" and not getattr(param, "help", None):
                missing.append(f"{name} {param.opts[0]}")
    assert missing == []


def test_every_setting_is_documented_with_its_default() -> None:
    for env, default, _doc in setting_docs():
        row = re.search(rf"^\| `{env}` \| ([^|]+) \|", README, re.MULTILINE)
        assert row is not None, f"{env} is not in the README's table"
        shown = row.group(1).strip()
        assert shown == (f"`{default}`" if default else "(empty)"), env


def test_the_readme_documents_no_setting_that_does_not_exist() -> None:
    known = {env for env, _, _ in setting_docs()}
    documented = set(re.findall(r"^\| `(LEADS_[A-Z_]+)` \|", README, re.MULTILINE))
    assert documented == known


def test_the_readme_and_leadctl_config_agree(tmp_path: Path) -> None:
    """What `leadctl config` shows on a bare machine is the README's table: every variable, and
    each default as the table gives it."""
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADS_", "LEADCTL_"))}
    shown = subprocess.run(
        [str(Path(sys.executable).parent / "leadctl"), "config", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    settings = json.loads(shown.stdout)["settings"]
    table = dict(re.findall(r"^\| `(LEADS_[A-Z_]+)` \| ([^|]+) \|", README, re.MULTILINE))
    assert set(settings) == set(table) - {"LEADS_ENV_FILE"}
    for env_name, item in settings.items():
        assert item["source"] == "default", env_name
        value = item["value"]
        text = str(value).lower() if isinstance(value, bool) else str(value)
        assert table[env_name].strip() == (f"`{text}`" if text else "(empty)"), env_name
