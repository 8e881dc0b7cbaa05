"""The deploy/ folder and the Makefile: systemd units verified, proxies, container, `make serve`."""

from __future__ import annotations

import configparser
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
VENV_BIN = Path(sys.executable).parent
UNITS = ["leadctl.service", "leadctl-backup.service", "leadctl-backup.timer"]
GRACEFUL_SHUTDOWN = 20  # leadctl serve's timeout_graceful_shutdown, in seconds
DELIVERY_STOP = 5 + 5  # DeliveryWorker.stop(): a join, then a kill and a join


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    parser.read_string((DEPLOY / name).read_text())
    return parser


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify insists that ExecStart exists: point it at this checkout's leadctl.
    for name in UNITS:
        text = (DEPLOY / name).read_text()
        (tmp_path / name).write_text(
            text.replace("/opt/leadctl/.venv/bin/leadctl", str(VENV_BIN / "leadctl"))
        )
    result = subprocess.run(
        ["systemd-analyze", "verify", *(f"./{name}" for name in UNITS)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    ours = [line for line in result.stderr.splitlines() if any(n in line for n in UNITS)]
    assert result.returncode == 0 and not ours, result.stderr


def test_the_service_runs_confined_and_stops_by_sigterm_to_its_group() -> None:
    service = unit("leadctl.service")["Service"]
    assert service["User"] == "leadctl" and service["Group"] == "leadctl"
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == "/var/lib/leadctl"
    assert service["Restart"] == "on-failure"
    assert service["KillMode"] == "control-group" and service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"].rstrip("s")) > GRACEFUL_SHUTDOWN + DELIVERY_STOP
    assert service["EnvironmentFile"] == "/etc/leadctl/leadctl.env"
    assert service["ExecStart"].startswith("/opt/leadctl/.venv/bin/leadctl serve ")
    assert service["UMask"] == "0077" and service["NoNewPrivileges"] == "yes"


def test_the_backup_timer_runs_db_backup_with_keep_daily() -> None:
    backup = unit("leadctl-backup.service")["Service"]
    assert backup["Type"] == "oneshot" and backup["User"] == "leadctl"
    assert backup["ExecStart"].split()[1:] == [
        "db",
        "backup",
        "/var/lib/leadctl/backups",
        "--keep",
        "14",
    ]
    assert backup["ReadWritePaths"] == "/var/lib/leadctl"
    timer = unit("leadctl-backup.timer")
    assert timer["Timer"]["Unit"] == "leadctl-backup.service"
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Install"]["WantedBy"] == "timers.target"


def test_the_example_env_file_names_only_real_settings() -> None:
    from leadctl.settings import setting_docs

    known = {name for name, _, _ in setting_docs()}
    lines = (DEPLOY / "leadctl.env.example").read_text().splitlines()
    names = {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}
    assert names and names <= known, names - known
    assert "LEADS_TRUSTED_PROXIES=127.0.0.1" in lines


@pytest.mark.parametrize("name", ["Caddyfile", "nginx.conf"])
def test_each_proxy_example_has_tls_forwarded_headers_and_hides_metrics(name: str) -> None:
    text = (DEPLOY / name).read_text()
    assert "LEADS_TRUSTED_PROXIES=127.0.0.1" in text
    assert "127.0.0.1:8000" in text
    assert "/metrics" in text and "404" in text
    if name == "nginx.conf":
        assert "listen 443 ssl" in text and "ssl_certificate " in text
        assert "proxy_set_header X-Forwarded-For $remote_addr;" in text
        assert "proxy_set_header X-Forwarded-Proto $scheme;" in text
    else:  # Caddy: automatic HTTPS for a named site, forwarded headers by default
        assert "leads.firm.example {" in text and "reverse_proxy 127.0.0.1:8000" in text


def test_the_container_runs_as_a_user_from_the_lock_and_compose_has_postgresql() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    users = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
    assert "--constraint requirements.lock" in dockerfile
    assert 'CMD ["leadctl", "serve"' in dockerfile
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert services["db"]["image"].startswith("postgres:")
    app = services["leadctl"]
    assert app["environment"]["LEADS_DATABASE_URL"].startswith("postgresql://")
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    assert all(port.startswith("127.0.0.1:") for port in app["ports"])


@pytest.mark.skipif(shutil.which("make") is None, reason="no make here")
def test_make_serve_listens_where_it_is_told(tmp_path: Path) -> None:
    port = free_port()
    venv = VENV_BIN.parent
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LEADS_", "LEADCTL_"))},
        "LEADS_DATABASE_URL": f"sqlite:///{tmp_path}/leads.db",
        "LEADS_MAIL_DIR": str(tmp_path / "mail"),
    }
    # -o: this test runs the server, not the install (the venv is the one running the tests).
    command = ["make", "-s", "-C", str(ROOT), "-o", f"{venv}/.installed", f"VENV={venv}"]
    proc = subprocess.Popen(
        [*command, "serve", f"PORT={port}", "HOST=127.0.0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # make and the server in a group of their own, stopped together
    )
    try:
        deadline = time.monotonic() + 30
        answer = None
        while answer is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1)
            except httpx.HTTPError:
                time.sleep(0.1)
        assert answer is not None and answer.status_code == 200, proc.poll()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            output = proc.communicate(timeout=40)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output = proc.communicate()[0].decode(errors="replace")
    assert f"Uvicorn running on http://127.0.0.1:{port}" in output
