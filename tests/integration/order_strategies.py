"""Strategies that use orders, for the daemon tests; loaded by path, as a user's file is.

- ``DipBuyer``: when flat with nothing working, every ``every`` bars rests a buy limit ``dip``
  below the close (good for ``good_for`` bars) for ``fraction`` of the account's equity, with a
  bracket (take profit and stop loss) that exits it.
- ``Flipper``: every ``hold`` bars the target position flips between +``fraction`` and
  -``fraction`` of equity (a short on the second turn): on an account without shorts it halts.
- ``Turns``: every ``hold`` bars, when flat, a buy stop ``breakout`` above the close for
  ``fraction`` of equity (good for ``good_for`` bars), else a market sell of the whole long;
  with ``DipBuyer`` on one account they compete for its cash.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from barbus.daemon.core.events import Bar
from barbus.daemon.core.orders import Decision, Order
from barbus.strategies.base import BaseParams, Strategy


@dataclasses.dataclass(frozen=True)
class DipParams(BaseParams):
    every: int = 30
    dip: float = 0.001
    good_for: int = 10
    fraction: float = 0.5
    take_profit: float = 0.3
    stop_loss: float = 0.3


class DipBuyer(Strategy[DipParams]):
    name: ClassVar[str] = "dip_buyer"
    params_type: ClassVar[type[BaseParams]] = DipParams

    def __init__(self, params: DipParams) -> None:
        super().__init__(params)
        self._bars = 0

    def on_bar(self, bar: Bar, position: float) -> Decision:
        self._bars += 1
        p = self.params
        if position != 0.0 or self._bars % p.every:
            return None
        return Order.buy(
            fraction=p.fraction,
            limit=bar.close * (1.0 - p.dip),
            good_for_bars=p.good_for,
            tag="dip",
            take_profit_pct=p.take_profit,
            stop_loss_pct=p.stop_loss,
        )


@dataclasses.dataclass(frozen=True)
class FlipParams(BaseParams):
    hold: int = 60
    fraction: float = 0.5


class Flipper(Strategy[FlipParams]):
    name: ClassVar[str] = "flipper"
    params_type: ClassVar[type[BaseParams]] = FlipParams

    def __init__(self, params: FlipParams) -> None:
        super().__init__(params)
        self._bars = 0

    def on_bar(self, bar: Bar, position: float) -> Decision:
        self._bars += 1
        if self._bars % self.params.hold:
            return None
        turn = self._bars // self.params.hold
        fraction = self.params.fraction if turn % 2 else -self.params.fraction
        return Order.target_position(fraction)


@dataclasses.dataclass(frozen=True)
class TurnsParams(BaseParams):
    hold: int = 45
    fraction: float = 0.7
    breakout: float = 0.0005
    good_for: int = 5


class Turns(Strategy[TurnsParams]):
    name: ClassVar[str] = "order_turns"
    params_type: ClassVar[type[BaseParams]] = TurnsParams

    def __init__(self, params: TurnsParams) -> None:
        super().__init__(params)
        self._bars = 0

    def on_bar(self, bar: Bar, position: float) -> Decision:
        self._bars += 1
        if self._bars % self.params.hold:
            return None
        p = self.params
        if position > 0.0:
            return Order.sell()
        return Order.buy(
            fraction=p.fraction,
            stop=bar.close * (1.0 + p.breakout),
            good_for_bars=p.good_for,
            tag="breakout",
        )


@dataclasses.dataclass(frozen=True)
class FailParams(BaseParams):
    at: int = 300


class FailsAfterFill(Strategy[FailParams]):
    """Buys on bar ``at``; on the next bar, whose open fills that buy, it raises: a strategy that
    fails on a bar after a fill of that bar moved its shared account."""

    name: ClassVar[str] = "fails_after_fill"
    params_type: ClassVar[type[BaseParams]] = FailParams

    def __init__(self, params: FailParams) -> None:
        super().__init__(params)
        self._bars = 0

    def on_bar(self, bar: Bar, position: float) -> Decision:
        self._bars += 1
        if self._bars == self.params.at:
            return Order.buy(fraction=0.1)
        if self._bars == self.params.at + 1:
            raise RuntimeError("planned failure on the bar that filled its buy")
        return None
