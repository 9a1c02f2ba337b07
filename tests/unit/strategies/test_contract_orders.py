"""``check_strategy`` with strategies that decide by orders: accepted, compared, restored, and a
return value that is no decision fails with a message naming it."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import pytest

from barbus.daemon.core.events import Bar
from barbus.daemon.core.orders import Cancel, Decision, Order
from barbus.daemon.core.params import BaseParams
from barbus.daemon.core.strategy import Strategy
from barbus.daemon.core.synthetic import synthetic_series
from barbus.strategies.indicators import EMA
from barbus.strategies.testing import _run, check_strategy


@pytest.fixture(scope="module")
def minutes() -> list[Bar]:
    return synthetic_series(3000, seed=5).to_bars()


@dataclasses.dataclass(frozen=True)
class DipParams(BaseParams):
    period: int = 10


class Dips(Strategy[DipParams]):
    """A limit below the EMA while flat, cancelled while long; a target short on a jump."""

    name: ClassVar[str] = "dips"
    params_type: ClassVar[type[BaseParams]] = DipParams

    def __init__(self, params: DipParams) -> None:
        super().__init__(params)
        self._ema = EMA(params.period)
        self.positions: list[float] = []

    def on_bar(self, bar: Bar, position: float) -> Decision:
        self.positions.append(position)
        ema = self._ema.update(bar.close)
        if not self._ema.ready:
            return None
        if bar.close > ema * 1.002:
            return Order.target_position(-0.5)
        if position == 0.0:
            return [Cancel("dip"), Order.buy(0.5, limit=ema * 0.998, tag="dip", good_for_bars=3)]
        if bar.close < ema:
            return Order.buy(units=0.01)
        return None

    def snapshot(self) -> dict[str, Any]:
        return {"ema": self._ema.snapshot()}

    def restore(self, state: dict[str, Any]) -> None:
        self._ema.restore(state["ema"])


def test_order_decisions_pass_the_contract_and_come_back_as_made(minutes: list[Bar]) -> None:
    decisions = check_strategy(Dips, bars=minutes)

    kinds = {type(d).__name__ for _, d in decisions}
    assert kinds == {"Order", "tuple"}
    first_list = next(d for _, d in decisions if isinstance(d, tuple))
    assert isinstance(first_list[0], Cancel)
    assert isinstance(first_list[1], Order)


def test_the_position_follows_market_and_target_orders(minutes: list[Bar]) -> None:
    decisions = check_strategy(Dips, bars=minutes)
    strategy = Dips(DipParams())
    # The check's own run: a target of -0.5 means short (-1.0) until a buy covers it.
    _run(strategy, minutes)
    seen = strategy.positions
    shorts = [n for n, d in decisions if isinstance(d, Order) and d.target is not None]
    assert shorts
    assert seen[shorts[0]] == -1.0  # the bar after the target order sees the short


class ReturnsAString(Strategy[DipParams]):
    name: ClassVar[str] = "returns_a_string"
    params_type: ClassVar[type[BaseParams]] = DipParams

    def on_bar(self, bar: Bar, position: float) -> Decision:
        return "buy" if bar.close > bar.open else None  # type: ignore[return-value]


def test_a_return_value_that_is_no_decision_fails_naming_it(minutes: list[Bar]) -> None:
    with pytest.raises(AssertionError, match=r"returned 'buy' from on_bar at bar \d+: return a"):
        check_strategy(ReturnsAString, bars=minutes)
