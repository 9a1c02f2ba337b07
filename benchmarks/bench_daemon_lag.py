"""Daemon end-to-end lag at 1,000 bars/s from the simulated exchange: p50 and p99.

Usage: ``python -m benchmarks.bench_daemon_lag [--bars 20000] [--speed 1000]``.
Starts ``barbus sim-exchange`` and ``barbus run`` (two strategies: metatrend and sma_cross) as
real processes on loopback. Lag is measured inside the daemon per live candle: from the moment
its WebSocket message is read to the moment the strategies' decisions and the bar are
committed to SQLite (the decision is durable). Loopback transport adds microseconds on top.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from barbus.replay.bars_out import write_bars
from barbus.replay.loader import bundled_data_path, load_bars
from tests.kit.probes import get_status
from tests.kit.processes import Processes, checkout_env
from tests.kit.scenario import Engine, tuned, write_config
from tests.kit.waiting import wait_until
from tests.net import free_port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=20_000)
    parser.add_argument("--speed", type=float, default=1000.0)
    parser.add_argument("--history", type=int, default=500)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="barbus-lag-"))
    series = load_bars(bundled_data_path())
    n = args.bars + args.history
    data = write_bars(work / "BTCUSDT_1m_lag.csv", tuple(c[:n] for c in series.columns()))
    procs = Processes(
        work / "processes", env=checkout_env({"BARBUS_CACHE_DIR": str(work / "cache")})
    )
    try:
        _, port = procs.sim(data, speed=args.speed, history=args.history)
        http_port = free_port()
        config = write_config(
            work / "barbus.toml",
            sim_port=port,
            http_port=http_port,
            state=work / "state.sqlite",
            level="WARNING",
            engines=(Engine("metatrend", "metatrend"), Engine("sma_cross", "sma_cross")),
        )
        daemon = procs.daemon(tuned(config, warmup_bars=args.history))
        sim_seconds = args.bars / args.speed * 3 + 60

        def processed() -> dict[str, Any] | None:
            status = get_status(http_port)
            return status if status is not None and status["bars_processed"] >= n else None

        status = wait_until(processed, sim_seconds + 30, "every bar processed", watch=daemon)
        daemon.stop_cleanly(timeout=30)
    finally:
        procs.close()
    lag = status["lag_ms"]
    print(
        f"{status['bars_processed']:,} bars processed ({args.history} warm-up), "
        f"{status['feed']['live_bars']:,} live at {args.speed:,.0f} bars/s, "
        f"{status['feed']['backfilled']} backfilled"
    )
    print(
        f"decision lag over {lag['samples']:,} live bars: p50 {lag['p50']:.3f} ms, "
        f"p99 {lag['p99']:.3f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
