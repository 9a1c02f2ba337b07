"""Metrics overhead on the replay path: the same batch with and without batch metrics.

Usage: ``python -m benchmarks.bench_metrics_overhead [--jobs 12] [--repeat 3]``.
In-process (``parallel=False``) so pool start-up noise stays out; best of ``--repeat`` runs each.
Target (issue "Observability"): under 5 % fewer bars/s with metrics on.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from barbus.replay.batch import Job, run_batch
from barbus.replay.batch.metrics import BatchMetrics
from barbus.replay.cache import BarCache
from benchmarks.common import write_synthetic_csv


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "barbus-bench"
    )
    args = parser.parse_args()

    csv = write_synthetic_csv(args.workdir / "SYNTHUSDT_1m_1000000.csv", 1_000_000)
    cache = BarCache(args.workdir / "cache")
    cache.load(csv)
    jobs = [
        Job(
            strategy="sma_cross",
            params=(("fast", 5 + i), ("slow", 50)),
            data=str(csv.resolve()),
            symbol="SYNTHUSDT",
            end_ms=None,
        )
        for i in range(args.jobs)
    ]
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        for label, metrics in (("off", None), ("on", BatchMetrics.create())):
            out = args.workdir / f"metrics-{label}"
            shutil.rmtree(out, ignore_errors=True)
            started = time.perf_counter()
            outcome = run_batch(
                jobs, out, parallel=False, cache=cache, resume=False, metrics=metrics
            )
            rate = outcome.bars_replayed / (time.perf_counter() - started)
            best[label] = max(best.get(label, 0.0), rate)
    overhead = 1 - best["on"] / best["off"]
    print(f"{args.jobs} sma_cross jobs x 1,000,000 bars, in-process, best of {args.repeat}")
    print(f"metrics off {best['off']:12,.0f} bars/s")
    print(f"metrics on  {best['on']:12,.0f} bars/s   overhead {overhead:+.1%}")
    return 0 if overhead < 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
