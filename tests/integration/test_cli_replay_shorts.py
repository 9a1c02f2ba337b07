"""Shorts and the maker/taker fees in ``barbus replay`` (and the Python API that shares it).

A tiny strategy file sells 0.01 BTC on its 10th bar and buys it back on its 20th. Without
``--allow-short`` the replay exits 2 with one line naming the strategy and the bar; with it the
trade is checked against hand arithmetic on the raw CSV rows (read with pandas).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from barbus import backtest
from tests.integration.test_cli_replay import Run, assert_succeeded, barbus

SHORT_ONCE = """
import dataclasses

from barbus.daemon.events import Bar
from barbus.strategies.base import BaseParams, Order, Strategy


@dataclasses.dataclass(frozen=True)
class ShortOnceParams(BaseParams):
    units: float = 0.01


class ShortOnce(Strategy[ShortOnceParams]):
    name = "short_once"
    params_type = ShortOnceParams

    def __init__(self, params: ShortOnceParams) -> None:
        super().__init__(params)
        self.seen = 0

    def on_bar(self, bar: Bar, position: float) -> Order | None:
        self.seen += 1
        if self.seen == 10:
            return Order.sell(units=self.params.units)
        if self.seen == 20:
            return Order.buy()
        return None
"""
DAY = ("--start", "2023-03-20", "--end", "2023-03-21")


def replay_day(strategy: str, data: Path, out: Path, *options: str) -> Run:
    """``barbus replay`` of ``strategy`` over DAY of ``data``, no plot, into ``out``."""
    return barbus(
        "replay", "--strategy", strategy, "--data", data, *DAY, "--no-plot", *options, out=out
    )


@pytest.fixture
def short_once(tmp_path: Path) -> str:
    path = tmp_path / "short_once.py"
    path.write_text(SHORT_ONCE, encoding="utf-8")
    return f"{path}:ShortOnce"


def test_a_short_without_allow_short_exits_2_with_one_line_naming_strategy_and_bar(
    short_once: str, btc_2023_path: Path, tmp_path: Path
) -> None:
    run = replay_day(short_once, btc_2023_path, tmp_path / "out")

    assert run.code == 2
    assert run.stdout == ""
    # The data file's own lines (cache, gaps) aside, the halt is one line, no traceback.
    (line,) = [
        line for line in run.stderr.splitlines() if "barbus.cache" not in line and "gap" not in line
    ]
    assert line.startswith("barbus: error: strategy short_once sold short on the BTCUSDT 1m bar ")
    assert "2023-03-20T00:09:00Z" in line  # the 10th minute of the day decided it
    assert "--allow-short" in line
    assert not (tmp_path / "out" / "trades.csv").exists()


def test_allow_short_trades_the_short_at_hand_computed_prices_and_fees(
    short_once: str, btc_2023_path: Path, tmp_path: Path
) -> None:
    run = replay_day(
        short_once,
        btc_2023_path,
        tmp_path / "out",
        "--allow-short",
        "--taker-fee-bps",
        "4",
        "--maker-fee-bps",
        "1",
    )

    assert_succeeded(run)
    with (tmp_path / "out" / "trades.csv").open(newline="", encoding="utf-8") as handle:
        (trade,) = list(csv.DictReader(handle))
    bars = pd.read_csv(btc_2023_path)
    day = bars[bars.open_time_ms >= 1_679_270_400_000].reset_index(drop=True)  # 2023-03-20
    slip, taker = 5 / 10_000, 4 / 10_000
    entry = day.open[10] * (1 - slip)  # decided on minute 9, sold at minute 10's open
    exit_ = day.open[20] * (1 + slip)  # bought back at minute 20's open
    fees = 0.01 * entry * taker + 0.01 * exit_ * taker
    assert trade["direction"] == "short"
    assert trade["exit_reason"] == "signal"
    assert int(trade["entry_time_ms"]) == int(day.open_time_ms[10])
    assert int(trade["exit_time_ms"]) == int(day.open_time_ms[20])
    assert float(trade["entry_price"]) == pytest.approx(entry, rel=1e-12)
    assert float(trade["exit_price"]) == pytest.approx(exit_, rel=1e-12)
    assert float(trade["profit"]) == pytest.approx(0.01 * (entry - exit_) - fees, rel=1e-9)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert (summary["fee_bps"], summary["maker_fee_bps"], summary["taker_fee_bps"]) == (10, 1, 4)
    assert summary["allow_short"] is True
    assert summary["final_equity"] == pytest.approx(10_000 + 0.01 * (entry - exit_) - fees)


def test_the_python_api_takes_the_same_options_and_gives_the_same_trade(
    short_once: str, btc_2023_path: Path, tmp_path: Path
) -> None:
    run = replay_day(
        short_once, btc_2023_path, tmp_path / "out", "--allow-short", "--taker-fee-bps", "4"
    )
    assert_succeeded(run)

    result = backtest(
        short_once,
        btc_2023_path,
        start="2023-03-20",
        end="2023-03-21",
        allow_short=True,
        taker_fee_bps=4,
    )

    result.save(tmp_path / "api", plot=False)
    cli = (tmp_path / "out" / "trades.csv").read_bytes()
    assert (tmp_path / "api" / "trades.csv").read_bytes() == cli
    assert result.summary["allow_short"] is True
    assert result.summary["taker_fee_bps"] == 4
    with pytest.raises(Exception, match="short_once sold short"):
        backtest(short_once, btc_2023_path, start="2023-03-20", end="2023-03-21")


def test_fee_bps_alone_sets_both_fees_in_the_summary(btc_2023_path: Path, tmp_path: Path) -> None:
    run = replay_day("sma_cross", btc_2023_path, tmp_path / "out", "--fee-bps", "7")

    assert_succeeded(run)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert (summary["maker_fee_bps"], summary["taker_fee_bps"]) == (7, 7)
    assert summary["allow_short"] is False
