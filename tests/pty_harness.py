"""The real `leadctl` on a pseudo-terminal that is its controlling terminal, as in a shell."""

from __future__ import annotations

import os
import pty
import select
import sys
import time
from pathlib import Path

LEADCTL = str(Path(sys.executable).parent / "leadctl")


def run_on_a_pty(
    args: list[str],
    env: dict[str, str],
    *,
    answer: tuple[bytes, bytes] | None = None,
    timeout: float = 30.0,
) -> tuple[int, str]:
    """(exit code, everything written to the terminal). With `answer` = (prompt, reply), the
    reply and a newline are typed once the prompt shows; the run fails if it never does."""
    pid, master = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execve(LEADCTL, ["leadctl", *args], env)
    seen, answered = b"", answer is None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
        if answer is not None and not answered and answer[0] in seen:
            # getpass turns echo off with TCSAFLUSH, discarding input typed before it: a person
            # types after the prompt is up, so wait a moment as they would.
            time.sleep(0.5)
            os.write(master, answer[1] + b"\n")
            answered = True
    for _ in range(100):  # never wait for ever on a child that is stuck
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
    os.close(master)
    text = seen.decode("utf-8", errors="replace")
    assert answered, f"the prompt {answer[0]!r} never showed: {text}" if answer else text
    return os.waitstatus_to_exitcode(status), text
