"""The strategy API: parameters in, one decision per bar out, state that can be saved.

A strategy is deliberately ignorant: it holds no broker, clock, feed, file or event loop, and it
never learns whether its bars come from a live exchange or a replay. It receives bars of its own
timeframe (the engine aggregates 1-minute bars for it) plus the current position, and returns a
:class:`~daemon.events.Signal` or ``None``. Stop loss and take profit live in the engine, which
checks them on every 1-minute bar.

Parameters are a frozen dataclass per strategy (:mod:`barbus.daemon.core.params`; its names are
importable from here too, as strategy files and the ``new-strategy`` skeleton do).

Warm-up (a cold path, asked for sizing the daemon's warm-up and for ``/status``): a strategy's
indicators are its attributes that look like :class:`Indicator`; ``ready`` says they all are,
``warmup_bars`` how many bars of the strategy's timeframe come before its first possible decision.

State (a cold path too: the daemon saves it after each bar): the default ``snapshot``/``restore``
cover a strategy whose attributes are indicators and plain JSON-like values, so most strategies
write neither; one holding anything else gets a :class:`StrategyError` that says so. What can be
saved and how is :mod:`barbus.daemon.core.indicator_state`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar, Generic

from mypy_extensions import mypyc_attr

from barbus.daemon.core.errors import StrategyError
from barbus.daemon.core.events import Bar
from barbus.daemon.core.indicator_state import (
    MISSING,
    Indicator,
    indicators_in,
    load_value,
    save_value,
    slot_names,
)
from barbus.daemon.core.orders import Decision
from barbus.daemon.core.params import BaseParams, P, ParamValue, parse_params, require

# The parameter names and Indicator stay importable from this module: strategy files (the
# ``new-strategy`` skeleton's among them) import them from here.
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


def snake_case(name: str) -> str:
    """``EmaCross`` -> ``ema_cross``, ``RSIReversal`` -> ``rsi_reversal``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


# User parameter classes and strategies (interpreted) subclass the compiled base.
@mypyc_attr(allow_interpreted_subclasses=True)
class Strategy(ABC, Generic[P]):
    """Base class: subclasses implement ``on_bar`` and usually set ``params_type``.

    ``name`` defaults to the class name in snake_case (``EmaCross`` -> ``ema_cross``) and
    ``params_type`` to :class:`BaseParams`, when neither the class nor a base sets them.
    """

    name: ClassVar[str]
    params_type: ClassVar[type[BaseParams]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in vars(cls):
            cls.name = snake_case(cls.__name__)
        if not hasattr(cls, "params_type"):
            cls.params_type = BaseParams

    def __init__(self, params: P) -> None:
        self.params = params

    def _attributes(self) -> Iterator[tuple[str, object]]:
        """Every instance attribute but ``params``: slots in class order, then ``__dict__``;
        a slot never assigned is :data:`MISSING` (cold path)."""
        for slot in slot_names(type(self)):
            yield slot, getattr(self, slot, MISSING)
        for key, value in getattr(self, "__dict__", {}).items():
            if key != "params":
                yield key, value

    def indicators(self) -> list[Indicator]:
        """The strategy's indicators: attributes (or items of attribute containers) that are."""
        return [ind for _, value in self._attributes() for ind in indicators_in(value)]

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
            value = getattr(self, attribute, MISSING)
            if value is not MISSING:
                state[key] = save_value(value, self, attribute)
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
            template = getattr(self, attribute, MISSING)
            if key not in state:
                if template is MISSING:
                    continue
                raise StrategyError(f"{type(self).__name__} snapshot has no {key!r}")
            try:
                setattr(self, attribute, load_value(template, state[key], self, attribute))
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
