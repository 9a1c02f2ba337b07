"""Warm-up that fits the strategy: a 1h ``bbrs`` on the sim exchange is ready at its first live
bar and trades as a backtest over all the exchange's history does.

``bbrs`` needs 20 bars of 1h (Bollinger 20, volume SMA 20, RSI 14 + 1): the daemon asks for
20 x 60 + 59 = 1,259 one-minute bars (the first may fall anywhere in an hour), more than the
[feed] warmup_bars floor of 500 and than one REST page of 1,000. The sim has 1,400 closed bars
when the daemon starts. The slice is one where a cold start (500 bars, as before) misses a trade
that the backtest makes.
"""

from __future__ import annotations

from collections import Counter

import pytest

from barbus.daemon.core.events import MINUTE_MS
from tests.conftest import BTC_2025
from tests.kit.daemon_run import DaemonRun, run_to_the_end
from tests.kit.processes import barbus
from tests.kit.recorded import replayed_rows
from tests.kit.scenario import Engine, write_slice

HISTORY = 1_400  # bars the sim has closed when the daemon connects
LIVE = 2_400
WANTED = 20 * 60 + 59
HOUR_MS = 60 * MINUTE_MS
BBRS = Engine(
    "bbrs-1h", "bbrs", {"volume_factor": 1.0, "sideways_rsi_low": 45.0, "sideways_rsi_high": 55.0}
)


@pytest.fixture(scope="module")
def warm_run(tmp_path_factory: pytest.TempPathFactory) -> DaemonRun:
    folder = tmp_path_factory.mktemp("warm-1h")
    series = write_slice(BTC_2025, 15_000, HISTORY + LIVE, folder / "data")
    return run_to_the_end(folder, series, history=HISTORY, engines=(BBRS,))


def test_the_daemon_warms_up_on_what_the_strategy_needs_over_several_pages(
    warm_run: DaemonRun,
) -> None:
    bars = [bar for bar, _ in warm_run.recorded.bars]
    sources = [source for _, source in warm_run.recorded.bars]
    every = warm_run.series.to_bars()

    assert sources == ["warmup"] * WANTED + ["live"] * LIVE
    assert bars == every[HISTORY - WANTED :]
    assert (
        f"BTCUSDT: warmed up on {WANTED} bars ({WANTED} wanted; 0 from the data folder, "
        f"{WANTED} over REST)" in warm_run.log
    )
    assert "indicators ready" in warm_run.log


def test_the_warm_up_holds_twenty_whole_hours_before_the_first_live_bar(
    warm_run: DaemonRun,
) -> None:
    warm = [bar.open_time_ms for bar, source in warm_run.recorded.bars if source == "warmup"]
    minutes_per_hour = Counter(t // HOUR_MS for t in warm)

    assert sum(1 for n in minutes_per_hour.values() if n == 60) >= 20


def test_status_says_the_strategy_is_ready_from_the_start_and_needs_20_bars(
    warm_run: DaemonRun,
) -> None:
    [strategy] = warm_run.first_status["strategies"]

    assert strategy["warmup_bars"] == 20
    assert strategy["indicators_ready"] is True


def test_live_trades_equal_a_backtest_over_all_the_exchanges_history(warm_run: DaemonRun) -> None:
    first_live = int(warm_run.series.open_time_ms[HISTORY])
    backtest = replayed_rows(warm_run.series, BBRS, first_live)

    assert len(backtest) >= 1
    assert warm_run.recorded.trades[BBRS.name] == backtest


def test_parity_over_the_recorded_bars_is_identical(warm_run: DaemonRun) -> None:
    done = barbus("parity", "--state", str(warm_run.state))

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith(": identical"), done.stdout
