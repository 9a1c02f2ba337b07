"""What makes a path unusable as a data file, checked by the loader, the cache and batch specs.

Its own module so the cache (which parses through the loader) and the loader (which checks
paths before parsing) both use it without importing each other.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from barbus.daemon.core.errors import DataError

__all__ = ["refuse_special", "regular_file_problem"]

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def regular_file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as a data file (not a regular file), or None.

    ``stat`` does not open the file, so a FIFO nobody writes to cannot block here. A missing
    file is None: each caller says "missing" its own way (the cache may still hold a copy).
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return f"{path}: is a directory, not a data file"
    kind = next((name for test, name in _KINDS if test(mode)), "a special file")
    return f"{path}: is {kind}, not a regular file"


def refuse_special(path: Path) -> None:
    """Raise :class:`DataError` with :func:`regular_file_problem`'s reason, if there is one."""
    problem = regular_file_problem(path)
    if problem is not None:
        raise DataError(problem)
