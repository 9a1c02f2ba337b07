"""One strategy's account: cash, a long position, and the round trips it has closed.

Long-only and one position at a time, as the strategies are. Fills change it; nothing else does.
A buy that leaves at most rounding dust (a few ulps) of the cash leaves exactly 0, never -1e-12.
Equity is marked to market by the engine on every 1-minute bar.

A fill whose booking would make cash or the trade's numbers non-finite is refused
(:class:`~daemon.broker.OrderRejectedError`) before anything changes, and :meth:`restore` refuses
a snapshot with missing, mistyped or non-finite numbers, so the account never holds NaN or inf.
"""

from __future__ import annotations

import math
from typing import Any, final

from barbus.daemon.broker import OrderRejectedError
from barbus.daemon.events import Fill, Side, Trade

__all__ = ["Portfolio"]

# Rounding leaves at most a few ulps of the cash after an all-in buy (2**-52 relative each).
_DUST = 2.0**-48


@final
class Portfolio:
    """Cash and position of one strategy on one symbol, with its closed-trade log."""

    __slots__ = ("cash", "entry_fee", "entry_price", "entry_time_ms", "size", "trades")

    def __init__(self, starting_cash: float) -> None:
        self.cash = starting_cash
        self.size = 0.0
        self.entry_price = 0.0
        self.entry_time_ms = 0
        self.entry_fee = 0.0
        self.trades: list[Trade] = []

    def equity(self, price: float) -> float:
        """Cash plus the position valued at ``price``."""
        return self.cash + self.size * price

    def apply(self, fill: Fill) -> Trade | None:
        """Book a fill; return the round trip it closes, if any."""
        if fill.side is Side.BUY:
            if self.size > 0.0:
                raise ValueError(f"buy fill while already long: {fill}")
            cash = self.cash - (fill.size * fill.price + fill.fee)
            if not math.isfinite(cash):
                raise OrderRejectedError(f"buy refused: cash would be {cash!r} after {fill}")
            if abs(cash) <= _DUST * self.cash:
                cash = 0.0  # an all-in buy spends the cash: rounding dust is no balance
            self.cash = cash
            self.size = fill.size
            self.entry_price = fill.price
            self.entry_time_ms = fill.time_ms
            self.entry_fee = fill.fee
            return None
        if self.size <= 0.0 or fill.size != self.size:
            raise ValueError(f"sell fill does not close the open position of {self.size}: {fill}")
        proceeds = fill.size * fill.price
        cash = self.cash + (proceeds - fill.fee)
        cost = self.size * self.entry_price
        profit = proceeds - cost - self.entry_fee - fill.fee
        profit_pct = 100.0 * profit / (cost + self.entry_fee)
        if not (math.isfinite(cash) and math.isfinite(profit_pct)):
            raise OrderRejectedError(
                f"sell refused: cash would be {cash!r}, profit {profit_pct!r} % after {fill}"
            )
        self.cash = cash
        trade = Trade(
            strategy=fill.strategy,
            symbol=fill.symbol,
            entry_time_ms=self.entry_time_ms,
            exit_time_ms=fill.time_ms,
            entry_price=self.entry_price,
            exit_price=fill.price,
            size=self.size,
            entry_fee=self.entry_fee,
            exit_fee=fill.fee,
            profit=profit,
            profit_pct=profit_pct,
            exit_reason=fill.reason,
        )
        self.trades.append(trade)
        self.size = 0.0
        self.entry_price = 0.0
        self.entry_fee = 0.0
        return trade

    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable account state (the closed trades are logged elsewhere)."""
        return {
            "cash": self.cash,
            "size": self.size,
            "entry_price": self.entry_price,
            "entry_time_ms": self.entry_time_ms,
            "entry_fee": self.entry_fee,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`snapshot`; ValueError/TypeError/KeyError if it is damaged."""
        numbers = {}
        for key in ("cash", "size", "entry_price", "entry_fee"):
            value = state[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"portfolio {key} is {type(value).__name__}, not a number")
            if not math.isfinite(value) or (key != "cash" and value < 0.0):
                raise ValueError(f"portfolio {key} is {value!r}")
            numbers[key] = float(value)
        entry_time_ms = state["entry_time_ms"]
        if type(entry_time_ms) is not int:
            raise TypeError(f"portfolio entry_time_ms is {entry_time_ms!r}, not an integer")
        self.cash = numbers["cash"]
        self.size = numbers["size"]
        self.entry_price = numbers["entry_price"]
        self.entry_time_ms = entry_time_ms
        self.entry_fee = numbers["entry_fee"]
