"""Data file paths: the bundled samples, and what makes a path unusable as a data file.

Checked by the loader, the cache and batch specs. Its own module, importing neither pandas nor
pyarrow, so the cache (which parses through the loader) and the loader (which checks paths
before parsing) both use it without importing each other, and a batch worker that only maps
cached data never loads the parsing libraries.
"""

from __future__ import annotations

import os
import stat
from importlib import resources
from pathlib import Path

from barbus.daemon.core.errors import DataError

__all__ = ["BUNDLED_SAMPLE", "bundled_data_path", "refuse_special", "regular_file_problem"]

BUNDLED_SAMPLE = "BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz"


def bundled_data_path(name: str = BUNDLED_SAMPLE) -> Path:
    """Path of a real Binance sample shipped inside the package (``replay/data``)."""
    path = Path(str(resources.files("barbus.replay") / "data" / name))
    if not path.is_file():
        raise DataError(f"bundled data file {name!r} is missing from the installation ({path})")
    return path


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
