"""How orders are executed: fees, slippage, fill timing, starting cash and shorts, as one record.

A cold record beside the broker, read once when an engine is built: it stays interpreted in the
compiled kernel (``setup.py``), so it validates, copies and pickles (batch jobs carry it to their
workers) as plain Python does, and a caller may subclass it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from barbus.daemon.core.errors import ConfigError

__all__ = ["ExecutionConfig", "FillTiming"]

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
