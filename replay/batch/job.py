"""The batch job function and the result row it gives: the one thing every worker runs.

Both backends run the same :func:`run_job` on the same :class:`~.jobs.Job` records (the local
worker processes of :mod:`.local`, the Ray tasks of :mod:`.ray`), and a backend that must report
a job it could not run (a dead worker) writes the same :func:`result_row`; so this module is
below both and imports neither.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from barbus.daemon.core.errors import BarbusError
from barbus.replay.batch.jobs import Job
from barbus.replay.cache import BarCache
from barbus.replay.folder_series import data_label
from barbus.replay.runner import ReplayResult, run_replay
from barbus.replay.shared_pass import run_shared_pass

__all__ = [
    "METRICS",
    "ROW_HEAD",
    "ROW_TAIL",
    "JobFunction",
    "JobOutcome",
    "period_text",
    "result_row",
    "run_group",
    "run_group_in_worker",
    "run_in_worker",
    "run_job",
    "settle_worker_heap",
]

# Result columns, the headline figures first (the order of results.csv and index.html).
METRICS = (
    "total_return_pct",
    "sharpe",
    "max_drawdown_pct",
    "trades",
    "sortino",
    "cagr_pct",
    "calmar",
    "max_drawdown_days",
    "buy_and_hold_return_pct",
    "win_rate_pct",
    "profit_factor",
    "expectancy",
    "avg_trade_pct",
    "exposure_pct",
    "final_equity",
    "days",
    "bars",
    "gaps",
)
# Who and what a row is, readable (first in the tables) and exact (last: long paths, JSON).
ROW_HEAD = ("job_id", "strategy", "symbol", "file", "period")
ROW_TAIL = ("strategy_spec", "strategy_fingerprint", "data", "start_ms", "end_ms", "params")


@dataclass(frozen=True)
class JobOutcome:
    """A result row (``status`` ok or failed) plus run facts that do not go into the table."""

    row: dict[str, Any]
    bars: int = 0
    seconds: float = 0.0
    worker: str = ""  # the worker slot that ran it (metrics label)
    cache_hits: int = 0
    cache_misses: int = 0


def run_job(job: Job, cache: BarCache | None) -> JobOutcome:
    """Run one job (in a worker or in-process); errors become a failed row, never an exception."""
    started = time.perf_counter()
    hits, misses = (cache.stats.hits, cache.stats.misses) if cache is not None else (0, 0)
    try:
        result = run_replay(job.replay_config(), cache=cache)
    except BarbusError as exc:
        return _failed(job, exc)
    return JobOutcome(
        result_row(job, result, ""),
        len(result.series),
        time.perf_counter() - started,
        cache_hits=cache.stats.hits - hits if cache is not None else 0,
        cache_misses=cache.stats.misses - misses if cache is not None else 0,
    )


JobFunction = Callable[[Job, BarCache | None], JobOutcome]


def run_group(
    group: Sequence[Job], cache: BarCache | None, job_function: JobFunction = run_job
) -> list[JobOutcome]:
    """Run a group of jobs (:mod:`.groups`: the same data and period) in one shared pass, one
    outcome per job in order; a job that fails fails alone, the others' rows are unchanged.

    A group of one job, or a ``job_function`` other than :func:`run_job` (tests inject faults
    per job), runs each job by itself through ``job_function``. Each job of a pass is credited
    with the pass's bars and an even share of its seconds (the cache counts go to the first).
    """
    if len(group) == 1 or job_function is not run_job:
        return [run_in_worker(job, cache, job_function) for job in group]
    started = time.perf_counter()
    hits, misses = (cache.stats.hits, cache.stats.misses) if cache is not None else (0, 0)
    configs, names, planned = [], [], []
    outcomes: list[JobOutcome | None] = [None] * len(group)
    for i, job in enumerate(group):
        try:
            configs.append(job.replay_config())
        except Exception as exc:
            outcomes[i] = _failed(job, exc)
            continue
        names.append(job.job_id)
        planned.append(i)
    if planned:
        try:
            results = run_shared_pass(configs, names, cache)
        except Exception:  # not one job's failure: give each job its own pass, as without sharing
            return [run_in_worker(job, cache) for job in group]
        seconds = (time.perf_counter() - started) / len(planned)
        for i, result in zip(planned, results, strict=True):
            job = group[i]
            if isinstance(result, ReplayResult):
                outcomes[i] = JobOutcome(result_row(job, result, ""), len(result.series), seconds)
            else:
                outcomes[i] = _failed(job, result)
    done = [outcome for outcome in outcomes if outcome is not None]
    if cache is not None and done:
        done[0] = dataclasses.replace(
            done[0], cache_hits=cache.stats.hits - hits, cache_misses=cache.stats.misses - misses
        )
    return done


def settle_worker_heap() -> None:
    """Freeze what a worker process holds before its first group (its imports, its cache), so
    that :func:`run_group_in_worker`'s collection looks only at what each group made: over a
    worker's ~30k import-time objects a full collection took 25 ms (measured), a second over
    40 short jobs. For worker processes only: frozen objects are never collected."""
    gc.collect()
    gc.freeze()


def run_group_in_worker(
    group: Sequence[Job], cache: BarCache | None, job_function: JobFunction = run_job
) -> list[JobOutcome]:
    """:func:`run_group` in a worker process (the pool's, a Ray task), then a collection.

    A pass's engines are reference cycles (an account lists the engines that hold it), which
    the collector, paused in the pass, would otherwise free only at a rare full collection: a
    worker running group after group kept every finished pass (measured: +20 MB a group of
    five 250k-bar jobs, none with this collection). An in-process batch leaves the collector
    to its own schedule: there the heap is the caller's, not frozen, and dearer to scan.
    """
    try:
        return run_group(group, cache, job_function)
    finally:
        gc.collect()


def _failed(job: Job, exc: Exception) -> JobOutcome:
    return JobOutcome(result_row(job, None, f"{type(exc).__name__}: {exc}"))


def run_in_worker(
    job: Job, cache: BarCache | None, job_function: JobFunction = run_job
) -> JobOutcome:
    """``job_function(job, cache)`` on a worker (a process or a Ray task), where an exception
    is a bug, not bad input: it becomes a failed row like a failed job, and the worker goes on."""
    try:
        return job_function(job, cache)
    except Exception as exc:
        return _failed(job, exc)


def result_row(job: Job, result: ReplayResult | None, error: str) -> dict[str, Any]:
    """The row of ``job``: who and what it is, its figures (``None`` without a result) and
    status; a backend that could not run the job (a dead worker) writes it with the error."""
    row: dict[str, Any] = {
        "job_id": job.job_id,
        "strategy": job.strategy_name or job.strategy,
        "symbol": job.symbol,
        "file": data_label(job.data),
        "period": period_text(job.start_ms, job.end_ms),
        "strategy_spec": job.strategy,
        "strategy_fingerprint": job.fingerprint,
        "data": job.data,
        "start_ms": job.start_ms,
        "end_ms": job.end_ms,
        "params": json.dumps(dict(job.params), sort_keys=True),
    }
    row.update({f"param_{name}": value for name, value in job.params})
    summary = result.summary() if result is not None else {}
    row.update({metric: summary.get(metric) for metric in METRICS})
    row["status"] = "failed" if error else "ok"
    row["error"] = error
    return row


def period_text(start_ms: int | None, end_ms: int | None) -> str:
    """A job's period as people write it: ``2025-05-20..2025-06-20`` (end exclusive).

    Dates when a bound is a UTC midnight, else minutes (``2025-05-20T09:30``); an open side is
    left blank (``..2025-06-20``); ``all`` when the job replays the whole file.
    """
    if start_ms is None and end_ms is None:
        return "all"
    return f"{_bound_text(start_ms)}..{_bound_text(end_ms)}"


def _bound_text(ms: int | None) -> str:
    if ms is None:
        return ""
    moment = datetime.fromtimestamp(ms / 1000.0, tz=UTC)
    if ms % 86_400_000 == 0:
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%dT%H:%M" if ms % 60_000 == 0 else "%Y-%m-%dT%H:%M:%S.%f")
