"""The batch runner with real worker processes, real files and the real ``barbus batch``.

Jobs are kept small (two days of the bundled 2023 file, or the 2025 file for the interrupt
tests) so the whole module runs in well under a minute and a half on two cores. Faulty workers
live in :mod:`tests.integration.batch_workers` (forkserver children import them by name).
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import pickle
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.errors import ConfigError
from barbus.replay.batch import (
    BatchOutcome,
    BatchPlan,
    Job,
    expand_jobs,
    load_spec,
    parse_grid,
    period_text,
    plan_jobs,
    run_batch,
)
from barbus.replay.batch.groups import group_jobs
from barbus.replay.cache import BarCache
from barbus.replay.periods import parse_period
from barbus.replay.reports.batch_report import write_batch_report
from barbus.replay.stats import LOWER_IS_BETTER
from tests.integration import batch_workers
from tests.integration.batch_workers import attempts, order_death
from tests.kit.in_process import Run, run_main
from tests.kit.processes import checkout_env
from tests.kit.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
TWO_DAYS = parse_period("2023-03-20", "2023-03-22")
TWO_DAYS_BARS = 2 * 24 * 60
BEFORE_THE_DATA = parse_period("2020-01-01", "2020-01-02")  # no bars: the job fails
SMA_GRID: dict[str, list[int | float | str | bool]] = {"fast": [5, 10], "slow": [20, 40]}
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d [A-Z]+ barbus\.")


# --------------------------------------------------------------------------------------------
# helpers


def sma_jobs(data: Path, period: tuple[int | None, int | None] = TWO_DAYS) -> list[Job]:
    """Four sma_cross jobs over two days of ``data``."""
    jobs, invalid = expand_jobs("sma_cross", [data], grid=SMA_GRID, periods=[period])
    assert not invalid
    return jobs


def flat_jobs(data: Path) -> list[Job]:
    """Random entries that never enter: every metric ties (sharpe 0), so job ids decide."""
    jobs, _ = expand_jobs(
        "random",
        [data],
        grid={"seed": [1, 2, 3]},
        params={"entry_probability": 0.0},
        periods=[TWO_DAYS],
    )
    return jobs


def empty_period_job(data: Path) -> Job:
    """A job whose period holds no bars: run_job fails with a DataError."""
    (job,), _ = expand_jobs("sma_cross", [data], periods=[BEFORE_THE_DATA])
    return job


def row_of(outcome: BatchOutcome, job: Job) -> dict[str, Any]:
    (row,) = (row for row in outcome.rows if row["job_id"] == job.job_id)
    return row


def journal_lines(out: Path) -> list[str]:
    return (out / "results.jsonl").read_text(encoding="utf-8").splitlines()


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def assert_ranked(rows: Sequence[dict[str, Any]], metric: str, *, ascending: bool) -> None:
    """ok rows by ``metric`` (ties by job id), then failed rows by job id."""
    ok = [row for row in rows if row["status"] == "ok"]
    failed = [row for row in rows if row["status"] != "ok"]
    assert list(rows) == ok + failed, "failed rows must come last"
    sign = 1.0 if ascending else -1.0
    expected = sorted(ok, key=lambda row: (sign * float(row[metric]), row["job_id"]))
    assert [row["job_id"] for row in ok] == [row["job_id"] for row in expected]
    assert [row["job_id"] for row in failed] == sorted(row["job_id"] for row in failed)


@pytest.fixture
def cache(tmp_path: Path) -> BarCache:
    return BarCache(tmp_path / "cache")


# --------------------------------------------------------------------------------------------
# 1. grid expansion


def test_grid_with_invalid_corners_yields_only_valid_jobs_and_readable_reasons(
    btc_2023_path: Path,
) -> None:
    jobs, invalid = expand_jobs(
        "sma_cross", [btc_2023_path], grid={"fast": [5, 10, 20], "slow": [10, 20, 30]}
    )

    combos = {(dict(job.params)["fast"], dict(job.params)["slow"]) for job in jobs}
    assert combos == {(5, 10), (5, 20), (5, 30), (10, 20), (10, 30), (20, 30)}
    assert len({job.job_id for job in jobs}) == 6
    assert len(invalid) == 3
    assert "sma_cross {'fast': 10, 'slow': 10}: " in " ".join(invalid)
    assert any("slow (10) must be greater than fast (20)" in reason for reason in invalid)
    assert all(reason.startswith("sma_cross {") for reason in invalid)


def test_cli_grid_strings_and_toml_numbers_give_the_same_job_ids(
    btc_2023_path: Path, tmp_path: Path
) -> None:
    spec = tmp_path / "sweep.toml"
    spec.write_text(
        f"""
        [[run]]
        strategy = "sma_cross"
        data = ["{btc_2023_path}"]
        start = "2023-03-20"
        end = "2023-03-22"
        grid = {{ fast = [5, 10], slow = [20, 40] }}

        [[run]]
        strategy = "random"
        data = ["{btc_2023_path}"]
        params = {{ entry_probability = 0 }}
        grid = {{ seed = [7] }}
        """,
        encoding="utf-8",
    )
    cli_execution = ExecutionConfig(fee_bps=10.0, slippage_bps=5.0)  # what `barbus batch` builds

    from_toml = load_spec(spec).jobs
    sma, _ = plan_jobs(
        "sma_cross",
        [btc_2023_path],
        grid=parse_grid(["fast=5,10", "slow= 20, 40"]),
        params={},
        periods=[parse_period("2023-03-20", "2023-03-22")],
        symbol=None,
        execution=cli_execution,
    )
    rnd, _ = plan_jobs(
        "random",
        [btc_2023_path],
        grid=parse_grid(["seed=7"]),
        params={"entry_probability": "0"},
        periods=[],
        symbol=None,
        execution=cli_execution,
    )

    assert [job.job_id for job in from_toml] == [job.job_id for job in sma + rnd]
    assert from_toml == sma + rnd
    assert dict(sma[0].params) == {"fast": 5, "slow": 20}  # typed, not "5"


def test_job_ids_are_stable_across_runs_and_processes(btc_2023_path: Path) -> None:
    fixed = Job(
        strategy="sma_cross",
        params=(("fast", 5), ("slow", 20)),
        data="/data/BTCUSDT_1m.csv.gz",
        symbol="BTCUSDT",
        start_ms=1_679_270_400_000,
        end_ms=1_679_443_200_000,
    )
    jobs = sma_jobs(btc_2023_path)
    code = (
        "from pathlib import Path\n"
        "from replay.batch import expand_jobs\n"
        "from replay.periods import parse_period\n"
        f"jobs, _ = expand_jobs('sma_cross', [Path({str(btc_2023_path)!r})], "
        f"grid={SMA_GRID!r}, periods=[parse_period('2023-03-20', '2023-03-22')])\n"
        "print(' '.join(job.job_id for job in jobs))\n"
    )

    other = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=checkout_env({"PYTHONHASHSEED": "12345"}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    # A golden id: a change here orphans every results.jsonl written before (no resume).
    assert fixed.job_id == "85b468515195"
    assert other.stdout.split() == [job.job_id for job in jobs]
    assert [job.job_id for job in sma_jobs(btc_2023_path)] == [job.job_id for job in jobs]


def test_periods_times_data_files_multiply_the_jobs(
    btc_2023_path: Path, btc_2025_path: Path
) -> None:
    periods = [
        parse_period("2023-03-20", "2023-03-21"),
        parse_period("2025-06-01", "2025-06-02"),
        (None, None),
    ]

    jobs, invalid = expand_jobs(
        "sma_cross",
        [btc_2023_path, btc_2025_path],
        grid={"fast": [5, 10], "slow": [10, 20]},  # (10, 10) is invalid: 3 combinations
        periods=periods,
    )

    assert len(invalid) == 1
    assert len(jobs) == 3 * 2 * 3
    assert len({job.job_id for job in jobs}) == len(jobs)
    assert {(job.data, job.start_ms, job.end_ms) for job in jobs} == {
        (str(path.resolve()), start, end)
        for path in (btc_2023_path, btc_2025_path)
        for start, end in periods
    }
    assert {job.symbol for job in jobs} == {"BTCUSDT"}


# --------------------------------------------------------------------------------------------
# 2. determinism: the same results whatever the number of workers


@pytest.fixture(scope="module")
def mixed_jobs(btc_2023_path: Path) -> list[Job]:
    """sma_cross jobs, tied flat jobs and one that fails."""
    return [*sma_jobs(btc_2023_path), *flat_jobs(btc_2023_path), empty_period_job(btc_2023_path)]


@pytest.fixture(scope="module")
def variants(
    mixed_jobs: list[Job], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, BatchOutcome]:
    root = tmp_path_factory.mktemp("determinism")
    cache = BarCache(root / "cache")
    return {
        "workers=1": run_batch(mixed_jobs, root / "w1", workers=1, cache=cache),
        "workers=2": run_batch(mixed_jobs, root / "w2", workers=2, cache=cache),
        "in-process": run_batch(mixed_jobs, root / "inproc", parallel=False, cache=cache),
        "ascending": run_batch(
            mixed_jobs, root / "asc", parallel=False, cache=cache, ascending=True
        ),
        "drawdown": run_batch(
            mixed_jobs, root / "dd", parallel=False, cache=cache, sort="max_drawdown_pct"
        ),
        "drawdown descending": run_batch(
            mixed_jobs,
            root / "dd-desc",
            parallel=False,
            cache=cache,
            sort="max_drawdown_pct",
            ascending=False,
        ),
    }


def test_results_csv_is_byte_identical_whatever_the_workers(
    variants: dict[str, BatchOutcome],
) -> None:
    texts = {name: variants[name].paths["csv"].read_bytes() for name in variants}

    assert texts["workers=2"] == texts["workers=1"]
    assert texts["in-process"] == texts["workers=1"]
    assert texts["workers=1"].count(b"\n") == 1 + 8


def test_results_parquet_is_the_same_table_whatever_the_workers(
    variants: dict[str, BatchOutcome],
) -> None:
    tables = {name: pd.read_parquet(variants[name].paths["parquet"]) for name in variants}

    assert_frame_equal(tables["workers=2"], tables["workers=1"])
    assert_frame_equal(tables["in-process"], tables["workers=1"])
    assert list(tables["workers=1"]["job_id"]) == [r["job_id"] for r in variants["workers=1"].rows]


def test_rows_rank_by_the_metric_descending_ties_by_job_id_failed_last(
    variants: dict[str, BatchOutcome], mixed_jobs: list[Job]
) -> None:
    outcome = variants["workers=2"]
    flat_ids = sorted(job.job_id for job in mixed_jobs[4:7])

    assert_ranked(outcome.rows, "sharpe", ascending=False)
    assert [row["job_id"] for row in outcome.rows if row["sharpe"] == 0.0] == flat_ids
    last = outcome.rows[-1]
    assert last["job_id"] == mixed_jobs[-1].job_id
    assert last["status"] == "failed"
    assert "DataError" in last["error"]
    assert "no bars in the requested period" in last["error"]
    assert outcome.failed == 1
    written = csv_rows(outcome.paths["csv"])
    assert [row["job_id"] for row in written] == [row["job_id"] for row in outcome.rows]


def test_ascending_ranks_lowest_first_and_keeps_failed_rows_last(
    variants: dict[str, BatchOutcome],
) -> None:
    descending = [row["sharpe"] for row in variants["workers=1"].rows if row["status"] == "ok"]
    outcome = variants["ascending"]

    assert_ranked(outcome.rows, "sharpe", ascending=True)
    ascending = [row["sharpe"] for row in outcome.rows if row["status"] == "ok"]
    assert ascending == descending[::-1]
    assert ascending[0] < ascending[-1]
    assert outcome.rows[-1]["status"] == "failed"


def test_sort_by_drawdown_ranks_the_smallest_drawdown_first(
    variants: dict[str, BatchOutcome],
) -> None:
    outcome = variants["drawdown"]
    drawdowns = [row["max_drawdown_pct"] for row in outcome.rows if row["status"] == "ok"]

    assert_ranked(outcome.rows, "max_drawdown_pct", ascending=True)
    assert drawdowns[0] == 0.0  # the flat jobs never enter: no drawdown is the best one
    assert drawdowns[-1] > 0.0
    assert outcome.rows[-1]["status"] == "failed"


def test_an_explicit_direction_overrides_the_metric_meaning(
    variants: dict[str, BatchOutcome],
) -> None:
    assert_ranked(variants["drawdown descending"].rows, "max_drawdown_pct", ascending=False)


def test_best_plots_are_the_best_by_the_metric_meaning_whatever_the_table_order(
    variants: dict[str, BatchOutcome], mixed_jobs: list[Job], tmp_path: Path
) -> None:
    # The table lists the largest drawdown first (asked for); "best" is still the smallest.
    outcome = variants["drawdown descending"]
    ok = [row for row in outcome.rows if row["status"] == "ok"]
    smallest = min(ok, key=lambda row: (row["max_drawdown_pct"], row["job_id"]))
    assert ok[0]["max_drawdown_pct"] > smallest["max_drawdown_pct"]
    plan = BatchPlan(mixed_jobs, [], sort="max_drawdown_pct", ascending=False)

    page = write_batch_report(outcome, plan, tmp_path, BarCache(tmp_path / "cache"), plots=1)

    assert [p.name for p in (tmp_path / "plots").iterdir()] == [f"{smallest['job_id']}.png"]
    text = page.read_text(encoding="utf-8")
    assert "Sorted by max_drawdown_pct, highest first." in text


def test_rows_name_their_data_file_and_period_readably(
    variants: dict[str, BatchOutcome], btc_2023_path: Path
) -> None:
    written = csv_rows(variants["workers=1"].paths["csv"])
    failed = [row for row in written if row["status"] == "failed"]

    assert {row["file"] for row in written} == {btc_2023_path.name}
    assert {row["period"] for row in written} - {failed[0]["period"]} == {"2023-03-20..2023-03-22"}
    assert failed[0]["period"] == "2020-01-01..2020-01-02"
    header = list(written[0])
    # who and what first, the figures right after the parameters, long exact columns last
    assert header[:5] == ["job_id", "strategy", "symbol", "file", "period"]
    assert header[-4:] == ["data", "start_ms", "end_ms", "params"]
    first_figure = header.index("total_return_pct")
    assert all(name.startswith("param_") for name in header[5:first_figure])
    assert header[first_figure : first_figure + 4] == [
        "total_return_pct",
        "sharpe",
        "max_drawdown_pct",
        "trades",
    ]


@pytest.mark.parametrize(
    ("start", "end", "text"),
    [
        ("2025-05-20", "2025-06-20", "2025-05-20..2025-06-20"),
        ("2025-05-20T09:30", None, "2025-05-20T09:30.."),
        (None, "2025-06-20", "..2025-06-20"),
        (None, None, "all"),
    ],
)
def test_period_text_reads_like_the_period_was_written(
    start: str | None, end: str | None, text: str
) -> None:
    assert period_text(*parse_period(start, end)) == text


def test_a_spec_without_ascending_ranks_by_the_metric_meaning(
    tmp_path: Path, btc_2023_path: Path
) -> None:
    spec = tmp_path / "sweep.toml"
    body = f'[[run]]\nstrategy = "sma_cross"\ndata = ["{btc_2023_path}"]\n'
    spec.write_text(f'sort = "max_drawdown_pct"\n{body}', encoding="utf-8")
    assert load_spec(spec).ascending is None
    spec.write_text(f'ascending = "yes"\n{body}', encoding="utf-8")
    with pytest.raises(ConfigError, match="ascending must be true or false"):
        load_spec(spec)


def test_batch_help_names_every_lower_is_better_metric() -> None:
    run = barbus("batch", "--help")

    assert_succeeded(run)
    text = " ".join(run.stdout.split())
    assert "--ascending, --no-ascending" in text
    for metric in LOWER_IS_BETTER:
        assert metric in text


# --------------------------------------------------------------------------------------------
# 3. workers receive job records, never bars, and map the parent's cache entry


@dataclass(frozen=True)
class ParallelRun:
    jobs: list[Job]
    outcome: BatchOutcome
    cache: BarCache
    progress: list[tuple[int, int]]


@pytest.fixture(scope="module")
def parallel_run(btc_2023_path: Path, tmp_path_factory: pytest.TempPathFactory) -> ParallelRun:
    root = tmp_path_factory.mktemp("parallel")
    cache = BarCache(root / "cache")
    jobs = [*sma_jobs(btc_2023_path), *flat_jobs(btc_2023_path)]
    calls: list[tuple[int, int]] = []

    def progress(done: int, total: int, bars: int, elapsed: float) -> None:
        calls.append((done, total))

    outcome = run_batch(jobs, root / "out", workers=2, cache=cache, progress=progress)
    return ParallelRun(jobs, outcome, cache, calls)


def test_workers_are_sent_small_job_records_not_megabytes_of_bars(
    parallel_run: ParallelRun,
) -> None:
    (entry,) = parallel_run.cache.entries()
    sent = parallel_run.outcome.bytes_sent_to_workers

    assert parallel_run.outcome.failed == 0
    assert entry.nbytes > 3_000_000  # the dataset the workers use
    assert 0 < sent / len(parallel_run.jobs) < 2_000
    groups = group_jobs(parallel_run.jobs, 2)  # what the pool sends: a group per pass
    assert sent == sum(len(pickle.dumps(group)) for group in groups)  # once each
    assert max(len(pickle.dumps(job)) for job in parallel_run.jobs) < 1_000


def test_the_parent_builds_the_cache_once_and_workers_only_map_it(
    parallel_run: ParallelRun,
) -> None:
    stats = BarCache(parallel_run.cache.root).shared_stats()

    assert stats.builds == 1
    assert stats.rebuilds == 0
    assert stats.misses == 1  # the parent's build; each worker's first load maps it from disk
    assert stats.disk_hits == 2
    # One load per pass, not per job: the jobs of a dataset and period share a pass.
    passes = len(group_jobs(parallel_run.jobs, 2))
    assert passes < len(parallel_run.jobs)
    assert stats.memory_hits == passes - 2


def test_progress_is_reported_after_every_job(parallel_run: ParallelRun) -> None:
    total = len(parallel_run.jobs)

    assert parallel_run.progress == [(done, total) for done in range(1, total + 1)]
    assert parallel_run.outcome.bars_replayed == total * TWO_DAYS_BARS


# --------------------------------------------------------------------------------------------
# 4. faults: dead workers and failing jobs


def on_two_workers(
    jobs: list[Job], out: Path, cache: BarCache, worker: Callable[..., None]
) -> BatchOutcome:
    """The batch on a pool of two workers that run ``worker`` (a fault of batch_workers)."""
    return run_batch(jobs, out, workers=2, cache=cache, worker_target=worker)


def failed_after_its_retry(outcome: BatchOutcome, cache: BarCache, job: Job) -> dict[str, Any]:
    """``job``'s row, which says failed after two attempts (the first and its one retry)."""
    row = row_of(outcome, job)
    assert row["status"] == "failed"
    assert attempts(cache.root, job) == 2
    return row


def test_a_worker_killed_mid_job_is_replaced_and_the_retry_gives_the_clean_result(
    btc_2023_path: Path, cache: BarCache, tmp_path: Path
) -> None:
    jobs = sma_jobs(btc_2023_path)
    victim = jobs[1]
    order_death(cache.root, victim, always=False)

    faulty = on_two_workers(jobs, tmp_path / "faulty", cache, batch_workers.dies_once_worker)
    clean = run_batch(jobs, tmp_path / "clean", parallel=False, cache=cache)

    assert faulty.failed == 0
    assert attempts(cache.root, victim) == 2
    # The victim shares a pass with jobs[0] (two passes of two): its dead group runs again.
    assert group_jobs(jobs, 2)[0] == (jobs[0], victim)
    assert [attempts(cache.root, job) for job in jobs if job != victim] == [2, 1, 1]
    assert row_of(faulty, victim) == row_of(clean, victim)
    assert faulty.paths["csv"].read_bytes() == clean.paths["csv"].read_bytes()


def test_a_job_whose_worker_always_dies_is_retried_once_then_recorded_failed(
    btc_2023_path: Path, cache: BarCache, tmp_path: Path
) -> None:
    jobs = sma_jobs(btc_2023_path)
    victim = jobs[2]
    order_death(cache.root, victim, always=True)

    outcome = on_two_workers(jobs, tmp_path / "out", cache, batch_workers.always_dies_worker)

    row = failed_after_its_retry(outcome, cache, victim)
    assert "worker died" in row["error"]
    assert "exit code -9" in row["error"]
    assert all(row_of(outcome, job)["status"] == "ok" for job in jobs if job != victim)
    assert outcome.rows[-1] == row
    journal = [json.loads(line) for line in journal_lines(tmp_path / "out")]
    assert sorted(r["job_id"] for r in journal) == sorted(job.job_id for job in jobs)
    assert [r["job_id"] for r in csv_rows(outcome.paths["csv"])][-1] == victim.job_id


def test_a_job_that_fails_in_run_job_is_retried_once_then_recorded_failed(
    btc_2023_path: Path, cache: BarCache, tmp_path: Path
) -> None:
    good = sma_jobs(btc_2023_path)
    bad = empty_period_job(btc_2023_path)

    outcome = on_two_workers([*good, bad], tmp_path / "out", cache, batch_workers.counting_worker)

    row = failed_after_its_retry(outcome, cache, bad)
    assert row["error"].startswith("DataError: ")
    assert "no bars in the requested period" in row["error"]
    assert [attempts(cache.root, job) for job in good] == [1, 1, 1, 1]
    assert [row_of(outcome, job)["status"] for job in good] == ["ok"] * 4
    assert len(journal_lines(tmp_path / "out")) == 5


def test_a_job_on_a_corrupt_gzip_file_is_recorded_failed_and_the_others_run(
    btc_2023_path: Path, cache: BarCache, tmp_path: Path
) -> None:
    # replay.batch promises: "a job that raises: the job is retried once on a fresh worker, then
    # recorded as failed with its error; every other job goes on."
    corrupt = tmp_path / "BTCUSDT_1m_corrupt.csv.gz"
    corrupt.write_bytes(btc_2023_path.read_bytes()[:100_000])  # a download cut short
    good = sma_jobs(btc_2023_path)
    (bad,), _ = expand_jobs("sma_cross", [corrupt])

    outcome = on_two_workers([*good, bad], tmp_path / "out", cache, batch_workers.counting_worker)

    row = failed_after_its_retry(outcome, cache, bad)
    assert row["error"].startswith("DataError: ")
    assert "corrupt gzip data" in row["error"]
    assert [row_of(outcome, job)["status"] for job in good] == ["ok"] * 4


# --------------------------------------------------------------------------------------------
# 5. resume from the journal


@dataclass(frozen=True)
class FirstRun:
    jobs: list[Job]
    out: Path
    cache: BarCache
    outcome: BatchOutcome
    csv: list[dict[str, str]]  # results.csv rows (column order aside)


@pytest.fixture
def first_run(btc_2023_path: Path, cache: BarCache, tmp_path: Path) -> FirstRun:
    jobs = sma_jobs(btc_2023_path)
    out = tmp_path / "out"
    outcome = run_batch(jobs, out, workers=2, cache=cache)
    assert outcome.failed == 0
    return FirstRun(jobs, out, cache, outcome, csv_rows(outcome.paths["csv"]))


def test_a_rerun_resumes_every_finished_job_and_replays_nothing(first_run: FirstRun) -> None:
    journal_before = journal_lines(first_run.out)

    again = run_batch(first_run.jobs, first_run.out, workers=2, cache=first_run.cache)

    assert again.resumed == len(first_run.jobs)
    assert again.bars_replayed == 0
    assert again.bytes_sent_to_workers == 0
    assert again.rows == first_run.outcome.rows
    assert csv_rows(again.paths["csv"]) == first_run.csv
    assert journal_lines(first_run.out) == journal_before


def test_a_resumed_batch_writes_the_same_results_files_as_a_fresh_one(
    first_run: FirstRun,
) -> None:
    fresh_csv = first_run.outcome.paths["csv"].read_bytes()
    fresh_table = pd.read_parquet(first_run.outcome.paths["parquet"])

    again = run_batch(first_run.jobs, first_run.out, workers=2, cache=first_run.cache)

    # Resumed rows come back from the journal (keys sorted): the columns must keep their order.
    assert again.paths["csv"].read_bytes().split(b"\n")[0] == fresh_csv.split(b"\n")[0]
    assert again.paths["csv"].read_bytes() == fresh_csv
    assert_frame_equal(pd.read_parquet(again.paths["parquet"]), fresh_table)


def test_a_rerun_runs_only_the_jobs_missing_from_the_journal(first_run: FirstRun) -> None:
    lines = journal_lines(first_run.out)
    dropped = {json.loads(lines[0])["job_id"], json.loads(lines[2])["job_id"]}
    kept = [lines[1], lines[3]]
    (first_run.out / "results.jsonl").write_text("\n".join(kept) + "\n", encoding="utf-8")

    again = run_batch(first_run.jobs, first_run.out, workers=2, cache=first_run.cache)

    assert again.resumed == 2
    assert again.bars_replayed == 2 * TWO_DAYS_BARS
    assert csv_rows(again.paths["csv"]) == first_run.csv
    lines_after = journal_lines(first_run.out)
    assert lines_after[:2] == kept
    assert {json.loads(line)["job_id"] for line in lines_after[2:]} == dropped


def test_a_rerun_runs_again_the_jobs_that_failed(
    btc_2023_path: Path, cache: BarCache, tmp_path: Path
) -> None:
    jobs = sma_jobs(btc_2023_path)
    victim = jobs[0]
    order_death(cache.root, victim, always=True)
    failing = on_two_workers(jobs, tmp_path / "out", cache, batch_workers.always_dies_worker)
    assert row_of(failing, victim)["status"] == "failed"

    again = run_batch(jobs, tmp_path / "out", workers=2, cache=cache)

    assert again.resumed == 3
    assert again.bars_replayed == TWO_DAYS_BARS
    assert again.failed == 0
    assert row_of(again, victim)["status"] == "ok"
    assert len(csv_rows(again.paths["csv"])) == 4


def is_json(line: str) -> bool:
    try:
        json.loads(line)
    except json.JSONDecodeError:
        return False
    return True


def cut_last_line_short(journal: Path) -> None:
    """Drop the end of the last line and its newline, as a write interrupted by a crash."""
    text = journal.read_text(encoding="utf-8")
    journal.write_text(text[: len(text) - 60], encoding="utf-8")


def test_a_journal_line_cut_short_is_ignored_with_a_warning(
    first_run: FirstRun, batch_log: list[logging.LogRecord]
) -> None:
    journal = first_run.out / "results.jsonl"
    cut_last_line_short(journal)

    again = run_batch(first_run.jobs, first_run.out, parallel=False, cache=first_run.cache)

    warnings = [r.getMessage() for r in batch_log if r.levelno == logging.WARNING]
    assert any(f"{journal}: line 4 is not JSON" in message for message in warnings), warnings
    assert again.resumed == 3
    assert again.bars_replayed == TWO_DAYS_BARS
    assert again.failed == 0
    assert csv_rows(again.paths["csv"]) == first_run.csv


def test_after_recovering_a_cut_short_line_the_journal_resumes_everything(
    first_run: FirstRun,
) -> None:
    journal = first_run.out / "results.jsonl"
    cut_last_line_short(journal)
    run_batch(first_run.jobs, first_run.out, parallel=False, cache=first_run.cache)
    lines = journal_lines(first_run.out)

    third = run_batch(first_run.jobs, first_run.out, parallel=False, cache=first_run.cache)

    # The recovery run's row must start on a line of its own, not after the cut fragment.
    recorded = {json.loads(line)["job_id"] for line in lines if is_json(line)}
    glued = lines[-1].find('{"bars"', 1)
    assert recorded == {job.job_id for job in first_run.jobs}, (
        f"last journal line: ...{lines[-1][max(0, glued - 60) : glued + 40]}..."
    )
    assert third.resumed == len(first_run.jobs)
    assert third.bars_replayed == 0


def test_no_resume_runs_every_job_again(first_run: FirstRun) -> None:
    again = run_batch(
        first_run.jobs, first_run.out, parallel=False, cache=first_run.cache, resume=False
    )

    assert again.resumed == 0
    assert again.bars_replayed == len(first_run.jobs) * TWO_DAYS_BARS
    assert len(journal_lines(first_run.out)) == len(first_run.jobs)
    assert csv_rows(again.paths["csv"]) == first_run.csv


# --------------------------------------------------------------------------------------------
# the real command line


def _default_sigint() -> None:
    """In the child before exec: SIGINT raises KeyboardInterrupt even if we inherited SIG_IGN."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_barbus(*args: str | Path, stdout: Any = subprocess.PIPE) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "barbus.daemon.cli", *map(str, args)],
        cwd=REPO_ROOT,
        env=checkout_env(),
        stdout=stdout,
        stderr=subprocess.PIPE if stdout == subprocess.PIPE else stdout,
        text=True,
        preexec_fn=_default_sigint,  # noqa: PLW1509 (it only calls signal.signal)
    )


def finish(process: subprocess.Popen[str], timeout: float = 120.0) -> Run:
    stdout, stderr = process.communicate(timeout=timeout)
    return Run(process.args, process.returncode, stdout, stderr)


def barbus(*args: str | Path) -> Run:
    return finish(start_barbus(*args))


def assert_succeeded(run: Run) -> None:
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stdout + run.stderr


# --------------------------------------------------------------------------------------------
# 6. interrupts: Ctrl-C and SIGTERM keep what is finished and leave no worker behind

INTERRUPT_JOBS = 12


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of a process, or None if there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def descendants(root: int) -> set[tuple[int, int]]:
    """(pid, start time) of every live process below ``root``."""
    parents: dict[int, list[tuple[int, int]]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))) is not None:
            parents.setdefault(stat[1], []).append((int(entry.name), stat[2]))
    found: set[tuple[int, int]] = set()
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child[0])
    return found


def is_running(pid: int, started: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[2] == started and stat[0] not in ("Z", "X")


def finished_lines(journal: Path) -> int:
    try:
        text = journal.read_text(encoding="utf-8")
    except FileNotFoundError:
        return 0
    return text.count("\n")


def seed_sweep_args(
    jobs: int, data: Path, out: Path, cache_dir: Path, *backend: str | Path
) -> tuple[str | Path, ...]:
    """``barbus batch`` of the random strategy over seeds 1..``jobs``, no plots."""
    seeds = ",".join(str(seed) for seed in range(1, jobs + 1))
    return (
        *("batch", "--strategy", "random", "--data", data, "--grid", f"seed={seeds}", *backend),
        *("--plots", "0", "--out", out, "--cache-dir", cache_dir),
    )


def interrupt_after_first_row(
    args: Sequence[str | Path],
    journal: Path,
    log: Path,
    sig: signal.Signals,
    *,
    first_row_s: float,
    exit_s: float,
    while_running: Callable[[subprocess.Popen[str]], None] = lambda process: None,
) -> tuple[int, str]:
    """Start ``barbus ARGS``, send ``sig`` once ``journal`` holds a finished row (after
    ``while_running`` saw the live process); its exit code and its output (stdout and stderr)."""
    with log.open("w+", encoding="utf-8") as log_file:
        process = start_barbus(*args, stdout=log_file)
        try:
            wait_until(
                lambda: finished_lines(journal) >= 1 or process.poll() is not None,
                first_row_s,
                "the first finished row",
                interval=0.02,
            )
            assert process.poll() is None, "the batch ended before it could be interrupted"
            while_running(process)

            process.send_signal(sig)
            code = process.wait(timeout=exit_s)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        log_file.seek(0)
        return code, log_file.read()


@pytest.mark.parametrize(
    ("sig", "rerun"),
    [(signal.SIGINT, True), (signal.SIGTERM, False)],
    ids=["SIGINT-then-rerun", "SIGTERM"],
)
def test_an_interrupted_batch_keeps_finished_rows_and_leaves_no_workers(
    sig: signal.Signals, rerun: bool, btc_2025_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    journal = out / "results.jsonl"
    # One pass per job: a shared pass finishes its jobs together, and the test interrupts the
    # batch between finished jobs (the compiled kernel may finish every pass before the signal).
    args = seed_sweep_args(
        INTERRUPT_JOBS, btc_2025_path, out, tmp_path / "cache", "--workers", "2", "--no-shared-pass"
    )
    children: set[tuple[int, int]] = set()

    code, output = interrupt_after_first_row(
        args,
        journal,
        tmp_path / "first.log",
        sig,
        first_row_s=60.0,
        exit_s=15.0,
        while_running=lambda process: children.update(descendants(process.pid)),
    )

    assert code == 130, output
    assert "Traceback" not in output
    assert "interrupted" in output
    assert len(children) >= 3, children  # the forkserver and two workers at least
    wait_until(
        lambda: not any(is_running(pid, started) for pid, started in children),
        10.0,
        "the worker processes to go",
        interval=0.02,
    )
    done = finished_lines(journal)
    assert 1 <= done < INTERRUPT_JOBS
    assert len(csv_rows(out / "results.csv")) == done
    if not rerun:
        return

    again = barbus(*args)

    assert_succeeded(again)
    assert f"jobs          {INTERRUPT_JOBS} done (0 failed, {done} from an earlier run)" in (
        again.stdout
    )
    assert len(csv_rows(out / "results.csv")) == INTERRUPT_JOBS
    assert finished_lines(journal) == INTERRUPT_JOBS


# --------------------------------------------------------------------------------------------
# 7. `barbus batch`: command line and spec files


@dataclass(frozen=True)
class CliRuns:
    data: Path
    cli_out: Path
    spec_out: Path
    cli: Run
    spec: Run


@pytest.fixture(scope="module")
def cli_runs(btc_2023_path: Path, tmp_path_factory: pytest.TempPathFactory) -> CliRuns:
    """The same sweep from the command line and from a spec file with a relative data path."""
    root = tmp_path_factory.mktemp("cli")
    spec_dir = root / "spec"
    data = spec_dir / "data" / btc_2023_path.name
    data.parent.mkdir(parents=True)
    shutil.copyfile(btc_2023_path, data)
    spec = spec_dir / "sweep.toml"
    spec.write_text(
        f"""
        workers = 2

        [[run]]
        strategy = "sma_cross"
        data = ["data/{btc_2023_path.name}"]
        start = "2023-03-20"
        end = "2023-03-22"
        grid = {{ fast = [5, 10], slow = [20, 30] }}
        """,
        encoding="utf-8",
    )
    cli_out, spec_out = root / "cli-out", root / "spec-out"
    cli = start_barbus(
        "batch",
        "--strategy",
        "sma_cross",
        "--data",
        data,
        "--grid",
        "fast=5,10",
        "--grid",
        "slow=20,30",
        "--start",
        "2023-03-20",
        "--end",
        "2023-03-22",
        "--out",
        cli_out,
        "--workers",
        "2",
        "--plots",
        "2",
        "--cache-dir",
        root / "cache-cli",
    )
    from_spec = start_barbus(
        "batch", spec, "--out", spec_out, "--plots", "0", "--cache-dir", root / "cache-spec"
    )
    return CliRuns(data, cli_out, spec_out, finish(cli), finish(from_spec))


def test_cli_batch_prints_the_top_table_and_a_summary(cli_runs: CliRuns) -> None:
    run = cli_runs.cli
    assert_succeeded(run)
    lines = run.stdout.splitlines()
    header = lines[0].split()
    assert header[:5] == ["job", "symbol", "file", "period", "sharpe"]
    assert header[-1] == "params"
    ranked = [row["job_id"] for row in csv_rows(cli_runs.cli_out / "results.csv")]
    assert [line.split()[0] for line in lines[1:5]] == ranked
    for line in lines[1:5]:
        assert f"BTCUSDT {cli_runs.data.name} 2023-03-20..2023-03-22 " in line
    assert "fast=5 slow=20" in run.stdout
    assert "jobs          4 done (0 failed, 0 from an earlier run), 0 invalid" in run.stdout
    assert f"results       {cli_runs.cli_out / 'results.csv'}" in run.stdout


def test_cli_batch_writes_tables_journal_report_heatmap_and_plots(cli_runs: CliRuns) -> None:
    out = cli_runs.cli_out
    ranked = [row["job_id"] for row in csv_rows(out / "results.csv")]

    assert len(ranked) == 4
    assert len(pd.read_parquet(out / "results.parquet")) == 4
    assert len(journal_lines(out)) == 4
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "heatmap_sharpe.png" in page
    pngs = [out / "heatmap_sharpe.png", *(out / "plots" / f"{job}.png" for job in ranked[:2])]
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert png.relative_to(out).as_posix() in page
    assert sorted(p.name for p in (out / "plots").iterdir()) == sorted(
        f"{job}.png" for job in ranked[:2]
    )


def test_cli_batch_logs_progress_lines_when_stderr_is_not_a_terminal(cli_runs: CliRuns) -> None:
    assert "batch: 4/4 jobs" in cli_runs.cli.stderr


def test_a_spec_file_gives_the_same_results_as_the_command_line(cli_runs: CliRuns) -> None:
    assert_succeeded(cli_runs.spec)
    cli_csv = (cli_runs.cli_out / "results.csv").read_bytes()

    assert (cli_runs.spec_out / "results.csv").read_bytes() == cli_csv
    assert_frame_equal(
        pd.read_parquet(cli_runs.spec_out / "results.parquet"),
        pd.read_parquet(cli_runs.cli_out / "results.parquet"),
    )
    assert str(cli_runs.data.resolve()) in cli_csv.decode()
    assert not (cli_runs.spec_out / "index.html").exists()  # --plots 0


@dataclass(frozen=True)
class BadBatch:
    """A bad ``barbus batch``: a spec file's text (or None) plus command-line arguments."""

    spec: str | None
    args: tuple[str, ...]
    error: str


BAD_BATCHES = {
    "unknown top-level key": BadBatch(
        'worker = 2\n[[run]]\nstrategy = "sma_cross"\ndata = ["{data}"]\n',
        (),
        "unknown key 'worker'; did you mean 'workers'?",
    ),
    "unknown run key": BadBatch(
        '[[run]]\nstrategy = "sma_cross"\ndatta = ["{data}"]\n',
        (),
        "[[run]] #1: unknown key 'datta'; did you mean 'data'?",
    ),
    "missing strategy": BadBatch('[[run]]\ndata = ["{data}"]\n', (), "missing 'strategy'"),
    "grid value not a list": BadBatch(
        '[[run]]\nstrategy = "sma_cross"\ndata = ["{data}"]\ngrid = {{ fast = 5 }}\n',
        (),
        "[[run]] #1: every grid entry must be a non-empty list",
    ),
    "invalid TOML": BadBatch('[[run]\nstrategy = "sma_cross"\n', (), "not valid TOML"),
    "SPEC plus --strategy": BadBatch(
        '[[run]]\nstrategy = "sma_cross"\ndata = ["{data}"]\n',
        ("--strategy", "sma_cross"),
        "give either a SPEC file or --strategy",
    ),
    "bad --sort metric": BadBatch(
        None,
        ("--sort", "sharp"),
        "--sort 'sharp' is not a metric; choose from total_return_pct",
    ),
    "no jobs left after invalid combinations": BadBatch(
        None,
        ("--grid", "fast=30", "--grid", "slow=10,20"),
        "the batch has no jobs (empty grid, or every combination invalid)",
    ),
}


def bad_batch_args(case: BadBatch, data: Path, folder: Path) -> list[str | Path]:
    out = folder / "out"
    if case.spec is None:
        return ["batch", "--strategy", "sma_cross", "--data", data, *case.args, "--out", out]
    spec = folder / "spec.toml"
    folder.mkdir(parents=True, exist_ok=True)
    spec.write_text(case.spec.format(data=data), encoding="utf-8")
    return ["batch", spec, *case.args, "--out", out]


def assert_one_line_error(run: Run, error: str) -> None:
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    *before, last = run.stderr.strip().splitlines()
    assert last.startswith("barbus: error: ")
    assert error in last
    assert all(LOG_LINE.match(line) for line in before), before  # log records only
    assert run.stdout == ""


@pytest.fixture
def barbus_in_process(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """``barbus ARGS`` through :func:`daemon.cli.main` in this process."""
    return functools.partial(run_main, capsys)


@pytest.mark.parametrize("name", list(BAD_BATCHES))
def test_a_bad_batch_gives_a_one_line_error_and_exit_code_2(
    name: str,
    barbus_in_process: Callable[..., Run],
    btc_2023_path: Path,
    tmp_path: Path,
) -> None:
    case = BAD_BATCHES[name]

    run = barbus_in_process(*bad_batch_args(case, btc_2023_path, tmp_path))

    assert_one_line_error(run, case.error)
    assert not (tmp_path / "out").exists()


def test_the_real_process_exits_2_with_one_line_on_a_bad_spec(
    btc_2023_path: Path, tmp_path: Path
) -> None:
    case = BAD_BATCHES["unknown top-level key"]

    run = barbus(*bad_batch_args(case, btc_2023_path, tmp_path))

    assert_one_line_error(run, case.error)
