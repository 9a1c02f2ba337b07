"""What the daemon recorded, exported to CSV and run through `barbus replay`, gives its trades."""

from __future__ import annotations

import csv
import shlex
from pathlib import Path
from typing import Any

import pytest

from barbus.daemon.core.tradelog import trade_row
from barbus.daemon.state import StateStore
from barbus.replay.loader import bundled_data_path
from tests.kit.probes import get_status
from tests.kit.processes import Processes, barbus
from tests.kit.scenario import Engine, tuned, write_config, write_slice
from tests.kit.waiting import wait_until
from tests.net import free_port

QUIET = ("--log-level", "WARNING")


@pytest.fixture
def recorded_state(tmp_path: Path, processes: Processes) -> Path:
    rows = 2_400
    series = write_slice(bundled_data_path(), 0, rows, tmp_path)
    _, port = processes.sim(Path(series.source), speed=1500, history=300)
    http_port = free_port()
    config = write_config(
        tmp_path / "barbus.toml",
        sim_port=port,
        http_port=http_port,
        state=tmp_path / "state.sqlite",
        engines=(Engine("sma", "sma_cross", {"fast": 5, "slow": 20, "stop_loss_pct": 0.5}),),
    )
    daemon = processes.daemon(tuned(config, warmup_bars=300))

    def every_bar() -> dict[str, Any] | None:
        status = get_status(http_port)
        return status if status is not None and status["bars_processed"] == rows else None

    wait_until(every_bar, 60, "the daemon to process every bar", watch=daemon, interval=0.2)
    daemon.stop_cleanly(timeout=20)
    return tmp_path / "state.sqlite"


def test_exported_bars_replayed_by_the_cli_reproduce_the_daemon_trade_log(
    recorded_state: Path, tmp_path: Path
) -> None:
    exported = barbus(*QUIET, "parity", "--state", recorded_state, "--export", tmp_path / "export")
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert "identical" in exported.stdout
    command = next(line.strip() for line in exported.stdout.splitlines() if "barbus replay" in line)

    args = shlex.split(command)[2:]  # drop "barbus replay"
    replayed = barbus(*QUIET, "replay", *args, "--out", tmp_path / "replayed", "--no-plot")

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
