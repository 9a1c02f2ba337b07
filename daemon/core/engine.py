"""The trading engine for one strategy on one symbol: the bus subscriber shared by live and replay.

Per input bar, in this order (a "minute" below is one input bar: a 1-minute bar, or a bar of
the coarser interval the data has; see the README on the realism that costs):

1. orders decided on an earlier bar fill at this minute's open: the signal (BUY/SELL) first,
   then market orders in the order they were placed (default ``fill_at="next_open"``); orders
   whose ``good_for_bars`` ran out are cancelled (expired);
2. the minute is aggregated (one call); a higher-timeframe bucket whose last minute never came
   is released by this minute and decided on; a resulting order fills at the *next* minute's
   open, because live the releasing minute has closed before the decision (its open is a price
   from before the decision); with ``fill_at="close"`` a market order fills at once at the late
   bucket's own close;
3. the position's bracket (stop loss, take profit, trailing stop) is checked against this
   minute's low / high, then resting limit and stop orders in the order they were placed; a
   bracket that such a fill sets has its stop checked against the same minute (pessimistic);
4. when the minute completed the strategy's bar, the strategy decides on it; its
   orders work from the next minute (with ``fill_at="close"`` a market order fills now, at the
   decision bar's close);
5. equity is marked to market at the close.

Fill rules (pessimistic, written in the README): a buy limit fills on the first later minute
whose low <= the limit, at min(open, limit), as a maker without slippage; a buy stop triggers
when the high >= the stop and fills at max(open, stop) plus slippage, as a taker; sells mirror
these. A bracket level is a stop order: both levels inside one minute means the stop loss; a
minute that opens beyond a level fills at its open.

What happened goes into :attr:`StrategyEngine.outbox` (orders placed, filled, cancelled,
rejected; trades closed), which the daemon drains and commits with each bar. Everything
time-stamped here carries bar times, never wall-clock time, so a live run and its replay produce
byte-identical trade logs. This module is the replay hot path: no logging, no allocation on
quiet bars, attributes read into locals, and a strategy that only returns signals never touches
the order book. What is not per bar lives beside it: the snapshot format in
:mod:`~barbus.daemon.core.engine_snapshot`, order sizing in :mod:`~barbus.daemon.core.sizing`.
"""

from __future__ import annotations

import math
from array import array
from typing import Any, final

from barbus.daemon.core.account import Account, Position
from barbus.daemon.core.aggregate import TimeframeAggregator
from barbus.daemon.core.broker import ExecutionConfig, PaperBroker
from barbus.daemon.core.engine_snapshot import SNAPSHOT_VERSION, restore_engine, snapshot_engine
from barbus.daemon.core.errors import StrategyError
from barbus.daemon.core.events import (
    Bar,
    EngineEvent,
    ExitReason,
    OrderEvent,
    Side,
    Signal,
    Trade,
    interval_ms,
)
from barbus.daemon.core.orders import Cancel, Order, OrderKind
from barbus.daemon.core.sizing import (
    MIN_FILL,
    SAME_SIZE,
    TARGET_BAND,
    affordable_units,
    order_units,
    sells_short,
)
from barbus.daemon.core.strategy import AnyStrategy
from barbus.daemon.core.working import SIGNAL_BUY, SIGNAL_NONE, SIGNAL_SELL, WorkingOrder

# SNAPSHOT_VERSION: the kernel's public name for the snapshot format, kept where it was.
__all__ = ["SNAPSHOT_VERSION", "StrategyEngine"]

_INF = math.inf


@final
class StrategyEngine:
    """Feed input bars of ``symbol`` to ``strategy``, execute its decisions, keep its books.

    ``account`` is shared with other engines when given; by default the engine opens one of its
    own with the execution's starting cash and ``allow_short``. ``record_equity`` keeps the
    account's cash plus this engine's position at every close: the equity of an account of its
    own (on a shared account the session's owner values the account, see replay.portfolio).
    """

    __slots__ = (
        "_aggregator",
        "_bar_ms",
        "_broker",
        "_fill_at_close",
        "_next_order_id",
        "_pending",
        "_stop_level",
        "_stop_loss_rate",
        "_strategy_on_bar",
        "_take_profit_rate",
        "_target_level",
        "_timeframe_ms",
        "_trail_extreme",
        "_trail_rate",
        "_watch",
        "_working",
        "account",
        "bar_interval",
        "bars",
        "bars_in_market",
        "equity_curve",
        "fills",
        "last_bar",
        "name",
        "orders",
        "outbox",
        "own_account",
        "position",
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
        account: Account | None = None,
        bar_interval: str = "1m",
    ) -> None:
        """``bar_interval`` is the input's (the feed's or the series'): the strategy's
        timeframe must be it or a whole multiple of it, else a :class:`StrategyError`."""
        params = strategy.params
        self.strategy = strategy
        # Bound once: one lookup less per bar, and on the compiled kernel a user's interpreted
        # strategy is called as fast as through its own bound method (measured: faster than
        # dispatching on the typed strategy).
        self._strategy_on_bar = strategy.on_bar
        self.symbol = symbol
        self.name = name or strategy.name
        self.own_account = account is None
        if account is None:
            account = Account(self.name, execution.starting_cash, allow_short=execution.allow_short)
        self.account = account
        account.holders.append(self)
        self.position = Position()
        self._broker = PaperBroker.for_execution(execution)
        self._fill_at_close = execution.fill_at == "close"
        self.bar_interval = bar_interval
        self._bar_ms = bar_ms = interval_ms(bar_interval)
        self._timeframe_ms = interval_ms(params.timeframe)
        if self._timeframe_ms % bar_ms:
            raise StrategyError(
                f"strategy {self.name} decides on {params.timeframe} bars, "
                + (
                    f"finer than the data's {bar_interval} bars"
                    if self._timeframe_ms < bar_ms
                    else f"not a whole number of the data's {bar_interval} bars"
                )
                + f": give it a timeframe of {bar_interval} or a multiple of it, or finer data"
            )
        self._aggregator = (
            None
            if self._timeframe_ms == bar_ms
            else TimeframeAggregator(symbol, params.timeframe, bar_ms)
        )
        self._stop_loss_rate = params.stop_loss_pct / 100.0
        self._take_profit_rate = params.take_profit_pct / 100.0
        # Bracket levels are fixed at entry; for a long the stop is below (-inf: off) and the
        # target above (+inf: off), for a short the reverse, so the per-bar test needs no flag.
        self._stop_level = -_INF
        self._target_level = _INF
        self._trail_rate = 0.0  # > 0: the stop trails the best price since entry
        self._trail_extreme = 0.0
        self._watch = False  # a short or a trailing stop: step 3 takes the slower path
        self._pending = SIGNAL_NONE
        self._working: list[WorkingOrder] = []
        self._next_order_id = 1
        self.bars = 0
        self.bars_in_market = 0
        self.unfilled_orders = 0
        self.last_bar: Bar | None = None
        # A compact float64 store (8 bytes a bar, not a 32-byte list slot and float object).
        self.equity_curve: array[float] | None = array("d") if record_equity else None
        # Warm-up: bars before this open time update the strategy but never place an order.
        self.trade_from_ms = trade_from_ms
        self.fills = 0
        self.orders = {Side.BUY: 0, Side.SELL: 0}  # orders placed (signals, orders and exits)
        self.outbox: list[EngineEvent] = []

    @property
    def trades(self) -> list[Trade]:
        """Closed quantities, oldest first."""
        return self.position.trades

    @property
    def open_orders(self) -> list[dict[str, Any]]:
        """The orders the broker holds for this engine, as plain data (cold path)."""
        return [w.snapshot() for w in self._working]

    def drain(self) -> list[EngineEvent]:
        """The events since the last drain, oldest first; the outbox is empty afterwards."""
        events = self.outbox
        self.outbox = []
        return events

    def on_bar(self, bar: Bar) -> None:
        """Process one input bar (the bus handler)."""
        self.last_bar = bar
        position = self.position
        strategy_on_bar = self._strategy_on_bar
        aggregator = self._aggregator
        if self._pending:
            self._execute(self._pending, bar.open, bar.open_time_ms, ExitReason.SIGNAL)
        working = self._working
        if working:
            self._work_at_open(bar)
        if aggregator is None:
            decision_bar: Bar | None = bar
        else:
            decision_bar = aggregator.add(bar)
            late = aggregator.late
            if late is not None:
                # Decided only now that this minute has closed: its open is already in the past,
                # so a resulting order waits for the next minute's open, as it would live.
                aggregator.late = None
                decision = strategy_on_bar(late, position.size)
                if decision is not None:
                    if decision.__class__ is Signal:  # the common case, without a call more
                        self._act(decision, late)
                    else:
                        self._decide(decision, late)
        if self._watch:
            self._check_watched_levels(bar)
        elif position.size > 0.0 and (
            bar.low <= self._stop_level or bar.high >= self._target_level
        ):
            self._exit_at_level(bar)
        if working:
            self._work_resting(bar)
        if decision_bar is not None:
            decision = strategy_on_bar(decision_bar, position.size)
            if decision is not None:
                if decision.__class__ is Signal:  # the common case, without a call more
                    self._act(decision, decision_bar)
                else:
                    self._decide(decision, decision_bar)
        self.bars += 1
        size = position.size
        if size != 0.0:
            self.bars_in_market += 1
        equity_curve = self.equity_curve
        if equity_curve is not None:
            equity_curve.append(self.account.cash + size * bar.close)

    # -- decisions ------------------------------------------------------------------------------

    def _decide(self, decision: object, decision_bar: Bar) -> None:
        if decision.__class__ is Signal:
            self._act(decision, decision_bar)
        elif isinstance(decision, Order):
            self._place(decision, decision_bar)
        elif isinstance(decision, Cancel):
            self._cancel(decision.tag, "", decision_bar)
        elif isinstance(decision, list | tuple):
            for item in decision:
                if isinstance(item, list | tuple):
                    raise StrategyError(f"{self.name}: a decision list holds another list")
                self._decide(item, decision_bar)
        else:
            raise StrategyError(
                f"{self.name} returned {type(decision).__name__} from on_bar: return a Signal, "
                "an Order, a Cancel, a list of them, or None"
            )

    def _trading(self) -> bool:
        last = self.last_bar
        assert last is not None  # set first thing in on_bar
        return last.open_time_ms >= self.trade_from_ms

    def _act(self, signal: Signal, decision_bar: Bar) -> None:
        last = self.last_bar
        assert last is not None  # set first thing in on_bar
        if last.open_time_ms < self.trade_from_ms:
            return
        size = self.position.size
        if signal is Signal.BUY and size == 0.0:
            order = SIGNAL_BUY
        elif signal is Signal.SELL and size > 0.0:
            order = SIGNAL_SELL
        else:
            return
        self.orders[Side.BUY if order == SIGNAL_BUY else Side.SELL] += 1
        if self._fill_at_close:
            self._execute(order, decision_bar.close, _close_ms(decision_bar), ExitReason.SIGNAL)
        else:
            self._pending = order

    def _place(self, order: Order, decision_bar: Bar) -> None:
        if not self._trading():
            return
        if not self.account.allow_short and sells_short(
            order, self.position.size, self._working, self._pending == SIGNAL_BUY
        ):
            raise self._short_refused(decision_bar)
        if order.tag:
            self._cancel(order.tag, "replaced", decision_bar)
        order_id = self._next_order_id
        self._next_order_id += 1
        if order.target is None:
            self.orders[order.side] += 1
        now_ms = self.last_bar.open_time_ms if self.last_bar is not None else 0
        expires_ms = (
            decision_bar.open_time_ms + (order.good_for_bars + 1) * self._timeframe_ms
            if order.good_for_bars
            else 0
        )
        working = WorkingOrder(order, order_id, now_ms + self._bar_ms, expires_ms)
        self._event("placed", working, _close_ms(decision_bar))
        if self._fill_at_close and order.kind is OrderKind.MARKET:
            self._fill(working, decision_bar.close, _close_ms(decision_bar), ExitReason.SIGNAL)
        else:
            self._working.append(working)

    def _cancel(self, tag: str, why: str, decision_bar: Bar) -> None:
        """Cancel the working orders tagged ``tag`` (every one for ``""``); ``why`` is the
        event's detail (``"replaced"`` when a new order takes the tag)."""
        keep = []
        for working in self._working:
            if tag and working.order.tag != tag:
                keep.append(working)
            else:
                self._event("cancelled", working, _close_ms(decision_bar), why)
        self._working = keep

    def _short_refused(self, bar: Bar) -> StrategyError:
        return StrategyError(
            f"strategy {self.name} sold short on the {bar.describe()}, but account "
            f"{self.account.name} does not allow shorts (--allow-short, or allow_short = true "
            "on the daemon account)"
        )

    # -- the order book (only when a strategy places orders) -------------------------------------

    def _work_at_open(self, bar: Bar) -> None:
        """Step 1 for orders: expire, then fill market orders at the open."""
        now = bar.open_time_ms
        for working in list(self._working):
            if working.expires_ms and now >= working.expires_ms:
                self._working.remove(working)
                self._event("expired", working, now)
            elif working.order.kind is OrderKind.MARKET and now >= working.active_from_ms:
                self._working.remove(working)
                self._fill(working, bar.open, now, ExitReason.SIGNAL)

    def _work_resting(self, bar: Bar) -> None:
        """Step 3 for orders: limit and stop orders that this minute's range reaches."""
        now = bar.open_time_ms
        for working in list(self._working):
            order = working.order
            level = order.price
            if level is None or now < working.active_from_ms:
                continue
            buying = order.side is Side.BUY
            limit = order.kind is OrderKind.LIMIT
            if buying is not limit:  # a sell limit or a buy stop: the high reaches it
                if bar.high < level:
                    continue
                ref = max(bar.open, level)
            else:  # a buy limit or a sell stop: the low reaches it
                if bar.low > level:
                    continue
                ref = min(bar.open, level)
            self._working.remove(working)
            stop = self._stop_level
            reason = ExitReason.LIMIT if limit else ExitReason.STOP
            self._fill(working, ref, now, reason, maker=limit)
            if self._stop_level != stop:
                self._stop_after_resting_fill(bar)

    def _stop_after_resting_fill(self, bar: Bar) -> None:
        """A resting order filled inside this minute, after its bracket check: the stop of the
        position it leaves is checked against the rest of the minute, pessimistically. A buy
        limit fills on the way down to the low, so a stop below the fill that the low reaches
        is hit after it (for a stop entry, assumed so); it fills at the level itself, as the
        open came before the fill. The target is not checked: its high may have come first.
        Called only when the fill set new levels: the old ones were checked in step 3, and a
        trail moved by this minute must not be tested against it."""
        size = self.position.size
        stop = self._stop_level
        if not ((size > 0.0 and bar.low <= stop) or (size < 0.0 and bar.high >= stop)):
            return
        reason = self._stop_reason(size > 0.0)
        if size > 0.0:
            self.orders[Side.SELL] += 1
            self._execute(SIGNAL_SELL, stop, bar.open_time_ms, reason)
        else:
            self.orders[Side.BUY] += 1
            self._cover(stop, bar.open_time_ms, reason)

    def _fill(
        self,
        working: WorkingOrder,
        ref_price: float,
        time_ms: int,
        reason: ExitReason,
        *,
        maker: bool = False,
    ) -> None:
        """Size ``working`` at ``ref_price``, reduce the position first, then open or add what
        the account's free cash allows."""
        order = working.order
        broker = self._broker
        position = self.position
        account = self.account
        held = position.size
        side = order.side
        if order.target is not None:
            desired = order.target * account.equity(self, ref_price) / ref_price
            delta = desired - held
            if abs(delta) <= TARGET_BAND * max(abs(held), abs(desired)):
                self._event("rejected", working, time_ms, "already at the target")
                return
            side = Side.BUY if delta > 0.0 else Side.SELL
            self.orders[side] += 1  # a target order's side is known only now
            quantity = abs(delta)
        else:
            quantity = order_units(order, held, ref_price, account, self)
        price = broker.price(side, ref_price, maker)
        reducing = (held > 0.0 and side is Side.SELL) or (held < 0.0 and side is Side.BUY)
        if reducing and abs(quantity - abs(held)) <= SAME_SIZE * abs(held):
            quantity = abs(held)  # sized to close it all (a fraction of equity): rounding aside
        reduce = min(quantity, abs(held)) if reducing else 0.0
        opening = quantity - reduce
        if opening > 0.0 and side is Side.SELL and not account.allow_short:
            # The strategy's intent was checked when it placed the order; what the fill finds
            # beyond the long (a bracket closed it meanwhile) is not sold short.
            detail = "the account does not allow shorts"
            if reduce == 0.0:
                self._event("rejected", working, time_ms, f"nothing to sell: {detail}")
                return
            self._event("reduced", working, time_ms, f"the rest would be short: {detail}")
            opening = 0.0
        if reduce > 0.0:
            fill = broker.fill(
                self.name,
                self.symbol,
                side,
                price,
                reduce,
                time_ms,
                reason,
                maker=maker,
                order_id=working.order_id,
            )
            trade = position.reduce(fill, account)
            self._flat_if_closed()
            self.fills += 1
            self.outbox.append(fill)
            self.outbox.append(trade)
        if opening <= MIN_FILL * quantity and opening < _INF:
            if reduce == 0.0:
                self._event("rejected", working, time_ms, f"nothing to {side}")
            return
        fee_rate = broker.maker_fee_rate if maker else broker.fee_rate
        affordable = affordable_units(
            side, account.free(self, ref_price), price, ref_price, fee_rate
        )
        if opening > affordable:
            if affordable <= 0.0 or (opening < _INF and affordable <= MIN_FILL * opening):
                # Filled in part when it reduced the position first: "reduced", else nothing.
                event = "reduced" if reduce > 0.0 else "rejected"
                self._event(event, working, time_ms, "no free cash in the account")
                return
            if opening < _INF:
                self._event("reduced", working, time_ms, f"{opening!r} asked, free cash pays")
            opening = affordable
        fill = broker.fill(
            self.name,
            self.symbol,
            side,
            price,
            opening,
            time_ms,
            reason,
            maker=maker,
            order_id=working.order_id,
        )
        position.add(fill, account)
        self.fills += 1
        self.outbox.append(fill)
        self._set_bracket(order, fill.price, side is Side.BUY, fresh=abs(held) == reduce)
        self._rewatch()

    def _set_bracket(self, order: Order, price: float, long: bool, *, fresh: bool) -> None:
        """Set the position's bracket from ``order`` (or the strategy's parameters)."""
        stop_pct = order.stop_loss_pct
        take_pct = order.take_profit_pct
        trail_pct = order.trailing_stop_pct
        if not fresh and stop_pct is None and take_pct is None and trail_pct is None:
            return  # adding without a bracket of its own keeps the position's levels
        stop_rate = self._stop_loss_rate if stop_pct is None else stop_pct / 100.0
        take_rate = self._take_profit_rate if take_pct is None else take_pct / 100.0
        trail_rate = 0.0 if trail_pct is None else trail_pct / 100.0
        sign = 1.0 if long else -1.0
        off = -_INF * sign
        self._stop_level = price * (1.0 - sign * stop_rate) if stop_rate > 0.0 else off
        self._target_level = price * (1.0 + sign * take_rate) if take_rate > 0.0 else -off
        self._trail_rate = trail_rate
        self._trail_extreme = price
        if trail_rate > 0.0:
            trail_level = price * (1.0 - sign * trail_rate)
            if (long and trail_level > self._stop_level) or (
                not long and trail_level < self._stop_level
            ):
                self._stop_level = trail_level
        self._rewatch()

    def _check_watched_levels(self, bar: Bar) -> None:
        """Step 3 for a short or a trailing stop (the long fixed bracket is tested inline)."""
        size = self.position.size
        if size > 0.0:
            if bar.low <= self._stop_level or bar.high >= self._target_level:
                self._exit_at_level(bar)
            elif self._trail_rate:
                self._trail(bar)
        elif size < 0.0:
            if bar.high >= self._stop_level or bar.low <= self._target_level:
                self._exit_at_level(bar)
            elif self._trail_rate:
                self._trail(bar)

    def _rewatch(self) -> None:
        """After the position or its bracket changed: does step 3 need the slower check?"""
        self._watch = self._trail_rate > 0.0 or self.position.size < 0.0

    def _trail(self, bar: Bar) -> None:
        """Move a trailing stop after a minute that did not reach it (never within the minute)."""
        rate = self._trail_rate
        if self.position.size > 0.0:
            if bar.high > self._trail_extreme:
                self._trail_extreme = bar.high
                level = bar.high * (1.0 - rate)
                if level > self._stop_level:
                    self._stop_level = level
        elif bar.low < self._trail_extreme:
            self._trail_extreme = bar.low
            level = bar.low * (1.0 + rate)
            if level < self._stop_level:
                self._stop_level = level

    def _flat_if_closed(self) -> None:
        if self.position.size == 0.0:
            self._stop_level = -_INF
            self._target_level = _INF
            self._trail_rate = 0.0
        self._rewatch()

    def _event(self, event: str, working: WorkingOrder, time_ms: int, detail: str = "") -> None:
        order = working.order
        self.outbox.append(
            OrderEvent(
                event,
                self.name,
                self.symbol,
                time_ms,
                working.order_id,
                order.side,
                order.kind.value,
                order.price,
                detail,
            )
        )

    # -- signals and brackets (today's all-in path, unchanged) ------------------------------------

    def _exit_at_level(self, bar: Bar) -> None:
        # Within one bar the order of low and high is unknown: assume the worst, stop first.
        # A bar that opens beyond the level fills at the open (a gap), not at the level.
        stop = self._stop_level
        long = self.position.size > 0.0
        if long:
            self.orders[Side.SELL] += 1
            if bar.low <= stop:
                reason = self._stop_reason(long)
                self._execute(SIGNAL_SELL, min(bar.open, stop), bar.open_time_ms, reason)
            else:
                target = self._target_level
                self._execute(
                    SIGNAL_SELL, max(bar.open, target), bar.open_time_ms, ExitReason.TAKE_PROFIT
                )
        else:
            self.orders[Side.BUY] += 1
            if bar.high >= stop:
                reason = self._stop_reason(long)
                self._cover(max(bar.open, stop), bar.open_time_ms, reason)
            else:
                self._cover(
                    min(bar.open, self._target_level), bar.open_time_ms, ExitReason.TAKE_PROFIT
                )

    def _stop_reason(self, long: bool) -> ExitReason:
        """The stop is the trail's when it equals the level the trail computes (the same
        expression as in _set_bracket and _trail), else the fixed stop loss beyond it."""
        rate = self._trail_rate
        stop = self._stop_level
        if rate > 0.0 and stop == self._trail_extreme * (1.0 - rate if long else 1.0 + rate):
            return ExitReason.TRAILING_STOP
        return ExitReason.STOP_LOSS

    def _cover(self, ref_price: float, time_ms: int, reason: ExitReason) -> None:
        """Buy back the whole short at market from ``ref_price``."""
        broker = self._broker
        price = broker.price(Side.BUY, ref_price, False)
        fill = broker.fill(
            self.name,
            self.symbol,
            Side.BUY,
            price,
            -self.position.size,
            time_ms,
            reason,
            maker=False,
            order_id=0,
        )
        trade = self.position.reduce(fill, self.account)
        self._flat_if_closed()
        self.fills += 1
        self.outbox.append(fill)
        self.outbox.append(trade)

    def _execute(self, order: int, ref_price: float, time_ms: int, reason: ExitReason) -> None:
        self._pending = SIGNAL_NONE
        position = self.position
        account = self.account
        if order == SIGNAL_BUY:
            cash = account.cash if self.own_account else account.free(self, ref_price)
            if cash <= 0.0:  # a shared account whose cash the other strategies hold
                self._event("rejected", _BUY_SIGNAL, time_ms, "no free cash in the account")
                return
            fill = self._broker.buy_all_in(self.name, self.symbol, ref_price, time_ms, cash)
            position.add(fill, account)
            self.fills += 1
            self.outbox.append(fill)
            if self._stop_loss_rate > 0.0:
                self._stop_level = fill.price * (1.0 - self._stop_loss_rate)
            if self._take_profit_rate > 0.0:
                self._target_level = fill.price * (1.0 + self._take_profit_rate)
        else:
            fill = self._broker.sell(
                self.name, self.symbol, ref_price, time_ms, position.size, reason
            )
            trade = position.reduce(fill, account)
            self.fills += 1
            self.outbox.append(fill)
            self.outbox.append(trade)
            self._flat_if_closed()

    # -- the end and the state --------------------------------------------------------------------

    def finish(self) -> None:
        """End of data: drop unfilled orders, close the position at the last close."""
        last = self.last_bar
        end_ms = last.open_time_ms + interval_ms(last.interval) if last is not None else 0
        if self._pending != SIGNAL_NONE:
            self.unfilled_orders += 1
            self._pending = SIGNAL_NONE
        for working in self._working:
            self.unfilled_orders += 1
            self._event("cancelled", working, end_ms, "end of data")
        self._working = []
        if last is None:
            return
        if self.position.size > 0.0:
            self._execute(SIGNAL_SELL, last.close, end_ms, ExitReason.END_OF_DATA)
        elif self.position.size < 0.0:
            self._cover(last.close, end_ms, ExitReason.END_OF_DATA)
        else:
            return
        if self.equity_curve:
            self.equity_curve[-1] = self.account.cash

    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable state to resume exactly (see :mod:`engine_snapshot`)."""
        return snapshot_engine(self)

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`snapshot` (or a version 1 one, see :mod:`engine_snapshot`)."""
        restore_engine(self, state)


_BUY_SIGNAL = WorkingOrder(Order(Side.BUY), 0, 0, 0)  # names a rejected Signal.BUY in its event


def _close_ms(bar: Bar) -> int:
    return bar.open_time_ms + interval_ms(bar.interval)
