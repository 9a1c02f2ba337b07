"""A daemon on an hourly feed: ``[feed] interval = "1h"`` on a sim exchange serving hourly bars.

The hourly bars are the bundled minutes resampled by pandas (see :mod:`test_any_interval`).
A 4h ``sma_cross`` warms up on 500 hourly bars (the ``[feed] warmup_bars`` floor), trades
live, and its trades equal a backtest of the same hourly bars; the recorded session replays
identically (``barbus parity``), its bars read back as hourly ones.
"""

from __future__ import annotations

import pytest

from barbus.daemon.core.events import MINUTE_MS
from barbus.replay.bars_out import write_bars
from barbus.replay.loader import load_bars
from tests.conftest import BTC_2025
from tests.integration.test_any_interval import resampled
from tests.kit.daemon_run import DaemonRun, run_to_the_end
from tests.kit.processes import barbus
from tests.kit.recorded import replayed_rows
from tests.kit.scenario import HISTORY as WARMUP_FLOOR
from tests.kit.scenario import Engine

HISTORY = 600  # hourly bars closed when the daemon connects
LIVE = 400
SMA_4H = Engine("sma-4h", "sma_cross", {"fast": 2, "slow": 4, "timeframe": "4h"})


@pytest.fixture(scope="module")
def hourly_run(tmp_path_factory: pytest.TempPathFactory) -> DaemonRun:
    folder = tmp_path_factory.mktemp("hourly-feed")
    hours = load_bars(resampled(BTC_2025, "1h", folder / "BTCUSDT_1h_all.csv"))
    path = write_bars(folder / "BTCUSDT_1h_slice.csv", hours.to_bars()[100 : 100 + HISTORY + LIVE])
    engines = (SMA_4H,)
    return run_to_the_end(
        folder, load_bars(path), history=HISTORY, engines=engines, feed='interval = "1h"\n'
    )


@pytest.mark.process
def test_the_daemon_records_the_exchanges_hourly_bars(hourly_run: DaemonRun) -> None:
    bars = [bar for bar, _ in hourly_run.recorded.bars]
    sources = [source for _, source in hourly_run.recorded.bars]

    assert hourly_run.series.interval == "1h"
    assert sources == ["warmup"] * WARMUP_FLOOR + ["live"] * LIVE
    assert bars == hourly_run.series.to_bars()[HISTORY - WARMUP_FLOOR :]
    assert {bar.interval for bar in bars} == {"1h"}
    assert f"warmed up on {WARMUP_FLOOR} bars ({WARMUP_FLOOR} wanted" in hourly_run.log


@pytest.mark.process
def test_live_trades_on_hourly_bars_equal_the_backtest(hourly_run: DaemonRun) -> None:
    first_live = int(hourly_run.series.open_time_ms[HISTORY])
    backtest = replayed_rows(hourly_run.series, SMA_4H, first_live)

    assert len(backtest) >= 3
    assert hourly_run.recorded.trades[SMA_4H.name] == backtest
    fill_times = [row[3] for row in hourly_run.recorded.fills]
    assert len(fill_times) >= 6
    assert all(t % (60 * MINUTE_MS) == 0 for t in fill_times)  # at an hour's open


@pytest.mark.process
def test_parity_reads_the_recorded_bars_back_as_hourly(hourly_run: DaemonRun) -> None:
    done = barbus("parity", "--state", str(hourly_run.state))

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith(": identical"), done.stdout
