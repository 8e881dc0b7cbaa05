"""leadctl behaviour that exists only in local mode: the database, the actor, the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def test_mine_needs_an_email_identity(cli: Any, seeded: list[Any]) -> None:
    result = cli("list", "--mine", env={"LEADCTL_ACTOR": "ann"})
    assert result.code == 2 and "--as EMAIL" in result.stderr


def test_global_as_option_must_come_first(cli: Any, seeded: list[Any]) -> None:
    result = cli("reopen", str(seeded[0].id), "--as", "x")
    assert result.code == 2


def test_database_problems_are_one_line(cli: Any, tmp_path: Path) -> None:
    result = cli("list", env={"LEADS_DATABASE_URL": f"sqlite:///{tmp_path}/no/such/dir/x.db"})
    assert result.code == 1
    assert result.stderr.startswith("leadctl: error: the database cannot be used")
    assert "Traceback" not in result.stderr
    bad = cli("list", env={"LEADS_DATABASE_URL": "mysql://x"})
    assert bad.code == 1 and "sqlite:///" in bad.stderr


def test_environment_errors_are_usage_errors(cli: Any) -> None:
    result = cli("list", env={"LEADS_MAX_RESUME_MB": "lots"})
    assert result.code == 2 and "LEADS_MAX_RESUME_MB must be a number" in result.stderr
