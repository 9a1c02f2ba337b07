"""One retry policy for every backend: the in-process run and the worker pool obey the same count.

The policy (:mod:`barbus.replay.batch.retry`) runs in the batch's own process, so raising its
attempt count here (a worker process never sees the patch) must change how often a failing job
runs in both places alike; a backend with its own retry loop would keep its own count. The
counts are read from the real worker's attempt files and from a wrapper around the real job
function.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from barbus.replay.batch import Job, JobOutcome, retry, run_batch
from barbus.replay.batch import local as local_backend
from barbus.replay.batch.job import run_job
from barbus.replay.cache import BarCache
from tests.integration import batch_workers
from tests.integration.batch_workers import attempts
from tests.integration.test_batch import empty_period_job, row_of, sma_jobs


@pytest.fixture
def cache(tmp_path: Path) -> BarCache:
    return BarCache(tmp_path / "cache")


@pytest.mark.parametrize("tries", [1, 3])
def test_the_in_process_run_and_the_worker_pool_run_a_failing_job_as_often_as_the_policy_says(
    btc_2023_path: Path,
    cache: BarCache,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    batch_log: list[logging.LogRecord],
    tries: int,
) -> None:
    good, bad = sma_jobs(btc_2023_path)[0], empty_period_job(btc_2023_path)
    monkeypatch.setattr(retry, "MAX_ATTEMPTS", tries)
    ran: list[str] = []

    def counted(job: Job, job_cache: BarCache | None) -> JobOutcome:
        ran.append(job.job_id)
        return run_job(job, job_cache)

    monkeypatch.setattr(local_backend, "run_job", counted)

    here = run_batch([good, bad], tmp_path / "here", parallel=False, cache=cache)
    pool = run_batch(
        [good, bad],
        tmp_path / "pool",
        workers=2,
        cache=cache,
        worker_target=batch_workers.counting_worker,
    )

    assert ran.count(bad.job_id) == tries
    assert ran.count(good.job_id) == 1
    assert attempts(cache.root, bad) == tries
    assert attempts(cache.root, good) == 1
    for outcome in (here, pool):
        assert row_of(outcome, bad)["status"] == "failed"
        assert row_of(outcome, good)["status"] == "ok"
    retried = [r.getMessage() for r in batch_log if "retrying once" in r.getMessage()]
    # The pool says each retry in one line; the in-process run retries without a line.
    assert len(retried) == tries - 1
    assert all(line.endswith("retrying once on a fresh worker") for line in retried)
