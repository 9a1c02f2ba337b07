"""The paper broker: turns a market order and a reference price into a fill. Pure, no state.

Prices move against the trader by ``slippage_bps`` (buy higher, sell lower) and a fee of
``fee_bps`` of the notional is charged in quote currency. Sizing is all-in and fractional: a buy
spends the whole cash balance, fee included, so cash returns to (about) zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, final

from daemon.errors import ConfigError
from daemon.events import ExitReason, Fill, Side

__all__ = ["ExecutionConfig", "FillTiming", "PaperBroker"]

FillTiming = Literal["next_open", "close"]


@dataclass(frozen=True, slots=True)
class ExecutionConfig:
    """How orders are executed; shared by replay and the daemon so both fill identically."""

    fee_bps: float = 10.0
    slippage_bps: float = 5.0
    fill_at: FillTiming = "next_open"
    starting_cash: float = 10_000.0

    def __post_init__(self) -> None:
        for name in ("fee_bps", "slippage_bps"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value < 10_000.0):
                raise ConfigError(f"{name} must be in [0, 10000) basis points, got {value}")
        if self.fill_at not in ("next_open", "close"):
            raise ConfigError(f"fill_at must be 'next_open' or 'close', got {self.fill_at!r}")
        if not (math.isfinite(self.starting_cash) and self.starting_cash > 0.0):
            raise ConfigError(f"starting_cash must be > 0, got {self.starting_cash}")


@final
class PaperBroker:
    """Fill market orders at a reference price with slippage and fees."""

    __slots__ = ("fee_rate", "slippage_rate")

    def __init__(self, fee_bps: float, slippage_bps: float) -> None:
        self.fee_rate = fee_bps / 10_000.0
        self.slippage_rate = slippage_bps / 10_000.0

    def buy_all_in(
        self, strategy: str, symbol: str, ref_price: float, time_ms: int, cash: float
    ) -> Fill:
        """Buy as much as ``cash`` pays for, fee included."""
        price = ref_price * (1.0 + self.slippage_rate)
        notional = cash / (1.0 + self.fee_rate)
        return Fill(
            strategy,
            symbol,
            Side.BUY,
            time_ms,
            price,
            notional / price,
            notional * self.fee_rate,
            ExitReason.SIGNAL,
        )

    def sell(
        self,
        strategy: str,
        symbol: str,
        ref_price: float,
        time_ms: int,
        size: float,
        reason: ExitReason,
    ) -> Fill:
        """Sell ``size`` units; ``reason`` says why the position is closed."""
        price = ref_price * (1.0 - self.slippage_rate)
        return Fill(
            strategy, symbol, Side.SELL, time_ms, price, size, size * price * self.fee_rate, reason
        )
