"""How a batch's jobs become groups, the unit a worker runs: one shared pass over one dataset.

Jobs of the same data file, symbol and period replay the same bars, so they run as one group:
the engines of one session over one pass of the bars (:mod:`barbus.replay.shared_pass`), one
``Bar`` per minute for all of them. A group holds at most :data:`MAX_GROUP` jobs, and a dataset's
jobs are split into at least as many groups as there are workers (a multiple of it when there
is more than one group per worker), in even sizes, so the pool still spreads a grid over every
worker. Apart from the backends because every backend (local, Ray) groups the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from barbus.replay.batch.jobs import Job

__all__ = ["MAX_GROUP", "group_jobs"]

# Engines per pass. Each engine of a pass holds its equity curve (one float per bar) until the
# pass ends, so the cap bounds a worker's memory (32 x 1 M bars of float64 = 256 MB at most);
# beyond a few dozen engines the pass gains nothing more (the bar's cost is already shared).
MAX_GROUP = 32


def group_jobs(
    jobs: Sequence[Job], workers: int, *, shared: bool = True, cap: int = MAX_GROUP
) -> list[tuple[Job, ...]]:
    """``jobs`` as groups, in the order of each group's first job; ``shared=False`` (or
    ``cap=1``) makes every job a group of its own (one pass per job, as before sharing)."""
    if not shared or cap <= 1:
        return [(job,) for job in jobs]
    by_data: dict[tuple[str, str, int | None, int | None], list[Job]] = {}
    for job in jobs:
        by_data.setdefault((job.data, job.symbol, job.start_ms, job.end_ms), []).append(job)
    groups: list[tuple[Job, ...]] = []
    for same in by_data.values():
        count = math.ceil(len(same) / cap)
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
