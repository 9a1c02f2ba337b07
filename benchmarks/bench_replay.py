"""Replay throughput: bars per second for each strategy through bus + engine + broker.

Usage: ``python benchmarks/bench_replay.py [--bars N] [--repeat R]`` (``make bench``).
The series is a deterministic synthetic random walk (``daemon.core.synthetic``), already in memory,
so this measures the replay hot path, not CSV parsing. Reports the best of R runs per strategy.
Its prices are on a 0.01 tick and volumes on a 1e-5 step, as exchange data are, so windowed
indicators take their decimal fast path; ``--raw`` keeps the walk's full binary floats (data that
are not decimals), where they take their exact-integer path.
"""

from __future__ import annotations

import argparse
import platform
import sys

from barbus.daemon.core.synthetic import synthetic_series
from barbus.replay.runner import ReplayConfig, run_replay
from barbus.strategies import STRATEGIES

TARGET_SMA_CROSS = 300_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--raw", action="store_true", help="prices not rounded to a tick")
    args = parser.parse_args()

    series = synthetic_series(args.bars, raw=args.raw)
    print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"{args.bars:,} synthetic 1m bars{' (raw floats)' if args.raw else ''}"
    )
    print(f"{'strategy':<10} {'timeframe':>9} {'trades':>7} {'bars/s':>12}")
    results: dict[str, float] = {}
    for name in STRATEGIES:
        best = 0.0
        trades = 0
        for _ in range(args.repeat):
            result = run_replay(ReplayConfig(strategy=name), series=series)
            best = max(best, result.bars_per_second)
            trades = result.stats.trades
        results[name] = best
        timeframe = result.strategy_params["timeframe"]
        print(f"{name:<10} {timeframe:>9} {trades:>7} {best:>12,.0f}")
    ok = results["sma_cross"] >= TARGET_SMA_CROSS
    verdict = "meets" if ok else "MISSES"
    print(f"sma_cross {verdict} the {TARGET_SMA_CROSS:,} bars/s target")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
