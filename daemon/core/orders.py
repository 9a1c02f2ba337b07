"""What a strategy may ask for besides BUY and SELL: sized market, limit and stop orders.

A strategy returns a decision from ``on_bar``: a :class:`~barbus.daemon.core.events.Signal`
(today's shorthand: all-in long, or close the long, at market), an :class:`Order`, a
:class:`Cancel`, or a list of them, or ``None``. Orders are requests, validated here once when
made (a cold path: decisions are rare next to bars); the engine sizes and fills them.

Size is one of ``fraction`` (of the account's equity at the fill's reference price), ``quote``
(an amount of the quote currency) or ``units`` (of the base asset); ``target`` asks for a signed
position of that fraction of equity instead (the engine buys or sells the difference). An order
with no size means "everything": a buy spends the account's free cash, a sell closes the long,
and a buy while short covers the short.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

from mypy_extensions import mypyc_attr

from barbus.daemon.core.errors import StrategyError
from barbus.daemon.core.events import Side, Signal

__all__ = ["Cancel", "Decision", "Order", "OrderKind"]


class OrderKind(enum.StrEnum):
    """How an order executes: at the next open, at a limit or better, or once a stop trades."""

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"


def _positive(name: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value > 0.0):
        raise StrategyError(f"order {name} must be a finite number > 0, got {value!r}")


def _percent(name: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and 0.0 <= value < 100.0):
        raise StrategyError(f"order {name} must be in [0, 100) percent (0 = off), got {value!r}")


# Plain Python classes in the compiled kernel too (native_class=False): mypyc's frozen
# dataclasses cannot be copied or pickled, and these records cross processes.
@mypyc_attr(native_class=False)
@dataclass(frozen=True, slots=True)
class Order:
    """An order request. Build it with :meth:`buy`, :meth:`sell` or :meth:`target`.

    ``price`` is the limit (``LIMIT``) or the trigger (``STOP``). ``good_for_bars`` > 0 cancels
    the order after that many further bars of the strategy's timeframe without a fill (0: good
    till cancelled). ``tag`` names a resting order so a later :class:`Cancel` or an order with
    the same tag (a replace) can find it. ``stop_loss_pct``, ``take_profit_pct`` and
    ``trailing_stop_pct`` attach a bracket to the position the order opens or adds to (``None``:
    the strategy's parameters; 0: off).
    """

    side: Side
    kind: OrderKind = OrderKind.MARKET
    fraction: float | None = None
    quote: float | None = None
    units: float | None = None
    target: float | None = None
    price: float | None = None
    good_for_bars: int = 0
    tag: str = ""
    stop_loss_pct: float | None = None
    take_profit_pct: float | None = None
    trailing_stop_pct: float | None = None

    def __post_init__(self) -> None:
        sizes = [v for v in (self.fraction, self.quote, self.units, self.target) if v is not None]
        if len(sizes) > 1:
            raise StrategyError("an order takes one size: fraction, quote, units or target")
        _positive("quote", self.quote)
        _positive("units", self.units)
        if self.fraction is not None and not (
            math.isfinite(self.fraction) and 0.0 < self.fraction <= 1.0
        ):
            raise StrategyError(f"order fraction must be in (0, 1], got {self.fraction!r}")
        if self.target is not None:
            if not (math.isfinite(self.target) and -1.0 <= self.target <= 1.0):
                raise StrategyError(f"order target must be in [-1, 1], got {self.target!r}")
            if self.kind is not OrderKind.MARKET:
                raise StrategyError("a target order is a market order")
        if self.kind is OrderKind.MARKET:
            if self.price is not None:
                raise StrategyError("a market order has no price: use Order.buy(limit=...)")
        else:
            if self.price is None:
                raise StrategyError(f"a {self.kind} order needs a price")
            _positive("price", self.price)
        if type(self.good_for_bars) is not int or self.good_for_bars < 0:
            raise StrategyError(f"good_for_bars must be an int >= 0, got {self.good_for_bars!r}")
        _percent("stop_loss_pct", self.stop_loss_pct)
        _percent("take_profit_pct", self.take_profit_pct)
        _percent("trailing_stop_pct", self.trailing_stop_pct)

    @property
    def sized(self) -> bool:
        """False for "everything" (no fraction, quote, units or target given)."""
        return not (
            self.fraction is None
            and self.quote is None
            and self.units is None
            and self.target is None
        )

    @classmethod
    def buy(
        cls,
        fraction: float | None = None,
        *,
        quote: float | None = None,
        units: float | None = None,
        limit: float | None = None,
        stop: float | None = None,
        good_for_bars: int = 0,
        tag: str = "",
        stop_loss_pct: float | None = None,
        take_profit_pct: float | None = None,
        trailing_stop_pct: float | None = None,
    ) -> Order:
        """A buy at market, or at ``limit`` or better, or once the price trades up to ``stop``."""
        return cls._make(
            Side.BUY,
            fraction,
            quote,
            units,
            limit,
            stop,
            good_for_bars,
            tag,
            stop_loss_pct,
            take_profit_pct,
            trailing_stop_pct,
        )

    @classmethod
    def sell(
        cls,
        fraction: float | None = None,
        *,
        quote: float | None = None,
        units: float | None = None,
        limit: float | None = None,
        stop: float | None = None,
        good_for_bars: int = 0,
        tag: str = "",
        stop_loss_pct: float | None = None,
        take_profit_pct: float | None = None,
        trailing_stop_pct: float | None = None,
    ) -> Order:
        """A sell at market, at ``limit`` or better, or once the price trades down to ``stop``.

        Selling more than the long held opens a short, which the account must allow."""
        return cls._make(
            Side.SELL,
            fraction,
            quote,
            units,
            limit,
            stop,
            good_for_bars,
            tag,
            stop_loss_pct,
            take_profit_pct,
            trailing_stop_pct,
        )

    @classmethod
    def target_position(
        cls,
        fraction: float,
        *,
        tag: str = "",
        stop_loss_pct: float | None = None,
        take_profit_pct: float | None = None,
        trailing_stop_pct: float | None = None,
    ) -> Order:
        """Hold ``fraction`` of equity (negative: short) after the next open: a market order for
        the difference, sized at the fill's reference price (a flip closes and reopens there)."""
        return cls(
            Side.BUY if fraction >= 0.0 else Side.SELL,
            target=fraction,
            tag=tag,
            stop_loss_pct=stop_loss_pct,
            take_profit_pct=take_profit_pct,
            trailing_stop_pct=trailing_stop_pct,
        )

    @classmethod
    def _make(
        cls,
        side: Side,
        fraction: float | None,
        quote: float | None,
        units: float | None,
        limit: float | None,
        stop: float | None,
        good_for_bars: int,
        tag: str,
        stop_loss_pct: float | None,
        take_profit_pct: float | None,
        trailing_stop_pct: float | None,
    ) -> Order:
        if limit is not None and stop is not None:
            raise StrategyError("an order has a limit or a stop price, not both")
        kind = (
            OrderKind.LIMIT
            if limit is not None
            else OrderKind.STOP
            if stop is not None
            else OrderKind.MARKET
        )
        return cls(
            side,
            kind,
            fraction=fraction,
            quote=quote,
            units=units,
            price=limit if limit is not None else stop,
            good_for_bars=good_for_bars,
            tag=tag,
            stop_loss_pct=stop_loss_pct,
            take_profit_pct=take_profit_pct,
            trailing_stop_pct=trailing_stop_pct,
        )


@mypyc_attr(native_class=False)
@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel the resting orders tagged ``tag`` (``""``: every resting order of the strategy)."""

    tag: str = ""


Decision = Signal | Order | Cancel | Sequence[Signal | Order | Cancel] | None
"""What ``Strategy.on_bar`` returns."""
