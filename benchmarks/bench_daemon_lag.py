"""Daemon end-to-end lag at 1,000 bars/s from the simulated exchange: p50 and p99.

Usage: ``python -m benchmarks.bench_daemon_lag [--bars 20000] [--speed 1000]``.
Starts ``barbus sim-exchange`` and ``barbus run`` (two strategies: metatrend and sma_cross) as
real processes on loopback. Lag is measured inside the daemon per live candle: from the moment
its WebSocket message is read to the moment the strategies' decisions and the bar are
committed to SQLite (the decision is durable). Loopback transport adds microseconds on top.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from barbus.replay.bars_out import write_bars
from barbus.replay.loader import bundled_data_path, load_bars

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


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
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "BARBUS_CACHE_DIR": str(work / "cache")}
    cli = [sys.executable, "-m", "barbus.daemon.cli", "--log-level", "WARNING"]
    sim = subprocess.Popen(
        [
            *cli,
            "sim-exchange",
            "--data",
            str(data),
            "--port",
            "0",
            "--speed",
            str(args.speed),
            "--history-bars",
            str(args.history),
            "--start-on-connect",
            "--exit-at-end",
        ],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert sim.stdout is not None
    port = json.loads(sim.stdout.readline())["port"]
    http_port = free_port()
    config = work / "barbus.toml"
    config.write_text(
        f"""
[feed]
rest_url = "http://127.0.0.1:{port}"
ws_url = "ws://127.0.0.1:{port}"
symbols = ["BTCUSDT"]
warmup_bars = {args.history}
[[strategy]]
strategy = "metatrend"
symbol = "BTCUSDT"
[[strategy]]
strategy = "sma_cross"
symbol = "BTCUSDT"
[state]
path = "state.sqlite"
[http]
port = {http_port}
[log]
level = "WARNING"
""",
        encoding="utf-8",
    )
    daemon = subprocess.Popen([*cli, "run", "--config", str(config)], env=env)
    try:
        sim.wait(timeout=args.bars / args.speed * 3 + 60)
        deadline = time.monotonic() + 30
        status = get_json(f"http://127.0.0.1:{http_port}/status")
        while status["bars_processed"] < n and time.monotonic() < deadline:
            time.sleep(0.2)
            status = get_json(f"http://127.0.0.1:{http_port}/status")
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
        sim.kill()
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
