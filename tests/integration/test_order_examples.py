"""The order examples, loaded by path as user strategies are: the contract check, a flip's numbers
by hand, the limit example's fills against the fill rules on real data, the shared-account
config through ``run_portfolio``, and ``barbus replay --strategy FILE`` for the limit example."""

from __future__ import annotations

import csv
import itertools
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from barbus.daemon.config import load_config
from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.engine import StrategyEngine
from barbus.daemon.core.events import Bar, Direction, ExitReason, Fill, OrderEvent, Side, Trade
from barbus.daemon.core.series import BarSeries
from barbus.daemon.core.session import Session
from barbus.replay.loader import load_bars
from barbus.replay.portfolio import AccountSpec, EngineSpec, PortfolioConfig, run_portfolio
from barbus.strategies import create_strategy, strategy_source
from barbus.strategies.testing import check_strategy
from tests import reference
from tests.conftest import BTC_2025, DATA_DIR, REPO_ROOT
from tests.kit.processes import barbus

EXAMPLES = REPO_ROOT / "examples"
EMA_LONG_SHORT = f"{EXAMPLES / 'strategies' / 'ema_long_short.py'}:EmaLongShort"
LIMIT_DIP = f"{EXAMPLES / 'strategies' / 'limit_dip.py'}:LimitDip"
ETH_2025 = DATA_DIR / "ETHUSDT_1m_2025-05-20_2025-08-18.csv.gz"


@pytest.fixture(scope="module")
def btc() -> BarSeries:
    return load_bars(BTC_2025)


@pytest.mark.parametrize("spec", [EMA_LONG_SHORT, LIMIT_DIP])
def test_the_examples_pass_the_contract_check(spec: str) -> None:
    cls = strategy_source(spec).cls
    decisions = check_strategy(cls)
    assert decisions
    assert check_strategy(cls, {"timeframe": "15m"})


def engine_events(
    spec: str, bars: list[Bar], execution: ExecutionConfig, **params: float
) -> tuple[StrategyEngine, list[object]]:
    session = Session()
    engine = session.add(
        StrategyEngine(create_strategy(strategy_source(spec), params), "BTCUSDT", execution)
    )
    session.run([bars])
    events: list[object] = list(session.drain())
    assert not session.bus.halted
    return engine, events


def test_ema_long_short_flips_at_one_fill_sized_by_hand(btc: BarSeries) -> None:
    bars = btc.to_bars()[:4000]
    execution = ExecutionConfig(fee_bps=10.0, slippage_bps=5.0, allow_short=True)
    fee, slip, fraction = 0.001, 0.0005, 0.5
    _, events = engine_events(EMA_LONG_SHORT, bars, execution)

    # The crosses, from a reference EMA (seeded with the SMA, as the indicator is).
    closes = np.array([b.close for b in bars])
    diff = reference.ema(closes, 12) - reference.ema(closes, 26)
    crosses = [
        i
        for i in range(1, len(bars) - 1)
        if (diff[i] > 0 and diff[i - 1] <= 0) or (diff[i] < 0 and diff[i - 1] >= 0)
    ]
    fills_at: dict[int, list[Fill]] = defaultdict(list)
    for event in events:
        if isinstance(event, Fill):
            fills_at[event.time_ms].append(event)
    # Flat until the first cross; then one fill group at the open after every cross.
    assert sorted(fills_at) == [bars[i + 1].open_time_ms for i in crosses]
    assert len(crosses) >= 10

    cash, held = 10_000.0, 0.0
    for number, i in enumerate(crosses):
        ref = bars[i + 1].open  # the fill's reference price: the next minute's open
        up = diff[i] > 0
        price = ref * (1.0 + slip) if up else ref * (1.0 - slip)
        equity = cash + held * ref  # before fees and slippage
        target = (fraction if up else -fraction) * equity / ref
        group = fills_at[bars[i + 1].open_time_ms]
        if number == 0:
            [opened] = group
        else:
            closed, opened = group  # the old position closed, then the new one opened
            assert closed.price == opened.price
            assert closed.size == pytest.approx(abs(held), rel=1e-12)
        assert opened.side is (Side.BUY if up else Side.SELL)
        assert opened.price == pytest.approx(price, rel=1e-15)
        assert opened.size == pytest.approx(abs(target), rel=1e-12)
        for fill in group:  # book the fills by hand
            notional = fill.size * fill.price
            assert fill.fee == pytest.approx(notional * fee, rel=1e-12)
            cash += (-notional if fill.side is Side.BUY else notional) - fill.fee
        held = target
    directions = [e.direction for e in events if isinstance(e, Trade)]
    assert set(directions) == {Direction.LONG, Direction.SHORT}
    assert all(a != b for a, b in itertools.pairwise(directions))


@pytest.mark.parametrize(
    ("stop_pct", "take_pct", "stopped_in_entry_minute"),
    [(1.0, 1.5, False), (0.1, 0.4, True)],
    ids=["wide", "tight"],
)
def test_limit_dip_trades_obey_the_fill_rules_on_real_data(
    btc: BarSeries, stop_pct: float, take_pct: float, stopped_in_entry_minute: bool
) -> None:
    bars = btc.to_bars()
    by_time = {b.open_time_ms: b for b in bars}
    execution = ExecutionConfig(fee_bps=10.0, slippage_bps=5.0, maker_fee_bps=2.0)
    params = {
        "dip_pct": 0.4,
        "good_for_bars": 3,
        "stop_loss_pct": stop_pct,
        "take_profit_pct": take_pct,
    }
    engine, events = engine_events(LIMIT_DIP, bars, execution, **params)

    placed = {e.order_id: e for e in events if isinstance(e, OrderEvent) and e.event == "placed"}
    fills = [e for e in events if isinstance(e, Fill)]
    entries = [f for f in fills if f.side is Side.BUY]
    exits = [f for f in fills if f.side is Side.SELL]
    assert len(entries) >= 20
    same_minute = 0
    assert len(exits) == len(entries)  # every entry closed by its bracket (one trade each)
    for entry, exit_ in zip(entries, exits, strict=True):
        order = placed[entry.order_id]
        assert order.order_type == "limit"
        limit = order.price
        assert limit is not None
        minute = by_time[entry.time_ms]
        assert entry.time_ms >= order.time_ms  # never in or before the decision minute
        assert entry.time_ms < order.time_ms + 3 * 5 * 60_000  # good for 3 bars of 5m
        assert minute.low <= limit
        assert entry.price == min(minute.open, limit)  # at the limit or a lower open
        assert minute.low <= entry.price <= minute.high
        assert entry.reason is ExitReason.LIMIT
        assert entry.fee == pytest.approx(entry.size * entry.price * 0.0002, rel=1e-12)
        # The bracket exit: a taker fill at its level (or a gap open), minus slippage.
        out = by_time.get(exit_.time_ms)
        if exit_.reason is ExitReason.END_OF_DATA:
            continue
        assert out is not None
        assert exit_.time_ms >= entry.time_ms
        if exit_.time_ms == entry.time_ms:  # stopped out in the entry's minute: at the level
            level = entry.price * (1.0 - stop_pct / 100.0)
            assert exit_.reason is ExitReason.STOP_LOSS
            assert out.low <= level
            assert exit_.price == pytest.approx(level * (1.0 - 0.0005), rel=1e-15)
            same_minute += 1
        elif exit_.reason is ExitReason.STOP_LOSS:
            level = entry.price * (1.0 - stop_pct / 100.0)
            assert out.low <= level
            assert exit_.price == pytest.approx(min(out.open, level) * (1.0 - 0.0005), rel=1e-15)
        else:
            assert exit_.reason is ExitReason.TAKE_PROFIT
            level = entry.price * (1.0 + take_pct / 100.0)
            assert out.high >= level
            assert out.low > entry.price * (
                1.0 - stop_pct / 100.0
            )  # both in one minute would be the stop
            assert exit_.price == pytest.approx(max(out.open, level) * (1.0 - 0.0005), rel=1e-15)
        assert exit_.fee == pytest.approx(exit_.size * exit_.price * 0.001, rel=1e-12)
    assert (same_minute > 0) is stopped_in_entry_minute
    # While long, no limit works: the strategy places none and the last one filled.
    for entry, exit_ in zip(entries, exits, strict=True):
        between = [p for p in placed.values() if entry.time_ms < p.time_ms <= exit_.time_ms]
        assert between == []
    assert engine.position.size == 0.0
    assert math.isfinite(engine.account.cash)


def test_the_shared_account_config_runs_through_run_portfolio_on_btc_and_eth() -> None:
    config = load_config(EXAMPLES / "shared_account.toml")
    assert len(config.accounts) == 1
    [account] = config.accounts
    assert {s.symbol for s in config.strategies} == {"BTCUSDT", "ETHUSDT"}
    assert all(s.account == account.name for s in config.strategies)
    portfolio = PortfolioConfig(
        engines=tuple(
            EngineSpec(s.name, s.source, s.symbol, s.params, account=s.account)
            for s in config.strategies
        ),
        accounts=(AccountSpec(account.name, account.cash, account.allow_short),),
        execution=config.execution,
    )
    series = {"BTCUSDT": load_bars(BTC_2025), "ETHUSDT": load_bars(ETH_2025)}
    result = run_portfolio(portfolio, series)

    assert [e.halted for e in result.engines] == [None] * len(config.strategies)
    for outcome in result.engines:
        assert outcome.trades, f"{outcome.name} never traded"
        assert {t.strategy for t in outcome.trades} == {outcome.name}
        assert {t.symbol for t in outcome.trades} == {outcome.symbol}
        assert outcome.position == 0.0
    ema = next(e for e in result.engines if e.name == "ema-eth")
    assert {t.direction for t in ema.trades} == {Direction.LONG, Direction.SHORT}
    # One cash for all: it ends where the trades' profits, summed over every strategy, put it.
    start, end = result.account_cash[account.name]
    assert start == account.cash
    total = math.fsum(t.profit for e in result.engines for t in e.trades)
    assert end == pytest.approx(account.cash + total, rel=1e-9)
    assert result.account_equity[account.name] == pytest.approx(end, rel=1e-12)


def test_barbus_replay_runs_the_limit_example_by_path(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = barbus(
        "replay", "--strategy", LIMIT_DIP, "--param", "dip_pct=0.4", "--out", out, "--no-plot"
    )

    assert done.returncode == 0, done.stderr
    with (out / "trades.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows
    assert {row["direction"] for row in rows} == {"long"}
    assert {row["exit_reason"] for row in rows} <= {"stop_loss", "take_profit", "end_of_data"}


def test_a_short_without_allow_short_ends_a_replay_with_one_line_naming_strategy_and_bar(
    tmp_path: Path,
) -> None:
    done = barbus("replay", "--strategy", EMA_LONG_SHORT, "--out", tmp_path / "out", "--no-plot")

    assert done.returncode == 2
    [line] = [x for x in done.stderr.splitlines() if x.startswith("barbus: error:")]
    assert "strategy ema_long_short sold short on the BTCUSDT 1m bar at 2025-05-20T" in line
    assert "does not allow shorts" in line
    assert not (tmp_path / "out" / "trades.csv").exists()
