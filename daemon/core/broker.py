"""The paper broker: turns an order, a quantity and a reference price into a fill. Pure, no state.

Taker fills (market and stop orders, bracket exits) move against the trader by ``slippage_bps``
(buy higher, sell lower) and pay ``taker_fee_bps`` of the notional; maker fills (limit orders)
fill at their price and pay ``maker_fee_bps``. ``fee_bps`` sets both, as it did before there
were two. An all-in buy spends the whole cash given, fee included, so cash returns to exactly
zero: ``size * price`` never exceeds the notional and the fee is what the cash leaves after it
(``fee_bps`` of the notional, give or take an ulp of the cash).

A fill is always made of finite, positive numbers. An order whose price, size, notional or fee
would not be (a price of 1e307 times the position overflows to infinity, and infinite proceeds
make cash NaN) is refused with :class:`OrderRejectedError` before anything changes; the bus then
halts that strategy with one log line and counts it, and its last good state stays recorded.
The checks run per fill only, never on a quiet bar.
"""

from __future__ import annotations

import math
from typing import final

from barbus.daemon.core.errors import StrategyError
from barbus.daemon.core.events import ExitReason, Fill, Side

# ExecutionConfig and FillTiming keep their import path here, where every reader takes them from.
from barbus.daemon.core.execution import ExecutionConfig, FillTiming

__all__ = ["ExecutionConfig", "FillTiming", "OrderRejectedError", "PaperBroker"]

_INF = math.inf


class OrderRejectedError(StrategyError):
    """The broker refused an order whose fill would not be finite: the strategy is halted."""


@final
class PaperBroker:
    """Fill orders at a reference price with slippage (taker) and fees (maker or taker)."""

    __slots__ = ("fee_rate", "maker_fee_rate", "slippage_rate")

    def __init__(self, fee_bps: float, slippage_bps: float, maker_fee_bps: float | None = None):
        self.fee_rate = fee_bps / 10_000.0  # the taker fee
        self.maker_fee_rate = self.fee_rate if maker_fee_bps is None else maker_fee_bps / 10_000.0
        self.slippage_rate = slippage_bps / 10_000.0

    @classmethod
    def for_execution(cls, execution: ExecutionConfig) -> PaperBroker:
        return cls(execution.taker_bps, execution.slippage_bps, execution.maker_bps)

    def price(self, side: Side, ref_price: float, maker: bool) -> float:
        """The fill price: a maker fill at its reference, a taker fill moved by the slippage."""
        if maker:
            return ref_price
        if side is Side.BUY:
            return ref_price * (1.0 + self.slippage_rate)
        return ref_price * (1.0 - self.slippage_rate)

    def fill(
        self,
        strategy: str,
        symbol: str,
        side: Side,
        price: float,
        size: float,
        time_ms: int,
        reason: ExitReason,
        *,
        maker: bool,
        order_id: int,
    ) -> Fill:
        """A fill of ``size`` at ``price`` (from :meth:`price`) with the maker or taker fee."""
        notional = size * price
        if not (0.0 < price < _INF and 0.0 < size < _INF and 0.0 <= notional < _INF):
            raise OrderRejectedError(
                f"{side} of {size!r} {symbol} refused: at price {price!r} the notional "
                f"{notional!r} is not finite"
            )
        fee = notional * (self.maker_fee_rate if maker else self.fee_rate)
        return Fill(strategy, symbol, side, time_ms, price, size, fee, reason, order_id)

    def buy_all_in(
        self, strategy: str, symbol: str, ref_price: float, time_ms: int, cash: float
    ) -> Fill:
        """Buy as much as ``cash`` pays for, fee included."""
        price = ref_price * (1.0 + self.slippage_rate)
        notional = cash / (1.0 + self.fee_rate)
        if not (0.0 < price < _INF and 0.0 < notional < _INF):
            raise OrderRejectedError(
                f"buy of {symbol} refused: price {ref_price!r} with cash {cash!r} "
                "is not a finite positive order"
            )
        size = notional / price
        if not 0.0 < size < _INF:
            raise OrderRejectedError(f"buy of {symbol} refused: size {size!r} at {price!r}")
        cost = size * price
        while cost > notional:  # rounded up: an ulp less size, so the fee below stays >= its rate
            size = math.nextafter(size, 0.0)
            cost = size * price
        # With a fee, the fee is the rest of the cash: cost is within a factor 2 of cash
        # (fee_bps < 10000), so cash - cost is exact (Sterbenz) and cost + fee == cash exactly.
        # Without one, cost <= cash and the portfolio books the last ulps of dust as 0.
        fee = cash - cost if self.fee_rate > 0.0 else 0.0
        return Fill(strategy, symbol, Side.BUY, time_ms, price, size, fee, ExitReason.SIGNAL)

    def sell(
        self,
        strategy: str,
        symbol: str,
        ref_price: float,
        time_ms: int,
        size: float,
        reason: ExitReason,
    ) -> Fill:
        """Sell ``size`` units; ``reason`` says why the position is closed."""
        price = ref_price * (1.0 - self.slippage_rate)
        proceeds = size * price
        if not (0.0 < price < _INF and 0.0 < size < _INF and 0.0 <= proceeds < _INF):
            raise OrderRejectedError(
                f"sell of {size!r} {symbol} refused: at price {ref_price!r} the proceeds "
                f"{proceeds!r} are not finite"
            )
        return Fill(
            strategy, symbol, Side.SELL, time_ms, price, size, proceeds * self.fee_rate, reason
        )
