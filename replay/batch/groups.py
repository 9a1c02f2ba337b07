"""How a batch's jobs become groups, the unit a worker runs: one shared pass over one dataset.

Jobs of the same data file, symbol and period replay the same bars, so they run as one group:
the engines of one session over one pass of the bars (:mod:`barbus.replay.shared_pass`), one
``Bar`` per minute for all of them. A group holds at most :data:`MAX_GROUP` jobs and, when the
bars of its period are known, at most :data:`MAX_PASS_BARS` strategy-bars; a dataset's jobs are
split into at least as many groups as there are workers (a multiple of it when there is more
than one group per worker), in even sizes, so the pool still spreads a grid over every worker.
Apart from the backends because every backend (local, Ray) groups the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from barbus.replay.batch.jobs import Job

__all__ = ["MAX_GROUP", "MAX_PASS_BARS", "group_jobs"]

# Engines per pass: beyond a few dozen the pass gains nothing more (the bar's cost is shared).
MAX_GROUP = 32
# Strategy-bars per pass (engines x bars). Each engine of a pass holds its equity curve (8 bytes
# a bar) and its trades until the pass ends, so this bounds a worker's memory: 4 M is 32 MB of
# curves, and a worker stays under 100 MB of its own memory (measured in bench_batch and the
# README), where 32 engines of 1 M bars would hold 256 MB.
MAX_PASS_BARS = 4_000_000


def group_jobs(
    jobs: Sequence[Job],
    workers: int,
    *,
    shared: bool = True,
    cap: int = MAX_GROUP,
    bars: Callable[[Job], int] | None = None,
) -> list[tuple[Job, ...]]:
    """``jobs`` as groups, in the order of each group's first job; ``shared=False`` (or
    ``cap=1``) makes every job a group of its own (one pass per job, as before sharing).
    ``bars(job)`` is the number of bars of the job's period, when the caller knows it (the
    batch does, from the data it prepared): then a pass also keeps to :data:`MAX_PASS_BARS`."""
    if not shared or cap <= 1:
        return [(job,) for job in jobs]
    by_data: dict[tuple[str, str, int | None, int | None], list[Job]] = {}
    for job in jobs:
        by_data.setdefault((job.data, job.symbol, job.start_ms, job.end_ms), []).append(job)
    groups: list[tuple[Job, ...]] = []
    for same in by_data.values():
        most = cap if bars is None else min(cap, max(1, MAX_PASS_BARS // max(1, bars(same[0]))))
        count = math.ceil(len(same) / most)
        if count < workers:
            count = min(len(same), workers)
        elif count > 1:
            count = min(len(same), math.ceil(count / workers) * workers)
        size, extra = divmod(len(same), count)
        start = 0
        for g in range(count):
            end = start + size + (1 if g < extra else 0)
            groups.append(tuple(same[start:end]))
            start = end
    return groups
