"""One pass, several engines: every engine gets the same Bar object, and groups are sized evenly."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path

import pytest

from barbus.daemon.core.events import Bar
from barbus.replay.batch.groups import MAX_GROUP, MAX_PASS_BARS, group_jobs
from barbus.replay.batch.jobs import Job
from barbus.replay.cache import BarCache
from barbus.replay.loader import bundled_data_path
from barbus.replay.runner import ReplayConfig, ReplayResult, run_replay
from barbus.replay.shared_pass import run_shared_pass
from barbus.strategies.base import BaseParams, Order, Strategy

SEEN: dict[int, list[Bar]] = defaultdict(list)


@dataclasses.dataclass(frozen=True)
class TagParams(BaseParams):
    tag: int = 0


class Recorder(Strategy[TagParams]):
    """Keeps every bar it is given, and buys once, so each engine has a trade to close."""

    name = "recorder"
    params_type = TagParams

    def on_bar(self, bar: Bar, position: float) -> Order | None:
        SEEN[self.params.tag].append(bar)
        return Order.buy() if len(SEEN[self.params.tag]) == 5 else None


def test_every_engine_of_a_pass_gets_the_same_bar_object_and_its_own_result(
    tmp_path: Path,
) -> None:
    SEEN.clear()
    start = 1_748_736_000_000  # 2025-06-01, inside the bundled sample
    configs = [
        ReplayConfig(
            Recorder,
            {"tag": tag},
            data=bundled_data_path(),
            start_ms=start,
            end_ms=start + 600 * 60_000,
        )
        for tag in (1, 2)
    ]
    cache = BarCache(tmp_path / "cache")
    outcomes = run_shared_pass(configs, ["a", "b"], cache)

    assert len(SEEN[1]) == len(SEEN[2]) == 600
    assert all(x is y for x, y in zip(SEEN[1], SEEN[2], strict=True))
    SEEN.clear()
    alone = run_replay(configs[0], cache=cache)
    assert len(alone.trades) == 1
    for outcome, name in zip(outcomes, ["a", "b"], strict=True):
        assert isinstance(outcome, ReplayResult)
        # The trade log names the engine (the job id in a batch, which writes no trades).
        assert outcome.trades == [dataclasses.replace(t, strategy=name) for t in alone.trades]
        assert outcome.equity.tobytes() == alone.equity.tobytes()


def test_a_pass_refuses_configs_of_different_periods() -> None:
    config = ReplayConfig("sma_cross")
    with pytest.raises(ValueError, match="one data file, symbol and period"):
        run_shared_pass([config, dataclasses.replace(config, start_ms=0)], ["a", "b"])


def jobs(count: int, period: int = 0) -> list[Job]:
    return [Job("sma_cross", (("fast", i),), "d.csv", "X", period) for i in range(count)]


@pytest.mark.parametrize(
    ("count", "workers", "sizes"),
    [
        (100, 2, [25, 25, 25, 25]),  # 4 passes of at most 32, a multiple of the workers
        (100, 1, [25, 25, 25, 25]),
        (3, 2, [2, 1]),  # fewer jobs than a pass holds: still every worker busy
        (1, 4, [1]),
        (4, 4, [1, 1, 1, 1]),  # a tie on the way (2, 1, 1) still leaves a worker idle
        (64, 2, [32, 32]),
        (65, 2, [22, 21, 11, 11]),  # 3 passes of 22 would leave a worker idle for one
    ],
)
def test_groups_are_even_capped_and_keep_every_worker_busy(
    count: int, workers: int, sizes: list[int]
) -> None:
    groups = group_jobs(jobs(count), workers)
    assert [len(g) for g in groups] == sizes
    assert max(sizes) <= MAX_GROUP
    assert sorted(j.job_id for g in groups for j in g) == sorted(j.job_id for j in jobs(count))


def test_jobs_of_other_periods_are_other_groups_and_sharing_off_makes_one_job_each() -> None:
    mixed = jobs(2, period=0) + jobs(2, period=60_000)
    assert [len(g) for g in group_jobs(mixed, 1)] == [2, 2]
    assert all(g[0].start_ms == g[-1].start_ms for g in group_jobs(mixed, 1))
    assert [len(g) for g in group_jobs(mixed, 1, shared=False)] == [1, 1, 1, 1]


@pytest.mark.parametrize(
    ("count", "bars", "workers", "most"),
    [
        (100, 1_000_000, 2, 4),  # 4 M strategy-bars a pass: 4 engines of 1 M bars
        (32, 250_000, 1, 16),
        (10, 4_000_001, 2, 1),  # a job longer than the budget still runs, alone
        (10, 1_000, 2, 5),  # short jobs: only the engine cap and the workers count
    ],
)
def test_a_pass_keeps_to_the_bar_budget_when_the_bars_are_known(
    count: int, bars: int, workers: int, most: int
) -> None:
    groups = group_jobs(jobs(count), workers, bars=lambda job: bars)
    sizes = [len(g) for g in groups]
    assert max(sizes) == most
    assert max(sizes) * bars <= MAX_PASS_BARS or max(sizes) == 1
    assert len(groups) % workers == 0 or len(groups) == count
    assert sorted(j.job_id for g in groups for j in g) == sorted(j.job_id for j in jobs(count))


def test_datasets_are_split_only_as_far_as_it_lets_the_workers_finish_sooner() -> None:
    # bench_batch's grid: 11, 11 and 10 jobs on three periods.
    grid = jobs(11, period=0) + jobs(11, period=1) + jobs(10, period=2)
    one = group_jobs(grid, 1)
    assert [len(g) for g in one] == [11, 11, 10]  # one worker: every period in one pass
    two = group_jobs(grid, 2)
    # Two workers that each take the largest waiting pass both finish after 16 jobs; six
    # passes of five or six would also, with half the engines sharing each pass.
    assert [len(g) for g in two] == [11, 10, 6, 5]
    assert sorted(j.job_id for g in two for j in g) == sorted(j.job_id for j in grid)
    assert all(len({(j.start_ms, j.end_ms) for j in g}) == 1 for g in two)
