"""What a replay writes and prints (``replay.outputs``): one strategy and a whole config alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from barbus.daemon.core.events import parse_utc_ms
from barbus.daemon.core.series import BarSeries
from barbus.replay.loader import bundled_data_path, load_bars
from barbus.replay.outputs import (
    format_figure,
    format_portfolio_report,
    format_report,
    write_outputs,
    write_portfolio_outputs,
)
from barbus.replay.portfolio import EngineSpec, PortfolioConfig, run_portfolio
from barbus.replay.reports.run_chart import run_figure
from barbus.replay.runner import ReplayConfig, run_replay

START, END = parse_utc_ms("2025-06-02"), parse_utc_ms("2025-06-05")


@pytest.fixture(scope="module")
def bundled() -> BarSeries:
    return load_bars(bundled_data_path())


def test_format_figure_writes_n_a_for_an_undefined_figure_and_the_format_otherwise() -> None:
    assert format_figure(None) == "n/a"
    assert format_figure(None, "+.2f", " %") == "n/a"
    assert format_figure(1.005) == "1.00"  # 1.005 is 1.00499999... in binary
    assert format_figure(-0.5, "+.2f", " %") == "-0.50 %"
    assert format_figure(1234.5, "+,.2f") == "+1,234.50"


def test_a_config_of_one_strategy_writes_the_trades_csv_of_a_lone_replay(
    tmp_path: Path, bundled: BarSeries
) -> None:
    lone = run_replay(ReplayConfig("sma_cross", start_ms=START, end_ms=END), series=bundled)
    config = PortfolioConfig(
        engines=(EngineSpec("sma_cross", "sma_cross", bundled.symbol),), start_ms=START, end_ms=END
    )
    together = run_portfolio(config, {bundled.symbol: bundled})

    one = write_outputs(lone, tmp_path / "one")
    many = write_portfolio_outputs(together, tmp_path / "many")

    assert lone.trades, "the period must hold trades for the comparison to mean something"
    assert one["trades"].read_bytes() == many["trades"].read_bytes()
    assert [p.name for p in many.values()] == ["trades.csv", "summary.json"]
    facts = json.loads(many["summary"].read_text(encoding="utf-8"))
    (account,) = facts["accounts"]
    profit = sum(t.profit for t in lone.trades)
    assert account["final_cash"] == pytest.approx(10_000.0 + profit, rel=1e-12)
    assert account["return_pct"] == pytest.approx(profit / 100.0, rel=1e-9)
    assert facts["strategies"][0]["trades"] == len(lone.trades)
    report = format_portfolio_report(together)
    assert f"via sma_cross: {len(lone.trades)} trades, realised {profit:+,.2f}" in report


def test_the_report_and_the_chart_title_write_an_undefined_sharpe_alike(
    bundled: BarSeries,
) -> None:
    config = ReplayConfig("sma_cross", start_ms=START, end_ms=START + 12 * 3_600_000)
    result = run_replay(config, series=bundled)

    title = run_figure(result).get_suptitle()

    assert result.stats.sharpe is None
    assert result.stats.sortino is None
    assert "sharpe        n/a   sortino n/a" in format_report(result)
    assert "Sharpe n/a   Sortino n/a" in title
