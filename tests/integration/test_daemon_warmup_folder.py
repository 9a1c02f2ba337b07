"""Warm-up from the data folder: a 4h strategy on the sim exchange takes the bars the data folder
holds and asks the exchange only for those after them.

``sma_cross`` with ``slow = 4`` on 4h bars needs 5 of them: 5 x 240 + 239 = 1,439 one-minute bars
(the first may fall anywhere in four hours). The sim has closed 1,700 bars when the daemon
starts; the data folder holds the first 1,550 of them, as ``barbus data download`` wrote them.
So 150 come over REST, 1,289 from the folder, and the warm-up is the exchange's last 1,439 bars
all the same: live trades equal a backtest over the whole history.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from barbus.daemon.core.data_folder import DataFolder
from tests.conftest import BTC_2025
from tests.kit.daemon_run import DaemonRun, run_to_the_end
from tests.kit.recorded import replayed_rows
from tests.kit.scenario import Engine, write_slice

HISTORY = 1_700  # bars the sim has closed when the daemon connects
IN_FOLDER = 1_550  # the first of them, already downloaded
LIVE = 2_400
WANTED = 5 * 240 + 239
SMA_4H = Engine("sma-4h", "sma_cross", {"fast": 2, "slow": 4, "timeframe": "4h"})


def run_daemon(folder: Path, *, in_folder: int) -> DaemonRun:
    """The daemon on a sim of HISTORY + LIVE bars, its data folder holding the first
    ``in_folder`` of them, until every bar is processed."""
    series = write_slice(BTC_2025, 40_000, HISTORY + LIVE, folder / "slice")
    data = folder / "data"
    DataFolder(data).add_bars("BTCUSDT", "1m", series.to_bars()[:in_folder])
    feed = f"data_dir = {json.dumps(str(data))}\n"
    return run_to_the_end(folder, series, history=HISTORY, engines=(SMA_4H,), feed=feed)


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory: pytest.TempPathFactory) -> DaemonRun:
    return run_daemon(tmp_path_factory.mktemp("warm-folder"), in_folder=IN_FOLDER)


@pytest.mark.process
def test_the_warm_up_takes_the_folders_bars_and_the_rest_over_rest(folder_run: DaemonRun) -> None:
    bars = [bar for bar, _ in folder_run.recorded.bars]
    sources = [source for _, source in folder_run.recorded.bars]
    every = folder_run.series.to_bars()
    over_rest = HISTORY - IN_FOLDER

    assert sources == ["warmup"] * WANTED + ["live"] * LIVE
    assert bars == every[HISTORY - WANTED :]
    assert (
        f"BTCUSDT: warmed up on {WANTED} bars ({WANTED} wanted; {WANTED - over_rest} from the "
        f"data folder, {over_rest} over REST)" in folder_run.log
    )


@pytest.mark.process
def test_the_4h_strategy_is_ready_at_once_and_trades_as_the_backtest(
    folder_run: DaemonRun,
) -> None:
    [strategy] = folder_run.first_status["strategies"]
    first_live = int(folder_run.series.open_time_ms[HISTORY])
    backtest = replayed_rows(folder_run.series, SMA_4H, first_live)

    assert strategy["warmup_bars"] == 5
    assert strategy["indicators_ready"] is True
    assert len(backtest) >= 1
    assert folder_run.recorded.trades[SMA_4H.name] == backtest


@pytest.mark.process
def test_a_folder_older_than_the_warm_up_is_not_used(tmp_path: Path) -> None:
    run = run_daemon(tmp_path, in_folder=HISTORY - WANTED - 10)  # ends before the warm-up starts

    assert [bar for bar, _ in run.recorded.bars][:WANTED] == run.series.to_bars()[
        HISTORY - WANTED : HISTORY
    ]
    assert f"({WANTED} wanted; 0 from the data folder, {WANTED} over REST)" in run.log
