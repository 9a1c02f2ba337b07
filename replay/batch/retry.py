"""The one retry policy of a batch: keep a backend full, and give a failed job one more try.

Every backend (the local worker pool, the in-process run, Ray) is driven by :func:`run_jobs`,
so they agree on the order jobs start in (the given order), on how often a job runs (at most
:data:`MAX_ATTEMPTS` times: a job that raised or whose worker died runs once more, then its
failure is recorded) and on what is recorded (one outcome per job, as it finishes). Apart from
the backends because it is the part they must not differ in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from barbus.replay.batch.backend import Backend
from barbus.replay.batch.groups import group_jobs
from barbus.replay.batch.job import JobOutcome
from barbus.replay.batch.jobs import Job

__all__ = ["MAX_ATTEMPTS", "run_jobs"]

log = logging.getLogger("barbus.batch")

MAX_ATTEMPTS = 2  # the first try and one retry (on a fresh worker, or again on the cluster)


def run_jobs(
    jobs: Sequence[Job],
    backend: Backend,
    record: Callable[[JobOutcome], None],
    *,
    shared: bool = True,
    bars: Callable[[Job], int] | None = None,
) -> None:
    """Run ``jobs`` on ``backend`` in groups (:func:`~.groups.group_jobs`: one shared pass per
    dataset and period, unless ``shared`` is False, of at most so many bars when ``bars`` tells
    a job's), calling ``record`` once per job with its final outcome. A failed job's retry runs
    in a pass of its own, so a job that kills its worker takes only itself down the second time."""
    groups = group_jobs(jobs, backend.capacity, shared=shared, bars=bars)
    queue = list(reversed(groups))  # pop(): in order
    attempts: dict[str, int] = {}
    running = 0
    while queue or running:
        while queue and running < backend.capacity:
            group = queue.pop()
            for job in group:
                attempts[job.job_id] = attempts.get(job.job_id, 0) + 1
            backend.submit(group)
            running += 1
        for finished_group in backend.wait():
            running -= 1
            for finished in finished_group:
                job, outcome = finished.job, finished.outcome
                failed = outcome.row["status"] != "ok"
                if failed and finished.retryable and attempts[job.job_id] < MAX_ATTEMPTS:
                    if backend.retry_note is not None:
                        log.warning(
                            "job %s failed (%s); retrying once %s",
                            job.job_id,
                            outcome.row["error"],
                            backend.retry_note,
                        )
                    queue.append((job,))  # next, alone
                    continue
                record(outcome)
