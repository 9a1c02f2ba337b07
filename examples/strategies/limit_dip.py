"""``limit_dip``: buy a dip with a limit order below the close, exit by a bracket.

While flat, every bar (re)places one buy limit ``dip_pct`` below the close, good for
``good_for_bars`` bars; its tag replaces the previous bar's order, so only one rests. It fills on
the first later minute whose low reaches the limit, at the limit or at a lower open, as a maker
(``maker_fee_bps``, no slippage). The fill opens a long of ``fraction`` of equity with a bracket:
a stop loss and a take profit (``stop_loss_pct``, ``take_profit_pct``), or a trailing stop
(``trailing_stop_pct`` > 0) instead of the fixed stop when it is tighter. While long it waits
for the bracket.

Run it: ``barbus replay --strategy limit_dip.py:LimitDip --param dip_pct=0.4``.
"""

from __future__ import annotations

import dataclasses

from barbus.daemon.events import Bar
from barbus.strategies.base import BaseParams, Order, Strategy, require


@dataclasses.dataclass(frozen=True)
class LimitDipParams(BaseParams):
    """How deep the limit sits, how long it rests, how much it buys, and the bracket."""

    timeframe: str = "5m"
    dip_pct: float = 0.5
    good_for_bars: int = 3
    fraction: float = 0.9
    stop_loss_pct: float = 1.0
    take_profit_pct: float = 1.5
    trailing_stop_pct: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        require(0.0 < self.dip_pct < 100.0, f"dip_pct must be in (0, 100), got {self.dip_pct}")
        require(self.good_for_bars >= 1, f"good_for_bars must be >= 1, got {self.good_for_bars}")
        require(0.0 < self.fraction <= 1.0, f"fraction must be in (0, 1], got {self.fraction}")
        require(
            0.0 <= self.trailing_stop_pct < 100.0,
            f"trailing_stop_pct must be in [0, 100), got {self.trailing_stop_pct}",
        )


class LimitDip(Strategy[LimitDipParams]):
    """A resting buy limit below each close while flat; the bracket does the selling."""

    name = "limit_dip"
    params_type = LimitDipParams

    def on_bar(self, bar: Bar, position: float) -> Order | None:
        if position != 0.0:
            return None
        p = self.params
        return Order.buy(
            p.fraction,
            limit=bar.close * (1.0 - p.dip_pct / 100.0),
            good_for_bars=p.good_for_bars,
            tag="dip",
            stop_loss_pct=p.stop_loss_pct,
            take_profit_pct=p.take_profit_pct,
            trailing_stop_pct=p.trailing_stop_pct,
        )
