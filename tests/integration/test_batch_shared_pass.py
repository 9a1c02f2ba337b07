"""Jobs of one dataset and period share a pass: the same rows as one pass per job.

The grid mixes what a pass must keep apart: sma_cross parameter sets, a job with other starting
cash, a strategy that halts on a refused short and one that raises (each must fail alone, with
the message it gives alone) and a job on another period (a pass of its own). Sharing on and off
must write the same ``results.csv``, byte for byte, on the worker pool and in-process.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from barbus.daemon.core.broker import ExecutionConfig
from barbus.replay.batch import Job, expand_jobs, run_batch
from barbus.replay.batch.groups import group_jobs
from barbus.replay.cache import BarCache
from barbus.replay.periods import parse_period
from tests.integration.test_batch import SMA_GRID, TWO_DAYS
from tests.integration.test_cli_replay_shorts import SHORT_ONCE

RAISES = """
import dataclasses

from barbus.daemon.events import Bar
from barbus.strategies.base import BaseParams, Order, Strategy


@dataclasses.dataclass(frozen=True)
class RaisesParams(BaseParams):
    at: int = 0


class Raises(Strategy[RaisesParams]):
    name = "raises"
    params_type = RaisesParams

    def __init__(self, params: RaisesParams) -> None:
        super().__init__(params)
        self.seen = 0

    def on_bar(self, bar: Bar, position: float) -> Order | None:
        self.seen += 1
        if self.seen == 30:
            return Order.buy()
        if self.params.at and self.seen == self.params.at:
            raise RuntimeError(f"boom at bar {self.seen}")
        return None
"""
ONE_DAY = parse_period("2023-03-21", "2023-03-22")


def mixed_jobs(data: Path, folder: Path) -> list[Job]:
    shorts, raises = folder / "short_once.py", folder / "raises.py"
    shorts.write_text(SHORT_ONCE, encoding="utf-8")
    raises.write_text(RAISES, encoding="utf-8")
    jobs, _ = expand_jobs("sma_cross", [data], grid=SMA_GRID, periods=[TWO_DAYS])
    rich = dataclasses.replace(jobs[0], execution=ExecutionConfig(starting_cash=50_000.0))
    other, _ = expand_jobs("sma_cross", [data], grid=SMA_GRID, periods=[ONE_DAY])
    halting, _ = expand_jobs(f"{shorts}:ShortOnce", [data], periods=[TWO_DAYS])
    raising, _ = expand_jobs(f"{raises}:Raises", [data], grid={"at": [0, 100]}, periods=[TWO_DAYS])
    return [*jobs, rich, *halting, *raising, other[0]]


@pytest.mark.parametrize("parallel", [True, False])
def test_a_shared_pass_writes_the_same_results_as_one_pass_per_job(
    btc_2023_path: Path, tmp_path: Path, parallel: bool
) -> None:
    jobs = mixed_jobs(btc_2023_path, tmp_path)
    cache = BarCache(tmp_path / "cache")
    groups = group_jobs(jobs, 2)
    assert sorted(len(g) for g in groups) == [1, 4, 4]  # 8 on two days in 2 passes, 1 alone

    shared = run_batch(jobs, tmp_path / "shared", workers=2, parallel=parallel, cache=cache)
    alone = run_batch(
        jobs, tmp_path / "alone", workers=2, parallel=parallel, cache=cache, shared_pass=False
    )

    assert shared.paths["csv"].read_bytes() == alone.paths["csv"].read_bytes()
    rows = {row["job_id"]: row for row in shared.rows}
    assert [rows[job.job_id]["status"] for job in jobs] == ["ok"] * 5 + ["failed"] * 1 + [
        "ok",
        "failed",
        "ok",
    ]
    assert "short_once sold short" in rows[jobs[5].job_id]["error"]
    assert rows[jobs[7].job_id]["error"].startswith("StrategyError: strategy raises")
    assert "boom at bar 100" in rows[jobs[7].job_id]["error"]
    assert rows[jobs[4].job_id]["final_equity"] != rows[jobs[0].job_id]["final_equity"]
    assert shared.bars_replayed == alone.bars_replayed


def test_a_resumed_batch_regroups_only_the_missing_jobs(
    btc_2023_path: Path, tmp_path: Path
) -> None:
    jobs = mixed_jobs(btc_2023_path, tmp_path)
    cache = BarCache(tmp_path / "cache")
    whole = run_batch(jobs, tmp_path / "whole", workers=2, cache=cache)
    out = tmp_path / "resumed"
    first = run_batch(jobs[:3], out, workers=2, cache=cache)
    assert first.failed == 0
    done: list[tuple[int, int]] = []

    resumed = run_batch(
        jobs, out, workers=2, cache=cache, progress=lambda d, t, b, s: done.append((d, t))
    )

    assert resumed.resumed == 3
    assert done[-1] == (len(jobs) - 3, len(jobs) - 3)  # progress counts jobs, the missing ones
    assert resumed.paths["csv"].read_bytes() == whole.paths["csv"].read_bytes()
