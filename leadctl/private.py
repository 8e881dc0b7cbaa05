"""Files and folders that hold client data: readable by their owner only, whatever the umask."""

from __future__ import annotations

import contextlib
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
    """Make `path` a folder; each folder this call creates (missing parents too) is mode 0700.

    A folder that already exists is left as it is: an admin may have opened it on purpose.
    """
    folder = Path(path)
    missing = []
    step = folder
    while not step.is_dir():
        missing.append(step)
        step = step.parent
    for created in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            created.mkdir(mode=FOLDER_MODE)
            os.chmod(created, FOLDER_MODE)  # mkdir's mode is cut by the umask; this is exact
    return folder
