"""The new indicators inside a strategy: found by the base class, so the strategy gets its
snapshot/restore and ``warmup_bars`` for free, and passes the contract check users run."""

from __future__ import annotations

import dataclasses

from barbus.daemon.core.events import Bar, Signal
from barbus.daemon.core.params import BaseParams
from barbus.daemon.core.strategy import Strategy
from barbus.strategies.indicators import (
    ADX,
    CCI,
    DEMA,
    MACD,
    OBV,
    ROC,
    TEMA,
    VWAP,
    WMA,
    DonchianChannel,
    KeltnerChannel,
    RollingMax,
    RollingMin,
    RollingStd,
    Stochastic,
    StochRSI,
    WilliamsR,
    ZScore,
)
from barbus.strategies.testing import check_strategy


@dataclasses.dataclass(frozen=True)
class EverythingParams(BaseParams):
    timeframe: str = "15m"


class Everything(Strategy[EverythingParams]):
    """Every new indicator as a plain attribute; long while most of them lean up."""

    params_type = EverythingParams

    def __init__(self, params: EverythingParams) -> None:
        super().__init__(params)
        self._macd = MACD(12, 26, 9)
        self._stochastic = Stochastic(14, 3, 3)
        self._stoch_rsi = StochRSI(14, 14, 3)
        self._williams = WilliamsR(14)
        self._adx = ADX(14)
        self._cci = CCI(20)
        self._roc = ROC(10)
        self._obv = OBV()
        self._averages: list[WMA | DEMA | TEMA] = [WMA(20), DEMA(20), TEMA(20)]
        self._channels: dict[str, DonchianChannel | KeltnerChannel] = {
            "donchian": DonchianChannel(20),
            "keltner": KeltnerChannel(20, 2.0, 10),
        }
        self._extremes: tuple[RollingMax, RollingMin] = (RollingMax(30), RollingMin(30))
        self._std = RollingStd(20)
        self._zscore = ZScore(20)
        self._vwap = VWAP()
        self._prev_obv = 0.0

    def on_bar(self, bar: Bar, position: float) -> Signal | None:
        h, lo, c = bar.high, bar.low, bar.close
        self._macd.update(c)
        self._stochastic.update_hlc(h, lo, c)
        self._stoch_rsi.update(c)
        self._williams.update_hlc(h, lo, c)
        self._adx.update_hlc(h, lo, c)
        self._cci.update_hlc(h, lo, c)
        self._roc.update(c)
        obv = self._obv.update_cv(c, bar.volume)
        for average in self._averages:
            average.update(c)
        for channel in self._channels.values():
            channel.update_hlc(h, lo, c)
        for extreme in self._extremes:
            extreme.update(c)
        self._std.update(c)
        self._zscore.update(c)
        vwap = self._vwap.update_hlcv(h, lo, c, bar.volume, bar.open_time_ms)
        rising, self._prev_obv = obv > self._prev_obv, obv
        if not self.ready:
            return None
        votes = [
            self._macd.hist > 0.0,
            self._stochastic.k > self._stochastic.d,
            self._stoch_rsi.k > 50.0,
            self._williams.value > -50.0,
            self._adx.plus_di > self._adx.minus_di,
            self._cci.value > 0.0,
            self._roc.value > 0.0,
            rising,
            all(c > average.value for average in self._averages),
            c > self._channels["donchian"].middle,
            c > self._channels["keltner"].middle,
            self._zscore.value > 0.0,
            c > vwap,
        ]
        score = sum(votes)
        if score >= 9:
            return Signal.BUY
        if score <= 4:
            return Signal.SELL
        return None


def test_a_strategy_of_new_indicators_passes_the_contract_with_default_state() -> None:
    # Act
    decisions = check_strategy(Everything)

    # Assert: warm-up from the indicators alone, TEMA(20) the longest (3 * 20 - 2 bars).
    strategy = Everything(EverythingParams())
    assert strategy.warmup_bars == 58
    assert len(strategy.indicators()) == 18
    assert {signal for _, signal in decisions} == {Signal.BUY, Signal.SELL}
    assert min(number for number, _ in decisions) >= 58
