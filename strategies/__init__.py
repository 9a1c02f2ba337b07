"""Incremental indicators and the strategies built on them.

This package knows nothing about feeds, files, SQLite or asyncio (a test enforces it). The four
built-in strategies are listed in :func:`~barbus.strategies.loader.builtin_strategies`; any other
comes from a spec (``file.py:Class``, ``package.module:Class``, an installed plugin) through
:func:`~barbus.strategies.loader.resolve_strategy`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from barbus.daemon.core.errors import StrategyError
from barbus.daemon.core.params import BaseParams, ParamValue, parse_params
from barbus.daemon.core.strategy import AnyStrategy, Strategy
from barbus.strategies.loader import (
    ENTRY_POINT_GROUP,
    StrategySource,
    available_strategies,
    builtin_strategies,
    describe_exception,
    load_shipped,
    resolve_strategy,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "STRATEGIES",
    "AnyStrategy",
    "BaseParams",
    "Strategy",
    "StrategyLike",
    "StrategySource",
    "available_strategies",
    "create_strategy",
    "describe_exception",
    "load_shipped",
    "resolve_strategy",
    "strategy_source",
]

STRATEGIES: dict[str, type[AnyStrategy]] = builtin_strategies()
"""The built-in strategies by registered name."""

StrategyLike = str | StrategySource | type[AnyStrategy]
"""What every entry point accepts as a strategy: a spec, a resolved source, or a class."""


def strategy_source(strategy: StrategyLike, base_dir: Path | None = None) -> StrategySource:
    """Resolve a spec (relative to ``base_dir``), or describe a class passed in directly."""
    if isinstance(strategy, StrategySource):
        return strategy
    if isinstance(strategy, str):
        return resolve_strategy(strategy, base_dir)
    return StrategySource.of_class(strategy)


def create_strategy(
    strategy: StrategyLike,
    overrides: Mapping[str, ParamValue] | None = None,
    base_dir: Path | None = None,
) -> AnyStrategy:
    """Instantiate ``strategy`` with its default parameters updated by ``overrides``; an
    exception in the strategy's own constructor is one :class:`StrategyError` line."""
    source = strategy_source(strategy, base_dir)
    params = parse_params(source.cls.params_type, overrides or {})
    try:
        return source.cls(params)
    except StrategyError:
        raise
    except Exception as exc:
        raise StrategyError(
            f"strategy {source.spec}: building it failed: {describe_exception(exc)}"
        ) from None
