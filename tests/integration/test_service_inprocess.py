"""The daemon in-process: a scripted feed and a temporary SQLite file passed into ``Daemon``.

``Daemon.run`` runs in the test's event loop until the scripted feed ends (a live feed never
does: then the run returns 0 as on a stop). What it committed is read back from the state
file, and the metrics are scraped from its registry without HTTP; both are compared with hand
arithmetic on the scripted prices (fee 10 bps, slippage 5 bps, a Signal fills at the next
minute's open, all in).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from barbus.daemon.config import load_config
from barbus.daemon.core.events import MINUTE_MS, Bar, format_time_ms
from barbus.daemon.feeds.binance_config import FeedConfig, FeedCounters
from barbus.daemon.service import Daemon
from barbus.daemon.state import StateStore
from tests.factories import T0_MS, make_bar
from tests.kit.probes import metric_samples, sample
from tests.kit.scenario import Engine, tuned, write_config

STRATEGY = '''
"""Buys on its 2nd bar and sells on its 4th: one round trip, two fills."""

from __future__ import annotations

from typing import ClassVar

from barbus.daemon.core.events import Bar, Signal
from barbus.strategies.base import BaseParams, Strategy


class OneTrip(Strategy[BaseParams]):
    name: ClassVar[str] = "one_trip"
    params_type: ClassVar[type[BaseParams]] = BaseParams

    def __init__(self, params: BaseParams) -> None:
        super().__init__(params)
        self.seen = 0

    def on_bar(self, bar: Bar, position: float) -> Signal | None:
        self.seen += 1
        return {2: Signal.BUY, 4: Signal.SELL}.get(self.seen)
'''

# Six minutes; the buy fills at minute 2's open, the sell at minute 4's.
OPENS = (100.0, 101.0, 102.0, 103.0, 104.0, 105.0)
CLOSES = (101.0, 102.0, 103.0, 104.0, 105.0, 106.0)
FEE, SLIP, CASH = 10 / 10_000, 5 / 10_000, 10_000.0


class ScriptedFeed:
    """A feed that delivers the given batches, one per await, then ends; REST has no bars."""

    def __init__(self, batches: Sequence[Sequence[Bar]]) -> None:
        self.script = [list(b) for b in batches]
        self.counters = FeedCounters(connected=True)
        self.last_open_ms: dict[str, int | None] = {}
        self.last_close: dict[str, float] = {}
        self.received_monotonic: dict[str, float] = {}
        self.stopped = False

    async def batches(self) -> AsyncIterator[Sequence[Bar]]:
        for batch in self.script:
            for bar in batch:
                self.counters.count(bar.symbol, "live", 1)
                self.last_open_ms[bar.symbol] = bar.open_time_ms
            yield batch

    async def fetch_recent(self, symbol: str, count: int) -> list[Bar]:
        return []

    async def stop(self) -> None:
        self.stopped = True


def _daemon(tmp_path: Path) -> tuple[Daemon, ScriptedFeed, Path]:
    (tmp_path / "one_trip.py").write_text(STRATEGY, encoding="utf-8")
    engine = Engine("trip", f"{tmp_path / 'one_trip.py'}:OneTrip")
    path = write_config(
        tmp_path / "barbus.toml",
        sim_port=1,
        http_port=0,
        state=tmp_path / "state.sqlite",
        engines=(engine,),
    )
    config = load_config(tuned(path, warmup_bars=0))
    bars = [
        make_bar(c, minute=i, open=o) for i, (o, c) in enumerate(zip(OPENS, CLOSES, strict=True))
    ]
    feed = ScriptedFeed([bars[:2], bars[2:3], bars[3:]])

    def make_feed(settings: FeedConfig, last_open_ms: dict[str, int | None]) -> ScriptedFeed:
        assert last_open_ms == {"BTCUSDT": None}  # a new state file: nothing recorded
        return feed

    state = StateStore(config.state_path, exclusive=True)
    return Daemon(config, store=state, feed=make_feed), feed, config.state_path


def _round_trip() -> tuple[float, float, float]:
    """Size, cash after the sell, and the trade's profit, by hand."""
    buy = OPENS[2] * (1 + SLIP)
    size = CASH / (1 + FEE) / buy  # all in: notional + fee = the cash
    proceeds = size * OPENS[4] * (1 - SLIP)
    cash = proceeds * (1 - FEE)
    return size, cash, cash - CASH


async def test_a_scripted_feed_runs_to_completion_and_its_trade_is_committed(
    tmp_path: Path,
) -> None:
    daemon, feed, state_path = _daemon(tmp_path)

    assert await daemon.run() == 0

    assert feed.stopped  # the feed is closed on the way out
    size, cash, profit = _round_trip()
    store = StateStore(state_path)
    try:
        trades = store.trades("trip")
        recorded = [bar for bar, _ in store.bars("BTCUSDT")]
        fills = store.fill_count()
    finally:
        store.close()
    assert [b.close for b in recorded] == list(CLOSES)
    assert fills == 2
    assert len(trades) == 1
    (trade,) = trades
    assert (trade.entry_time_ms, trade.exit_time_ms) == (
        recorded[2].open_time_ms,
        recorded[4].open_time_ms,
    )
    assert trade.entry_price == pytest.approx(OPENS[2] * (1 + SLIP), rel=1e-12)
    assert trade.exit_price == pytest.approx(OPENS[4] * (1 - SLIP), rel=1e-12)
    assert trade.size == pytest.approx(size, rel=1e-12)
    assert trade.profit == pytest.approx(profit, rel=1e-9)

    status = daemon.view.status()
    assert status["bars_processed"] == 6
    assert status["warm"] is True
    (strategy,) = status["strategies"]
    assert strategy["trades"] == 1
    assert strategy["position"] == 0.0
    assert strategy["cash"] == pytest.approx(cash, rel=1e-12)
    assert strategy["realised_pnl"] == pytest.approx(profit, rel=1e-9)
    assert strategy["last_bar"] == format_time_ms(T0_MS + 5 * MINUTE_MS)


async def test_the_collector_scraped_in_process_matches_hand_arithmetic(tmp_path: Path) -> None:
    daemon, _, _ = _daemon(tmp_path)
    assert await daemon.run() == 0

    samples = metric_samples(generate_latest(daemon.metrics.registry).decode())
    _, cash, profit = _round_trip()
    # Counters: one buy and one sell fill, each a signal (an order counted at its fill).
    for side in ("buy", "sell"):
        assert sample(samples, "barbus_fills_total", strategy="trip", side=side) == 1
        assert sample(samples, "barbus_orders_total", strategy="trip", side=side) == 1
    assert sample(samples, "barbus_bus_subscriber_errors_total", strategy="trip") == 0
    assert sample(samples, "barbus_bars_processed_total", symbol="BTCUSDT", source="live") == 6
    # Gauges: flat after the sell, so equity is the cash and the profit is the trade's.
    assert sample(samples, "barbus_position_units", strategy="trip") == 0.0
    assert math.isclose(sample(samples, "barbus_cash_quote", strategy="trip"), cash, rel_tol=1e-12)
    assert math.isclose(
        sample(samples, "barbus_equity_quote", strategy="trip"), cash, rel_tol=1e-12
    )
    assert math.isclose(sample(samples, "barbus_pnl_quote", strategy="trip"), profit, rel_tol=1e-9)
    assert sample(samples, "barbus_open_orders", strategy="trip") == 0
    assert sample(samples, "barbus_strategy_halted", strategy="trip") == 0
