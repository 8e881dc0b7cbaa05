"""Where `open` and `export` write: the `--save` path (a file, or into a folder), private copies
and files, and the desktop viewer that opens them."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, BinaryIO

from leadctl.errors import LeadctlError
from leadctl.private import private_folder

VIEWER_WAIT = 5.0  # seconds xdg-open is given to say it found no viewer


def private_copy(filename: str, data: bytes) -> Path:
    """A private copy for the viewer: 0600 in a fresh 0700 directory, unreadable to others."""
    from leadctl.resumes import fit_filename  # `open` only: off the start-up of `list`

    path = Path(tempfile.mkdtemp(prefix="leadctl-")) / fit_filename(filename)
    write_private(path, data)
    return path


def save_path(save: str, filename: str) -> Path:
    """Where `--save` writes: into a folder (one that exists, or a path ending in `/`, made 0700
    with its missing parents), else to the file named."""
    from leadctl.resumes import fit_filename  # `open` only: off the start-up of `list`

    target = Path(save)
    if save.endswith(("/", os.sep)) or target.is_dir():
        try:
            # A name stored before names were capped may be longer than a file name can be.
            return private_folder(target) / fit_filename(filename)
        except OSError as exc:
            raise LeadctlError(f"cannot make the folder {target}: {exc.strerror}") from None
    if not target.parent.is_dir():
        raise LeadctlError(
            f"cannot write {target}: the folder {target.parent} does not exist "
            "(end the path with / to save into a new folder)"
        )
    return target


def write_private(path: Path, data: bytes, *, replace: bool = False) -> None:
    """Write `data` to `path`, mode 0600. An existing file is an error unless `replace`; a
    symbolic link is never followed (someone who can write the folder could plant one named like
    the resume, whose name the prospect chose)."""
    with _open_private(path, replace) as handle:
        handle.write(data)


def open_private_text(path: Path) -> IO[str]:
    """`path` opened for writing text (UTF-8, newlines as written), mode 0600, replacing a file
    that is there but never following a symbolic link: an export holds every lead's data."""
    return io.TextIOWrapper(_open_private(path, True), encoding="utf-8", newline="")


def _open_private(path: Path, replace: bool) -> BinaryIO:
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_TRUNC if replace else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if path.is_symlink():
            raise LeadctlError(f"cannot write {path}: it is a symbolic link") from None
        if isinstance(exc, FileExistsError):
            raise LeadctlError(f"{path} exists; pass --force to overwrite it") from None
        raise LeadctlError(f"cannot write {path}: {exc.strerror}") from None
    os.fchmod(fd, 0o600)  # a file overwritten with --force may have been readable by others
    return os.fdopen(fd, "wb")


def launch_viewer(path: Path) -> str | None:
    """Open `path` in the desktop's viewer; None once one has it, else why none could.

    `xdg-open` (`open` on macOS) hands the file to a viewer and exits; it exits non-zero at once
    when there is no desktop or no viewer for the type, which is waited for. A viewer it runs
    in the foreground is left running after a short wait: the copy is then the viewer's.
    """
    opener = "open" if sys.platform == "darwin" else "xdg-open"
    try:
        proc = subprocess.Popen(  # noqa: S603 - fixed program; an absolute path; no shell
            [opener, str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a viewer left running outlives the command's Ctrl-C
        )
    except OSError:
        return f"{opener} is not installed"
    try:
        code = proc.wait(timeout=VIEWER_WAIT)
    except subprocess.TimeoutExpired:
        return None
    return None if code == 0 else f"{opener} found no viewer for it (exit {code})"
