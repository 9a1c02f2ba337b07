"""The local backends: a pool of worker processes on this machine, and the in-process run.

Workers receive groups of jobs (:mod:`.groups`: one shared pass each), never bars: each worker
opens the memory-mapped cache by path (the parent builds and verifies every entry once before
any job is dispatched), so the data is loaded once
and shared through the page cache. A worker that dies (kill -9, out of memory) or answers with a
failed row is replaced by a fresh process, and a job handed out next goes to a fresh worker
first, so a retry (:mod:`.retry`) runs on a clean process. ``--no-parallel`` runs the same jobs
in this process instead (:class:`InProcess`), with the same policy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import multiprocessing.connection
import pickle
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from barbus.replay.batch.backend import Finished
from barbus.replay.batch.job import (
    JobOutcome,
    result_row,
    run_group,
    run_group_in_worker,
    run_job,
    settle_worker_heap,
)
from barbus.replay.batch.jobs import Job
from barbus.replay.cache import BarCache

__all__ = ["InProcess", "WorkerPool", "WorkerTarget", "worker_main", "worker_pool"]


def worker_main(conn: multiprocessing.connection.Connection, cache_dir: str) -> None:
    """Worker loop: receive a pickled group of jobs, send back their outcomes, until told to
    stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides how to stop
    # The parent verified every entry's checksums just before dispatching: map, don't rehash;
    # it also reported each dataset's gaps (or an unusable cache folder) once: stay quiet.
    cache = BarCache(Path(cache_dir), verify_checksums=False, announce=False)
    slot = multiprocessing.current_process().name.rpartition("-")[2]
    settle_worker_heap()
    try:
        while True:
            payload = conn.recv_bytes()
            if not payload:
                break
            group: tuple[Job, ...] = pickle.loads(payload)
            outcomes = run_group_in_worker(group, cache)
            cache.flush_stats()  # per group: a worker killed later loses no counts
            conn.send([dataclasses.replace(outcome, worker=slot) for outcome in outcomes])
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        cache.flush_stats()


WorkerTarget = Callable[[multiprocessing.connection.Connection, str], None]


@dataclass
class _Worker:
    process: BaseProcess
    conn: multiprocessing.connection.Connection
    group: tuple[Job, ...] | None = None
    fresh: bool = True  # has run no job yet


class WorkerPool:
    """N worker processes, one group each at a time; replaces a worker that dies or fails."""

    retry_note = "on a fresh worker"

    def __init__(self, size: int, cache_dir: Path, target: WorkerTarget) -> None:
        # forkserver: no inherited locks or threads from the parent, and the start method no
        # longer changes under us between Python versions. The server imports the worker's
        # modules once, so a worker (a replacement, or the pool of the next batch of this
        # process) starts in milliseconds instead of importing for ~0.2 s of its own.
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload([__name__])
        self._cache_dir = str(cache_dir)
        self._target = target
        self.workers = [self._spawn(slot) for slot in range(size)]
        self.bytes_sent = 0

    @property
    def capacity(self) -> int:
        return len(self.workers)

    def _spawn(self, slot: int) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=self._target,
            args=(child, self._cache_dir),
            name=f"barbus-worker-{slot}",
            daemon=True,
        )
        process.start()
        child.close()
        return _Worker(process, parent)

    def submit(self, group: tuple[Job, ...]) -> None:
        """Send ``group`` to an idle worker, a fresh one first."""
        idle = [worker for worker in self.workers if worker.group is None]
        worker = next((w for w in idle if w.fresh), idle[0])
        payload = pickle.dumps(group)
        self.bytes_sent += len(payload)
        worker.group = group
        worker.fresh = False
        worker.conn.send_bytes(payload)

    def _replace(self, worker: _Worker) -> None:
        """Retire ``worker`` (killing it if needed) and start a fresh one in its place."""
        with contextlib.suppress(OSError):
            worker.conn.close()
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join()
        slot = self.workers.index(worker)
        self.workers[slot] = self._spawn(slot)

    def wait(self) -> list[list[Finished]]:
        """The groups of the busy workers that answered or died; a worker that died or gave a
        failed row is replaced."""
        handles: dict[Any, _Worker] = {}
        for worker in self.workers:
            if worker.group is not None:
                handles[worker.conn] = worker
                handles[worker.process.sentinel] = worker
        answered: list[tuple[_Worker, list[JobOutcome] | None]] = []
        for handle in multiprocessing.connection.wait(list(handles)):
            worker = handles[handle]
            if any(worker is seen for seen, _ in answered):
                continue
            try:
                outcomes: list[JobOutcome] | None = (
                    worker.conn.recv() if worker.conn.poll() else None
                )
            except (EOFError, OSError):
                outcomes = None
            answered.append((worker, outcomes))
        finished = []
        for worker, outcomes_or_none in answered:
            answer = outcomes_or_none
            group = worker.group
            assert group is not None
            worker.group = None
            if answer is None:
                worker.process.join(5.0)
                died = f"worker died (exit code {worker.process.exitcode})"
                answer = [JobOutcome(result_row(job, None, died)) for job in group]
            if any(outcome.row["status"] != "ok" for outcome in answer):
                self._replace(worker)  # a fresh process for whatever comes next
            finished.append([Finished(j, o) for j, o in zip(group, answer, strict=True)])
        return finished

    def close(self) -> None:
        """Tell every worker to stop; kill the ones that do not within 5 s."""
        for worker in self.workers:
            with contextlib.suppress(OSError):
                worker.conn.send_bytes(b"")
        deadline = time.monotonic() + 5.0
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()

    def kill(self) -> None:
        for worker in self.workers:
            if worker.process.is_alive():
                worker.process.kill()
            worker.process.join()


@contextlib.contextmanager
def worker_pool(size: int, cache_dir: Path, target: WorkerTarget) -> Iterator[WorkerPool]:
    """A started :class:`WorkerPool`: closed in order at the end, killed on any exception."""
    pool = WorkerPool(size, cache_dir, target)
    try:
        yield pool
    except BaseException:
        pool.kill()
        raise
    pool.close()


class InProcess:
    """Runs each group here, one at a time (``--no-parallel``); a retry runs silently."""

    capacity = 1
    bytes_sent = 0
    retry_note = None

    def __init__(self, cache: BarCache) -> None:
        self._cache = cache
        self._group: tuple[Job, ...] | None = None

    def submit(self, group: tuple[Job, ...]) -> None:
        self._group = group

    def wait(self) -> list[list[Finished]]:
        group, self._group = self._group, None
        assert group is not None
        outcomes = run_group(group, self._cache, run_job)
        return [[Finished(job, outcome) for job, outcome in zip(group, outcomes, strict=True)]]
