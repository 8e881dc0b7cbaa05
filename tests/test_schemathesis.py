"""schemathesis against the running server's own OpenAPI document: no 500, answers match it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from leadctl import attorneys, db, schema
from leadctl.models import database
from tests.conftest import make_settings

pytestmark = pytest.mark.e2e

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    ]
)


def test_every_operation_against_its_own_schema(tmp_path: Path, make_server: Any) -> None:
    settings = make_settings(tmp_path)
    db.bind(settings.database_url)
    schema.ensure_schema()
    token = attorneys.add("Ann Lee", "ann@firm.example", "admin")[1].secret
    database.obj.close()
    server = make_server(settings)
    st = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [
            str(st),
            "run",
            f"{server.url}/schema/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            CHECKS,
            "--max-examples",
            "25",
            "--seed",
            "20261121",
            "--request-timeout",
            "10",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,  # its cache goes with the test, not into the working tree
    )
    summary = result.stdout[-3000:]
    assert result.returncode == 0, summary
    generated = re.search(r"(\d+) generated", result.stdout)
    assert generated and int(generated.group(1)) > 100, summary
    print(f"\nschemathesis: {generated.group(0)} test cases, no failures")
