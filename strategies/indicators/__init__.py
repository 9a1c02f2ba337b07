"""Incremental technical indicators for the per-bar hot path of live trading and replay.

Every indicator takes plain floats one bar at a time, keeps O(period) fixed state, exposes
``value``/``ready`` as plain attributes and round-trips its state through JSON-safe
``snapshot``/``restore``. Conventions follow TA-Lib; deliberate deviations are documented on the
class (RSI of a flat series is 50).
"""

from barbus.strategies.indicators.averages import EMA, SMA
from barbus.strategies.indicators.momentum import RSI
from barbus.strategies.indicators.trend import Supertrend
from barbus.strategies.indicators.volatility import ATR, BollingerBands, TrueRange

__all__ = ["ATR", "EMA", "RSI", "SMA", "BollingerBands", "Supertrend", "TrueRange"]
