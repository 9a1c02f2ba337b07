"""The orchestration of a batch: check the request, resume, prepare the data, run, write tables.

:func:`run_batch` is the one entry point (the CLI and :mod:`barbus.replay.api` call it); it
owns the order of the steps and the batch's bookkeeping (finished rows, counts, metrics,
progress), and leaves each step to its module: the journal (:mod:`.journal`), where jobs run
(:mod:`.local`, :mod:`.ray`) and how often (:mod:`.retry`), and the tables (:mod:`.tables`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from barbus.daemon.core.errors import BarbusError, ConfigError
from barbus.daemon.core.series import BarSeries
from barbus.replay.batch.backend import Backend
from barbus.replay.batch.job import METRICS, JobOutcome
from barbus.replay.batch.jobs import Job
from barbus.replay.batch.journal import journal_writer, read_journal, stop_on_sigterm
from barbus.replay.batch.local import InProcess, WorkerTarget, worker_main, worker_pool
from barbus.replay.batch.metrics import BatchMetrics
from barbus.replay.batch.retry import run_jobs
from barbus.replay.batch.tables import sort_ascending, sorted_rows, write_tables
from barbus.replay.cache import BarCache
from barbus.replay.folder_series import load_data
from barbus.replay.outputs import check_out_dir

__all__ = ["BatchOutcome", "run_batch"]

log = logging.getLogger("barbus.batch")


@dataclass
class BatchOutcome:
    """What a batch did: its rows (ranked), what it skipped, resumed or was interrupted in."""

    rows: list[dict[str, Any]]
    skipped_invalid: list[str]
    resumed: int
    interrupted: bool
    elapsed_seconds: float
    bars_replayed: int
    paths: dict[str, Path]
    bytes_sent_to_workers: int = 0

    @property
    def failed(self) -> int:
        return sum(1 for row in self.rows if row["status"] != "ok")


def run_batch(
    jobs: Sequence[Job],
    out_dir: Path,
    *,
    workers: int | None = None,
    parallel: bool = True,
    cache: BarCache | None = None,
    sort: str = "sharpe",
    ascending: bool | None = None,
    resume: bool = True,
    skipped_invalid: Sequence[str] = (),
    progress: Callable[[int, int, int, float], None] | None = None,
    worker_target: WorkerTarget = worker_main,
    backend: str = "local",
    ray_address: str | None = None,
    metrics: BatchMetrics | None = None,
    shared_pass: bool = True,
) -> BatchOutcome:
    """Run ``jobs`` and write ``results.jsonl``, ``results.csv`` and ``results.parquet``.

    ``progress(done, total, bars_replayed, elapsed_seconds)`` is called after each job.
    ``worker_target`` is the worker process's main function (tests inject faulty ones).
    ``backend`` is where jobs run: ``"local"`` worker processes, or ``"ray"`` tasks on the Ray
    cluster at ``ray_address`` (see :mod:`.ray`; ``workers`` then caps the tasks
    in flight). Ctrl-C / SIGTERM stop the batch cleanly: finished results are kept and written.
    Rows rank by ``sort``, best first (lowest first for :data:`~replay.stats.LOWER_IS_BETTER`
    metrics) unless ``ascending`` says otherwise. Jobs of the same data and period run as
    engines of one shared pass (:mod:`.groups`); ``shared_pass=False`` runs one pass per job.
    """
    if sort not in METRICS:
        raise ConfigError(f"--sort {sort!r} is not a metric; choose from {', '.join(METRICS)}")
    if workers is not None and (isinstance(workers, bool) or workers < 1):
        raise ConfigError(f"--workers must be a positive integer, got {workers!r}")
    check_out_dir(out_dir)
    if not jobs:
        raise ConfigError("the batch has no jobs (empty grid, or every combination invalid)")
    _check_backend(backend, parallel=parallel, ray_address=ray_address)
    out_dir.mkdir(parents=True, exist_ok=True)
    journal_path = out_dir / "results.jsonl"
    cache = cache or BarCache()
    unique = {job.job_id: job for job in jobs}
    finished = read_journal(journal_path, unique) if resume else {}
    if not resume:
        journal_path.unlink(missing_ok=True)
    resumed = len(finished)
    todo = [job for job_id, job in unique.items() if job_id not in finished]
    datasets = _prepare_data(todo, cache)
    concurrency = (workers or os.cpu_count() or 1) if parallel else 1
    if metrics is not None:
        metrics.cache_bytes_mapped.set(cache.stats.bytes_mapped)
        metrics.set_progress(len(todo), 0, concurrency)

    started = time.perf_counter()
    bars_total = 0
    bytes_sent = 0
    interrupted = False
    with journal_writer(journal_path) as write, stop_on_sigterm():

        def record(outcome: JobOutcome) -> None:
            nonlocal bars_total
            finished[outcome.row["job_id"]] = outcome.row
            bars_total += outcome.bars
            write(outcome.row)
            if metrics is not None:
                _count(metrics, outcome, backend, parallel)
                metrics.set_progress(len(todo), len(finished) - resumed, concurrency)
            if progress is not None:
                progress(
                    len(finished) - resumed, len(todo), bars_total, time.perf_counter() - started
                )

        try:
            if todo:
                with _backend(
                    backend, todo, cache, workers, parallel, ray_address, worker_target
                ) as runner:
                    try:
                        run_jobs(
                            todo, runner, record, shared=shared_pass, bars=datasets.period_bars
                        )
                    finally:
                        bytes_sent = runner.bytes_sent
        except KeyboardInterrupt:
            interrupted = True
            log.warning(
                "interrupted: %d of %d jobs finished; writing what is done",
                len(finished) - resumed,
                len(todo),
            )

    rows = sorted_rows(list(finished.values()), sort, sort_ascending(sort, ascending))
    paths = write_tables(rows, out_dir)
    paths["journal"] = journal_path
    cache.flush_stats()
    return BatchOutcome(
        rows,
        list(skipped_invalid),
        resumed,
        interrupted,
        time.perf_counter() - started,
        bars_total,
        paths,
        bytes_sent,
    )


def _check_backend(backend: str, *, parallel: bool, ray_address: str | None) -> None:
    """Reject backend settings that do not go together, before any file is touched."""
    if backend not in ("local", "ray"):
        raise ConfigError(f"unknown backend {backend!r}; choose local or ray")
    if backend == "local" and ray_address is not None:
        raise ConfigError("--ray-address needs --backend ray")
    if backend == "ray":
        if not parallel:
            raise ConfigError("--no-parallel runs jobs in-process; it cannot go with --backend ray")
        from barbus.replay.batch.ray import require_ray

        require_ray()  # fail now with the install hint, not after ingesting the data


def _backend(
    backend: str,
    todo: Sequence[Job],
    cache: BarCache,
    workers: int | None,
    parallel: bool,
    ray_address: str | None,
    worker_target: WorkerTarget,
) -> contextlib.AbstractContextManager[Backend]:
    """Where the jobs run: Ray tasks, a pool of worker processes, or this process."""
    if backend == "ray":
        from barbus.replay.batch.ray import ray_backend  # Ray stays optional: imported here

        return ray_backend(cache.root, address=ray_address, max_in_flight=workers)
    if parallel:
        size = min(workers or os.cpu_count() or 1, len(todo))
        return worker_pool(size, cache.root, worker_target)
    return contextlib.nullcontext(InProcess(cache))


def _count(metrics: BatchMetrics, outcome: JobOutcome, backend: str, parallel: bool) -> None:
    worker = outcome.worker or ("ray" if backend == "ray" else "0" if not parallel else "?")
    metrics.finished.labels(outcome.row["status"]).inc()
    metrics.bars.labels(worker).inc(outcome.bars)
    if outcome.seconds > 0:
        metrics.bars_per_second.labels(worker).set(outcome.bars / outcome.seconds)
        metrics.job_seconds.observe(outcome.seconds)
    metrics.cache_hits.inc(outcome.cache_hits)
    metrics.cache_misses.inc(outcome.cache_misses)


@dataclass(frozen=True)
class _Datasets:
    """The mapped series of a batch's datasets, by data file and symbol (those that loaded)."""

    series: dict[tuple[str, str], BarSeries]

    def period_bars(self, job: Job) -> int:
        """The bars ``job`` replays (0 when its data did not load: it fails on its own)."""
        whole = self.series.get((job.data, job.symbol))
        return 0 if whole is None else len(whole.between(job.start_ms, job.end_ms))


def _prepare_data(jobs: Iterable[Job], cache: BarCache) -> _Datasets:
    """Build (or verify) every dataset's cache entry once, before any worker maps it.

    A dataset that cannot be loaded is only logged here: its jobs fail on their own, with the
    error in their rows, and every other job still runs.
    """
    loaded: dict[tuple[str, str], BarSeries] = {}
    for data, symbol in sorted({(job.data, job.symbol) for job in jobs}):
        try:
            loaded[data, symbol] = load_data(Path(data), symbol, cache)
        except BarbusError as exc:
            log.error("%s: unusable, its jobs will fail: %s", data, exc)
    return _Datasets(loaded)
