"""``barbus replay --config``: a whole daemon config (strategies in order, shared accounts) on
one data file per symbol, through the real command line.

References are hand bookkeeping on the written trades.csv (cash moves only by the trades'
profits once every position is closed; all-in strategies on one account never hold at once)
and the single-strategy ``barbus replay`` for a strategy on an account of its own.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_cli_replay import assert_succeeded, barbus
from tests.integration.test_cli_replay_shorts import SHORT_ONCE

REPO_ROOT = Path(__file__).resolve().parents[2]
BTC = REPO_ROOT / "replay" / "data" / "BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz"
ETH = REPO_ROOT / "replay" / "data" / "ETHUSDT_1m_2025-05-20_2025-08-18.csv.gz"
PERIOD = ("--start", "2025-06-01", "--end", "2025-06-08")
FEED = """
[feed]
rest_url = "http://127.0.0.1:8765"
ws_url = "ws://127.0.0.1:8765"
symbols = ["BTCUSDT", "ETHUSDT"]
"""
SHARED = (
    FEED
    + """
[[account]]
name = "shared"
cash = 20000

[[strategy]]
name = "sma-btc"
strategy = "sma_cross"
symbol = "BTCUSDT"
account = "shared"

[[strategy]]
name = "sma-eth"
strategy = "sma_cross"
symbol = "ETHUSDT"
account = "shared"
params = { fast = 10, slow = 40 }

[[strategy]]
name = "meta-btc"
strategy = "metatrend"
symbol = "BTCUSDT"
capital = 5000
"""
)


def trades_of(out: Path) -> list[dict[str, str]]:
    with (out / "trades.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def summary_of(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("config")
    config = folder / "shared.toml"
    config.write_text(SHARED, encoding="utf-8")
    run = barbus(
        "replay", "--config", config, "--data", BTC, "--data", ETH, *PERIOD, out=folder / "out"
    )
    assert_succeeded(run)
    assert "strategy      sma-btc" in run.stdout
    assert "account       shared" in run.stdout
    return folder / "out"


def test_every_strategy_trades_and_its_summary_adds_up(shared_run: Path) -> None:
    trades = trades_of(shared_run)
    summary = summary_of(shared_run)
    by_strategy: dict[str, list[float]] = defaultdict(list)
    for trade in trades:
        by_strategy[trade["strategy"]].append(float(trade["profit"]))

    assert [s["name"] for s in summary["strategies"]] == ["sma-btc", "sma-eth", "meta-btc"]
    for strategy in summary["strategies"]:
        profits = by_strategy[strategy["name"]]
        assert profits, strategy["name"]
        assert strategy["trades"] == len(profits)
        assert strategy["realised_pnl"] == pytest.approx(math.fsum(profits), rel=1e-9)
        assert strategy["final_position"] == 0.0
    assert {t["symbol"] for t in trades if t["strategy"] == "sma-eth"} == {"ETHUSDT"}
    exits = [int(t["exit_time_ms"]) for t in trades]
    assert exits == sorted(exits)


def test_account_cash_moves_by_its_strategies_profits_and_return_is_on_its_start(
    shared_run: Path,
) -> None:
    trades = trades_of(shared_run)
    accounts = {a["name"]: a for a in summary_of(shared_run)["accounts"]}
    members = {"shared": {"sma-btc", "sma-eth"}, "meta-btc": {"meta-btc"}}

    assert set(accounts) == set(members)
    for name, strategies in members.items():
        account = accounts[name]
        pnl = math.fsum(float(t["profit"]) for t in trades if t["strategy"] in strategies)
        assert set(account["strategies"]) == strategies
        assert account["starting_cash"] == (20_000 if name == "shared" else 5_000)
        assert account["final_cash"] == pytest.approx(account["starting_cash"] + pnl, rel=1e-9)
        assert account["final_equity"] == account["final_cash"]  # everything closed at the end
        start = 20_000 if name == "shared" else 5_000
        expected = 100 * (account["final_equity"] - start) / start
        assert account["return_pct"] == pytest.approx(expected, rel=1e-9)


def test_all_in_strategies_on_one_account_never_hold_at_the_same_time(shared_run: Path) -> None:
    """The first buys with all the shared cash; the other's buy finds none free (rejected)."""
    held = [
        (int(t["entry_time_ms"]), int(t["exit_time_ms"]), t["strategy"])
        for t in trades_of(shared_run)
        if t["strategy"] in ("sma-btc", "sma-eth")
    ]
    held.sort()
    for (_, exit_ms, who), (entry_ms, _, other) in itertools.pairwise(held):
        assert entry_ms >= exit_ms, f"{who} and {other} both held at {entry_ms}"
    assert {who for _, _, who in held} == {"sma-btc", "sma-eth"}


def test_a_strategy_on_its_own_account_trades_as_barbus_replay_does_alone(
    shared_run: Path, tmp_path: Path
) -> None:
    alone = barbus(
        "replay",
        "--strategy",
        "metatrend",
        "--data",
        BTC,
        *PERIOD,
        "--cash",
        "5000",
        "--name",
        "meta-btc",
        "--no-plot",
        out=tmp_path / "alone",
    )

    assert_succeeded(alone)
    mine = [t for t in trades_of(shared_run) if t["strategy"] == "meta-btc"]
    assert mine == trades_of(tmp_path / "alone")


def test_a_halting_strategy_exits_2_with_one_line_naming_it_and_the_bar(tmp_path: Path) -> None:
    (tmp_path / "short_once.py").write_text(SHORT_ONCE, encoding="utf-8")
    config = tmp_path / "short.toml"
    table = """
[[account]]
name = "pot"
cash = 10000
{shorts}
[[strategy]]
name = "sma-btc"
strategy = "sma_cross"
symbol = "BTCUSDT"
account = "pot"

[[strategy]]
name = "shorty"
strategy = "short_once.py:ShortOnce"
symbol = "ETHUSDT"
account = "pot"
"""
    config.write_text(FEED + table.format(shorts=""), encoding="utf-8")
    args = ("replay", "--config", config, "--data", BTC, "--data", ETH, *PERIOD)

    refused = barbus(*args, out=tmp_path / "refused")
    config.write_text(FEED + table.format(shorts="allow_short = true"), encoding="utf-8")
    allowed = barbus(*args, out=tmp_path / "allowed")

    assert refused.code == 2
    errors = [line for line in refused.stderr.splitlines() if "barbus.cache" not in line]
    assert len(errors) == 1, refused.stderr
    assert errors[0].startswith("barbus: error: strategy shorty sold short on the ETHUSDT 1m bar")
    assert "2025-06-01T00:09:00Z" in errors[0]
    assert not (tmp_path / "refused" / "trades.csv").exists()
    assert_succeeded(allowed)
    shorts = [t for t in trades_of(tmp_path / "allowed") if t["strategy"] == "shorty"]
    assert [t["direction"] for t in shorts] == ["short"]
    assert summary_of(tmp_path / "allowed")["accounts"][0]["allow_short"] is True


def test_execution_flags_override_the_configs_execution(tmp_path: Path) -> None:
    config = tmp_path / "one.toml"
    config.write_text(
        FEED.replace('"BTCUSDT", "ETHUSDT"', '"BTCUSDT"')
        + "[execution]\nfee_bps = 20\nmaker_fee_bps = 3\n\n"
        + '[[strategy]]\nname = "sma"\nstrategy = "sma_cross"\nsymbol = "BTCUSDT"\n',
        encoding="utf-8",
    )
    from_config = barbus("replay", "--config", config, "--data", BTC, *PERIOD, out=tmp_path / "a")
    flags = barbus(
        "replay",
        "--config",
        config,
        "--data",
        BTC,
        *PERIOD,
        "--fee-bps",
        "0",
        "--slippage-bps",
        "0",
        out=tmp_path / "b",
    )

    assert_succeeded(from_config)
    assert_succeeded(flags)
    a, b = summary_of(tmp_path / "a"), summary_of(tmp_path / "b")
    assert (a["fee_bps"], a["maker_fee_bps"], a["taker_fee_bps"]) == (20, 3, 20)
    assert (b["fee_bps"], b["maker_fee_bps"], b["taker_fee_bps"], b["slippage_bps"]) == (0, 0, 0, 0)
    for trade in trades_of(tmp_path / "b"):
        assert float(trade["entry_fee"]) == float(trade["exit_fee"]) == 0.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--strategy", "sma_cross"), "argument --strategy: not allowed with argument --config"),
        (("--param", "fast=5"), "--param does not go with --config"),
        (("--allow-short",), "--allow-short does not go with --config"),
        (("--cash", "5"), "--cash does not go with --config"),
    ],
)
def test_one_strategy_options_with_config_are_one_line_errors(
    extra: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    config = tmp_path / "shared.toml"
    config.write_text(SHARED, encoding="utf-8")

    run = barbus("replay", "--config", config, "--data", BTC, *extra)

    assert run.code == 2
    assert message in run.stderr.splitlines()[-1]
    assert "Traceback" not in run.stderr


def test_a_strategy_whose_symbol_has_no_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "shared.toml"
    config.write_text(SHARED, encoding="utf-8")

    run = barbus("replay", "--config", config, "--data", BTC, *PERIOD)

    assert run.code == 2
    assert "strategy sma-eth trades ETHUSDT: no data for it (BTCUSDT)" in run.stderr


def test_account_equity_curves_start_at_the_cash_end_at_the_equity_and_match_a_lone_replay(
    shared_run: Path,
) -> None:
    """The curves are rebuilt from fills after the run; the lone strategy's must equal the
    engine's own mark-to-market curve of ``backtest``, and every curve must start at the
    account's cash and end at its final equity (the summary's books)."""
    from barbus import backtest
    from barbus.daemon.config import load_config
    from barbus.replay import portfolio
    from barbus.replay.cache import BarCache

    assert (shared_run / "equity.png").stat().st_size > 10_000
    daemon = load_config(shared_run.parent / "shared.toml")
    cache = BarCache()
    config = portfolio.PortfolioConfig(
        engines=tuple(
            portfolio.EngineSpec(s.name, s.source, s.symbol, s.params, s.account, s.capital)
            for s in daemon.strategies
        ),
        accounts=tuple(portfolio.AccountSpec(a.name, a.cash) for a in daemon.accounts),
        start_ms=1_748_736_000_000,  # 2025-06-01
        end_ms=1_749_340_800_000,  # 2025-06-08
    )
    result = portfolio.run_portfolio(
        config, {"BTCUSDT": cache.load(BTC), "ETHUSDT": cache.load(ETH)}
    )
    marks, curves = portfolio.account_equity(result)
    alone = backtest("metatrend", BTC, start="2025-06-01", end="2025-06-08", starting_cash=5000)

    accounts = {a["name"]: a for a in summary_of(shared_run)["accounts"]}
    for name, curve in curves.items():
        assert curve[0] == accounts[name]["starting_cash"]
        assert curve[-1] == pytest.approx(accounts[name]["final_equity"], rel=1e-12)
    assert len(marks) == len(alone.equity)  # both symbols have every minute of the week
    assert curves["meta-btc"] == pytest.approx(alone.equity.to_numpy(), rel=1e-12)
    assert (marks[1:] - marks[:-1] == 60_000).all()
