"""The Ray backend of the batch runner: the same jobs, job function and rows, on a Ray cluster.

``barbus batch --backend ray`` hands the jobs that :func:`~.run.run_batch` would give its
local worker processes to Ray tasks instead. A task runs :func:`~.job.run_job` on a
:class:`~.jobs.Job` and returns its :class:`~.job.JobOutcome`, exactly as a local
worker does; the driver keeps the journal, the retries (:mod:`.retry`, the policy every backend
shares), the progress callback and the tables, so
``results.csv`` is byte-identical whichever backend ran the jobs, and resume works the same.

Data placement: every node reads the same paths. A task carries a job record (a strategy spec
and fingerprint, parameters, a data file path, a period: a few hundred bytes, plus a file
strategy's text) and the cache folder's path, never bars. The driver builds and checksums
every dataset's cache entry before the first task is submitted, as for the local backend;
each Ray worker process then opens ``BarCache(path, verify_checksums=False)`` and memory-maps
the columns. The rule is therefore: every node must see the data files and the cache folder
at the same absolute path -- a shared filesystem (NFS, a cluster filesystem, a bind mount on a
single machine) with ``BARBUS_CACHE_DIR`` (or ``--cache-dir``) pointing into it. Why this and
not the columns in Ray's object store:

* nothing is uploaded per batch: the cache entry already exists on the shared filesystem, while
  ``ray.put`` of the columns would copy them into the driver's object store on every run and
  then over the network to every node that runs a job;
* on each node the columns are mapped read-only from the page cache, zero-copy and shared by
  every worker process of that node, which is what the object store would give at best, but
  without the store's memory budget, spilling and eviction;
* it is the code path of the local backend (the same ``run_job`` with the same ``BarCache``), so
  both backends are tested by the same determinism tests.

A node that sees the data files but not the cache folder still works: its first job builds a
private entry from the source file (one parse per node and dataset) and later jobs map it. A
cluster with no shared filesystem at all would need the object store instead (``ray.put`` of each
dataset's columns once per batch, tasks taking the reference); that fallback is not built here.

Strategy placement (the choice issue 11 asks for): a file strategy is SHIPPED with the job, as
the source text the driver fingerprinted, and the task rebuilds it from that text
(:func:`~barbus.strategies.load_shipped`, through :func:`~.jobs.strategy_of`); module and
plugin strategies must be importable on every node (installed there, or through Ray's
``runtime_env``), and the task checks that the node's version has the planned fingerprint, else
the job fails with one line naming both. Why: a strategy file is a few KB, so shipping it costs
nothing, makes each job self-contained (no file to copy to every node, no shared folder for
code) and pins the exact version the batch planned, even if the file is edited or deleted
while the batch runs; a module can import anything, and its dependencies cannot be shipped as
text, so for modules the node's environment is the place, and the fingerprint check keeps two
versions from mixing. Each Ray worker process builds a strategy once per (spec, fingerprint).

Faults: the remote function has ``max_retries=1``, so Ray re-runs a task whose worker process or
node died once; if that fails too the job is recorded failed with Ray's error. A job that fails in
``run_job`` (a :class:`~daemon.core.errors.BarbusError`, or any exception in the task, which is
caught there and turned into a failed row) is submitted once more, by the same policy as the local
backend's retry on a fresh worker. Results are journalled as they finish (``ray.wait`` with
``num_returns=1``), so a lost driver loses nothing finished and a rerun resumes. Ctrl-C or
SIGTERM keeps every finished row and stops the rest by ending the driver's Ray job
(``ray.shutdown``): Ray then kills the job's workers and drops its queued tasks. Not
``ray.cancel``: a cancel that races with a task finishing can abort the driver (a Ray core
check, "Tried to complete task that was not pending", seen with Ray 2.60 here). In a process
that was already connected to Ray, which the batch must not disconnect, the tasks in flight (at
most the submission window) run to their end on the cluster and their results are dropped.

Ray is an optional extra (``pip install 'barbus[ray]'``); it is imported only here, only when
the Ray backend is chosen.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from barbus.daemon.core.errors import ConfigError
from barbus.replay.batch.backend import Finished
from barbus.replay.batch.job import (
    JobFunction,
    JobOutcome,
    result_row,
    run_group_in_worker,
    run_job,
    settle_worker_heap,
)
from barbus.replay.batch.jobs import Job
from barbus.replay.batch.retry import run_jobs
from barbus.replay.cache import BarCache

__all__ = ["INSTALL_HINT", "JobFunction", "RayBackend", "ray_backend", "require_ray", "run_on_ray"]

log = logging.getLogger("barbus.batch")

INSTALL_HINT = "pip install 'barbus[ray]'"
_WAIT_SECONDS = 0.5  # ray.wait slices: Ctrl-C and SIGTERM are seen between them
_CONNECT_SECONDS = 5.0  # to reach a head node given as HOST:PORT


def require_ray() -> ModuleType:
    """The ``ray`` module, or a :class:`ConfigError` that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--backend ray needs Ray, an optional extra: {INSTALL_HINT}") from None
    module: ModuleType = ray
    return module


# -- on a Ray worker -------------------------------------------------------------------------

# Per Ray worker process: the cache of the batch it last ran a job of. A worker process outlives
# a batch (Ray reuses it), so a new batch token drops the old mappings, as a fresh local worker
# would.
_node_cache: dict[str, BarCache] = {}


def _run_on_node(
    group: tuple[Job, ...], cache_root: str, batch: str, job_function: JobFunction
) -> list[JobOutcome]:
    """The Ray task: run one group of jobs (one shared pass, :mod:`.groups`) against the cache
    folder at ``cache_root`` on this node."""
    cache = _node_cache.get(batch)
    if cache is None:
        _node_cache.clear()
        # The driver verified every entry's checksums just before submitting: map, don't rehash.
        cache = _node_cache[batch] = BarCache(
            Path(cache_root), verify_checksums=False, announce=False
        )
        settle_worker_heap()  # a Ray worker process runs only this driver's tasks
    outcomes = run_group_in_worker(group, cache, job_function)
    try:
        cache.flush_stats()  # a Ray worker has no exit hook: add this group's counters now
    except OSError as exc:
        log.warning("cache stats not written to %s: %s", cache_root, exc)
    return outcomes


# -- on the driver ---------------------------------------------------------------------------


def run_on_ray(
    jobs: Sequence[Job],
    cache_root: Path,
    record: Callable[[JobOutcome], None],
    *,
    address: str | None = None,
    max_in_flight: int | None = None,
    max_retries: int = 1,
    job_function: JobFunction = run_job,
    shared: bool = True,
) -> int:
    """Run ``jobs`` as Ray tasks; call ``record`` with each outcome as it finishes.

    Returns the pickled size of the job records sent, as the local backend counts them. The
    arguments are :func:`ray_backend`'s.
    """
    with ray_backend(
        cache_root,
        address=address,
        max_in_flight=max_in_flight,
        max_retries=max_retries,
        job_function=job_function,
    ) as backend:
        run_jobs(jobs, backend, record, shared=shared)
    return backend.bytes_sent


@contextlib.contextmanager
def ray_backend(
    cache_root: Path,
    *,
    address: str | None = None,
    max_in_flight: int | None = None,
    max_retries: int = 1,
    job_function: JobFunction = run_job,
) -> Iterator[RayBackend]:
    """A :class:`RayBackend` on the cluster at ``address``, for the jobs of one batch.

    ``address`` goes to ``ray.init``: ``None`` connects to ``$RAY_ADDRESS`` or the cluster last
    started on this machine, else starts a local one; ``"auto"`` requires a running cluster;
    ``"local"`` always starts a local one; ``"HOST:PORT"`` connects to that head node. A process
    already connected to Ray (``ray.is_initialized()``) keeps its connection and ``address`` is
    not used; otherwise the connection made here is closed at the end.

    At most ``max_in_flight`` tasks are submitted at once (default: twice the cluster's CPUs, so
    every node has its next job queued). ``max_retries`` is Ray's retry count for a task whose
    worker died. ``job_function`` replaces :func:`run_job` on the workers (tests inject faults).
    """
    ray = require_ray()
    with _connected(ray, address) as owned:
        window = max_in_flight or max(1, 2 * int(ray.cluster_resources().get("CPU", 1)))
        remote = ray.remote(num_cpus=1, max_retries=max_retries, retry_exceptions=False)(
            _run_on_node
        )
        root = str(Path(cache_root).resolve())  # the same absolute path on every node
        backend = RayBackend(ray, remote, root, window, job_function)
        try:
            yield backend
        except BaseException:  # Ctrl-C, SIGTERM, a failing record(): no more submissions
            if backend.pending:
                log.warning(
                    "stopping with %d job(s) in flight: %s",
                    len(backend.pending),
                    "ending the Ray job"
                    if owned
                    else "they finish on the cluster and their results are dropped",
                )
            raise


class RayBackend:
    """Jobs as Ray tasks (the :class:`~.backend.Backend` of ``--backend ray``)."""

    retry_note = "on the cluster"

    def __init__(
        self, ray: ModuleType, remote: Any, cache_root: str, window: int, job_function: JobFunction
    ) -> None:
        self._ray = ray
        self._remote = remote
        self._cache_root = cache_root
        self._batch = uuid.uuid4().hex
        self._job_function = job_function
        self.capacity = window
        self.pending: dict[Any, tuple[Job, ...]] = {}  # ObjectRef -> its group
        self.bytes_sent = 0

    def submit(self, group: tuple[Job, ...]) -> None:
        self.bytes_sent += len(pickle.dumps(group))
        ref = self._remote.remote(group, self._cache_root, self._batch, self._job_function)
        self.pending[ref] = group

    def wait(self) -> list[list[Finished]]:
        ready, _ = self._ray.wait(list(self.pending), num_returns=1, timeout=_WAIT_SECONDS)
        finished = []
        for ref in ready:
            group = self.pending.pop(ref)
            outcomes, may_retry = _collect(self._ray, ref, group)
            finished.append(
                [Finished(j, o, may_retry) for j, o in zip(group, outcomes, strict=True)]
            )
        return finished


@contextlib.contextmanager
def _connected(ray: ModuleType, address: str | None) -> Iterator[bool]:
    """Connect unless already connected; yield whether the connection is ours to close."""
    if ray.is_initialized():
        yield False
        return
    # ray.init installs a SIGTERM handler that exits the process; keep the caller's (run_batch
    # turns SIGTERM into an orderly stop that writes the finished results).
    _check_reachable(address)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main_thread else None
    try:
        ray.init(address=address, include_dashboard=False)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = f"at {address}" if address else "(default address)"
        raise ConfigError(f"cannot connect to a Ray cluster {where}: {exc}") from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    try:
        yield True
    finally:
        ray.shutdown()  # ends the job: Ray stops whatever of it still runs


def _check_reachable(address: str | None) -> None:
    """Fail fast on a HOST:PORT that nothing listens on: ``ray.init`` retries it for minutes."""
    if not address or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        return  # "auto", "local": Ray's own rules
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=_CONNECT_SECONDS).close()
    except OSError as exc:
        raise ConfigError(f"cannot reach the Ray head node at {address}: {exc}") from None


def _collect(ray: ModuleType, ref: Any, group: tuple[Job, ...]) -> tuple[list[JobOutcome], bool]:
    """The outcomes of a finished task, and whether a failure may be retried by us.

    A task whose worker died is not retried by us when Ray already re-ran it for one job; the
    jobs of a bigger group get their retry from us, each alone (the one that kills its worker
    then takes only itself down)."""
    try:
        outcomes: list[JobOutcome] = ray.get(ref)
    except ray.exceptions.RayTaskError as exc:  # raised in the task before or after run_group
        cause = getattr(exc, "cause", None) or exc
        error = f"{type(cause).__name__}: {_first_line(cause)}"
        return [JobOutcome(result_row(job, None, error)) for job in group], True
    except ray.exceptions.RayError as exc:  # the worker or its node died; Ray already retried
        error = f"worker died ({type(exc).__name__}: {_first_line(exc)})"
        return [JobOutcome(result_row(job, None, error)) for job in group], len(group) > 1
    return outcomes, True


def _first_line(exc: BaseException, limit: int = 300) -> str:
    """Ray's messages run to many lines (tracebacks, hints): keep the first, bounded."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    return text if len(text) <= limit else text[: limit - 3] + "..."
