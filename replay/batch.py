"""Batch replays: a grid of (strategy, parameters, data, period) jobs sharded over worker processes.

A :class:`Job` (:mod:`replay.jobs`) is a small picklable record; workers receive jobs, never
bars: each worker opens the memory-mapped cache by path (the parent builds and verifies every
entry once before any job is dispatched), so the data is loaded once and shared through the page
cache. With ``backend="ray"`` the same jobs run as tasks on a Ray cluster instead
(:mod:`replay.ray_backend`).

Results are keyed by job id and written in a fixed order, so they do not depend on the number of
workers or on ``--no-parallel``. Each finished job is appended to ``results.jsonl`` at once (the
journal): a crash, Ctrl-C or SIGTERM loses nothing finished, and a rerun with the same output
folder skips the jobs that succeeded. ``results.csv`` and ``results.parquet`` are rewritten from
the journal at the end.

A worker that dies (kill -9, out of memory) or a job that raises: the job is retried once on a
fresh worker, then recorded as failed with its error; every other job goes on.

The strategy is resolved once, in the parent, when the jobs are planned: each job carries the
canonical spec, the fingerprint of the strategy's source and, for a file strategy, the file's
text. A worker rebuilds a file strategy from that text (so it runs exactly what was
fingerprinted, even if the file is edited or deleted mid-batch, and a Ray node needs no copy of
it) and resolves any other spec itself, refusing a module whose fingerprint is not the job's.
The fingerprint is part of the job id: after the user edits the strategy, a resumed batch runs
new jobs and sets the earlier version's rows aside.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Final

from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.errors import BarbusError, ConfigError
from barbus.daemon.core.series import symbol_from_name
from barbus.daemon.core.strategy import ParamValue
from barbus.replay.cache import BarCache
from barbus.replay.jobs import (
    MAX_ATTEMPTS,
    METRICS,
    ROW_HEAD,
    ROW_TAIL,
    Job,
    JobOutcome,
    period_text,
    remember,
    result_row,
    run_job,
    strategy_of,
)
from barbus.replay.metrics import BatchMetrics
from barbus.replay.runner import check_out_dir
from barbus.replay.stats import lower_is_better
from barbus.strategies import StrategyLike, create_strategy, strategy_source

__all__ = [
    "METRICS",
    "BatchOutcome",
    "Job",
    "JobOutcome",
    "expand_jobs",
    "format_top",
    "period_text",
    "run_batch",
    "run_job",
    "sort_ascending",
    "strategy_of",
]

log = logging.getLogger("barbus.batch")


@dataclass
class BatchOutcome:
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


def expand_jobs(
    strategy: StrategyLike,
    data: Sequence[Path],
    *,
    grid: Mapping[str, Sequence[ParamValue]] | None = None,
    params: Mapping[str, ParamValue] | None = None,
    periods: Sequence[tuple[int | None, int | None]] = ((None, None),),
    symbol: str | None = None,
    execution: ExecutionConfig | None = None,
    base_dir: Path | None = None,
) -> tuple[list[Job], list[str]]:
    """The cartesian product of grid values x data files x periods, as jobs.

    ``strategy`` (a spec, relative to ``base_dir`` or the current folder, a resolved source or a
    class) is resolved once, here: every job pins that code (see :class:`Job`), and a strategy
    that cannot be loaded is a :class:`StrategyError` before any job exists.
    Parameter combinations the strategy rejects (say slow <= fast) are not jobs: they are
    returned as readable reasons instead, so a grid can span an area with invalid corners.
    """
    source = strategy_source(strategy, base_dir)
    remember(source)
    grid = dict(grid or {})
    fixed = dict(params or {})
    overlap = set(grid) & set(fixed)
    if overlap:
        raise ConfigError(f"parameters {sorted(overlap)} are both fixed and in the grid")
    execution = execution or ExecutionConfig()
    names = sorted(grid)
    jobs: list[Job] = []
    invalid: list[str] = []
    for values in itertools.product(*(grid[name] for name in names)):
        combo = {**fixed, **dict(zip(names, values, strict=True))}
        try:
            built = create_strategy(source, combo)
        except BarbusError as exc:
            if not names:
                raise
            invalid.append(f"{source.name} {combo}: {exc}")
            continue
        # Typed values ("5" from a command line becomes 5), so ids match a TOML spec's.
        typed = built.params.as_dict()
        frozen = tuple(sorted((name, typed[name]) for name in combo))
        for path, (start_ms, end_ms) in itertools.product(data, periods):
            jobs.append(
                Job(
                    strategy=source.spec,
                    params=frozen,
                    data=str(Path(path).resolve()),
                    symbol=symbol or symbol_from_name(Path(path)),
                    start_ms=start_ms,
                    end_ms=end_ms,
                    execution=execution,
                    fingerprint=source.fingerprint,
                    source=source.source,
                    strategy_name=source.name,
                )
            )
    return jobs, invalid


# -- the worker pool -------------------------------------------------------------------------


def _worker_main(conn: multiprocessing.connection.Connection, cache_dir: str) -> None:
    """Worker loop: receive a pickled job, send back its outcome, until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides how to stop
    # The parent verified every entry's checksums just before dispatching: map, don't rehash;
    # it also reported each dataset's gaps (or an unusable cache folder) once: stay quiet.
    cache = BarCache(Path(cache_dir), verify_checksums=False, announce=False)
    slot = multiprocessing.current_process().name.rpartition("-")[2]
    try:
        while True:
            payload = conn.recv_bytes()
            if not payload:
                break
            job: Job = pickle.loads(payload)
            try:
                outcome = run_job(job, cache)
            except Exception as exc:  # a bug, not bad input: report it like a failed job
                outcome = JobOutcome(result_row(job, None, f"{type(exc).__name__}: {exc}"))
            cache.flush_stats()  # per job: a worker killed later loses no counts
            conn.send(dataclasses.replace(outcome, worker=slot))
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        cache.flush_stats()


WorkerTarget = Callable[[multiprocessing.connection.Connection, str], None]


@dataclass
class _Worker:
    process: BaseProcess
    conn: multiprocessing.connection.Connection
    job: Job | None = None


class _Pool:
    """N worker processes, one job each at a time; replaces a worker that dies."""

    def __init__(self, size: int, cache_dir: Path, target: WorkerTarget) -> None:
        # forkserver: no inherited locks or threads from the parent, and the start method no
        # longer changes under us between Python versions.
        self._context = multiprocessing.get_context("forkserver")
        self._cache_dir = str(cache_dir)
        self._target = target
        self.workers = [self._spawn(slot) for slot in range(size)]
        self.bytes_sent = 0

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

    def submit(self, worker: _Worker, job: Job) -> None:
        payload = pickle.dumps(job)
        self.bytes_sent += len(payload)
        worker.job = job
        worker.conn.send_bytes(payload)

    def replace(self, worker: _Worker) -> _Worker:
        """Retire ``worker`` (killing it if needed) and start a fresh one in its place."""
        with contextlib.suppress(OSError):
            worker.conn.close()
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join()
        slot = self.workers.index(worker)
        fresh = self._spawn(slot)
        self.workers[slot] = fresh
        return fresh

    def wait(self) -> Iterator[tuple[_Worker, JobOutcome | None]]:
        """Yield (worker, outcome) for each busy worker that answered or died (outcome None)."""
        handles: dict[Any, _Worker] = {}
        for worker in self.workers:
            if worker.job is not None:
                handles[worker.conn] = worker
                handles[worker.process.sentinel] = worker
        done: set[int] = set()
        for handle in multiprocessing.connection.wait(list(handles)):
            worker = handles[handle]
            if id(worker) in done:
                continue
            done.add(id(worker))
            try:
                outcome: JobOutcome | None = worker.conn.recv() if worker.conn.poll() else None
            except (EOFError, OSError):
                outcome = None
            yield worker, outcome

    def close(self) -> None:
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


# -- running a batch -------------------------------------------------------------------------


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
    worker_target: WorkerTarget = _worker_main,
    backend: str = "local",
    ray_address: str | None = None,
    metrics: BatchMetrics | None = None,
) -> BatchOutcome:
    """Run ``jobs`` and write ``results.jsonl``, ``results.csv`` and ``results.parquet``.

    ``progress(done, total, bars_replayed, elapsed_seconds)`` is called after each job.
    ``worker_target`` is the worker process's main function (tests inject faulty ones).
    ``backend`` is where jobs run: ``"local"`` worker processes, or ``"ray"`` tasks on the Ray
    cluster at ``ray_address`` (see :mod:`replay.ray_backend`; ``workers`` then caps the tasks
    in flight). Ctrl-C / SIGTERM stop the batch cleanly: finished results are kept and written.
    Rows rank by ``sort``, best first (lowest first for :data:`~replay.stats.LOWER_IS_BETTER`
    metrics) unless ``ascending`` says otherwise.
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
    finished = _read_journal(journal_path, unique) if resume else {}
    if not resume:
        journal_path.unlink(missing_ok=True)
    resumed = len(finished)
    todo = [job for job_id, job in unique.items() if job_id not in finished]
    _prepare_data(todo, cache)
    concurrency = (workers or os.cpu_count() or 1) if parallel else 1
    if metrics is not None:
        metrics.cache_bytes_mapped.set(cache.stats.bytes_mapped)
        metrics.set_progress(len(todo), 0, concurrency)

    started = time.perf_counter()
    bars_total = 0
    bytes_sent = 0
    interrupted = False
    _end_with_newline(journal_path)
    with journal_path.open("a", encoding="utf-8") as journal, _stop_on_sigterm():

        def record(outcome: JobOutcome) -> None:
            nonlocal bars_total
            finished[outcome.row["job_id"]] = outcome.row
            bars_total += outcome.bars
            journal.write(json.dumps(outcome.row, sort_keys=True) + "\n")
            journal.flush()
            if metrics is not None:
                _count(metrics, outcome, backend, parallel)
                metrics.set_progress(len(todo), len(finished) - resumed, concurrency)
            if progress is not None:
                progress(
                    len(finished) - resumed, len(todo), bars_total, time.perf_counter() - started
                )

        try:
            if backend == "ray" and todo:
                from barbus.replay.ray_backend import run_on_ray

                bytes_sent = run_on_ray(
                    todo, cache.root, record, address=ray_address, max_in_flight=workers
                )
            elif parallel and todo:
                pool = _Pool(
                    min(workers or os.cpu_count() or 1, len(todo)), cache.root, worker_target
                )
                try:
                    _run_parallel(todo, pool, record)
                finally:
                    bytes_sent = pool.bytes_sent
            else:
                _run_in_process(todo, cache, record)
        except KeyboardInterrupt:
            interrupted = True
            log.warning(
                "interrupted: %d of %d jobs finished; writing what is done",
                len(finished) - resumed,
                len(todo),
            )

    rows = _sorted_rows(list(finished.values()), sort, sort_ascending(sort, ascending))
    paths = _write_tables(rows, out_dir)
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
        from barbus.replay.ray_backend import require_ray

        require_ray()  # fail now with the install hint, not after ingesting the data


def _count(metrics: BatchMetrics, outcome: JobOutcome, backend: str, parallel: bool) -> None:
    worker = outcome.worker or ("ray" if backend == "ray" else "0" if not parallel else "?")
    metrics.finished.labels(outcome.row["status"]).inc()
    metrics.bars.labels(worker).inc(outcome.bars)
    if outcome.seconds > 0:
        metrics.bars_per_second.labels(worker).set(outcome.bars / outcome.seconds)
        metrics.job_seconds.observe(outcome.seconds)
    metrics.cache_hits.inc(outcome.cache_hits)
    metrics.cache_misses.inc(outcome.cache_misses)


def _prepare_data(jobs: Iterable[Job], cache: BarCache) -> None:
    """Build (or verify) every dataset's cache entry once, before any worker maps it.

    A dataset that cannot be loaded is only logged here: its jobs fail on their own, with the
    error in their rows, and every other job still runs.
    """
    for data, symbol in sorted({(job.data, job.symbol) for job in jobs}):
        try:
            cache.load(Path(data), symbol)
        except BarbusError as exc:
            log.error("%s: unusable, its jobs will fail: %s", data, exc)


def _run_in_process(
    jobs: Sequence[Job], cache: BarCache, record: Callable[[JobOutcome], None]
) -> None:
    for job in jobs:
        outcome = run_job(job, cache)
        if outcome.row["status"] != "ok":
            outcome = run_job(job, cache)  # the same one retry a worker pool gives
        record(outcome)


def _run_parallel(jobs: Sequence[Job], pool: _Pool, record: Callable[[JobOutcome], None]) -> None:
    queue = list(reversed(jobs))  # pop() from the end keeps the given order
    attempts: dict[str, int] = {}

    def next_job(worker: _Worker) -> None:
        if queue:
            job = queue.pop()
            attempts[job.job_id] = 1
            pool.submit(worker, job)

    def settle(worker: _Worker, answer: JobOutcome | None) -> None:
        job = worker.job
        assert job is not None
        worker.job = None
        outcome = answer
        if outcome is None:
            worker.process.join(5.0)
            died = f"worker died (exit code {worker.process.exitcode})"
            outcome = JobOutcome(result_row(job, None, died))
        if outcome.row["status"] != "ok":
            worker = pool.replace(worker)  # a fresh process for whatever comes next
            if attempts[job.job_id] < MAX_ATTEMPTS:
                attempts[job.job_id] += 1
                log.warning(
                    "job %s failed (%s); retrying once on a fresh worker",
                    job.job_id,
                    outcome.row["error"],
                )
                pool.submit(worker, job)
                return
        record(outcome)
        next_job(worker)

    try:
        for worker in list(pool.workers):
            next_job(worker)
        while any(w.job is not None for w in pool.workers):
            for worker, answer in list(pool.wait()):
                settle(worker, answer)
        pool.close()
    except BaseException:
        pool.kill()
        raise


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt while a batch runs (main thread only)."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _end_with_newline(path: Path) -> None:
    """Terminate a last line cut short by a crash, so the next row starts on its own line."""
    if path.exists() and path.stat().st_size:
        with path.open("rb+") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                handle.write(b"\n")


_INT_METRICS = frozenset({"trades", "days", "bars", "gaps"})
_OLDER_ROW: Final = "written by an older barbus"  # a journal row to run again, not damage
_NOT_WANTED: Final = "not a job of this batch"  # another batch's, or another code version's
# Row keys that barbus 0.x rows before the daily statistics and readable periods lack.
_ADDED_KEYS: Final = frozenset(
    {"file", "period", "sortino", "cagr_pct", "calmar", "max_drawdown_days", "profit_factor"}
    | {"expectancy", "avg_trade_pct", "days", "strategy_spec", "strategy_fingerprint"}
)
_SHOWN_DAMAGE = 5  # damaged lines described in the summary; the rest are counted


def _read_journal(path: Path, wanted: Mapping[str, Job]) -> dict[str, dict[str, Any]]:
    """Successful rows of earlier runs for the jobs of this batch (failed ones run again).

    A damaged line (cut short, garbage, JSON of the wrong shape or types, a row that does not
    match its job) is skipped and its job runs again; one warning per file says which lines.
    A row of an older barbus (lacking only keys added since) runs again, with one INFO line.
    """
    rows: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return rows
    damaged: list[str] = []
    older = 0
    versions = _OtherVersions(wanted)
    other_ids = _OtherIds(wanted)
    lines = path.read_bytes().split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # the newline that ends the last row
    for number, line in enumerate(lines, start=1):
        row, problem = _journal_row(line, wanted)
        if problem is _NOT_WANTED:
            if row is not None and not versions.check(row):
                other_ids.check(row)
        elif problem is _OLDER_ROW:
            older += 1
        elif problem is not None:
            damaged.append(f"line {number} {problem}")
        elif row is not None:
            rows[row["job_id"]] = row
    versions.report(path)
    other_ids.report(path)
    if older:
        log.info(
            "%s: %d row%s written by an older barbus (fewer figures): %s again",
            *(
                path,
                older,
                "s" if older > 1 else "",
                "their jobs run" if older > 1 else "its job runs",
            ),
        )
    if damaged:
        shown = "; ".join(damaged[:_SHOWN_DAMAGE])
        more = f"; and {len(damaged) - _SHOWN_DAMAGE} more" if len(damaged) > _SHOWN_DAMAGE else ""
        count = f"{len(damaged)} damaged line{'s' if len(damaged) > 1 else ''}"
        runs = "their jobs run" if len(damaged) > 1 else "its job runs"
        log.warning("%s: %s%s: skipped %s, %s again", path, shown, more, count, runs)
    return rows


def _journal_row(
    line: bytes, wanted: Mapping[str, Job]
) -> tuple[dict[str, Any] | None, str | None]:
    """(the ok row of a wanted job, None), (the row or None, :data:`_NOT_WANTED`) to pass over,
    or (None, what is wrong)."""
    try:
        row = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "is not UTF-8 text (garbage?)"
    except json.JSONDecodeError:
        return None, "is not JSON (a write cut short?)"
    if not isinstance(row, dict):
        return None, f"is a JSON {type(row).__name__}, not a result row"
    job_id, status = row.get("job_id"), row.get("status")
    if not isinstance(job_id, str):
        return None, "has no job_id string"
    if status not in ("ok", "failed"):
        return None, "has a status that is neither 'ok' nor 'failed'"
    job = wanted.get(job_id)
    if job is None:
        return row, _NOT_WANTED  # another batch's job, or another version of the code
    if status != "ok":
        return None, _NOT_WANTED  # a failure that runs again
    expected = result_row(job, None, "")
    if set(row) < set(expected) and set(expected) - set(row) <= _ADDED_KEYS:
        return None, _OLDER_ROW  # lacks only keys added since: a row of an older barbus
    problem = _row_problem(row, expected)
    return (None, f"(job {job_id}) {problem}") if problem else (row, None)


class _OtherVersions:
    """Finds the journal's ok rows of this batch's jobs run with other code (another
    fingerprint, or none recorded) and says in one line how many were set aside."""

    def __init__(self, wanted: Mapping[str, Job]) -> None:
        self._by_spec: dict[str, list[Job]] = {}
        for job in wanted.values():
            if job.fingerprint:
                self._by_spec.setdefault(job.strategy, []).append(job)
        self._ids: dict[tuple[str, str], frozenset[str]] = {}
        self.set_aside: dict[str, set[str]] = {}  # spec -> earlier fingerprints
        self._rows: set[str] = set()

    def _twins(self, spec: str, fingerprint: str) -> frozenset[str]:
        """Ids the jobs of ``spec`` had with code ``fingerprint`` (``""``: not recorded)."""
        key = (spec, fingerprint)
        if key not in self._ids:
            jobs = self._by_spec.get(spec, [])
            self._ids[key] = frozenset(
                dataclasses.replace(job, fingerprint=fingerprint).job_id for job in jobs
            )
        return self._ids[key]

    def check(self, row: Mapping[str, Any]) -> bool:
        """Whether ``row`` is one of this batch's jobs run with other code (then set aside)."""
        if row.get("status") != "ok" or not self._by_spec:
            return False
        spec, fingerprint = row.get("strategy_spec"), row.get("strategy_fingerprint")
        if "strategy_fingerprint" not in row:  # written before jobs recorded their code
            candidates = list(self._by_spec) if spec is None else [spec]
            fingerprint = ""
        elif isinstance(spec, str) and isinstance(fingerprint, str) and fingerprint:
            candidates = [spec]
        else:
            return False
        for candidate in candidates:
            if isinstance(candidate, str) and row["job_id"] in self._twins(candidate, fingerprint):
                self._rows.add(row["job_id"])
                self.set_aside.setdefault(candidate, set()).add(fingerprint or "not recorded")
                return True
        return False

    def report(self, path: Path) -> None:
        if not self._rows:
            return
        count = len(self._rows)
        changes = "; ".join(
            f"{spec} was {', '.join(sorted(before))}, is {self._by_spec[spec][0].fingerprint}"
            for spec, before in sorted(self.set_aside.items())
        )
        log.info(
            "%s: %d earlier row%s set aside because the strategy code changed (%s): not "
            "results of this batch, its jobs run for the code as it is now",
            *(path, count, "s" if count > 1 else "", changes),
        )


# What a row says about its job; the execution settings are not in it, only in the job id.
_ROW_IDENTITY: Final = (
    "strategy_spec",
    "strategy_fingerprint",
    "data",
    "symbol",
    "start_ms",
    "end_ms",
    "params",
)


class _OtherIds:
    """Finds the journal's ok rows that name a job of this batch (strategy, code, data, period,
    parameters) under another id, and says in one line that their jobs run again.

    Such a row was run with other execution settings (fees, slippage, fills, cash, shorts),
    which a row does not record, or by a barbus whose job ids this one does not compute: it
    cannot be told apart, so it is never taken as this batch's result.
    """

    def __init__(self, wanted: Mapping[str, Job]) -> None:
        self._keys = {self._key(result_row(job, None, "")) for job in wanted.values()}
        self._rows: set[str] = set()

    @staticmethod
    def _key(row: Mapping[str, Any]) -> str:
        return json.dumps([row.get(key) for key in _ROW_IDENTITY], sort_keys=True)

    def check(self, row: Mapping[str, Any]) -> None:
        if row.get("status") == "ok" and self._key(row) in self._keys:
            self._rows.add(row["job_id"])

    def report(self, path: Path) -> None:
        if not self._rows:
            return
        count = len(self._rows)
        log.warning(
            "%s: %d earlier row%s name%s jobs of this batch (strategy, code, data, period, "
            "parameters) under other job ids: run with other execution settings, or written by "
            "a barbus whose job ids this one does not compute; not taken as results, %s again",
            *(path, count, "s" if count > 1 else "", "" if count > 1 else "s"),
            "their jobs run" if count > 1 else "its job runs",
        )


def _row_problem(row: Mapping[str, Any], expected: Mapping[str, Any]) -> str | None:
    """What makes ``row`` unlike the row its job writes, or None."""
    if set(row) != set(expected):
        odd = sorted(set(row) ^ set(expected))
        return f"has missing or unexpected keys {', '.join(odd)[:120]}"
    for key, value in expected.items():
        if key in METRICS:
            continue
        if json.dumps(row[key], sort_keys=True) != json.dumps(value, sort_keys=True):
            return f"has a {key} that is not the job's"
    for metric in METRICS:
        value = row[metric]
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if metric in _INT_METRICS and not (number and isinstance(value, int)):
            return f"has a {metric} that is not an integer"
        if value is not None and not number:
            return f"has a {metric} that is not a number"
    return None


def sort_ascending(sort: str, ascending: bool | None = None) -> bool:
    """The direction to rank ``sort`` in: as given, else best first by the metric's meaning."""
    return lower_is_better(sort) if ascending is None else ascending


def _sorted_rows(rows: list[dict[str, Any]], sort: str, ascending: bool) -> list[dict[str, Any]]:
    """Ok rows by ``sort`` (ties by job id), then rows without a value, then failed rows."""

    def key(row: dict[str, Any]) -> tuple[int, float, str]:
        value = row.get(sort)
        if row["status"] != "ok" or value is None:
            return (1, 0.0, row["job_id"])
        return (0, float(value) if ascending else -float(value), row["job_id"])

    return sorted(rows, key=key)


def _exact_float(value: Any) -> str:
    return repr(float(value))


def _write_tables(rows: list[dict[str, Any]], out_dir: Path) -> dict[str, Path]:
    import pandas as pd  # cold path: only when the batch is over

    params = sorted({key for row in rows for key in row if key.startswith("param_")})
    columns = [*ROW_HEAD, *params, *METRICS, "status", "error", *ROW_TAIL]
    frame = pd.DataFrame(rows, columns=columns)
    csv_path = out_dir / "results.csv"
    parquet_path = out_dir / "results.parquet"
    # repr of a Python float: the shortest text that reads back to the same bits.
    frame.to_csv(csv_path, index=False, lineterminator="\n", float_format=_exact_float)
    frame.to_parquet(parquet_path, index=False)
    return {"csv": csv_path, "parquet": parquet_path}


def format_top(rows: Sequence[dict[str, Any]], sort: str, top: int) -> str:
    """The first ``top`` rows as a fixed-width table: which data and period, figures, params."""
    shown = rows[:top]
    figures = [sort, *(m for m in _TOP_FIGURES if m != sort)]
    head = {"job": "job_id", "symbol": "symbol", "file": "file", "period": "period"}
    width = {
        label: max([len(label), *(len(str(row[key])) for row in shown)])
        for label, key in head.items()
    }
    labels = {m: _TOP_LABELS.get(m, m) for m in figures}
    number_width = {m: max(9, len(labels[m])) for m in figures}

    def left(row: dict[str, Any]) -> str:
        return " ".join(f"{row[key]!s:<{width[label]}}" for label, key in head.items())

    lines = [
        " ".join(f"{label:<{width[label]}}" for label in head)
        + " "
        + " ".join(f"{labels[m]:>{number_width[m]}}" for m in figures)
        + "  params"
    ]
    for row in shown:
        if row["status"] != "ok":
            lines.append(f"{left(row)} failed: {row['error']}")
            continue
        cells = " ".join(f"{_top_number(row[m]):>{number_width[m]}}" for m in figures)
        params = " ".join(f"{k}={v}" for k, v in json.loads(row["params"]).items())
        lines.append(f"{left(row)} {cells}  {params}")
    return "\n".join(lines)


_TOP_FIGURES = ("total_return_pct", "sharpe", "max_drawdown_pct", "trades")
_TOP_LABELS = {"total_return_pct": "return %", "max_drawdown_pct": "max dd %"}


def _top_number(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.4g}" if abs(float(value)) >= 1e5 else f"{float(value):.2f}"
