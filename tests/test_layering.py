"""The layers import one way: nothing under `leadctl/` (the core and the CLI) imports `intake/`."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_nothing_under_leadctl_imports_the_server() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in _imported_modules(path) if m == "intake" or m.startswith("intake.")
        )
        for path in sorted((ROOT / "leadctl").rglob("*.py"))
    }
    assert {path: mods for path, mods in offenders.items() if mods} == {}


def test_the_check_sees_imports() -> None:
    # The same walk finds the server's own imports of the core: the check is not blind.
    assert "leadctl.settings" in _imported_modules(ROOT / "intake" / "app.py")
