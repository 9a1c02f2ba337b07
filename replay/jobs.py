"""The batch job: what one replay of a batch is, how a worker runs it, and the row it gives.

Both backends run the same :func:`run_job` on the same :class:`Job` records
(:mod:`~barbus.replay.batch` on local worker processes, :mod:`~barbus.replay.ray_backend` on Ray
tasks), so this module is below both and imports neither.

The strategy is resolved once, in the parent, when the jobs are planned: each job carries the
canonical spec, the fingerprint of the strategy's source and, for a file strategy, the file's
text. A worker rebuilds a file strategy from that text (so it runs exactly what was
fingerprinted, even if the file is edited or deleted mid-batch, and a Ray node needs no copy of
it) and resolves any other spec itself, refusing a module whose fingerprint is not the job's.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.errors import BarbusError, StrategyError
from barbus.daemon.core.strategy import ParamValue
from barbus.replay.cache import BarCache
from barbus.replay.runner import ReplayConfig, ReplayResult, run_replay
from barbus.strategies import StrategySource, load_shipped, resolve_strategy

__all__ = [
    "MAX_ATTEMPTS",
    "METRICS",
    "ROW_HEAD",
    "ROW_TAIL",
    "Job",
    "JobOutcome",
    "period_text",
    "remember",
    "result_row",
    "run_job",
    "strategy_of",
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
MAX_ATTEMPTS = 2  # the first try and one retry on a fresh worker


@dataclass(frozen=True)
class Job:
    """One replay of a batch. Picklable and small: names, numbers and at most one strategy file's
    text, never bars.

    ``strategy`` is the canonical spec (a file spec with an absolute path). ``fingerprint`` pins
    the strategy's code (:class:`~barbus.strategies.StrategySource`); ``""`` leaves it unpinned
    (a hand-built job: the worker runs whatever the spec names then). ``source`` is a file
    strategy's text, shipped to the worker. ``strategy_name`` is the class's ``name`` (the
    ``strategy`` column), ``""`` for the spec itself.
    """

    strategy: str
    params: tuple[tuple[str, ParamValue], ...]
    data: str
    symbol: str
    start_ms: int | None = None
    end_ms: int | None = None
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    fingerprint: str = ""
    source: str | None = field(default=None, repr=False)
    strategy_name: str = ""

    @property
    def job_id(self) -> str:
        """A stable id: the same job gets the same id in every run (used to resume).

        It covers the code's fingerprint, so an edited strategy's jobs are new jobs; an
        unpinned job keeps the id it had before fingerprints existed. The execution enters as
        :meth:`~barbus.daemon.core.broker.ExecutionConfig.identity` (the first release's four
        options, later ones only when set), so a job that uses no newer option keeps its id
        and an earlier release's ``results.jsonl`` still resumes.
        """
        identity: list[Any] = [
            self.strategy,
            list(self.params),
            self.data,
            self.symbol,
            self.start_ms,
            self.end_ms,
            self.execution.identity(),
        ]
        if self.fingerprint:
            identity.append(self.fingerprint)
        canonical = json.dumps(identity, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def replay_config(self) -> ReplayConfig:
        """The replay this job runs, with the strategy the batch planned (:func:`strategy_of`)."""
        return ReplayConfig(
            strategy=strategy_of(self),
            params=dict(self.params),
            data=Path(self.data),
            symbol=self.symbol,
            start_ms=self.start_ms,
            end_ms=self.end_ms,
            execution=self.execution,
        )


@dataclass(frozen=True)
class JobOutcome:
    """A result row (``status`` ok or failed) plus run facts that do not go into the table."""

    row: dict[str, Any]
    bars: int = 0
    seconds: float = 0.0
    worker: str = ""  # the worker slot that ran it (metrics label)
    cache_hits: int = 0
    cache_misses: int = 0


# Per process (the parent, a local worker, a Ray worker): strategies already built for jobs, by
# (spec, fingerprint), so a 100-job grid reads and executes a strategy file once per process.
_RESOLVED: dict[tuple[str, str], StrategySource] = {}


def remember(source: StrategySource) -> None:
    """Keep ``source`` as this process's build of its (spec, fingerprint): the batch planner
    resolved it, so in-process jobs need not resolve or rebuild it again."""
    _RESOLVED[(source.spec, source.fingerprint)] = source


def strategy_of(job: Job) -> StrategySource:
    """The strategy ``job`` runs: the code the batch fingerprinted, or a one-line error.

    A file strategy is rebuilt from the text shipped with the job (no file needed); a name,
    module or plugin is resolved here and must have the job's fingerprint (another version of a
    module on this worker or node fails the job, naming both fingerprints).
    """
    if not job.fingerprint:
        return resolve_strategy(job.strategy)  # unpinned: whatever the spec names now
    key = (job.strategy, job.fingerprint)
    found = _RESOLVED.get(key)
    if found is not None:
        return found
    if job.source is not None:
        found = load_shipped(job.strategy, job.source, job.fingerprint)
    else:
        found = resolve_strategy(job.strategy)
        if found.fingerprint != job.fingerprint:
            raise StrategyError(
                f"strategy {job.strategy}: the code on this worker has fingerprint "
                f"{found.fingerprint}, the batch was planned with {job.fingerprint} (another "
                "version of the module here: install the same version on every node, or run "
                "the batch again to plan this one)"
            )
    _RESOLVED[key] = found
    return found


def run_job(job: Job, cache: BarCache | None) -> JobOutcome:
    """Run one job (in a worker or in-process); errors become a failed row, never an exception."""
    started = time.perf_counter()
    hits, misses = (cache.stats.hits, cache.stats.misses) if cache is not None else (0, 0)
    try:
        result = run_replay(job.replay_config(), cache=cache)
    except BarbusError as exc:
        return JobOutcome(result_row(job, None, f"{type(exc).__name__}: {exc}"))
    return JobOutcome(
        result_row(job, result, ""),
        len(result.series),
        time.perf_counter() - started,
        cache_hits=cache.stats.hits - hits if cache is not None else 0,
        cache_misses=cache.stats.misses - misses if cache is not None else 0,
    )


def result_row(job: Job, result: ReplayResult | None, error: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "job_id": job.job_id,
        "strategy": job.strategy_name or job.strategy,
        "symbol": job.symbol,
        "file": Path(job.data).name,
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
