"""Finding a strategy's indicators among its attributes, and saving and restoring its attributes.

The strategy base's default ``snapshot``/``restore``, ``ready`` and ``warmup_bars`` are built on
these helpers: an attribute is an indicator when it looks like :class:`Indicator` (or holds
indicators in nested lists, tuples and dict values), and :func:`save_value`/:func:`load_value` turn
indicators and plain JSON-like values into JSON-safe data and back into a fresh instance's
attributes. Kept apart from the base class, so that the class reads as the strategy API and this
module is the one place that knows which values a snapshot can hold. A cold path: the daemon
saves state after each bar, warm-up is asked for once.
"""

from __future__ import annotations

import copy
import functools
from collections import deque
from collections.abc import Iterator
from typing import Any, Protocol, TypeGuard, runtime_checkable

from barbus.daemon.core.errors import StrategyError

__all__ = ["MISSING", "Indicator", "indicators_in", "load_value", "save_value", "slot_names"]


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


def indicators_in(value: object) -> Iterator[Indicator]:
    """The indicators in ``value``: itself, or inside (nested) lists, tuples and dict values."""
    if _is_indicator(value):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from indicators_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from indicators_in(item)


MISSING: Any = object()
"""An unassigned slot, or no template to restore into."""


@functools.cache
def slot_names(cls: type) -> tuple[str, ...]:
    """Instance slots of ``cls`` and its bases (without ``params``), bases first."""
    names: list[str] = []
    for klass in reversed(cls.__mro__):
        slots = klass.__dict__.get("__slots__", ())
        if not slots and "__mypyc_attrs__" in klass.__dict__:
            # A compiled class (mypyc) keeps its attribute names here, in another order than
            # its __slots__ were written: sorted, as the project's lint (RUF023) sorts __slots__,
            # they come in the order the pure-Python build has, so snapshots read the same.
            slots = tuple(sorted(klass.__dict__["__mypyc_attrs__"]))
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


def save_value(value: object, owner: object, attribute: str) -> Any:
    """``value`` as JSON-safe data: a fresh copy, never an alias of live state."""
    if value is None or type(value) in (bool, int, str):
        return value
    if isinstance(value, float):
        return float(value)
    if _is_indicator(value):
        return value.snapshot()
    if isinstance(value, list | tuple | deque):
        return [save_value(item, owner, attribute) for item in value]
    if isinstance(value, dict):
        for key in value:
            if type(key) is not str:
                raise _unsaveable(owner, attribute, key)
        return {key: save_value(item, owner, attribute) for key, item in value.items()}
    raise _unsaveable(owner, attribute, value)


def _kind(template: object) -> str:
    return {bool: "a bool", int: "a number", str: "a str"}[type(template)]


def load_value(template: Any, saved: Any, owner: object, attribute: str) -> Any:
    """``saved`` shaped like ``template`` (the fresh instance's value), in place where mutable."""
    if template is MISSING or template is None:
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
        if len(template) != len(saved) and any(indicators_in(template)):
            raise ValueError(f"{len(saved)} items for {len(template)} holding indicators")
        templates = list(template) if len(template) == len(saved) else [MISSING] * len(saved)
        items = [load_value(t, s, owner, attribute) for t, s in zip(templates, saved, strict=True)]
        if isinstance(template, tuple):
            return tuple(items)
        template.clear()
        template.extend(items)  # a deque keeps its maxlen, aliases see the new contents
        return template
    if isinstance(template, dict):
        if not isinstance(saved, dict):
            raise TypeError(f"expected a dict, got {type(saved).__name__}")
        if any(indicators_in(template)) and set(template) != set(saved):
            raise ValueError(f"keys {sorted(saved)} for {sorted(template)} holding indicators")
        loaded = {
            k: load_value(template.get(k, MISSING), v, owner, attribute) for k, v in saved.items()
        }
        template.clear()
        template.update(loaded)
        return template
    raise _unsaveable(owner, attribute, template)
