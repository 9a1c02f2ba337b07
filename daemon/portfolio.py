"""One strategy's account: cash, a long position, and the round trips it has closed.

Long-only and one position at a time, as the strategies are. Fills change it; nothing else does.
Equity is marked to market by the engine on every 1-minute bar.
"""

from __future__ import annotations

from typing import Any, final

from daemon.events import Fill, Side, Trade

__all__ = ["Portfolio"]


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
            self.cash -= fill.size * fill.price + fill.fee
            self.size = fill.size
            self.entry_price = fill.price
            self.entry_time_ms = fill.time_ms
            self.entry_fee = fill.fee
            return None
        if self.size <= 0.0 or fill.size != self.size:
            raise ValueError(f"sell fill does not close the open position of {self.size}: {fill}")
        proceeds = fill.size * fill.price
        self.cash += proceeds - fill.fee
        cost = self.size * self.entry_price
        profit = proceeds - cost - self.entry_fee - fill.fee
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
            profit_pct=100.0 * profit / (cost + self.entry_fee),
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
        """Restore a :meth:`snapshot`."""
        self.cash = float(state["cash"])
        self.size = float(state["size"])
        self.entry_price = float(state["entry_price"])
        self.entry_time_ms = int(state["entry_time_ms"])
        self.entry_fee = float(state["entry_fee"])
