"""Incremental technical indicators for the per-bar hot path of live trading and replay.

Every indicator takes plain floats one bar at a time (``update(x)``, ``update_hlc(high, low,
close)``, ``update_cv(close, volume)`` or ``update_hlcv(high, low, close, volume,
open_time_ms)``), keeps O(period) fixed state, exposes ``value``/``ready`` (and extra outputs)
as plain attributes, states ``warmup`` (the number of updates after which ``ready`` is first
True) and round-trips its state through JSON-safe ``snapshot``/``restore``.
Conventions follow TA-Lib; deliberate deviations are documented on the class (an RSI of flat
prices is 50, a Stochastic %K of a flat range 50, a Williams %R of one -50).
"""

from barbus.strategies.indicators.averages import EMA, SMA
from barbus.strategies.indicators.channels import DonchianChannel, KeltnerChannel
from barbus.strategies.indicators.directional import ADX
from barbus.strategies.indicators.momentum import RSI
from barbus.strategies.indicators.oscillators import CCI, MACD, ROC, Stochastic, StochRSI, WilliamsR
from barbus.strategies.indicators.rolling import RollingMax, RollingMin, RollingStd, ZScore
from barbus.strategies.indicators.trend import Supertrend
from barbus.strategies.indicators.volatility import ATR, BollingerBands, TrueRange
from barbus.strategies.indicators.volume import OBV, VWAP
from barbus.strategies.indicators.weighted import DEMA, TEMA, WMA

__all__ = [
    "ADX",
    "ATR",
    "CCI",
    "DEMA",
    "EMA",
    "MACD",
    "OBV",
    "ROC",
    "RSI",
    "SMA",
    "TEMA",
    "VWAP",
    "WMA",
    "BollingerBands",
    "DonchianChannel",
    "KeltnerChannel",
    "RollingMax",
    "RollingMin",
    "RollingStd",
    "StochRSI",
    "Stochastic",
    "Supertrend",
    "TrueRange",
    "WilliamsR",
    "ZScore",
]
