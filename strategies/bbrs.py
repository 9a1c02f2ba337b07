"""``bbrs``: Bollinger Bands + RSI mean reversion with a trending/sideways regime switch."""

from __future__ import annotations

import dataclasses
from typing import ClassVar, final

from barbus.daemon.events import Bar, Signal
from barbus.strategies.base import BaseParams, Strategy, require
from barbus.strategies.indicators import RSI, SMA, BollingerBands

__all__ = ["Bbrs", "BbrsParams"]


@dataclasses.dataclass(frozen=True)
class BbrsParams(BaseParams):
    timeframe: str = "1h"
    bb_period: int = 20
    rsi_period: int = 14
    bandwidth_std: float = 2.0
    bandwidth_threshold: float = 0.05
    trending_std: float = 2.5
    trending_rsi_low: float = 30.0
    trending_rsi_high: float = 70.0
    sideways_std: float = 1.8
    sideways_rsi_low: float = 40.0
    sideways_rsi_high: float = 60.0
    volume_period: int = 20
    volume_factor: float = 1.5

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("bb_period", "rsi_period", "volume_period"):
            require(getattr(self, name) >= 2, f"{name} must be >= 2, got {getattr(self, name)}")
        for name in ("bandwidth_std", "trending_std", "sideways_std", "volume_factor"):
            require(getattr(self, name) > 0.0, f"{name} must be > 0, got {getattr(self, name)}")
        require(self.bandwidth_threshold >= 0.0, "bandwidth_threshold must be >= 0")
        for regime in ("trending", "sideways"):
            low = getattr(self, f"{regime}_rsi_low")
            high = getattr(self, f"{regime}_rsi_high")
            require(
                0.0 <= low < high <= 100.0,
                f"{regime}_rsi_low ({low}) must be < {regime}_rsi_high ({high}), both in [0, 100]",
            )


@final
class Bbrs(Strategy[BbrsParams]):
    """Regime: Bollinger bandwidth at ``bandwidth_std`` sigma above the threshold is trending.

    Trending uses ``trending_std`` bands and RSI thresholds, sideways the ``sideways_*`` ones.
    BUY when close <= lower band, RSI < low threshold and a volume spike; SELL when close >= upper
    band, RSI > high threshold and a volume spike. A spike is volume > ``volume_factor`` x the
    SMA of volume over ``volume_period`` bars, this bar included.
    """

    name: ClassVar[str] = "bbrs"
    params_type: ClassVar[type[BaseParams]] = BbrsParams

    __slots__ = ("_bands", "_rsi", "_volume")

    def __init__(self, params: BbrsParams) -> None:
        super().__init__(params)
        self._bands = BollingerBands(params.bb_period, params.bandwidth_std)
        self._rsi = RSI(params.rsi_period)
        self._volume = SMA(params.volume_period)

    def on_bar(self, bar: Bar, position: float) -> Signal | None:
        p = self.params
        bands = self._bands
        bands.update(bar.close)
        rsi = self._rsi.update(bar.close)
        mean_volume = self._volume.update(bar.volume)
        if not (bands.ready and self._rsi.ready and self._volume.ready):
            return None
        if not bar.volume > p.volume_factor * mean_volume:
            return None
        if bands.bandwidth > p.bandwidth_threshold:
            lower, upper = bands.band(p.trending_std)
            rsi_low, rsi_high = p.trending_rsi_low, p.trending_rsi_high
        else:
            lower, upper = bands.band(p.sideways_std)
            rsi_low, rsi_high = p.sideways_rsi_low, p.sideways_rsi_high
        if bar.close <= lower and rsi < rsi_low:
            return Signal.BUY
        if bar.close >= upper and rsi > rsi_high:
            return Signal.SELL
        return None
