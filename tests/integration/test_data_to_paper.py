"""From a Binance-compatible endpoint to paper trading, as ``examples/paper_4h.toml`` says:
download a symbol, replay it by name, paper-trade a 4h strategy that warms up from the folder.

The sim exchange serves the bundled sample with 20,000 bars closed (its clock held until the
daemon's WebSocket connects). The download stops 100 bars short of them, so the daemon's
warm-up of metatrend at 4h (14 x 240 + 239 = 3,599 bars) takes 3,499 from the folder and 100
over REST, and the strategy is ready at its first live bar.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from barbus.daemon.core.events import MINUTE_MS, format_time_ms
from barbus.replay.folder_series import load_data
from barbus.replay.loader import load_bars
from tests.conftest import BTC_2025, REPO_ROOT
from tests.kit.probes import get_status
from tests.kit.processes import Processes, barbus
from tests.kit.waiting import wait_until
from tests.net import free_port

HISTORY = 20_000
SHORT_BY = 100
WANTED = 14 * 240 + 239


@pytest.mark.process
def test_download_replay_by_name_and_paper_trade_4h_warmed_up_from_the_folder(
    tmp_path: Path,
) -> None:
    whole = load_bars(BTC_2025)
    first = int(whole.open_time_ms[0])
    end = format_time_ms(first + (HISTORY - SHORT_BY) * MINUTE_MS)
    data = tmp_path / "data"
    procs = Processes(tmp_path / "processes")
    try:
        _, port = procs.sim(None, history=HISTORY, speed=200, exit_at_end=False)
        got = barbus(
            "data", "download", "BTCUSDT", "--start", format_time_ms(first), "--end", end,
            "--rest-url", f"http://127.0.0.1:{port}", "--data-dir", data,
        )  # fmt: skip
        assert got.returncode == 0, got.stderr
        stored = load_data(data / "BTCUSDT" / "1m")
        assert len(stored) == HISTORY - SHORT_BY

        replayed = barbus(
            "replay", "--strategy", "metatrend", "--param", "timeframe=4h", "--data", "BTCUSDT",
            "--data-dir", data, "--out", tmp_path / "replay", "--no-plot",
        )  # fmt: skip
        assert replayed.returncode == 0, replayed.stderr
        summary = json.loads((tmp_path / "replay" / "summary.json").read_text())
        assert summary["bars"] == HISTORY - SHORT_BY
        assert summary["data"] == str(data / "BTCUSDT" / "1m")

        http_port = free_port()
        config = _example_config(tmp_path, port, http_port, data)
        daemon = procs.daemon(config)
        status = wait_until(
            lambda: s if (s := get_status(http_port)) is not None and s["warm"] else None,
            60,
            "the daemon warmed up",
            watch=daemon,
        )
        log = daemon.stop_cleanly()
    finally:
        procs.close()

    [strategy] = status["strategies"]
    assert strategy["name"] == "metatrend-4h"
    assert strategy["warmup_bars"] == 14
    assert strategy["indicators_ready"] is True
    assert (
        f"BTCUSDT: warmed up on {WANTED} bars ({WANTED} wanted; {WANTED - SHORT_BY} from the "
        f"data folder, {SHORT_BY} over REST)" in log
    )


def _example_config(tmp_path: Path, sim_port: int, http_port: int, data: Path) -> Path:
    """examples/paper_4h.toml as shipped, pointed at the test's sim, port, state and folder."""
    text = (REPO_ROOT / "examples" / "paper_4h.toml").read_text(encoding="utf-8")
    for old, new in (
        ("127.0.0.1:8765", f"127.0.0.1:{sim_port}"),
        ("port = 8080", f"port = {http_port}"),
        ('"../out/paper-4h-state.sqlite"', json.dumps(str(tmp_path / "state.sqlite"))),
        ('# data_dir = "~/market-data"', f"data_dir = {json.dumps(str(data))}"),
    ):
        assert old in text
        text = text.replace(old, new)
    config = tmp_path / "paper_4h.toml"
    config.write_text(text, encoding="utf-8")
    return config
