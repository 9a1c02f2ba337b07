"""A batch worker's own memory stays small: no parsing libraries, no finished passes, lean stats.

The mapped data are shared file pages; what a worker costs beyond them is its heap. Three things
had made that heap large, each checked here against the behaviour that fixed it.
"""

from __future__ import annotations

import gc
import json
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from barbus.daemon.core.engine import StrategyEngine
from barbus.daemon.core.synthetic import synthetic_series
from barbus.replay.bars_out import write_bars
from barbus.replay.batch.job import run_group_in_worker
from barbus.replay.batch.jobs import Job
from barbus.replay.cache import BarCache
from barbus.replay.stats import compute_stats
from tests.kit.processes import checkout_python


@pytest.fixture(scope="module")
def cached_csv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 20,000-bar CSV and a cache that already holds it (a worker's usual case)."""
    folder = tmp_path_factory.mktemp("worker-memory")
    csv = folder / "SYNTHUSDT_1m.csv"
    write_bars(csv, synthetic_series(20_000))
    BarCache(folder / "cache").load(csv)
    return csv, folder / "cache"


def group_of(csv: Path, count: int) -> list[Job]:
    return [
        Job("sma_cross", (("fast", 5 + i),), str(csv), "SYNTHUSDT", None, None)
        for i in range(count)
    ]


@pytest.mark.process
def test_a_worker_replaying_cached_data_never_loads_pandas_or_pyarrow(
    cached_csv: tuple[Path, Path],
) -> None:
    csv, cache = cached_csv
    code = textwrap.dedent(
        f"""
        import json, sys
        import barbus.replay.batch.local  # what a pool worker imports
        from barbus.replay.batch.job import run_group_in_worker
        from barbus.replay.batch.jobs import Job
        from barbus.replay.cache import BarCache
        jobs = [Job("sma_cross", (("fast", f),), {str(csv)!r}, "SYNTHUSDT", None, None)
                for f in (5, 6)]
        rows = [o.row["status"] for o in run_group_in_worker(jobs, BarCache({str(cache)!r}))]
        print(json.dumps([rows, sorted(m for m in ("pandas", "pyarrow") if m in sys.modules)]))
        """
    )
    done = checkout_python(code)
    assert done.returncode == 0, done.stderr
    rows, loaded = json.loads(done.stdout.splitlines()[-1])
    assert rows == ["ok", "ok"]
    assert loaded == []  # ~40 MB of a worker's heap when the spec module pulled in the loader


def test_a_workers_finished_group_leaves_no_engine_behind_even_with_the_collector_off(
    cached_csv: tuple[Path, Path],
) -> None:
    csv, cache = cached_csv

    def engines() -> int:
        return sum(isinstance(o, StrategyEngine) for o in gc.get_objects())

    gc.collect()
    before = engines()
    was_enabled = gc.isenabled()
    gc.disable()  # a worker's collector may not run between passes: the worker must not wait
    try:
        outcomes = run_group_in_worker(group_of(csv, 3), BarCache(cache))
        outcomes += run_group_in_worker(group_of(csv, 1), BarCache(cache))
        left = engines()
    finally:
        if was_enabled:
            gc.enable()
    assert [o.row["status"] for o in outcomes] == ["ok"] * 4
    # An engine and its account are a reference cycle: without the collection after each pass,
    # every engine of every finished pass (its equity curve, its trades) stayed here.
    assert left == before


def test_the_statistics_of_a_million_bars_need_about_three_temporary_arrays() -> None:
    bars = 1_000_000
    rng = np.random.default_rng(3)
    equity = 10_000.0 * np.cumprod(1.0 + rng.normal(0.0, 1e-4, bars + 1), dtype=np.float64)
    mark_ms = 1_700_000_000_000 + 60_000 * np.arange(bars + 1, dtype=np.int64)
    tracemalloc.start()
    try:
        compute_stats(equity, [], 100.0, 101.0, 0, mark_ms)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    array = 8 * bars
    # peaks, then the drawdown (in place), then the last peak and the time since it (in place);
    # the plain expressions held five arrays at once.
    assert peak < 3.5 * array, f"{peak / array:.1f} arrays of {bars:,} floats"
