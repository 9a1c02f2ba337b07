"""Accounts and positions: the cash several strategies may share, and each strategy's position.

An :class:`Account` holds cash (quote currency) and whether it may be short. Each engine holds
one :class:`Position` (a signed quantity of its symbol) in one account; by default every engine
has an account of its own, as before accounts could be shared. Fills change positions and cash;
nothing else does.

Booking follows the fills exactly: a buy takes ``size * price + fee`` from the cash, a sell adds
``size * price - fee``. A position keeps its average entry price and the entry fees of what it
still holds; reducing it closes that quantity as one :class:`~barbus.daemon.core.events.Trade`
with its direction and its share of the entry fees. Equity is cash plus every signed position
times its price. There is no leverage, margin interest, liquidation or funding: the only limit
is :meth:`Account.free`, which an order that opens or adds to a position may not exceed.

A fill whose booking would make cash or the trade's numbers non-finite is refused
(:class:`~barbus.daemon.core.broker.OrderRejectedError`) before anything changes, and
:meth:`Position.restore` refuses a damaged snapshot, so the books never hold NaN or inf.
"""

from __future__ import annotations

import math
from typing import Any, Protocol, final

from barbus.daemon.core.broker import OrderRejectedError
from barbus.daemon.core.events import Bar, Direction, Fill, Side, Trade

__all__ = ["Account", "Holder", "Position"]

# Rounding leaves at most a few ulps of the cash after an all-in buy (2**-52 relative each).
_DUST = 2.0**-48


class Holder(Protocol):
    """What an account needs of an engine to value its position: the position and a price."""

    @property
    def position(self) -> Position: ...

    @property
    def last_bar(self) -> Bar | None: ...


@final
class Account:
    """Cash shared by the engines that trade through it, and whether they may go short."""

    __slots__ = ("allow_short", "cash", "holders", "name", "starting_cash")

    def __init__(self, name: str, cash: float, *, allow_short: bool = False) -> None:
        if not (math.isfinite(cash) and cash > 0.0):
            raise ValueError(f"account {name}: cash must be > 0, got {cash!r}")
        self.name = name
        self.cash = cash
        self.starting_cash = cash
        self.allow_short = allow_short
        self.holders: list[Holder] = []

    @property
    def shared(self) -> bool:
        return len(self.holders) > 1

    def _marks(self, holder: Holder | None, price: float) -> tuple[float, float]:
        """(signed value, gross value) of every position: ``holder``'s at ``price``, the others
        at the last close of their symbol that any holder saw (a halted strategy's position
        is valued at today's price, not at the bar it stopped on)."""
        latest: dict[str, Bar] = {}
        for other in self.holders:
            last = other.last_bar
            if last is not None:
                seen = latest.get(last.symbol)
                if seen is None or last.open_time_ms > seen.open_time_ms:
                    latest[last.symbol] = last
        value = gross = 0.0
        for other in self.holders:
            size = other.position.size
            if size == 0.0:
                continue
            if other is holder:
                mark = price
            else:
                last = other.last_bar
                if last is not None:
                    last = latest[last.symbol]
                mark = last.close if last is not None else other.position.entry_price
            value += size * mark
            gross += abs(size) * mark
        return value, gross

    def equity(self, holder: Holder | None = None, price: float = 0.0) -> float:
        """Cash plus every position, ``holder``'s valued at ``price``, the rest at last close."""
        return self.cash + self._marks(holder, price)[0]

    def free(self, holder: Holder, price: float) -> float:
        """What a new or larger position may cost, fees included: equity minus the gross value
        of every position (so without shorts, the cash; no leverage in either direction)."""
        value, gross = self._marks(holder, price)
        return self.cash + value - gross

    def snapshot(self) -> dict[str, Any]:
        return {"version": 1, "cash": self.cash}

    def restore(self, state: dict[str, Any]) -> None:
        cash = state["cash"]
        if isinstance(cash, bool) or not isinstance(cash, int | float) or not math.isfinite(cash):
            raise ValueError(f"account {self.name} cash is {cash!r}")
        self.cash = float(cash)


@final
class Position:
    """One strategy's signed position in one symbol, and the trades it has closed."""

    __slots__ = ("entry_fee", "entry_price", "entry_time_ms", "size", "trades")

    def __init__(self) -> None:
        self.size = 0.0
        self.entry_price = 0.0
        self.entry_time_ms = 0
        self.entry_fee = 0.0
        self.trades: list[Trade] = []

    def add(self, fill: Fill, account: Account) -> None:
        """Open or enlarge the position in the fill's direction (a buy when long or flat, a
        sell when short or flat)."""
        buying = fill.side is Side.BUY
        if (self.size < 0.0 and buying) or (self.size > 0.0 and not buying):
            raise ValueError(f"fill {fill} opposes the position of {self.size}: reduce first")
        notional = fill.size * fill.price
        if buying:
            cash = account.cash - (notional + fill.fee)
            if not math.isfinite(cash):
                raise OrderRejectedError(f"buy refused: cash would be {cash!r} after {fill}")
            if abs(cash) <= _DUST * account.cash:
                cash = 0.0  # an all-in buy spends the cash: rounding dust is no balance
        else:
            cash = account.cash + (notional - fill.fee)
            if not math.isfinite(cash):
                raise OrderRejectedError(f"sell refused: cash would be {cash!r} after {fill}")
        held = abs(self.size)
        if held == 0.0:
            self.entry_price = fill.price
            self.entry_time_ms = fill.time_ms
            self.entry_fee = fill.fee
        else:
            self.entry_price = (held * self.entry_price + notional) / (held + fill.size)
            self.entry_fee += fill.fee
        account.cash = cash
        self.size = self.size + fill.size if buying else self.size - fill.size

    def reduce(self, fill: Fill, account: Account) -> Trade:
        """Close ``fill.size`` of the position (a sell when long, a buy when short) as a trade."""
        held = abs(self.size)
        long = self.size > 0.0
        if held == 0.0 or fill.size > held or long != (fill.side is Side.SELL):
            raise ValueError(f"fill {fill} does not reduce the position of {self.size}")
        whole = fill.size == held
        exit_value = fill.size * fill.price
        cost = held * self.entry_price if whole else fill.size * self.entry_price
        entry_fee = self.entry_fee if whole else self.entry_fee * (fill.size / held)
        if long:
            cash = account.cash + (exit_value - fill.fee)
            profit = exit_value - cost - entry_fee - fill.fee
        else:
            cash = account.cash - (exit_value + fill.fee)
            profit = cost - exit_value - entry_fee - fill.fee
        profit_pct = 100.0 * profit / (cost + entry_fee)
        if not (math.isfinite(cash) and math.isfinite(profit_pct)):
            raise OrderRejectedError(
                f"{fill.side} refused: cash would be {cash!r}, profit {profit_pct!r} % after {fill}"
            )
        account.cash = cash
        trade = Trade(
            strategy=fill.strategy,
            symbol=fill.symbol,
            entry_time_ms=self.entry_time_ms,
            exit_time_ms=fill.time_ms,
            entry_price=self.entry_price,
            exit_price=fill.price,
            size=fill.size,
            entry_fee=entry_fee,
            exit_fee=fill.fee,
            profit=profit,
            profit_pct=profit_pct,
            exit_reason=fill.reason,
            direction=Direction.LONG if long else Direction.SHORT,
        )
        self.trades.append(trade)
        if whole:
            self.size = 0.0
            self.entry_price = 0.0
            self.entry_fee = 0.0
        else:
            self.size = self.size - fill.size if long else self.size + fill.size
            self.entry_fee -= entry_fee
        return trade

    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable position (the closed trades are logged elsewhere)."""
        return {
            "size": self.size,
            "entry_price": self.entry_price,
            "entry_time_ms": self.entry_time_ms,
            "entry_fee": self.entry_fee,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`snapshot`; ValueError/TypeError/KeyError if it is damaged."""
        numbers = {}
        for key in ("size", "entry_price", "entry_fee"):
            value = state[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"position {key} is {type(value).__name__}, not a number")
            if not math.isfinite(value) or (key != "size" and value < 0.0):
                raise ValueError(f"position {key} is {value!r}")
            numbers[key] = float(value)
        entry_time_ms = state["entry_time_ms"]
        if type(entry_time_ms) is not int:
            raise TypeError(f"position entry_time_ms is {entry_time_ms!r}, not an integer")
        self.size = numbers["size"]
        self.entry_price = numbers["entry_price"]
        self.entry_time_ms = entry_time_ms
        self.entry_fee = numbers["entry_fee"]
