"""What the daemon recorded, exported to CSV and run through `barbus replay`, gives its trades."""

from __future__ import annotations

import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from barbus.daemon.core.tradelog import trade_row
from barbus.daemon.state import StateStore
from barbus.replay.loader import bundled_data_path, load_bars
from tests.net import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
CLI = [sys.executable, "-m", "barbus.daemon.cli", "--log-level", "WARNING"]


def status(port: int) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as response:
        return json.load(response)


@pytest.fixture
def recorded_state(tmp_path: Path) -> Iterator[Path]:
    series = load_bars(bundled_data_path())
    rows = 2_400
    data = tmp_path / "BTCUSDT_1m_slice.csv"
    with data.open("w", encoding="utf-8") as handle:
        handle.write("open_time_ms,open,high,low,close,volume\n")
        for columns in zip(*(c[:rows].tolist() for c in series.columns()), strict=True):
            handle.write(",".join(repr(v) for v in columns) + "\n")
    sim = subprocess.Popen(
        [
            *CLI,
            "sim-exchange",
            "--data",
            str(data),
            "--port",
            "0",
            "--speed",
            "1500",
            "--history-bars",
            "300",
            "--start-on-connect",
            "--exit-at-end",
        ],
        stdout=subprocess.PIPE,
        env=ENV,
        text=True,
    )
    http_port = free_port()
    daemon: subprocess.Popen[bytes] | None = None
    try:
        assert sim.stdout is not None
        port = json.loads(sim.stdout.readline())["port"]
        config = tmp_path / "barbus.toml"
        config.write_text(
            f'[feed]\nrest_url = "http://127.0.0.1:{port}"\nws_url = "ws://127.0.0.1:{port}"\n'
            'symbols = ["BTCUSDT"]\nwarmup_bars = 300\n'
            '[[strategy]]\nname = "sma"\nstrategy = "sma_cross"\nsymbol = "BTCUSDT"\n'
            "params = { fast = 5, slow = 20, stop_loss_pct = 0.5 }\n"
            '[state]\npath = "state.sqlite"\n'
            f"[http]\nport = {http_port}\n",
            encoding="utf-8",
        )
        daemon = subprocess.Popen([*CLI, "run", "--config", str(config)], env=ENV)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if status(http_port)["bars_processed"] == rows:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail("the daemon did not process every bar in time")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=20) == 0
        yield tmp_path / "state.sqlite"
    finally:
        for process in (daemon, sim):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        if sim.stdout is not None:
            sim.stdout.close()


def test_exported_bars_replayed_by_the_cli_reproduce_the_daemon_trade_log(
    recorded_state: Path, tmp_path: Path
) -> None:
    exported = subprocess.run(
        [*CLI, "parity", "--state", str(recorded_state), "--export", str(tmp_path / "export")],
        capture_output=True,
        text=True,
        env=ENV,
        check=False,
    )
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert "identical" in exported.stdout
    command = next(line.strip() for line in exported.stdout.splitlines() if "barbus replay" in line)

    args = shlex.split(command)[2:]  # drop "barbus replay"
    replayed = subprocess.run(
        [*CLI, "replay", *args, "--out", str(tmp_path / "replayed"), "--no-plot"],
        capture_output=True,
        text=True,
        env=ENV,
        check=False,
    )

    assert replayed.returncode == 0, replayed.stderr
    store = StateStore(recorded_state)
    try:
        daemon_rows = [trade_row(t) for t in store.trades("sma")]
    finally:
        store.close()
    with (tmp_path / "replayed" / "trades.csv").open(encoding="utf-8") as handle:
        replay_rows = list(csv.reader(handle))[1:]
    assert len(daemon_rows) > 5
    assert replay_rows == daemon_rows
