"""Replay throughput: bars per second for each strategy through bus + engine + broker.

Each strategy's figure is also given as a ratio to the bare Python SMA-cross loop of the speed
gate, timed in the same process just before it: the number to compare across runs and machines
(and the issue's targets: sma_cross >= 0.25, metatrend and bbrs >= 0.2 on the compiled kernel).
The user strategy file ``examples/strategies/ema_cross.py`` runs too, as a user's would.

Usage: ``python benchmarks/bench_replay.py [--bars N] [--repeat R]`` (``make bench``).
The series is a deterministic synthetic random walk (``daemon.core.synthetic``), already in memory,
so this measures the replay hot path, not CSV parsing. Reports the best of R runs per strategy.
Its prices are on a 0.01 tick and volumes on a 1e-5 step, as exchange data are, so windowed
indicators take their decimal fast path; ``--raw`` keeps the walk's full binary floats (data that
are not decimals), where they take their exact-integer path.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
from pathlib import Path

from barbus.daemon.core.synthetic import synthetic_series
from barbus.kernel_build import build_name, describe
from barbus.replay.runner import ReplayConfig, run_replay
from barbus.strategies import STRATEGIES
from benchmarks.bench_speed_gate import bare

USER_FILE = f"{Path(__file__).resolve().parents[1]}/examples/strategies/ema_cross.py:EmaCross"
TARGET_SMA_CROSS = 300_000  # bars/s, the pure-Python kernel
# Ratios to the bare loop, the compiled kernel (issue 14).
TARGET_RATIOS = {"sma_cross": 0.25, "metatrend": 0.2, "bbrs": 0.2}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--raw", action="store_true", help="prices not rounded to a tick")
    args = parser.parse_args()

    series = synthetic_series(args.bars, raw=args.raw)
    closes = series.close.tolist()
    print(
        f"python {platform.python_version()} on {platform.machine()}, {describe()}, "
        f"{args.bars:,} synthetic 1m bars{' (raw floats)' if args.raw else ''}"
    )
    print(f"{'strategy':<10} {'timeframe':>9} {'trades':>7} {'bars/s':>12} {'ratio':>6}")
    speeds: dict[str, float] = {}
    ratios: dict[str, float] = {}
    for name in [*STRATEGIES, USER_FILE]:
        runs = []
        for _ in range(args.repeat):
            gc.disable()
            started = time.perf_counter()
            bare(closes)
            bare_seconds = time.perf_counter() - started
            gc.enable()
            result = run_replay(ReplayConfig(strategy=name), series=series)
            runs.append((result.bars_per_second, bare_seconds / result.replay_seconds))
        label = "ema_cross (user file)" if name == USER_FILE else name
        speeds[label] = max(speed for speed, _ in runs)
        ratios[label] = statistics.median(ratio for _, ratio in runs)
        timeframe = result.strategy_params["timeframe"]
        print(
            f"{label:<10} {timeframe:>9} {result.stats.trades:>7} {speeds[label]:>12,.0f} "
            f"{ratios[label]:>6.3f}"
        )
    if build_name() == "compiled":
        missed = [
            f"{n} {ratios[n]:.3f} < {want}" for n, want in TARGET_RATIOS.items() if ratios[n] < want
        ]
        print("ratio targets " + ("MISSED: " + "; ".join(missed) if missed else "met"))
        return 1 if missed else 0
    ok = speeds["sma_cross"] >= TARGET_SMA_CROSS
    print(f"sma_cross {'meets' if ok else 'MISSES'} the {TARGET_SMA_CROSS:,} bars/s target")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
