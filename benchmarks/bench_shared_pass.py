"""Strategy-bars per second of a 100-combination sma_cross grid: shared passes against one pass
per job.

Usage: ``python -m benchmarks.bench_shared_pass [--rows 1000000] [--workers 2] [--repeat 3]``.
The grid is fast 5..14 x slow 20..29 over the whole synthetic dataset (one data file, one
period), fees 0; the figure is jobs x bars / wall seconds of ``run_batch`` (the parent's data
preparation included, the cache already built). A tree without shared passes (``PYTHONPATH`` at
an older checkout) runs its one mode, reported as ``per-job``. Medians of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import inspect
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from barbus.daemon.core.broker import ExecutionConfig
from barbus.replay.batch import expand_jobs, run_batch
from barbus.replay.cache import BarCache
from benchmarks.common import write_synthetic_csv

GRID: dict[str, list[int | float | str | bool]] = {
    "fast": list(range(5, 15)),
    "slow": list(range(20, 30)),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "barbus-bench"
    )
    args = parser.parse_args()
    csv = write_synthetic_csv(args.workdir / f"SYNTHUSDT_1m_{args.rows}.csv", args.rows)
    cache = BarCache(args.workdir / "cache")
    bars = len(cache.load(csv))
    execution = ExecutionConfig(fee_bps=0.0, slippage_bps=0.0)
    jobs, _ = expand_jobs("sma_cross", [csv], grid=GRID, execution=execution)
    can_share = "shared_pass" in inspect.signature(run_batch).parameters
    modes = {"shared": True, "per-job": False} if can_share else {"per-job": False}
    print(f"{len(jobs)} jobs x {bars:,} bars, {args.workers} workers, {args.repeat} runs each")
    figures: dict[str, float] = {}
    for mode, shared in modes.items():
        rates = []
        for run in range(args.repeat):
            out = args.workdir / f"shared-pass-{mode}"
            shutil.rmtree(out, ignore_errors=True)
            options: dict[str, Any] = {"shared_pass": shared} if can_share else {}
            started = time.perf_counter()
            outcome = run_batch(
                jobs, out, workers=args.workers, cache=cache, resume=False, **options
            )
            seconds = time.perf_counter() - started
            assert outcome.failed == 0, outcome.rows[:1]
            rates.append(len(jobs) * bars / seconds)
            print(f"{mode:>8} run {run + 1}: {seconds:7.2f} s  {rates[-1]:>12,.0f} strategy-bars/s")
        figures[mode] = statistics.median(rates)
    for mode, rate in figures.items():
        print(f"{mode:>8} median: {rate:>12,.0f} strategy-bars/s")
    if len(figures) == 2:
        print(f"shared / per-job: {figures['shared'] / figures['per-job']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
