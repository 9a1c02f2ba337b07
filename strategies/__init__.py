"""Incremental indicators and the strategies built on them.

This package knows nothing about feeds, files, SQLite or asyncio (a test enforces it). The
registry below is explicit: a strategy exists for the CLI and the daemon once it is listed here.
"""

from __future__ import annotations

from collections.abc import Mapping

from barbus.daemon.errors import StrategyError, did_you_mean
from barbus.strategies.base import AnyStrategy, BaseParams, ParamValue, Strategy, parse_params
from barbus.strategies.bbrs import Bbrs
from barbus.strategies.metatrend import MetaTrend
from barbus.strategies.random_entry import RandomEntry
from barbus.strategies.sma_cross import SmaCross

__all__ = [
    "STRATEGIES",
    "AnyStrategy",
    "BaseParams",
    "Strategy",
    "create_strategy",
    "strategy_class",
]

STRATEGIES: dict[str, type[AnyStrategy]] = {
    cls.name: cls for cls in (SmaCross, MetaTrend, Bbrs, RandomEntry)
}


def strategy_class(name: str) -> type[AnyStrategy]:
    """Look a strategy up by its registered name, with a "did you mean" on a typo."""
    try:
        return STRATEGIES[name]
    except KeyError:
        hint = did_you_mean(name, STRATEGIES)
        known = ", ".join(STRATEGIES)
        raise StrategyError(f"unknown strategy {name!r}{hint} (strategies: {known})") from None


def create_strategy(name: str, overrides: Mapping[str, ParamValue] | None = None) -> AnyStrategy:
    """Instantiate strategy ``name`` with its default parameters updated by ``overrides``."""
    cls = strategy_class(name)
    return cls(parse_params(cls.params_type, overrides or {}))
