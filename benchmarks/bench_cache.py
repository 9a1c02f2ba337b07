"""Cache benchmarks: cold ingest of a 1,000,000-row CSV, warm open, LRU hit.

Usage: ``python benchmarks/bench_cache.py [--rows N] [--repeat R] [--workdir DIR]``.
Targets (issue "Replay at scale"): cold ingest >= 1,000,000 rows/s; warm open of 1,000,000
bars < 10 ms.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from barbus.replay.cache import BarCache
from barbus.replay.loader import load_bars
from benchmarks.common import write_synthetic_csv


def best_of(repeat: int, action: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "barbus-bench"
    )
    args = parser.parse_args()

    csv = write_synthetic_csv(args.workdir / f"SYNTHUSDT_1m_{args.rows}.csv", args.rows)
    root = args.workdir / "cache"
    print(f"{args.rows:,}-row CSV, {csv.stat().st_size / 1e6:.1f} MB: {csv}")

    parse = best_of(args.repeat, lambda: load_bars(csv))

    def cold() -> None:
        shutil.rmtree(root, ignore_errors=True)
        BarCache(root).ingest(csv)

    ingest = best_of(args.repeat, cold)
    verified = best_of(args.repeat, lambda: BarCache(root).load(csv))
    unverified = best_of(args.repeat, lambda: BarCache(root, verify_checksums=False).load(csv))
    cache = BarCache(root)
    cache.load(csv)
    hit = best_of(args.repeat, lambda: cache.load(csv))

    print(f"parse + validate        {parse:8.3f} s   {args.rows / parse:12,.0f} rows/s")
    print(f"cold ingest (all-in)    {ingest:8.3f} s   {args.rows / ingest:12,.0f} rows/s")
    print(f"warm open, checksummed  {verified * 1e3:8.2f} ms")
    print(f"warm open, length-only  {unverified * 1e3:8.2f} ms")
    print(f"LRU hit                 {hit * 1e6:8.1f} us")
    ok = args.rows / ingest >= 1_000_000 and verified < 0.010
    print("targets " + ("met" if ok else "MISSED") + ": ingest >= 1M rows/s, warm open < 10 ms")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
