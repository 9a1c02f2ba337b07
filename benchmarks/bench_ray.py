"""Ray vs local backend: the same 64-job batch on local worker processes and on a local Ray cluster.

Usage: ``python -m benchmarks.bench_ray [--jobs 64] [--bars-per-job 20000] [--workers 2]``
(needs the extra: ``pip install -e '.[ray]'``). Jobs are the ``random`` strategy with seeds
1..J over consecutive 20,000-bar periods of the 1,000,000-bar synthetic dataset of
``bench_batch`` (already in the cache: the driver only verifies it). Small jobs on purpose: what
differs between the backends is the cost around a job, not the replay.

Rows: ``in-process`` (one process, no dispatch at all: the replay time alone), ``local`` (a fresh
pool of worker processes per batch, as ``barbus batch`` does), ``ray, cold`` (the first batch on
a just-started cluster: Ray starts its worker processes) and ``ray, warm`` (the next batch, on
the worker processes Ray keeps). The cluster's own start (``ray.init``) is timed apart. Overhead
per job is the worker time a job costs beyond its replay: ``(seconds x workers - in-process
seconds) / jobs``. Every backend must write the same ``results.csv``, byte for byte.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from barbus.replay.batch import Job, run_batch
from barbus.replay.cache import BarCache
from benchmarks.bench_batch import jobs_for
from benchmarks.common import write_synthetic_csv


def timed(
    jobs: list[Job],
    out: Path,
    cache: BarCache,
    *,
    parallel: bool = True,
    workers: int | None = None,
    backend: str = "local",
) -> tuple[float, bytes, int]:
    """Seconds, results.csv and bars replayed of one fresh batch."""
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    outcome = run_batch(
        jobs, out, cache=cache, resume=False, parallel=parallel, workers=workers, backend=backend
    )
    seconds = time.perf_counter() - started
    assert outcome.failed == 0, [row["error"] for row in outcome.rows if row["error"]][:3]
    return seconds, outcome.paths["csv"].read_bytes(), outcome.bars_replayed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=64)
    parser.add_argument("--bars-per-job", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2, help="local workers = Ray CPUs")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "barbus-bench"
    )
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # before Ray is imported
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    try:
        import ray
    except ImportError:
        print("bench_ray needs Ray: pip install -e '.[ray]'", file=sys.stderr)
        return 2

    csv = write_synthetic_csv(args.workdir / f"SYNTHUSDT_1m_{args.rows}.csv", args.rows)
    cache = BarCache(args.workdir / "cache")
    series = cache.load(csv)
    jobs = jobs_for(csv, args.jobs, args.bars_per_job, int(series.open_time_ms[0]), len(series))
    print(
        f"{len(jobs)} jobs x {args.bars_per_job:,} bars of a {len(series):,}-bar dataset, "
        f"{args.workers} workers / Ray CPUs, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    out = args.workdir / "ray-vs-local"
    results: list[tuple[str, float, int]] = []
    inproc, reference, bars = timed(jobs, out / "inproc", cache, parallel=False)
    results.append(("in-process", inproc, 1))
    local, text, _ = timed(jobs, out / "local", cache, workers=args.workers)
    assert text == reference, "local results differ from in-process"
    results.append(("local", local, args.workers))

    started = time.perf_counter()
    ray.init(num_cpus=args.workers, include_dashboard=False)
    ray_init = time.perf_counter() - started
    try:
        for name in ("ray, cold", "ray, warm"):
            seconds, text, _ = timed(jobs, out / name.replace(", ", "-"), cache, backend="ray")
            assert text == reference, f"{name} results differ from in-process"
            results.append((name, seconds, args.workers))
    finally:
        ray.shutdown()

    print(
        f"{'backend':<11} {'seconds':>8} {'bars/s':>12} {'ms per job':>10} {'overhead ms/job':>15}"
    )
    for name, seconds, workers in results:
        overhead = (seconds * workers - inproc) / len(jobs) * 1000
        print(
            f"{name:<11} {seconds:>8.2f} {bars / seconds:>12,.0f} "
            f"{seconds / len(jobs) * 1000:>10.1f} {overhead:>15.1f}"
        )
    print(f"ray.init (local cluster start, not in the rows above): {ray_init:.2f} s")
    print("results.csv identical across all four runs: yes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
