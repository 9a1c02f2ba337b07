"""The strategy API: parameters in, one decision per bar out, state that can be saved.

A strategy is deliberately ignorant: it holds no broker, clock, feed, file or event loop, and it
never learns whether its bars come from a live exchange or a replay. It receives bars of its own
timeframe (the engine aggregates 1-minute bars for it) plus the current position, and returns a
:class:`~daemon.events.Signal` or ``None``. Stop loss and take profit live in the engine, which
checks them on every 1-minute bar.

Parameters are a frozen dataclass per strategy (a cold path): ``__post_init__`` validates ranges
and relations, :func:`parse_params` converts ``name=value`` strings by field type and rejects
unknown names with a "did you mean".

Warm-up (a cold path, asked for sizing the daemon's warm-up and for ``/status``): a strategy's
indicators are its attributes that look like :class:`Indicator`; ``ready`` says they all are,
``warmup_bars`` how many bars of the strategy's timeframe come before its first possible decision.

State (a cold path too: the daemon saves it after each bar): the default ``snapshot``/``restore``
cover a strategy whose attributes are indicators and plain JSON-like values, so most strategies
write neither; one holding anything else gets a :class:`StrategyError` that says so.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import re
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator, Mapping
from typing import (
    Any,
    ClassVar,
    Generic,
    Protocol,
    TypeGuard,
    TypeVar,
    get_type_hints,
    runtime_checkable,
)

from barbus.daemon.core.errors import StrategyError, did_you_mean
from barbus.daemon.core.events import INTERVAL_MS, Bar
from barbus.daemon.core.orders import Decision

__all__ = [
    "AnyStrategy",
    "BaseParams",
    "Indicator",
    "ParamValue",
    "Strategy",
    "parse_params",
    "require",
    "snake_case",
]

ParamValue = str | int | float | bool


def require(condition: bool, message: str) -> None:
    """Raise :class:`StrategyError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise StrategyError(message)


@dataclasses.dataclass(frozen=True)
class BaseParams:
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


@runtime_checkable
class Indicator(Protocol):
    """What a strategy's indicator offers the base class: readiness, warm-up length and state."""

    @property
    def ready(self) -> bool:
        """True once ``warmup`` updates were seen."""

    @property
    def warmup(self) -> int:
        """The number of update calls after which ``ready`` first becomes True."""

    def snapshot(self) -> dict[str, Any]:
        """JSON-safe state."""

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`snapshot` of an indicator with the same arguments."""


def snake_case(name: str) -> str:
    """``EmaCross`` -> ``ema_cross``, ``RSIReversal`` -> ``rsi_reversal``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


_INDICATOR_TYPES: set[type] = set()
"""Types seen to be indicators: a protocol isinstance costs microseconds, a set lookup not."""


_BUILTIN_TYPES: frozenset[type] = frozenset(
    {type(None), bool, int, float, str, list, tuple, dict, deque}
)


def _is_indicator(value: object) -> TypeGuard[Indicator]:
    kind = type(value)
    if kind in _INDICATOR_TYPES:
        return True
    if kind in _BUILTIN_TYPES:
        return False
    if isinstance(value, Indicator):
        _INDICATOR_TYPES.add(type(value))
        return True
    return False


def _indicators_in(value: object) -> Iterator[Indicator]:
    """The indicators in ``value``: itself, or inside (nested) lists, tuples and dict values."""
    if _is_indicator(value):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _indicators_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _indicators_in(item)


_MISSING: Any = object()
"""An unassigned slot, or no template to restore into."""


@functools.cache
def _slot_names(cls: type) -> tuple[str, ...]:
    """Instance slots of ``cls`` and its bases (without ``params``), bases first."""
    names: list[str] = []
    for klass in reversed(cls.__mro__):
        slots = klass.__dict__.get("__slots__", ())
        for slot in (slots,) if isinstance(slots, str) else slots:
            if slot not in names and slot not in ("params", "__dict__", "__weakref__"):
                names.append(slot)
    return tuple(names)


def _unsaveable(owner: object, attribute: str, value: object) -> StrategyError:
    cls = type(owner).__name__
    return StrategyError(
        f"{cls}.{attribute} holds a {type(value).__name__}, which the default snapshot cannot "
        f"save (it saves indicators and None/bool/int/float/str, lists, tuples, deques and "
        f"str-keyed dicts of them; an indicator has ready, warmup, snapshot and restore): "
        f"write snapshot() and restore() for {cls}"
    )


def _save(value: object, owner: object, attribute: str) -> Any:
    """``value`` as JSON-safe data: a fresh copy, never an alias of live state."""
    if value is None or type(value) in (bool, int, str):
        return value
    if isinstance(value, float):
        return float(value)
    if _is_indicator(value):
        return value.snapshot()
    if isinstance(value, list | tuple | deque):
        return [_save(item, owner, attribute) for item in value]
    if isinstance(value, dict):
        for key in value:
            if type(key) is not str:
                raise _unsaveable(owner, attribute, key)
        return {key: _save(item, owner, attribute) for key, item in value.items()}
    raise _unsaveable(owner, attribute, value)


def _kind(template: object) -> str:
    return {bool: "a bool", int: "a number", str: "a str"}[type(template)]


def _load(template: Any, saved: Any, owner: object, attribute: str) -> Any:
    """``saved`` shaped like ``template`` (the fresh instance's value), in place where mutable."""
    if template is _MISSING or template is None:
        return copy.deepcopy(saved)
    if _is_indicator(template):
        template.restore(saved)
        return template
    if isinstance(template, float):
        if type(saved) not in (int, float):
            raise TypeError(f"expected a number, got {type(saved).__name__}")
        return float(saved)
    if type(template) is int and type(saved) in (int, float):
        return saved  # a counter started at 0 may hold a float by now (``total += close``)
    if type(template) in (bool, int, str):
        if type(saved) is not type(template):
            raise TypeError(f"expected {_kind(template)}, got {type(saved).__name__}")
        return saved
    if isinstance(template, list | tuple | deque):
        if not isinstance(saved, list):
            raise TypeError(f"expected a list, got {type(saved).__name__}")
        if len(template) != len(saved) and any(_indicators_in(template)):
            raise ValueError(f"{len(saved)} items for {len(template)} holding indicators")
        templates = list(template) if len(template) == len(saved) else [_MISSING] * len(saved)
        items = [_load(t, s, owner, attribute) for t, s in zip(templates, saved, strict=True)]
        if isinstance(template, tuple):
            return tuple(items)
        template.clear()
        template.extend(items)  # a deque keeps its maxlen, aliases see the new contents
        return template
    if isinstance(template, dict):
        if not isinstance(saved, dict):
            raise TypeError(f"expected a dict, got {type(saved).__name__}")
        if any(_indicators_in(template)) and set(template) != set(saved):
            raise ValueError(f"keys {sorted(saved)} for {sorted(template)} holding indicators")
        loaded = {
            k: _load(template.get(k, _MISSING), v, owner, attribute) for k, v in saved.items()
        }
        template.clear()
        template.update(loaded)
        return template
    raise _unsaveable(owner, attribute, template)


class Strategy(ABC, Generic[P]):
    """Base class: subclasses implement ``on_bar`` and usually set ``params_type``.

    ``name`` defaults to the class name in snake_case (``EmaCross`` -> ``ema_cross``) and
    ``params_type`` to :class:`BaseParams`, when neither the class nor a base sets them.
    """

    name: ClassVar[str]
    params_type: ClassVar[type[BaseParams]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = snake_case(cls.__name__)
        if not hasattr(cls, "params_type"):
            cls.params_type = BaseParams

    def __init__(self, params: P) -> None:
        self.params = params

    def _attributes(self) -> Iterator[tuple[str, object]]:
        """Every instance attribute but ``params``: slots in class order, then ``__dict__``;
        a slot never assigned is :data:`_MISSING` (cold path)."""
        for slot in _slot_names(type(self)):
            yield slot, getattr(self, slot, _MISSING)
        for key, value in getattr(self, "__dict__", {}).items():
            if key != "params":
                yield key, value

    def indicators(self) -> list[Indicator]:
        """The strategy's indicators: attributes (or items of attribute containers) that are."""
        return [ind for _, value in self._attributes() for ind in _indicators_in(value)]

    @property
    def ready(self) -> bool:
        """True once every indicator is ready (override when a decision needs more state)."""
        return all(indicator.ready for indicator in self.indicators())

    @property
    def warmup_bars(self) -> int:
        """The 1-based number of the first bar (of this strategy's timeframe) that can produce a
        decision, from the parameters: by default the largest indicator ``warmup`` (at least 1).
        Override when a decision needs more, e.g. a cross compares with the previous bar (+1).
        Feeding this many bars leaves the strategy :attr:`ready`.
        """
        return max([1, *(indicator.warmup for indicator in self.indicators())])

    @abstractmethod
    def on_bar(self, bar: Bar, position: float) -> Decision:
        """Update indicators with a bar of this strategy's timeframe and decide.

        ``position`` is the signed quantity held (0.0 when flat, negative when short). Return
        ``Signal.BUY`` to go all in long, ``Signal.SELL`` to close the long (a BUY while long or
        a SELL while flat is ignored by the engine), an :class:`~barbus.daemon.core.orders.Order`
        or :class:`~barbus.daemon.core.orders.Cancel`, a list of them, or ``None``.
        """

    def snapshot(self) -> dict[str, Any]:
        """Return the full JSON-serialisable state needed to continue exactly where it stopped.

        The default saves every attribute but ``params`` under its name without leading
        underscores (``_fast`` -> ``"fast"``): indicators by their own snapshot, and plain
        values (None, bool, int, float incl. NaN/inf, str, and lists, tuples, deques and
        str-keyed dicts of them). Anything else raises :class:`StrategyError`: then write
        ``snapshot`` and ``restore`` yourself.
        """
        state: dict[str, Any] = {}
        for attribute, key in self._state_keys():
            value = getattr(self, attribute, _MISSING)
            if value is not _MISSING:
                state[key] = _save(value, self, attribute)
        return state

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`snapshot` taken on a strategy with the same parameters.

        The default restores what the default :meth:`snapshot` saved into this (fresh)
        instance: each attribute's current value is the template (indicators restore in place,
        a deque keeps its ``maxlen``, a float stays a float); every key must match an attribute
        assigned in ``__init__``.
        """
        keys = self._state_keys()
        known = {key for _, key in keys}
        unknown = sorted(set(state) - known)
        if unknown:
            raise StrategyError(
                f"{type(self).__name__} snapshot has {', '.join(map(repr, unknown))}, which is "
                f"no attribute of a new {type(self).__name__} (state attributes: "
                f"{', '.join(sorted(known))}); assign every state attribute in __init__"
            )
        for attribute, key in keys:
            template = getattr(self, attribute, _MISSING)
            if key not in state:
                if template is _MISSING:
                    continue
                raise StrategyError(f"{type(self).__name__} snapshot has no {key!r}")
            try:
                setattr(self, attribute, _load(template, state[key], self, attribute))
            except (TypeError, ValueError, KeyError, IndexError) as exc:
                raise StrategyError(
                    f"{type(self).__name__} snapshot value {key!r} does not restore: {exc}"
                ) from None

    def _state_keys(self) -> list[tuple[str, str]]:
        """(attribute, snapshot key) of every state attribute; two that strip to one key fail."""
        keys: dict[str, str] = {}
        out = []
        for attribute, _ in self._attributes():
            key = attribute.lstrip("_") or attribute
            if key in keys:
                raise StrategyError(
                    f"{type(self).__name__} attributes {keys[key]!r} and {attribute!r} share the "
                    f"snapshot key {key!r}: rename one or write snapshot/restore"
                )
            keys[key] = attribute
            out.append((attribute, key))
        return out


AnyStrategy = Strategy[Any]
"""A strategy with any parameter type: what registries and engines hold."""


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
