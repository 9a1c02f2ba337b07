"""The paper broker: turns an order, a quantity and a reference price into a fill. Pure, no state.

Taker fills (market and stop orders, bracket exits) move against the trader by ``slippage_bps``
(buy higher, sell lower) and pay ``taker_fee_bps`` of the notional; maker fills (limit orders)
fill at their price and pay ``maker_fee_bps``. ``fee_bps`` sets both, as it did before there
were two. An all-in buy spends the whole cash given, fee included, so cash returns to exactly
zero: ``size * price`` never exceeds the notional and the fee is what the cash leaves after it
(``fee_bps`` of the notional, give or take an ulp of the cash).

A fill is always made of finite, positive numbers. An order whose price, size, notional or fee
would not be (a price of 1e307 times the position overflows to infinity, and infinite proceeds
make cash NaN) is refused with :class:`OrderRejectedError` before anything changes; the bus then
halts that strategy with one log line and counts it, and its last good state stays recorded.
The checks run per fill only, never on a quiet bar.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, final

from barbus.daemon.core.errors import ConfigError, StrategyError
from barbus.daemon.core.events import ExitReason, Fill, Side

__all__ = ["ExecutionConfig", "FillTiming", "OrderRejectedError", "PaperBroker"]

_INF = math.inf


class OrderRejectedError(StrategyError):
    """The broker refused an order whose fill would not be finite: the strategy is halted."""


FillTiming = Literal["next_open", "close"]


@dataclass(frozen=True, slots=True)
class ExecutionConfig:
    """How orders are executed; shared by replay and the daemon so both fill identically.

    ``maker_fee_bps`` / ``taker_fee_bps`` of ``None`` take ``fee_bps``. ``allow_short`` lets the
    account a replay or batch job builds hold short positions. These defaults are the only ones:
    every reader (daemon config, batch spec, parity, the Python API, the CLI) takes them from here.
    """

    fee_bps: float = 10.0
    slippage_bps: float = 5.0
    fill_at: FillTiming = "next_open"
    starting_cash: float = 10_000.0
    maker_fee_bps: float | None = None
    taker_fee_bps: float | None = None
    allow_short: bool = False

    @classmethod
    def from_mapping(
        cls, raw: Mapping[str, Any], *, where: str = "", cash_key: str = "cash"
    ) -> ExecutionConfig:
        """The execution that ``raw`` (a config table, a batch spec, a state's record, the API's
        arguments) describes by the names its files use: ``fee_bps``, ``slippage_bps``,
        ``fill_at``, the starting cash under ``cash_key``, ``maker_fee_bps``, ``taker_fee_bps``
        and ``allow_short``; a key left out (or a fee of None) takes the default, other keys are
        the caller's to check. A value that is no number or no flag is a ConfigError starting
        with ``where`` (e.g. ``"spec.toml: "``); a value out of range raises the bare message of
        the checks below, for the caller to place."""
        defaults = cls()
        try:
            fee_bps = float(raw.get("fee_bps", defaults.fee_bps))
            slippage_bps = float(raw.get("slippage_bps", defaults.slippage_bps))
            fill_at = raw.get("fill_at", defaults.fill_at)
            starting_cash = float(raw.get(cash_key, defaults.starting_cash))
            maker_fee_bps, taker_fee_bps = (
                None if (value := raw.get(key, getattr(defaults, key))) is None else float(value)
                for key in ("maker_fee_bps", "taker_fee_bps")
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}execution settings: {exc}") from None
        allow_short = raw.get("allow_short", defaults.allow_short)
        if not isinstance(allow_short, bool):
            raise ConfigError(f"{where}allow_short must be true or false, got {allow_short!r}")
        return cls(
            fee_bps, slippage_bps, fill_at, starting_cash, maker_fee_bps, taker_fee_bps, allow_short
        )

    @property
    def maker_bps(self) -> float:
        return self.fee_bps if self.maker_fee_bps is None else self.maker_fee_bps

    @property
    def taker_bps(self) -> float:
        return self.fee_bps if self.taker_fee_bps is None else self.taker_fee_bps

    def identity(self) -> dict[str, Any]:
        """What decides the fills, as a batch job's id hashes it: the four options of the first
        release always, each later one only when it is not its default, so adding an option
        never changes the id of a job that does not use it."""
        identity: dict[str, Any] = {
            "fee_bps": self.fee_bps,
            "slippage_bps": self.slippage_bps,
            "fill_at": self.fill_at,
            "starting_cash": self.starting_cash,
        }
        for name in ("maker_fee_bps", "taker_fee_bps", "allow_short"):
            value = getattr(self, name)
            if value is not None and value is not False:
                identity[name] = value
        return identity

    def __post_init__(self) -> None:
        for name in ("fee_bps", "slippage_bps", "maker_fee_bps", "taker_fee_bps"):
            value = getattr(self, name)
            if value is None:
                continue
            if not (math.isfinite(value) and 0.0 <= value < 10_000.0):
                raise ConfigError(f"{name} must be in [0, 10000) basis points, got {value}")
        if self.fill_at not in ("next_open", "close"):
            raise ConfigError(f"fill_at must be 'next_open' or 'close', got {self.fill_at!r}")
        if not (math.isfinite(self.starting_cash) and self.starting_cash > 0.0):
            raise ConfigError(f"starting_cash must be > 0, got {self.starting_cash}")


@final
class PaperBroker:
    """Fill orders at a reference price with slippage (taker) and fees (maker or taker)."""

    __slots__ = ("fee_rate", "maker_fee_rate", "slippage_rate")

    def __init__(self, fee_bps: float, slippage_bps: float, maker_fee_bps: float | None = None):
        self.fee_rate = fee_bps / 10_000.0  # the taker fee
        self.maker_fee_rate = self.fee_rate if maker_fee_bps is None else maker_fee_bps / 10_000.0
        self.slippage_rate = slippage_bps / 10_000.0

    @classmethod
    def for_execution(cls, execution: ExecutionConfig) -> PaperBroker:
        return cls(execution.taker_bps, execution.slippage_bps, execution.maker_bps)

    def price(self, side: Side, ref_price: float, maker: bool) -> float:
        """The fill price: a maker fill at its reference, a taker fill moved by the slippage."""
        if maker:
            return ref_price
        if side is Side.BUY:
            return ref_price * (1.0 + self.slippage_rate)
        return ref_price * (1.0 - self.slippage_rate)

    def fill(
        self,
        strategy: str,
        symbol: str,
        side: Side,
        price: float,
        size: float,
        time_ms: int,
        reason: ExitReason,
        *,
        maker: bool,
        order_id: int,
    ) -> Fill:
        """A fill of ``size`` at ``price`` (from :meth:`price`) with the maker or taker fee."""
        notional = size * price
        if not (0.0 < price < _INF and 0.0 < size < _INF and 0.0 <= notional < _INF):
            raise OrderRejectedError(
                f"{side} of {size!r} {symbol} refused: at price {price!r} the notional "
                f"{notional!r} is not finite"
            )
        fee = notional * (self.maker_fee_rate if maker else self.fee_rate)
        return Fill(strategy, symbol, side, time_ms, price, size, fee, reason, order_id)

    def buy_all_in(
        self, strategy: str, symbol: str, ref_price: float, time_ms: int, cash: float
    ) -> Fill:
        """Buy as much as ``cash`` pays for, fee included."""
        price = ref_price * (1.0 + self.slippage_rate)
        notional = cash / (1.0 + self.fee_rate)
        if not (0.0 < price < _INF and 0.0 < notional < _INF):
            raise OrderRejectedError(
                f"buy of {symbol} refused: price {ref_price!r} with cash {cash!r} "
                "is not a finite positive order"
            )
        size = notional / price
        if not 0.0 < size < _INF:
            raise OrderRejectedError(f"buy of {symbol} refused: size {size!r} at {price!r}")
        cost = size * price
        while cost > notional:  # rounded up: an ulp less size, so the fee below stays >= its rate
            size = math.nextafter(size, 0.0)
            cost = size * price
        # With a fee, the fee is the rest of the cash: cost is within a factor 2 of cash
        # (fee_bps < 10000), so cash - cost is exact (Sterbenz) and cost + fee == cash exactly.
        # Without one, cost <= cash and the portfolio books the last ulps of dust as 0.
        fee = cash - cost if self.fee_rate > 0.0 else 0.0
        return Fill(strategy, symbol, Side.BUY, time_ms, price, size, fee, ExitReason.SIGNAL)

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
        proceeds = size * price
        if not (0.0 < price < _INF and 0.0 < size < _INF and 0.0 <= proceeds < _INF):
            raise OrderRejectedError(
                f"sell of {size!r} {symbol} refused: at price {ref_price!r} the proceeds "
                f"{proceeds!r} are not finite"
            )
        return Fill(
            strategy, symbol, Side.SELL, time_ms, price, size, proceeds * self.fee_rate, reason
        )
