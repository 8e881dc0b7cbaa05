"""Files and folders that hold client data: readable by their owner only, whatever the umask."""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def private_file(path: str | os.PathLike[str]) -> None:
    """Create an empty file at `path`, mode 0600; FileExistsError if there is one already."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # the umask can only take bits away; this makes it exact
    finally:
        os.close(fd)


def private_folder(path: str | os.PathLike[str]) -> Path:
    """Make `path` (and missing parents) a folder; one this call creates is mode 0700."""
    folder = Path(path)
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
        os.chmod(folder, FOLDER_MODE)
    return folder
