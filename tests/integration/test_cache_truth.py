"""The cache tells the truth through the real CLI: counters, an unusable folder, gap warnings.

Every figure expected here is counted by hand from what each process loads: a first load in a
process is a build (no entry yet) or a disk hit (an entry to map), every later load of the same
file in that process is a memory hit.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from barbus.replay.batch import expand_jobs, run_batch
from barbus.replay.cache import BarCache
from barbus.replay.periods import parse_period
from tests.integration import batch_workers
from tests.kit.probes import all_bars_processed
from tests.kit.processes import REPO_ROOT, Processes, barbus, checkout_env
from tests.kit.recorded import assert_parity_cli_identical
from tests.kit.scenario import write_config, write_slice
from tests.kit.waiting import wait_until
from tests.net import free_port

GAP_LINE = "replayed as is, no bars invented"


def cache_stats(cache_dir: Path) -> dict[str, int]:
    """``barbus cache stats`` as numbers: memory hits, disk hits, builds, rebuilds."""
    done = barbus("cache", "stats", "--cache-dir", cache_dir)
    assert done.returncode == 0, done.stderr
    found = {}
    for name, pattern in (
        ("memory", r"^memory hits\s+(\d+)$"),
        ("disk", r"^disk hits\s+(\d+)$"),
        ("builds", r"^builds\s+(\d+) "),
        ("rebuilds", r"\(\+ (\d+) rebuilds"),
    ):
        match = re.search(pattern, done.stdout, re.M)
        assert match, done.stdout
        found[name] = int(match.group(1))
    return found


def counts(memory: int, disk: int, builds: int, rebuilds: int = 0) -> dict[str, int]:
    return {"memory": memory, "disk": disk, "builds": builds, "rebuilds": rebuilds}


def warning_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " WARNING " in line]


# -- counters ----------------------------------------------------------------------------------


def test_a_replay_builds_then_the_next_replay_is_a_disk_hit(
    tmp_path: Path, btc_2025_path: Path
) -> None:
    cache = tmp_path / "cache"
    replay = ("replay", "--strategy", "sma_cross", "--data", btc_2025_path, "--cache-dir", cache)

    assert barbus(*replay).returncode == 0
    assert cache_stats(cache) == counts(memory=0, disk=0, builds=1)

    assert barbus(*replay).returncode == 0
    assert cache_stats(cache) == counts(memory=0, disk=1, builds=1)


def test_an_in_process_batch_counts_its_later_loads_as_memory_hits(
    tmp_path: Path, btc_2025_path: Path
) -> None:
    cache = tmp_path / "cache"
    done = barbus(
        "batch", "--strategy", "sma_cross", "--data", btc_2025_path, "--grid", "fast=5,10,20",
        "--period", "2025-06-01:2025-06-08", "--no-parallel", "--out", tmp_path / "out",
        "--cache-dir", cache,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    # The parent's check before the jobs builds it; the 3 jobs share one pass, which then
    # finds it in memory (one load per pass, not per job).
    assert cache_stats(cache) == counts(memory=1, disk=0, builds=1)


def test_a_12_job_batch_warns_of_the_gap_once_and_counts_every_workers_load(
    tmp_path: Path, btc_2023_path: Path
) -> None:
    cache = tmp_path / "cache"
    done = barbus(
        "batch", "--strategy", "sma_cross", "--data", btc_2023_path,
        "--grid", "fast=5,10,20", "--grid", "slow=30,50",
        "--period", "2023-03-16:2023-04-01", "--period", "2023-03-20:2023-04-10",
        "--workers", "2", "--out", tmp_path / "out", "--cache-dir", cache,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "jobs          12 done (0 failed" in done.stdout
    # Every period holds the 80-minute gap of 2023-03-24; the workers share this stderr.
    gap_lines = [line for line in done.stderr.splitlines() if GAP_LINE in line]
    assert len(gap_lines) == 1, done.stderr
    assert "1 gap(s), 80 missing minute(s)" in gap_lines[0]
    # Parent: one build. 12 jobs in 2 passes of 6 (one a period: two workers finish no sooner
    # with more), one per worker: each worker maps the entry once, a disk hit.
    assert cache_stats(cache) == counts(memory=0, disk=2, builds=1)


def test_a_replay_reports_the_gap_once(tmp_path: Path, btc_2023_path: Path) -> None:
    done = barbus(
        "replay", "--strategy", "sma_cross", "--data", btc_2023_path,
        "--cache-dir", tmp_path / "cache",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert sum(GAP_LINE in line for line in done.stderr.splitlines()) == 1, done.stderr
    assert "1 gap(s), 80 missing minute(s)" in done.stdout  # the report still says so


def test_a_worker_killed_by_sigkill_loses_none_of_its_finished_jobs_counts(
    tmp_path: Path, btc_2023_path: Path
) -> None:
    cache = BarCache(tmp_path / "cache")
    jobs, _ = expand_jobs(
        "sma_cross",
        [btc_2023_path],
        grid={"fast": [5, 10, 15], "slow": [20, 40]},
        periods=[parse_period("2023-03-20", "2023-03-21")],
    )
    # The fourth job goes to a worker that has finished at least one job already; it dies on
    # receiving it (SIGKILL: no exit hook runs) and the job is retried on a fresh worker.
    batch_workers.order_death(cache.root, jobs[3], always=False)

    # One pass per job, so the dying worker has finished jobs (with sharing, 2 passes of 3).
    outcome = run_batch(
        jobs, tmp_path / "out", workers=2, cache=cache,
        worker_target=batch_workers.dies_once_worker, shared_pass=False,
    )  # fmt: skip

    assert outcome.failed == 0
    assert batch_workers.attempts(cache.root, jobs[3]) == 2
    stats = cache.shared_stats()
    # The parent built the entry; each of the 6 finished jobs loaded it once in some worker.
    assert (stats.builds, stats.rebuilds) == (1, 0)
    assert stats.memory_hits + stats.disk_hits == len(jobs)
    assert stats.disk_hits == 3  # 2 first workers + the replacement: one first load each


def test_sim_exchange_loads_are_counted_and_parity_loads_nothing_from_the_cache(
    tmp_path: Path, processes: Processes, btc_2025_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    series = write_slice(btc_2025_path, 0, 900, tmp_path / "data")
    first, _ = processes.sim(Path(series.source), "--cache-dir", str(cache), exit_at_end=False)
    # The port is printed once the data is loaded: the counters are already on disk.
    assert cache_stats(cache) == counts(memory=0, disk=0, builds=1)
    first.stop()

    # A second exchange maps what the first one built, and a daemon trades against it.
    _, sim_port = processes.sim(Path(series.source), "--cache-dir", str(cache), exit_at_end=False)
    assert cache_stats(cache) == counts(memory=0, disk=1, builds=1)
    http_port, state = free_port(), tmp_path / "state.sqlite"
    config = write_config(
        tmp_path / "barbus.toml", sim_port=sim_port, http_port=http_port, state=state
    )
    daemon = processes.daemon(config)
    wait_until(all_bars_processed(http_port, series), 120, "every bar", watch=daemon)
    daemon.stop_cleanly()

    # Parity replays the bars recorded in the state file, not a data file: no cache load.
    monkeypatch.setenv("BARBUS_CACHE_DIR", str(cache))
    assert_parity_cli_identical(state)
    assert cache_stats(cache) == counts(memory=0, disk=1, builds=1)


# -- a cache folder that cannot be written -----------------------------------------------------


def _read_only_mount_works() -> str | None:
    """None if ``unshare --mount`` can make a read-only bind mount here, else why not."""
    if shutil.which("unshare") is None:
        return "no unshare(1) on this machine"
    probe = Path(os.environ.get("TMPDIR", "/tmp")) / f"barbus-ro-probe-{os.getpid()}"
    probe.mkdir(exist_ok=True)
    try:
        done = subprocess.run(
            ["unshare", "--mount", "sh", "-c", _RO + 'touch "$0/x"', str(probe)],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        shutil.rmtree(probe, ignore_errors=True)
    if "Read-only file system" in done.stderr:
        return None
    return f"no read-only bind mount here (needs root and mount namespaces): {done.stderr.strip()}"


# In a private mount namespace, $0 (the cache folder) becomes a read-only bind of itself.
_RO = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0" && '


def barbus_read_only(cache: Path, *args: object) -> subprocess.CompletedProcess[str]:
    """``barbus ARGS`` with ``cache`` mounted read-only for that process only."""
    env = checkout_env()
    return subprocess.run(
        ["unshare", "--mount", "sh", "-c", _RO + 'exec "$@"', str(cache), sys.executable,
         "-m", "barbus.daemon.cli", *map(str, args)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture
def unwritable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(how, cache folder): a path under a regular file, or a folder on a read-only mount."""
    how: str = request.param
    if how == "under_a_file":
        (tmp_path / "file").write_text("not a folder\n")
        yield how, tmp_path / "file" / "cache"
        return
    reason = _read_only_mount_works()
    if reason is not None:
        pytest.skip(reason)
    cache = tmp_path / "ro-cache"
    cache.mkdir()
    yield how, cache


def run_unwritable(how: str, cache: Path, *args: object) -> subprocess.CompletedProcess[str]:
    if how == "under_a_file":
        return barbus(*args, "--cache-dir", cache)
    return barbus_read_only(cache, *args, "--cache-dir", cache)


def assert_one_cache_warning(done: subprocess.CompletedProcess[str], cache: Path) -> None:
    assert done.returncode == 0, done.stderr
    warnings = warning_lines(done.stderr)
    assert len(warnings) == 1, done.stderr
    assert f"cache folder {cache} cannot be written" in warnings[0]
    assert "running without the cache" in warnings[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("unwritable", ["under_a_file", "read_only_mount"], indirect=True)
def test_replay_with_an_unwritable_cache_prints_its_report_with_one_warning(
    unwritable: tuple[str, Path], btc_2025_path: Path
) -> None:
    how, cache = unwritable
    done = run_unwritable(how, cache, "replay", "--strategy", "sma_cross", "--data", btc_2025_path)

    assert_one_cache_warning(done, cache)
    uncached = barbus("replay", "--strategy", "sma_cross", "--data", btc_2025_path, "--no-cache")
    assert without_speed(done.stdout) == without_speed(uncached.stdout)
    assert "130,708 bars, no gaps" in done.stdout
    assert not cache.is_dir() or list(cache.iterdir()) == []


def without_speed(report: str) -> list[str]:
    return [line for line in report.splitlines() if not line.startswith("speed")]


@pytest.mark.parametrize("unwritable", ["under_a_file", "read_only_mount"], indirect=True)
def test_batch_with_an_unwritable_cache_runs_every_job_with_one_warning(
    unwritable: tuple[str, Path], tmp_path: Path, btc_2025_path: Path
) -> None:
    how, cache = unwritable
    done = run_unwritable(
        how, cache, "batch", "--strategy", "sma_cross", "--data", btc_2025_path,
        "--grid", "fast=5,10,20", "--period", "2025-06-01:2025-06-08", "--workers", "2",
        "--out", tmp_path / "out",
    )  # fmt: skip

    assert_one_cache_warning(done, cache)
    assert "jobs          3 done (0 failed" in done.stdout
    assert (tmp_path / "out" / "results.csv").is_file()


def test_a_read_only_cache_that_holds_the_entry_is_mapped_not_parsed(
    tmp_path: Path, btc_2025_path: Path
) -> None:
    reason = _read_only_mount_works()
    if reason is not None:
        pytest.skip(reason)
    cache = tmp_path / "ro-cache"
    assert barbus("cache", "ingest", btc_2025_path, "--cache-dir", cache).returncode == 0
    before = sorted((p.name, p.stat().st_mtime_ns) for p in cache.rglob("*"))

    done = barbus_read_only(
        cache, "replay", "--strategy", "sma_cross", "--data", btc_2025_path, "--cache-dir", cache
    )

    assert done.returncode == 0, done.stderr
    warnings = warning_lines(done.stderr)
    assert len(warnings) == 1, done.stderr
    assert f"cache folder {cache} cannot be written" in warnings[0]
    assert "cache counters are not recorded" in warnings[0]
    uncached = barbus("replay", "--strategy", "sma_cross", "--data", btc_2025_path, "--no-cache")
    assert without_speed(done.stdout) == without_speed(uncached.stdout)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in cache.rglob("*")) == before


def test_sim_exchange_with_an_unwritable_cache_serves_with_one_warning(
    tmp_path: Path, processes: Processes, btc_2025_path: Path
) -> None:
    (tmp_path / "file").write_text("not a folder\n")
    cache = tmp_path / "file" / "cache"
    series = write_slice(btc_2025_path, 0, 600, tmp_path / "data")

    sim, port = processes.sim(Path(series.source), "--cache-dir", str(cache), exit_at_end=False)

    assert port > 0
    assert sim.running()
    warnings = warning_lines(sim.log())
    assert len(warnings) == 1, sim.log()
    assert f"cache folder {cache} cannot be written" in warnings[0]


def test_cache_ingest_into_an_unwritable_folder_is_one_error_line(
    tmp_path: Path, btc_2025_path: Path
) -> None:
    (tmp_path / "file").write_text("not a folder\n")
    cache = tmp_path / "file" / "cache"

    done = barbus("cache", "ingest", btc_2025_path, "--cache-dir", cache)

    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"barbus: error: cache folder {cache} cannot be written (Not a directory: {cache})"
    ]
