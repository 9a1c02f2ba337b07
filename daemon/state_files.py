"""The files beside a state database: ``<state>.lock`` (who holds it) and ``<state>.id`` (which
state it is).

Exclusive use: the daemon opens its store with ``exclusive=True``, which holds ``flock`` on the
lock file (with the holder's pid in it) for the life of the store, so a second daemon on the
same file stops at once with one line. Identity: a writable open keeps a copy of the state's id
in the marker, so a file emptied or replaced behind the daemon's back is noticed (the store
decides what to do about it). These are plain files, not SQLite, which is why they sit apart
from :mod:`barbus.daemon.state`.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from barbus.daemon.core.errors import BarbusError, DataError
from barbus.daemon.state_schema import is_state_id, short

__all__ = ["StateBusyError", "beside", "lock", "read_marker", "write_marker"]


class StateBusyError(BarbusError):
    """Another process holds the state file: stop it, or give this one another state file."""


def beside(path: Path, suffix: str) -> Path:
    """A sidecar next to the real file, so two paths to one file (a symlink) share it."""
    real = Path(os.path.realpath(path))
    return real.with_name(real.name + suffix)


def lock(path: Path, lock_path: Path) -> int:
    """Take the exclusive lock on ``lock_path`` (of the state at ``path``) or say who holds it;
    the open descriptor holds the lock until it is closed."""
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise DataError(
            f"{path}: cannot open its lock file {lock_path.name}: {exc.strerror}"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode("ascii", "replace").strip()
        os.close(fd)
        who = f"process {holder}" if holder.isdigit() else "another process"
        raise StateBusyError(
            f"{path}: already in use by {who} (lock {lock_path}); one daemon per state file"
        ) from None
    except OSError as exc:
        os.close(fd)
        raise DataError(f"{path}: cannot lock {lock_path.name}: {exc.strerror}") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError:
        pass  # the pid is a courtesy for the next one's message; the lock is what counts
    return fd


def read_marker(marker_path: Path) -> str | None:
    """The state id the marker holds, or None when there is no marker."""
    try:
        text = marker_path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{marker_path}: unreadable state marker: {exc}") from None
    if not is_state_id(text):
        raise DataError(
            f"{marker_path}: not a state marker ({short(text)!r}); delete it if the "
            "state file next to it is the right one"
        )
    return text


def write_marker(marker_path: Path, state_id: str) -> None:
    """Atomically (temp file, fsync, rename) so a crash leaves the old marker or the new."""
    temporary = marker_path.with_name(marker_path.name + ".tmp")
    try:
        with temporary.open("w", encoding="ascii") as handle:
            handle.write(state_id + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(marker_path)
    except OSError as exc:
        raise DataError(f"{marker_path}: cannot write the state marker: {exc}") from None
