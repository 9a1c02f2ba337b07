"""Batch scaling: a 32-job batch at 1, 2 and N workers; speed-up, efficiency, worker memory.

Usage: ``python -m benchmarks.bench_batch [--jobs 32] [--bars-per-job 250000] [--workers 1 2 4]
[--repeat 3]``.
Jobs are the ``random`` strategy with seeds 1..J over consecutive periods of a 1,000,000-bar
synthetic dataset in the cache. Worker memory is read from /proc: "peak anon" is the largest
anonymous memory of each worker (its own heap, sampled every 5 ms by the driver), which is what a
worker costs beyond the memory-mapped data; the mapped columns are file pages in the page cache,
shared by every worker. "private" (USS, at exit) also counts the mapped pages only that worker
touched, so it is not a measure of the heap.
Targets: parallel efficiency on 2 workers >= 90 %; peak anon < 100 MB per worker.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from barbus.replay.batch import Job, run_batch
from barbus.replay.batch.local import worker_pool
from barbus.replay.cache import BarCache
from benchmarks.common import (
    MEMORY_DIR_ENV,
    AnonSampler,
    baseline_worker,
    measuring_worker,
    memory_kib,
    write_synthetic_csv,
)


def jobs_for(csv: Path, count: int, bars_per_job: int, first_ms: int, total_rows: int) -> list[Job]:
    jobs = []
    for i in range(count):
        start = (i * bars_per_job) % max(1, total_rows - bars_per_job)
        jobs.append(
            Job(
                strategy="random",
                params=(("seed", i + 1),),
                data=str(csv.resolve()),
                symbol="SYNTHUSDT",
                start_ms=first_ms + start * 60_000,
                end_ms=first_ms + (start + bars_per_job) * 60_000,
            )
        )
    return jobs


def read_memory(folder: Path, kind: str) -> list[dict[str, int]]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob(f"{kind}-*.json"))]


def timed_batch(
    jobs: list[Job],
    workdir: Path,
    workers: int,
    cache: BarCache,
    memory_dir: Path,
    shared_pass: bool = True,
) -> tuple[float, int, dict[str, float]]:
    """One batch run: (seconds, bars replayed, worker memory in MB: mean peak RSS, largest
    peak anon, mean private at exit)."""
    out = workdir / f"batch-{workers}"
    shutil.rmtree(out, ignore_errors=True)
    for stale in [*memory_dir.glob("worker-*.json"), *memory_dir.glob("running-*")]:
        stale.unlink()
    with AnonSampler(memory_dir) as sampler:
        started = time.perf_counter()
        outcome = run_batch(
            jobs,
            out,
            workers=workers,
            cache=cache,
            sort="sharpe",
            resume=False,
            worker_target=measuring_worker,
            shared_pass=shared_pass,
        )
        seconds = time.perf_counter() - started
    assert outcome.failed == 0, outcome.rows
    used = read_memory(memory_dir, "worker")
    return (
        seconds,
        outcome.bars_replayed,
        {
            "peak": statistics.mean(m["VmHWM"] for m in used) / 1024,
            "anon": max(sampler.peaks.values()) / 1024,
            "private": statistics.mean(m["Private"] for m in used) / 1024,
        },
    )


_BARE_LOOP = "x = 0\nfor i in range(6_000_000):\n    x += i & 7\n"


def bare_loop_efficiency() -> float:
    """How well this machine runs two CPU-bound processes at once, right now: two bare Python
    loops one after the other against both at once (1.0 = twice the work in the same time).
    A shared virtual machine's two CPUs often give less, whatever the program."""

    def run(count: int) -> float:
        started = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", _BARE_LOOP]) for _ in range(count)]
        for proc in procs:
            proc.wait()
        return time.perf_counter() - started

    alone = run(1) + run(1)
    return alone / (2 * run(2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=32)
    parser.add_argument("--bars-per-job", type=int, default=250_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, os.cpu_count() or 2])
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds (median)")
    parser.add_argument(
        "--no-shared-pass",
        dest="shared_pass",
        action="store_false",
        help="one pass per job: the same work on every worker count",
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "barbus-bench"
    )
    args = parser.parse_args()

    csv = write_synthetic_csv(args.workdir / f"SYNTHUSDT_1m_{args.rows}.csv", args.rows)
    cache = BarCache(args.workdir / "cache")
    series = cache.load(csv)
    jobs = jobs_for(csv, args.jobs, args.bars_per_job, int(series.open_time_ms[0]), len(series))
    dataset_mb = sum(e.nbytes for e in cache.entries()) / 1e6
    print(
        f"{len(jobs)} jobs x {args.bars_per_job:,} bars of a {len(series):,}-bar dataset "
        f"({dataset_mb:.0f} MB mapped), {os.cpu_count()} CPUs"
    )

    memory_dir = args.workdir / "memory"
    os.environ[MEMORY_DIR_ENV] = str(memory_dir)  # before the forkserver starts
    shutil.rmtree(memory_dir, ignore_errors=True)
    memory_dir.mkdir(parents=True)
    with worker_pool(1, cache.root, baseline_worker):  # the batch's own pool, one idle worker
        pass
    baseline = read_memory(memory_dir, "baseline")[0]

    # Worker counts alternate, round after round, so a slow moment of a shared machine falls on
    # both sides of the ratio; each count's figure is its median round.
    rounds: dict[int, list[tuple[float, int, dict[str, float]]]] = {w: [] for w in args.workers}
    machine: list[float] = []
    for _ in range(args.repeat):
        for workers in args.workers:
            rounds[workers].append(
                timed_batch(jobs, args.workdir, workers, cache, memory_dir, args.shared_pass)
            )
        if {1, 2} <= set(rounds):  # the ceiling of the 2-worker figure, printed beside it
            machine.append(bare_loop_efficiency())
    timings = {w: statistics.median(r[0] for r in runs) for w, runs in rounds.items()}
    print(
        f"median of {args.repeat} alternating rounds; memory: the largest of any round\n"
        f"{'workers':>7} {'seconds':>8} {'bars/s':>12} {'speed-up':>8} {'efficiency':>10} "
        f"{'peak RSS MB':>11} {'peak anon MB':>12} {'private MB':>10}  rounds (s)"
    )
    for workers, runs in rounds.items():
        seconds = timings[workers]
        speedup = timings[args.workers[0]] * args.workers[0] / seconds
        memory = {k: max(r[2][k] for r in runs) for k in runs[0][2]}
        print(
            f"{workers:>7} {seconds:>8.2f} {runs[0][1] / seconds:>12,.0f} "
            f"{speedup:>8.2f} {speedup / workers:>10.0%} {memory['peak']:>11.1f} "
            f"{memory['anon']:>12.1f} {memory['private']:>10.1f}  "
            + " ".join(f"{r[0]:.2f}" for r in runs)
        )
    base_private = baseline["Private"] / 1024
    print(
        f"idle worker (imports only): peak RSS {baseline['VmHWM'] / 1024:.1f} MB, anon "
        f"{baseline['RssAnon'] / 1024:.1f} MB, private {base_private:.1f} MB; "
        f"driver now {memory_kib()['VmRSS'] / 1024:.1f} MB RSS"
    )
    largest = max(r[2]["anon"] for runs in rounds.values() for r in runs)
    memory_ok = largest < 100.0
    print(
        f"largest worker peak anon {largest:.1f} MB: "
        f"{'meets' if memory_ok else 'MISSES'} the 100 MB target"
    )
    if 1 in rounds and 2 in rounds:
        # Each round ran 1 then 2 workers back to back: the median of the rounds' ratios,
        # so the speed of a shared machine, which drifts by tens of percent between rounds,
        # cancels within each ratio.
        pairs = [one[0] / (2 * two[0]) for one, two in zip(rounds[1], rounds[2], strict=True)]
        efficiency = statistics.median(pairs)
        verdict = "meets" if efficiency >= 0.90 else "MISSES"
        print(
            f"this machine's own ceiling: two bare Python loops in parallel against one after "
            f"the other, {statistics.median(machine):.0%} (rounds: "
            + " ".join(f"{m:.0%}" for m in machine)
            + ")"
        )
        print(
            f"2-worker parallel efficiency {efficiency:.1%} (median of rounds: "
            + " ".join(f"{p:.0%}" for p in pairs)
            + f"): {verdict} the 90 % target"
        )
        return 0 if efficiency >= 0.90 and memory_ok else 1
    return 0 if memory_ok else 1


if __name__ == "__main__":
    sys.exit(main())
