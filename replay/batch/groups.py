"""How a batch's jobs become groups, the unit a worker runs: one shared pass over one dataset.

Jobs of the same data file, symbol and period replay the same bars, so they run as one group:
the engines of one session over one pass of the bars (:mod:`barbus.replay.shared_pass`), one
``Bar`` per minute for all of them. A group holds at most :data:`MAX_GROUP` jobs and, when the
bars of its period are known, at most :data:`MAX_PASS_BARS` strategy-bars; a group is split
further only where that lets the workers finish sooner (:func:`group_jobs`), so a grid still
spreads over every worker without giving up more sharing than it must. Apart from the backends
because every backend (local, Ray) groups the same way.
"""

from __future__ import annotations

import heapq
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
    """``jobs`` as groups, the largest first (the order to start them in); ``shared=False``
    (or ``cap=1``) makes every job a group of its own (one pass per job, as before sharing).
    ``bars(job)`` is the number of bars of the job's period, when the caller knows it (the
    batch does, from the data it prepared): then a pass also keeps to :data:`MAX_PASS_BARS`.

    Each dataset's jobs are first split evenly into as few groups as the caps allow (the more
    engines share a pass, the cheaper each one's bars). Then, while the batch would finish
    sooner on ``workers`` that each take the largest waiting group (counting a job as one unit
    of work), or a worker would have no group, the largest group is halved: datasets of 11, 11
    and 10 jobs on two workers become passes of 11, 10, 6 and 5 jobs, not six of five or six.
    """
    if not shared or cap <= 1:
        return [(job,) for job in jobs]
    by_data: dict[tuple[str, str, int | None, int | None], list[Job]] = {}
    for job in jobs:
        by_data.setdefault((job.data, job.symbol, job.start_ms, job.end_ms), []).append(job)
    groups: list[tuple[Job, ...]] = []
    for same in by_data.values():
        most = cap if bars is None else min(cap, max(1, MAX_PASS_BARS // max(1, bars(same[0]))))
        groups += _even(same, math.ceil(len(same) / most))
    groups.sort(key=len, reverse=True)  # stable: equal groups keep the jobs' order
    finish = _finish(groups, workers)
    while len(groups[0]) > 1:
        halved = sorted([*groups[1:], *_even(groups[0], 2)], key=len, reverse=True)
        sooner = _finish(halved, workers)
        # On a tie, halve on while a worker would be left without a group: two passes of two
        # on four workers must become four of one, though halving one of them alone gains
        # nothing yet.
        if sooner > finish or (sooner == finish and len(groups) >= workers):
            break
        groups, finish = halved, sooner
    return groups


def _even(jobs: Sequence[Job], count: int) -> list[tuple[Job, ...]]:
    """``jobs`` in ``count`` consecutive parts whose sizes differ by at most one."""
    size, extra = divmod(len(jobs), count)
    parts, start = [], 0
    for g in range(count):
        end = start + size + (1 if g < extra else 0)
        parts.append(tuple(jobs[start:end]))
        start = end
    return parts


def _finish(groups: Sequence[tuple[Job, ...]], workers: int) -> int:
    """When the last worker is done if each idle worker takes the next (largest) group."""
    loads = [0] * max(1, workers)
    for group in groups:
        heapq.heapreplace(loads, loads[0] + len(group))
    return max(loads)
