"""A strategy's parameters: the fields every strategy has, their checks, and ``name=value`` parsing.

Parameters are a frozen dataclass per strategy (a cold path): ``__post_init__`` validates ranges
and relations, :func:`parse_params` converts ``name=value`` strings by field type and rejects
unknown names with a "did you mean". Apart from the strategy base because the CLI, configs and
batch specs build parameters without touching a strategy; strategy files import these names from
:mod:`barbus.strategies.base` (or :mod:`barbus.daemon.core.strategy`, which re-exports them).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, get_type_hints

from barbus.daemon.core.errors import ConfigError, StrategyError, did_you_mean
from barbus.daemon.core.events import INTERVAL_MS

__all__ = ["BaseParams", "P", "ParamValue", "params_dict", "parse_params", "require"]

ParamValue = str | int | float | bool


def params_dict(pairs: Sequence[tuple[str, str]]) -> dict[str, ParamValue]:
    """``--param`` (name, value) pairs as a mapping; a name given twice is an error."""
    params: dict[str, ParamValue] = {}
    for name, value in pairs:
        if name in params:
            raise ConfigError(f"parameter {name!r} given twice")
        params[name] = value
    return params


def require(condition: bool, message: str) -> None:
    """Raise :class:`StrategyError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise StrategyError(message)


class PlainClass(type):
    """The metaclass of every parameter class; it adds nothing. A class with a metaclass of its
    own stays a plain Python class in a compiled module (mypyc), and so do its subclasses: the
    parameters of a compiled strategy and of a user's strategy file are the same kind of
    dataclass (a compiled dataclass cannot have an interpreted dataclass subclass). Parameters
    are read when a strategy is built, never per bar."""


@dataclasses.dataclass(frozen=True)
class BaseParams(metaclass=PlainClass):
    """Parameters every strategy has: its timeframe and the engine's risk exits (0 = off)."""

    timeframe: str = "1m"
    stop_loss_pct: float = 0.0
    take_profit_pct: float = 0.0

    def __post_init__(self) -> None:
        require(
            self.timeframe in INTERVAL_MS,
            f"timeframe {self.timeframe!r} is not one of {', '.join(INTERVAL_MS)}",
        )
        for name in ("stop_loss_pct", "take_profit_pct"):
            value = getattr(self, name)
            require(
                math.isfinite(value) and 0.0 <= value < 100.0,
                f"{name} must be in [0, 100) percent (0 = off), got {value}",
            )

    def as_dict(self) -> dict[str, Any]:
        """Field name to value, in declaration order."""
        return dataclasses.asdict(self)


P = TypeVar("P", bound=BaseParams)
"""A strategy's parameter type (the base class is generic in it)."""


def _convert(name: str, text: str, kind: Any) -> Any:
    try:
        if kind is bool:
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if kind is int:
            return int(text)
        if kind is float:
            value = float(text)
            if not math.isfinite(value):
                raise ValueError(text)
            return value
        if kind is str:
            return text
    except ValueError:
        raise StrategyError(f"parameter {name}={text!r} is not a valid {kind.__name__}") from None
    raise StrategyError(f"parameter {name} has an unsupported type {kind!r}")


def parse_params(params_type: type[P], overrides: Mapping[str, ParamValue]) -> P:
    """Build ``params_type`` from defaults plus ``overrides`` (strings converted by field type)."""
    hints = get_type_hints(params_type)
    fields = [f.name for f in dataclasses.fields(params_type)]
    values: dict[str, Any] = {}
    for name, raw in overrides.items():
        if name not in fields:
            raise StrategyError(
                f"unknown parameter {name!r}{did_you_mean(name, fields)} "
                f"(parameters: {', '.join(fields)})"
            )
        kind = hints[name]
        if isinstance(raw, str) and kind is not str:
            values[name] = _convert(name, raw, kind)
        elif kind is float and isinstance(raw, int | float) and not isinstance(raw, bool):
            values[name] = float(raw)
        elif type(raw) is kind:  # exact: a bool is not an int, a float is not an int
            values[name] = raw
        else:
            raise StrategyError(
                f"parameter {name}={raw!r} is a {type(raw).__name__}, not a {kind.__name__}"
            )
    try:
        return params_type(**values)
    except TypeError as exc:
        raise StrategyError(f"invalid parameters: {exc}") from None
