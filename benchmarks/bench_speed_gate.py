"""The CI speed gate: the replay path's speed as a ratio of a bare Python loop, in one process.

Absolute bars/s move +-30 % with this shared VM; a ratio of two loops timed in the same process,
alternated, moves far less. The bare loop is the SMA(10)/SMA(30) cross of ``sma_cross`` over a
plain list of closes (deque and running sums); the replay is ``run_replay`` of ``sma_cross`` on
the same synthetic bars. The score is the median of the pairwise ratios replay/bare over
``--rounds`` alternations. It is compared with the figure recorded in ``speed_gate.json`` for the
running build (compiled or pure) and the bar count; exit 1 when more than ``--tolerance`` below.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections import deque
from pathlib import Path

from barbus.daemon.core.synthetic import synthetic_series
from barbus.kernel_build import build_name
from barbus.replay.runner import ReplayConfig, run_replay

RECORDED = Path(__file__).with_name("speed_gate.json")


def bare(closes: list[float], fast: int = 10, slow: int = 30) -> int:
    """The same SMA cross as ``sma_cross`` with nothing around it; returns the entries."""
    fq: deque[float] = deque()
    sq: deque[float] = deque()
    fs = ss = 0.0
    prev = float("nan")
    pos = trades = 0
    for c in closes:
        fq.append(c)
        fs += c
        if len(fq) > fast:
            fs -= fq.popleft()
        sq.append(c)
        ss += c
        if len(sq) > slow:
            ss -= sq.popleft()
        if len(sq) < slow:
            continue
        d = fs / fast - ss / slow
        if d > 0 and prev <= 0 and pos == 0:
            pos = 1
            trades += 1
        elif d < 0 and prev >= 0 and pos == 1:
            pos = 0
        prev = d
    return trades


def measure(bars: int, rounds: int) -> list[float]:
    """``rounds`` pairwise ratios (replay bars/s over bare-loop bars/s), alternating the two."""
    series = synthetic_series(bars)
    closes = series.close.tolist()
    config = ReplayConfig(strategy="sma_cross")
    run_replay(config, series=series)  # warm: imports, first-call costs
    ratios = []
    for _ in range(rounds):
        gc.disable()
        started = time.perf_counter()
        bare(closes)
        bare_seconds = time.perf_counter() - started
        gc.enable()
        replay = run_replay(config, series=series)
        ratios.append(bare_seconds / replay.replay_seconds)
    return ratios


def recorded(path: Path, build: str, bars: int) -> float | None:
    """The recorded ratio for this build and bar count, if any: the figure of this Python
    version (``pure py3.13``) when one is recorded (the bare loop's speed differs between
    CPython versions more than the replay's), else the build's."""
    figures = json.loads(path.read_text(encoding="utf-8"))
    version = f"{build} py{sys.version_info.major}.{sys.version_info.minor}"
    value = figures.get(version, {}).get(str(bars), figures.get(build, {}).get(str(bars)))
    return None if value is None else float(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000, help="synthetic 1m bars (1,000,000)")
    parser.add_argument("--rounds", type=int, default=5, help="alternations of bare and replay (5)")
    parser.add_argument(
        "--tolerance", type=float, default=0.20, help="fail below recorded x (1 - this) (0.20)"
    )
    parser.add_argument(
        "--recorded", type=Path, default=RECORDED, help="recorded figures (speed_gate.json)"
    )
    args = parser.parse_args(argv)
    build = build_name()
    ratios = measure(args.bars, args.rounds)
    ratio = statistics.median(ratios)
    spread = ", ".join(f"{r:.3f}" for r in ratios)
    want = recorded(args.recorded, build, args.bars)
    print(f"speed gate: {build} build, {args.bars:,} bars, replay/bare {ratio:.3f} ({spread})")
    if want is None:
        print(f"no figure for {build} at {args.bars} bars in {args.recorded.name}: not gated")
        return 0
    floor = want * (1.0 - args.tolerance)
    verdict = "met" if ratio >= floor else "MISSED"
    print(f"recorded {want:.3f}, floor {floor:.3f}: {verdict}")
    return 0 if ratio >= floor else 1


if __name__ == "__main__":
    sys.exit(main())
