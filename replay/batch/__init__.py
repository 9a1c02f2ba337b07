"""Batch replays: a grid of (strategy, parameters, data, period) jobs over worker processes or Ray.

A :class:`Job` is a small picklable record; workers receive jobs, never bars: each worker opens
the memory-mapped cache by path (the parent builds and verifies every entry once before any job
is dispatched), so the data is loaded once and shared through the page cache. With
``backend="ray"`` the same jobs run as tasks on a Ray cluster instead.

Results are keyed by job id and written in a fixed order, so they do not depend on the number of
workers or on ``--no-parallel``. Each finished job is appended to ``results.jsonl`` at once (the
journal): a crash, Ctrl-C or SIGTERM loses nothing finished, and a rerun with the same output
folder skips the jobs that succeeded. ``results.csv`` and ``results.parquet`` are rewritten from
the journal at the end.

A worker that dies (kill -9, out of memory) or a job that raises: the job is retried once on a
fresh worker, then recorded as failed with its error; every other job goes on.

The strategy is resolved once, in the parent, when the jobs are planned (:mod:`.jobs`). The
fingerprint of its code is part of the job id: after the user edits the strategy, a resumed
batch runs new jobs and sets the earlier version's rows aside.

The modules, one job each: :mod:`.jobs` (the job model and ids), :mod:`.job` (the job function
and its row), :mod:`.spec` (spec files and flags into jobs), :mod:`.backend` (the protocol of
where jobs run), :mod:`.local` and :mod:`.ray` (the backends), :mod:`.retry` (the one retry
policy), :mod:`.journal` (results.jsonl, resume, SIGTERM), :mod:`.tables` (results tables, the
top rows), :mod:`.metrics` (Prometheus), :mod:`.run` (:func:`run_batch`). This ``__init__``
is the package's public API; Ray is imported only when the Ray backend runs.
"""

from __future__ import annotations

from barbus.replay.batch.job import METRICS, JobOutcome, period_text, run_job
from barbus.replay.batch.jobs import Job, expand_jobs, strategy_of
from barbus.replay.batch.run import BatchOutcome, run_batch
from barbus.replay.batch.spec import (
    BatchPlan,
    load_spec,
    parse_grid,
    plan_from_request,
    plan_jobs,
)
from barbus.replay.batch.tables import format_top, sort_ascending

__all__ = [
    "METRICS",
    "BatchOutcome",
    "BatchPlan",
    "Job",
    "JobOutcome",
    "expand_jobs",
    "format_top",
    "load_spec",
    "parse_grid",
    "period_text",
    "plan_from_request",
    "plan_jobs",
    "run_batch",
    "run_job",
    "sort_ascending",
    "strategy_of",
]
