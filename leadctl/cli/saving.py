"""Where `open` writes a resume: the `--save` path (a file, or into a folder) and private copies."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from leadctl.errors import LeadctlError
from leadctl.private import private_folder


def private_copy(filename: str, data: bytes) -> Path:
    """A private copy for the viewer: 0600 in a fresh 0700 directory, unreadable to others."""
    path = Path(tempfile.mkdtemp(prefix="leadctl-")) / filename
    write_private(path, data)
    return path


def save_path(save: str, filename: str) -> Path:
    """Where `--save` writes: into a folder (one that exists, or a path ending in `/`, made 0700
    with its missing parents), else to the file named."""
    target = Path(save)
    if save.endswith(("/", os.sep)) or target.is_dir():
        try:
            return private_folder(target) / filename
        except OSError as exc:
            raise LeadctlError(f"cannot make the folder {target}: {exc.strerror}") from None
    if not target.parent.is_dir():
        raise LeadctlError(
            f"cannot write {target}: the folder {target.parent} does not exist "
            "(end the path with / to save into a new folder)"
        )
    return target


def write_private(path: Path, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise LeadctlError(f"cannot write {path}: {exc.strerror}") from None
    os.fchmod(fd, 0o600)  # a file overwritten with --force may have been readable by others
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
