"""``barbus batch --backend ray``: the same rows as the local backend, on a real local Ray cluster.

One Ray instance (2 CPUs, no dashboard) serves every test of this module; starting one costs
seconds, so it is a single fixture, and its teardown makes sure no Ray process it started is left
behind. The module is skipped when Ray is not installed (``pip install -e '.[dev,ray]'``).

Jobs are small (two days of the bundled 2023 file) except where a job must still be running when
the test acts on it (a whole bundled file, a few tenths of a second a job).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from barbus.daemon.core.errors import ConfigError
from barbus.replay.batch import BatchOutcome, Job, JobOutcome, expand_jobs, run_batch, run_job
from barbus.replay.batch.groups import group_jobs
from barbus.replay.cache import BarCache
from tests.integration.batch_workers import attempts, faults_dir, order_death
from tests.integration.test_batch import (
    TWO_DAYS_BARS,
    csv_rows,
    descendants,
    empty_period_job,
    finished_lines,
    flat_jobs,
    interrupt_after_first_row,
    is_running,
    journal_lines,
    row_of,
    seed_sweep_args,
    sma_jobs,
)
from tests.kit.in_process import run_main
from tests.kit.waiting import wait_until

# Before Ray is imported, in this process and in every process it starts: no usage reports (no
# network here) and no token authentication for a throwaway local cluster.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

ray = pytest.importorskip("ray")

from barbus.replay.batch.ray import (  # noqa: E402
    INSTALL_HINT,
    _check_reachable,
    require_ray,
    run_on_ray,
)

TASK_TITLE = b"ray::_run_on_node"  # a Ray worker's process title while it runs a batch job
INTERRUPT_JOBS = 8


# --------------------------------------------------------------------------------------------
# the cluster


def _ray_processes() -> set[tuple[int, int]]:
    """(pid, start time) of the Ray processes below this one (GCS, raylet, agents, workers)."""
    package = str(Path(ray.__file__).parent).encode()
    found = set()
    for pid, started in descendants(os.getpid()):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        head = command.split(b"\0")[:3]  # raylet, gcs_server, or python running a Ray script
        if command.startswith(b"ray::") or any(arg.startswith(package) for arg in head):
            found.add((pid, started))
    return found


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A local Ray instance for this module; yields its address (HOST:PORT)."""
    previous = signal.getsignal(signal.SIGTERM)
    ray.init(num_cpus=2, include_dashboard=False)
    signal.signal(signal.SIGTERM, previous)  # ray.init's handler would exit pytest on SIGTERM
    address = str(ray.get_runtime_context().gcs_address)
    try:
        yield address
    finally:
        started = _ray_processes()
        ray.shutdown()
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and any(is_running(*p) for p in started):
            time.sleep(0.1)
        for pid, since in started:  # agents that outlive their raylet: ours, so ours to end
            if is_running(pid, since):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def cache(tmp_path: Path) -> BarCache:
    return BarCache(tmp_path / "cache")


def whole_file_jobs(data: Path, seeds: int) -> list[Job]:
    """``random`` jobs over the whole of ``data``: long enough to be caught while running."""
    jobs, _ = expand_jobs("random", [data], grid={"seed": list(range(1, seeds + 1))})
    return jobs


def task_processes() -> list[int]:
    """Ray worker processes of this test session that are running a batch job now."""
    running = []
    for pid, _ in descendants(os.getpid()):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(TASK_TITLE):
                running.append(pid)
        except OSError:
            continue
    return running


def retried(records: list[logging.LogRecord]) -> list[str]:
    """Job ids of the "retrying once" warnings, in order."""
    return [
        record.getMessage().split()[1]
        for record in records
        if record.levelno == logging.WARNING and "retrying once" in record.getMessage()
    ]


def faulty_job(job: Job, cache: BarCache | None) -> JobOutcome:
    """A Ray task body for the fault tests: :func:`run_job`, unless the test marked the job.

    Marks are files in the faults folder beside the cache (see ``batch_workers``): under
    ``die-always/`` the worker kills itself with SIGKILL, as the OOM killer would; under
    ``raise-always/`` the task raises an exception that is not a BarbusError (a bug). Every call
    leaves a file in ``attempts/``.
    """
    assert cache is not None
    folder = faults_dir(cache.root)
    marks = folder / "attempts"
    marks.mkdir(parents=True, exist_ok=True)
    (marks / f"{job.job_id}.{os.getpid()}.{time.monotonic_ns()}").touch()
    if (folder / "die-always" / job.job_id).exists():
        os.kill(os.getpid(), signal.SIGKILL)
    if (folder / "raise-always" / job.job_id).exists():
        raise RuntimeError(f"a bug on job {job.job_id}")
    return run_job(job, cache)


# --------------------------------------------------------------------------------------------
# 1. the same results as the local backend


@dataclass(frozen=True)
class Both:
    jobs: list[Job]
    local: BatchOutcome
    ray: BatchOutcome
    progress: list[tuple[int, int]]
    stats_before: dict[str, int]
    stats_after: dict[str, int]


@pytest.fixture(scope="module")
def both(ray_cluster: str, btc_2023_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Both:
    """Six jobs (four sma_cross, one flat, one failing) on the local backend, then on Ray."""
    root = tmp_path_factory.mktemp("both")
    cache = BarCache(root / "cache")
    jobs = [
        *sma_jobs(btc_2023_path),
        *flat_jobs(btc_2023_path)[:1],
        empty_period_job(btc_2023_path),
    ]
    calls: list[tuple[int, int]] = []

    def progress(done: int, total: int, bars: int, elapsed: float) -> None:
        calls.append((done, total))

    local = run_batch(jobs, root / "local", workers=2, cache=cache)
    before = cache.shared_stats().as_dict()
    on_ray = run_batch(jobs, root / "ray", cache=cache, backend="ray", progress=progress)
    return Both(jobs, local, on_ray, calls, before, cache.shared_stats().as_dict())


def test_results_csv_on_ray_is_byte_identical_to_the_local_backend(both: Both) -> None:
    local_csv = both.local.paths["csv"].read_bytes()

    assert both.ray.paths["csv"].read_bytes() == local_csv
    assert local_csv.count(b"\n") == 1 + 6
    assert_frame_equal(
        pd.read_parquet(both.ray.paths["parquet"]), pd.read_parquet(both.local.paths["parquet"])
    )
    assert both.ray.rows == both.local.rows
    assert both.ray.failed == 1
    assert "no bars in the requested period" in both.ray.rows[-1]["error"]


def test_ray_tasks_get_job_records_and_map_the_drivers_cache_entry(both: Both) -> None:
    builds = both.stats_after["builds"] - both.stats_before["builds"]
    rebuilds = both.stats_after["rebuilds"] - both.stats_before["rebuilds"]
    opened = sum(both.stats_after[k] - both.stats_before[k] for k in ("hits", "misses"))

    # Job records, not bars: under 2 kB a job (6 + 1 retry) on either backend (each sends the
    # groups of its own capacity, so their byte counts differ by the groups' framing).
    for outcome in (both.ray, both.local):
        assert 0 < outcome.bytes_sent_to_workers / (len(both.jobs) + 1) < 2_000
    assert (builds, rebuilds) == (0, 0)  # the driver built it; the local run built it already
    # The driver's check before submitting, then each task maps or reuses it: a task per group
    # (the cluster's 2 CPUs make a window of 4: the five jobs of one period in three passes,
    # the empty period's job in one) and the failed job's retry.
    assert [len(g) for g in group_jobs(both.jobs, 4)] == [2, 2, 1, 1]
    assert opened == 1 + 4 + 1


def test_progress_and_the_journal_follow_each_finished_ray_task(both: Both) -> None:
    total = len(both.jobs)

    assert both.progress == [(done, total) for done in range(1, total + 1)]
    assert both.ray.bars_replayed == both.local.bars_replayed == 5 * TWO_DAYS_BARS
    journal = journal_lines(both.ray.paths["journal"].parent)
    assert sorted(json.loads(line)["job_id"] for line in journal) == sorted(
        job.job_id for job in both.jobs
    )


# --------------------------------------------------------------------------------------------
# 2. faults


def test_a_ray_worker_killed_mid_job_is_retried_and_gives_the_clean_result(
    ray_cluster: str, btc_2023_path: Path, cache: BarCache, tmp_path: Path
) -> None:
    jobs = whole_file_jobs(btc_2023_path, 4)
    clean = run_batch(jobs, tmp_path / "clean", workers=2, cache=cache)
    result: dict[str, BatchOutcome] = {}
    thread = threading.Thread(
        target=lambda: result.update(
            ray=run_batch(jobs, tmp_path / "ray", cache=cache, backend="ray")
        )
    )
    killed: list[int] = []

    def kill_a_running_task() -> bool:
        for pid in task_processes():
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return True
        return not thread.is_alive()

    thread.start()
    try:
        wait_until(kill_a_running_task, 60.0, "a Ray worker running a job", interval=0.02)
    finally:
        thread.join(120.0)

    assert killed, "the batch ended before a worker could be killed"
    outcome = result["ray"]
    assert outcome.failed == 0
    assert outcome.rows == clean.rows
    assert outcome.paths["csv"].read_bytes() == clean.paths["csv"].read_bytes()
    assert len(journal_lines(tmp_path / "ray")) == len(jobs)  # one line per job, none for the kill


def test_a_job_whose_ray_worker_always_dies_is_retried_once_by_ray_then_recorded_failed(
    ray_cluster: str, btc_2023_path: Path, cache: BarCache
) -> None:
    jobs = sma_jobs(btc_2023_path)
    victim = jobs[2]
    order_death(cache.root, victim, always=True)
    cache.load(btc_2023_path)  # the driver's part: build and verify before any task
    outcomes: list[JobOutcome] = []

    run_on_ray(jobs, cache.root, outcomes.append, job_function=faulty_job)

    rows = {outcome.row["job_id"]: outcome.row for outcome in outcomes}
    assert len(outcomes) == len(rows) == 4  # each job recorded once
    assert rows[victim.job_id]["status"] == "failed"
    assert rows[victim.job_id]["error"].startswith("worker died (WorkerCrashedError: ")
    assert attempts(cache.root, victim) == 2  # max_retries=1: Ray's one retry, then no more
    assert [attempts(cache.root, job) for job in jobs if job != victim] == [1, 1, 1]
    assert [rows[job.job_id]["status"] for job in jobs if job != victim] == ["ok"] * 3


def test_a_ray_task_that_raises_is_submitted_once_more_then_recorded_failed(
    ray_cluster: str, btc_2023_path: Path, cache: BarCache, batch_log: list[logging.LogRecord]
) -> None:
    jobs = sma_jobs(btc_2023_path)
    victim = jobs[0]
    marker = faults_dir(cache.root) / "raise-always" / victim.job_id
    marker.parent.mkdir(parents=True)
    marker.touch()
    cache.load(btc_2023_path)
    outcomes: list[JobOutcome] = []

    run_on_ray(jobs, cache.root, outcomes.append, job_function=faulty_job)

    rows = {outcome.row["job_id"]: outcome.row for outcome in outcomes}
    assert rows[victim.job_id]["error"] == f"RuntimeError: a bug on job {victim.job_id}"
    assert attempts(cache.root, victim) == 2
    assert retried(batch_log) == [victim.job_id]
    assert sum(row["status"] == "ok" for row in rows.values()) == 3


def test_jobs_on_a_missing_or_corrupt_file_are_recorded_failed_and_the_others_run(
    ray_cluster: str,
    btc_2023_path: Path,
    cache: BarCache,
    tmp_path: Path,
    batch_log: list[logging.LogRecord],
) -> None:
    corrupt = tmp_path / "BTCUSDT_1m_corrupt.csv.gz"
    corrupt.write_bytes(btc_2023_path.read_bytes()[:100_000])  # a download cut short
    good = sma_jobs(btc_2023_path)
    (cut,), _ = expand_jobs("sma_cross", [corrupt])
    (missing,), _ = expand_jobs("sma_cross", [tmp_path / "BTCUSDT_1m_gone.csv.gz"])

    outcome = run_batch([*good, cut, missing], tmp_path / "out", cache=cache, backend="ray")

    assert row_of(outcome, cut)["status"] == "failed"
    assert row_of(outcome, cut)["error"].startswith("DataError: ")
    assert "corrupt gzip data" in row_of(outcome, cut)["error"]
    assert row_of(outcome, missing)["status"] == "failed"
    assert row_of(outcome, missing)["error"].startswith("DataError: ")
    assert sorted(retried(batch_log)) == sorted([cut.job_id, missing.job_id])  # once each
    assert [row_of(outcome, job)["status"] for job in good] == ["ok"] * 4
    assert [row["job_id"] for row in outcome.rows[-2:]] == sorted([cut.job_id, missing.job_id])
    assert len(journal_lines(tmp_path / "out")) == 6


# --------------------------------------------------------------------------------------------
# 3. resume


def test_a_rerun_on_ray_runs_only_the_jobs_missing_from_the_journal(
    ray_cluster: str, btc_2023_path: Path, cache: BarCache, tmp_path: Path
) -> None:
    jobs = sma_jobs(btc_2023_path)
    out = tmp_path / "out"
    first = run_batch(jobs, out, cache=cache, backend="ray")
    fresh_csv = first.paths["csv"].read_bytes()
    lines = journal_lines(out)
    (out / "results.jsonl").write_text(lines[1] + "\n" + lines[3] + "\n", encoding="utf-8")

    again = run_batch(jobs, out, cache=cache, backend="ray")
    third = run_batch(jobs, out, cache=cache, backend="ray")

    assert (again.resumed, again.bars_replayed) == (2, 2 * TWO_DAYS_BARS)
    assert again.paths["csv"].read_bytes() == fresh_csv
    assert (third.resumed, third.bars_replayed, third.bytes_sent_to_workers) == (4, 0, 0)
    assert third.paths["csv"].read_bytes() == fresh_csv
    assert len(journal_lines(out)) == 4


# --------------------------------------------------------------------------------------------
# 4. without Ray, and settings that do not go together


def test_without_ray_the_ray_backend_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    btc_2023_path: Path,
    tmp_path: Path,
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError

    with pytest.raises(ConfigError, match="pip install 'barbus\\[ray\\]'"):
        require_ray()
    with pytest.raises(ConfigError, match="pip install 'barbus\\[ray\\]'"):
        run_batch(sma_jobs(btc_2023_path), tmp_path / "lib", backend="ray")
    run = run_main(
        capsys,
        "batch",
        "--strategy",
        "sma_cross",
        "--data",
        btc_2023_path,
        "--backend",
        "ray",
        "--out",
        tmp_path / "cli",
    )

    assert INSTALL_HINT == "pip install 'barbus[ray]'"
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1] == (
        f"barbus: error: --backend ray needs Ray, an optional extra: {INSTALL_HINT}"
    )
    assert not (tmp_path / "lib").exists()
    assert not (tmp_path / "cli").exists()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("--ray-address", "auto"), "--ray-address needs --backend ray"),
        (("--backend", "ray", "--no-parallel"), "cannot go with --backend ray"),
    ],
    ids=["address-without-ray", "no-parallel-on-ray"],
)
def test_backend_settings_that_do_not_go_together_are_one_line_errors(
    args: tuple[str, ...],
    error: str,
    ray_cluster: str,
    capsys: pytest.CaptureFixture[str],
    btc_2023_path: Path,
    tmp_path: Path,
) -> None:
    run = run_main(
        capsys,
        "batch",
        "--strategy",
        "sma_cross",
        "--data",
        btc_2023_path,
        *args,
        "--start",
        "2023-03-20",
        "--end",
        "2023-03-22",
        "--plots",
        "0",
        "--out",
        tmp_path / "out",
        "--cache-dir",
        tmp_path / "cache",
    )

    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("barbus: error: ")
    assert error in run.stderr
    assert "Traceback" not in run.stderr


def test_a_head_node_address_that_nothing_listens_on_fails_at_once(ray_cluster: str) -> None:
    port = ray_cluster.rpartition(":")[2]
    _check_reachable(f"127.0.0.1:{port}")  # the module's cluster: reachable, no error
    _check_reachable("auto")  # left to Ray

    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"cannot reach the Ray head node at 127\.0\.0\.1:1: "):
        _check_reachable("127.0.0.1:1")  # ray.init would retry this for minutes
    assert time.monotonic() - started < 5.0


# --------------------------------------------------------------------------------------------
# 5. `barbus batch --backend ray` as a real process: Ctrl-C / SIGTERM, then a rerun


@pytest.mark.parametrize(
    ("sig", "rerun"),
    [(signal.SIGINT, True), (signal.SIGTERM, False)],
    ids=["SIGINT-then-rerun", "SIGTERM"],
)
def test_an_interrupted_ray_batch_keeps_finished_rows_and_cancels_the_rest(
    sig: signal.Signals,
    rerun: bool,
    ray_cluster: str,
    capsys: pytest.CaptureFixture[str],
    btc_2023_path: Path,
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    journal = out / "results.jsonl"
    ray_flags = ("--backend", "ray", "--ray-address", ray_cluster)
    args = seed_sweep_args(INTERRUPT_JOBS, btc_2023_path, out, tmp_path / "cache", *ray_flags)

    code, output = interrupt_after_first_row(
        args, journal, tmp_path / "first.log", sig, first_row_s=90.0, exit_s=30.0
    )

    assert code == 130, output
    assert "Traceback" not in output
    assert "interrupted" in output
    wait_until(lambda: not task_processes(), 15.0, "the cancelled Ray tasks to stop", interval=0.02)
    done = finished_lines(journal)
    assert 1 <= done < INTERRUPT_JOBS
    assert len(csv_rows(out / "results.csv")) == done
    if not rerun:
        return

    # The rerun in this process, on the module's Ray connection (a second driver costs seconds).
    again = run_main(capsys, *args)

    assert again.returncode == 0, again.stderr
    assert f"jobs          {INTERRUPT_JOBS} done (0 failed, {done} from an earlier run)" in (
        again.stdout
    )
    assert finished_lines(journal) == INTERRUPT_JOBS
    rows = csv_rows(out / "results.csv")
    assert [row["status"] for row in rows] == ["ok"] * INTERRUPT_JOBS
