"""SIGTERM to the server process alone (`kill PID`, `docker stop`): a clean stop, no false kill."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import BIN, free_port, make_settings, server_env, wait_until

pytestmark = pytest.mark.e2e

STARTED = re.compile(r"delivery process started \(pid (\d+)\)")
ROUNDS = 8  # stops, one after another: the false kill was a race, in 1 stop of 15 to 3 of 3


def _running(pid: int) -> bool:
    """True while `pid` exists and has not ended (a zombie has ended, not yet reaped)."""
    try:
        os.kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (ProcessLookupError, FileNotFoundError):
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _asleep_and_deaf(pid: int) -> bool:
    """True once the delivery process ignores SIGINT and SIGTERM: its start-up is done."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigIgn:"):
                ignored = int(line.split()[1], 16)
                return all(ignored >> (sig - 1) & 1 for sig in (signal.SIGINT, signal.SIGTERM))
    return False


def _idle(pid: int) -> bool:
    """True while the delivery process sleeps waiting to be woken (its loop's poll on the pipe),
    not in the middle of its start-up: the state in which the reporter's stops went wrong."""
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        return state == "S" and "poll" in Path(f"/proc/{pid}/wchan").read_text()
    return False


def _healthy(proc: subprocess.Popen[bytes], url: str, log: Path) -> bool:
    assert proc.poll() is None, f"server exited: {log.read_text(errors='replace')[-2000:]}"
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    return False


def test_sigterm_to_the_server_alone_stops_its_delivery_process_without_a_kill(
    tmp_path: Path,
) -> None:
    """The delivery process ends at once when the server closes its pipe; the server must not
    take it for stuck. Two threads used to wait on (reap) the same child: the one that lost got
    ECHILD, multiprocessing then called the child alive, and it was "killed" 0.1 s into shutdown.
    """
    for n in range(ROUNDS):
        home = tmp_path / f"server{n}"
        home.mkdir()
        _stop_one_server(home)


def _stop_one_server(home: Path) -> None:
    """Start `leadctl serve` in `home`, SIGTERM its pid once its delivery process idles, check how it ended."""
    port, log = free_port(), home / "server.log"
    url = f"http://127.0.0.1:{port}"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(BIN / "leadctl"), "serve", "--port", str(port)],
            cwd=home,
            env=server_env(make_settings(home)),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: nothing else of the test's is signalled
        )
    try:
        wait_until(lambda: _healthy(proc, url, log), 30, "the server to start")
        found = wait_until(
            lambda: STARTED.findall(log.read_text(errors="replace")), 20, "a delivery process"
        )
        child = int(found[0])
        wait_until(lambda: _asleep_and_deaf(child), 30, "the delivery process to start up")
        wait_until(lambda: _idle(child), 30, "the delivery process to wait for work")

        os.kill(proc.pid, signal.SIGTERM)  # the server's pid only, as `docker stop` does
        proc.wait(30)  # a bound so the test never hangs: stop() alone may take 5 s + 5 s
        text = log.read_text(errors="replace")
        # uvicorn ends by raising the signal it caught again: the status of a SIGTERM.
        assert proc.returncode == -signal.SIGTERM, text[-2000:]
        assert "Application shutdown complete." in text
        assert "did not stop" not in text and "killing it" not in text, text[-2000:]
        assert not _running(child), f"delivery process {child} outlived its server"
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
