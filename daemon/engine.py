"""The trading engine for one strategy on one symbol: the bus subscriber shared by live and replay.

Per 1-minute bar, in this order:

1. a pending market order fills at this minute's open (default ``fill_at="next_open"``);
2. a higher-timeframe bucket whose last minute never came is released by this minute and decided
   on; a resulting order fills at the *next* minute's open, because live the releasing minute
   has closed before the decision (its open is a price from before the decision); with
   ``fill_at="close"`` it fills at once at the late bucket's own close;
3. stop loss / take profit are checked against this minute's low / high;
4. the minute is aggregated; when it completes the strategy's bar, the strategy decides, and
   a resulting order fills at the next minute's open (or, with ``fill_at="close"``, now at the
   decision bar's close);
5. equity is marked to market at the close.

Everything time-stamped here carries bar times, never wall-clock time, so a live run and its
replay produce byte-identical trade logs. This module is the replay hot path: no logging,
no allocation on quiet bars, attributes read into locals.
"""

from __future__ import annotations

import math
from typing import Any, final

from barbus.daemon.broker import ExecutionConfig, PaperBroker
from barbus.daemon.events import Bar, ExitReason, Fill, Side, Signal, Trade, interval_ms
from barbus.daemon.portfolio import Portfolio
from barbus.strategies.aggregate import TimeframeAggregator
from barbus.strategies.base import AnyStrategy

__all__ = ["StrategyEngine"]

_NO_ORDER = 0
_BUY = 1
_SELL = -1


@final
class StrategyEngine:
    """Feed 1-minute bars of ``symbol`` to ``strategy``, execute its signals, keep its books."""

    __slots__ = (
        "_aggregator",
        "_broker",
        "_fill_at_close",
        "_pending",
        "_stop_level",
        "_stop_loss_rate",
        "_strategy_on_bar",
        "_take_profit_rate",
        "_target_level",
        "bars",
        "bars_in_market",
        "equity_curve",
        "fills",
        "last_bar",
        "name",
        "orders",
        "portfolio",
        "strategy",
        "symbol",
        "trade_from_ms",
        "unfilled_orders",
    )

    def __init__(
        self,
        strategy: AnyStrategy,
        symbol: str,
        execution: ExecutionConfig,
        *,
        name: str | None = None,
        record_equity: bool = False,
        trade_from_ms: int = 0,
    ) -> None:
        params = strategy.params
        self.strategy = strategy
        self._strategy_on_bar = strategy.on_bar  # bound once: one lookup less per bar
        self.symbol = symbol
        self.name = name or strategy.name
        self.portfolio = Portfolio(execution.starting_cash)
        self._broker = PaperBroker(execution.fee_bps, execution.slippage_bps)
        self._fill_at_close = execution.fill_at == "close"
        self._aggregator = (
            None if params.timeframe == "1m" else TimeframeAggregator(symbol, params.timeframe)
        )
        self._stop_loss_rate = params.stop_loss_pct / 100.0
        self._take_profit_rate = params.take_profit_pct / 100.0
        # Exit levels are fixed at entry; -inf / +inf mean "off" so the per-bar test needs no flag.
        self._stop_level = float("-inf")
        self._target_level = float("inf")
        self._pending = _NO_ORDER
        self.bars = 0
        self.bars_in_market = 0
        self.unfilled_orders = 0
        self.last_bar: Bar | None = None
        self.equity_curve: list[float] | None = [] if record_equity else None
        # Warm-up: bars before this open time update the strategy but never place an order.
        self.trade_from_ms = trade_from_ms
        self.fills: list[Fill] = []
        self.orders = {Side.BUY: 0, Side.SELL: 0}  # market orders placed (signals and exits)

    @property
    def trades(self) -> list[Trade]:
        """Closed round trips, oldest first."""
        return self.portfolio.trades

    def on_bar(self, bar: Bar) -> None:
        """Process one 1-minute bar (the bus handler)."""
        self.last_bar = bar
        portfolio = self.portfolio
        strategy_on_bar = self._strategy_on_bar
        aggregator = self._aggregator
        if self._pending:
            self._execute(self._pending, bar.open, bar.open_time_ms, ExitReason.SIGNAL)
        if aggregator is not None:
            late = aggregator.pending_release(bar)
            if late is not None:
                # Decided only now that this minute has closed: its open is already in the past,
                # so a resulting order waits for the next minute's open, as it would live.
                signal = strategy_on_bar(late, portfolio.size)
                if signal is not None:
                    self._act(signal, late)
        if portfolio.size > 0.0 and (bar.low <= self._stop_level or bar.high >= self._target_level):
            self._exit_at_level(bar)
        decision_bar = bar if aggregator is None else aggregator.add(bar)
        if decision_bar is not None:
            signal = strategy_on_bar(decision_bar, portfolio.size)
            if signal is not None:
                self._act(signal, decision_bar)
        self.bars += 1
        size = portfolio.size
        if size > 0.0:
            self.bars_in_market += 1
        equity_curve = self.equity_curve
        if equity_curve is not None:
            equity_curve.append(portfolio.cash + size * bar.close)

    def _act(self, signal: Signal, decision_bar: Bar) -> None:
        assert self.last_bar is not None  # set first thing in on_bar
        if self.last_bar.open_time_ms < self.trade_from_ms:
            return
        size = self.portfolio.size
        if signal is Signal.BUY and size == 0.0:
            order = _BUY
        elif signal is Signal.SELL and size > 0.0:
            order = _SELL
        else:
            return
        self.orders[Side.BUY if order == _BUY else Side.SELL] += 1
        if self._fill_at_close:
            close_time_ms = decision_bar.open_time_ms + interval_ms(decision_bar.interval)
            self._execute(order, decision_bar.close, close_time_ms, ExitReason.SIGNAL)
        else:
            self._pending = order

    def _exit_at_level(self, bar: Bar) -> None:
        # Within one bar the order of low and high is unknown: assume the worst, stop first.
        # A bar that opens beyond the level fills at the open (a gap), not at the level.
        self.orders[Side.SELL] += 1
        stop = self._stop_level
        if bar.low <= stop:
            self._execute(_SELL, min(bar.open, stop), bar.open_time_ms, ExitReason.STOP_LOSS)
        else:
            target = self._target_level
            self._execute(_SELL, max(bar.open, target), bar.open_time_ms, ExitReason.TAKE_PROFIT)

    def _execute(self, order: int, ref_price: float, time_ms: int, reason: ExitReason) -> None:
        self._pending = _NO_ORDER
        portfolio = self.portfolio
        if order == _BUY:
            fill = self._broker.buy_all_in(
                self.name, self.symbol, ref_price, time_ms, portfolio.cash
            )
            portfolio.apply(fill)
            self.fills.append(fill)
            if self._stop_loss_rate > 0.0:
                self._stop_level = fill.price * (1.0 - self._stop_loss_rate)
            if self._take_profit_rate > 0.0:
                self._target_level = fill.price * (1.0 + self._take_profit_rate)
        else:
            fill = self._broker.sell(
                self.name, self.symbol, ref_price, time_ms, portfolio.size, reason
            )
            portfolio.apply(fill)
            self.fills.append(fill)
            self._stop_level = float("-inf")
            self._target_level = float("inf")

    def finish(self) -> None:
        """End of data: drop an unfillable order, close the position at the last close."""
        if self._pending != _NO_ORDER:
            self.unfilled_orders += 1
            self._pending = _NO_ORDER
        last = self.last_bar
        if last is not None and self.portfolio.size > 0.0:
            self._execute(
                _SELL,
                last.close,
                last.open_time_ms + interval_ms(last.interval),
                ExitReason.END_OF_DATA,
            )
            if self.equity_curve:
                self.equity_curve[-1] = self.portfolio.cash

    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable state to resume exactly: strategy, open bucket, account, order."""
        return {
            "strategy": self.strategy.snapshot(),
            "aggregator": None if self._aggregator is None else self._aggregator.snapshot(),
            "portfolio": self.portfolio.snapshot(),
            "pending": self._pending,
            "stop_level": self._stop_level,
            "target_level": self._target_level,
            "bars": self.bars,
            "bars_in_market": self.bars_in_market,
            "unfilled_orders": self.unfilled_orders,
            "last_bar": None if self.last_bar is None else list(self.last_bar),
            "trade_from_ms": self.trade_from_ms,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`snapshot` taken on an engine built with the same arguments."""
        self.strategy.restore(state["strategy"])
        if self._aggregator is not None:
            self._aggregator.restore(state["aggregator"])
        self.portfolio.restore(state["portfolio"])
        pending = int(state["pending"])
        stop_level = float(state["stop_level"])
        target_level = float(state["target_level"])
        if pending not in (_NO_ORDER, _BUY, _SELL) or (
            math.isnan(stop_level) or math.isnan(target_level)
        ):
            raise ValueError(f"pending {pending}, stop {stop_level}, target {target_level}")
        self._pending = pending
        self._stop_level = stop_level
        self._target_level = target_level
        self.bars = int(state["bars"])
        self.bars_in_market = int(state["bars_in_market"])
        self.unfilled_orders = int(state["unfilled_orders"])
        last = state["last_bar"]
        self.last_bar = None if last is None else Bar(*last)
        self.trade_from_ms = int(state["trade_from_ms"])
