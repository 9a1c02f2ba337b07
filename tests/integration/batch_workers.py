"""Faulty batch workers for the fault tests of ``replay.batch``.

They are module-level functions so a forkserver child can import them by name
(``tests.integration.batch_workers``). Each one runs the real
:func:`replay.batch.local.worker_main` loop over a connection that looks at every job (of each
group) before the loop gets it: it records the attempt and, when told to, kills its own
process with SIGKILL, as the kernel's OOM killer would.

A worker learns what to do from files in the *faults folder*, ``<cache dir>/../faults`` (derived
from the cache folder the pool passes to every worker, so nothing depends on the environment the
forkserver was started with):

* ``attempts/<job_id>.<pid>.<ns>``: written by every worker for every job it receives;
* ``die-once/<job_id>``: put there by a test; the first worker to receive that job dies
  (it claims the fault by creating ``fired/<job_id>``, so a retry on a fresh worker succeeds);
* ``die-always/<job_id>``: put there by a test; every worker that receives that job dies.
"""

from __future__ import annotations

import os
import pickle
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import cast

from barbus.replay.batch import Job
from barbus.replay.batch.local import worker_main

__all__ = [
    "always_dies_worker",
    "attempts",
    "counting_worker",
    "dies_once_worker",
    "faults_dir",
    "order_death",
]

DIE_ONCE = "die-once"
DIE_ALWAYS = "die-always"


def faults_dir(cache_dir: str | Path) -> Path:
    """The faults folder of a batch whose cache lives in ``cache_dir``."""
    return Path(cache_dir).parent / "faults"


def order_death(cache_dir: Path, job: Job, *, always: bool) -> None:
    """Tell the faulty workers of a batch cached in ``cache_dir`` to die on ``job``."""
    folder = faults_dir(cache_dir) / (DIE_ALWAYS if always else DIE_ONCE)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / job.job_id).touch()


def attempts(cache_dir: Path, job: Job) -> int:
    """How many times a worker of a batch cached in ``cache_dir`` received ``job``."""
    return len(list((faults_dir(cache_dir) / "attempts").glob(f"{job.job_id}.*")))


class _Inspecting:
    """A worker connection that shows each received job to ``on_job`` before returning it."""

    def __init__(self, conn: Connection, on_job: Callable[[Job], None]) -> None:
        self._conn = conn
        self._on_job = on_job

    def recv_bytes(self) -> bytes:
        payload = self._conn.recv_bytes()
        if payload:
            for job in pickle.loads(payload):  # a group: the jobs of one pass
                self._on_job(job)
        return payload

    def send(self, obj: object) -> None:
        self._conn.send(obj)


def _record_attempt(folder: Path, job: Job) -> None:
    marks = folder / "attempts"
    marks.mkdir(parents=True, exist_ok=True)
    (marks / f"{job.job_id}.{os.getpid()}.{time.monotonic_ns()}").touch()


def _claim(path: Path) -> bool:
    """Create ``path``; True for the one process that created it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _run(conn: Connection, cache_dir: str, on_job: Callable[[Path, Job], None]) -> None:
    folder = faults_dir(cache_dir)

    def inspect(job: Job) -> None:
        _record_attempt(folder, job)
        on_job(folder, job)

    worker_main(cast(Connection, _Inspecting(conn, inspect)), cache_dir)


def _no_fault(folder: Path, job: Job) -> None:
    del folder, job


def _die_the_first_time(folder: Path, job: Job) -> None:
    if (folder / DIE_ONCE / job.job_id).exists() and _claim(folder / "fired" / job.job_id):
        _die()


def _die_every_time(folder: Path, job: Job) -> None:
    if (folder / DIE_ALWAYS / job.job_id).exists():
        _die()


def counting_worker(conn: Connection, cache_dir: str) -> None:
    """The real worker, recording each job it receives."""
    _run(conn, cache_dir, _no_fault)


def dies_once_worker(conn: Connection, cache_dir: str) -> None:
    """The real worker, killed by SIGKILL the first time any worker receives a die-once job."""
    _run(conn, cache_dir, _die_the_first_time)


def always_dies_worker(conn: Connection, cache_dir: str) -> None:
    """The real worker, killed by SIGKILL whenever it receives a die-always job."""
    _run(conn, cache_dir, _die_every_time)
