"""The event bus: synchronous, exact-keyed delivery of bars to subscribers.

Single-thread contract: ``publish`` is called from one thread (the asyncio loop in the daemon,
the replay loop in a backtest) and runs every subscriber to completion before returning, in
subscription order. There is no ``await`` inside: feeds await data at the edges and hand each bar
here, so the order of events — and therefore every decision — is the same live and in replay.

A subscriber that raises is isolated: the error is logged and counted, the other subscribers
still get the bar, and the failing subscriber is halted (unsubscribed) rather than fed more bars
with half-updated state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mypy_extensions import mypyc_attr

from barbus.daemon.core.errors import BarbusError
from barbus.daemon.core.events import Bar

__all__ = ["BarHandler", "EventBus", "Subscription"]

log = logging.getLogger("barbus.bus")

BarHandler = Callable[[Bar], None]


# Plain Python classes in the compiled kernel too (native_class=False): mypyc's frozen
# dataclasses cannot be copied or pickled, and these records cross processes.
@mypyc_attr(native_class=False)
@dataclass(frozen=True, slots=True)
class Subscription:
    """A named handler registered for bars of one (symbol, interval) stream."""

    name: str
    symbol: str
    interval: str
    handler: BarHandler


class EventBus:
    """Route each bar to the handlers subscribed to its (symbol, interval), in order."""

    __slots__ = ("_routes", "_subscriptions", "errors", "halted")

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []
        # Rebuilt on (un)subscribe, never on publish: the hot path is one dict lookup.
        self._routes: dict[tuple[str, str], tuple[Subscription, ...]] = {}
        self.errors: dict[str, int] = {}
        self.halted: dict[str, str] = {}

    def subscribe(
        self, name: str, symbols: Iterable[str], intervals: Iterable[str], handler: BarHandler
    ) -> None:
        """Register ``handler`` under ``name`` for every (symbol, interval) combination given."""
        if name in self.halted or any(s.name == name for s in self._subscriptions):
            raise ValueError(f"a subscriber named {name!r} is already registered")
        interval_list = list(intervals)
        for symbol in symbols:
            for interval in interval_list:
                self._subscriptions.append(Subscription(name, symbol, interval, handler))
        self.errors.setdefault(name, 0)
        self._rebuild()

    def unsubscribe(self, name: str) -> None:
        """Remove every subscription registered under ``name``."""
        self._subscriptions = [s for s in self._subscriptions if s.name != name]
        self._rebuild()

    def subscribers(self, symbol: str, interval: str) -> list[str]:
        """Names subscribed to one stream, in delivery order."""
        return [s.name for s in self._routes.get((symbol, interval), ())]

    def publish(self, bar: Bar) -> None:
        """Deliver ``bar`` to its stream's subscribers, isolating any that raise."""
        for sub in self._routes.get((bar.symbol, bar.interval), ()):
            try:
                sub.handler(bar)
            except Exception as exc:  # isolating subscribers is this method's job
                self._halt(sub, bar, exc)

    def publish_each(self, bars: dict[tuple[str, str], Bar]) -> None:
        """Deliver bars of several streams (one minute's) subscriber by subscriber, in
        subscription order, each subscriber getting its stream's bar (a cold path)."""
        for sub in list(self._subscriptions):
            bar = bars.get((sub.symbol, sub.interval))
            if bar is None or sub.name in self.halted:
                continue
            try:
                sub.handler(bar)
            except Exception as exc:  # isolating subscribers is this method's job
                self._halt(sub, bar, exc)

    def halt(self, name: str, reason: str) -> None:
        """Record ``name`` as halted for ``reason``, one more error (the caller logs it)."""
        self.errors[name] = self.errors.get(name, 0) + 1
        self.halted[name] = reason

    def _halt(self, sub: Subscription, bar: Bar, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {exc} (on {bar.describe()})"
        self.halt(sub.name, reason)
        # A BarbusError (e.g. the broker refusing a non-finite order) says all in one line.
        trace = None if isinstance(exc, BarbusError) else exc
        log.error("subscriber %s raised and is halted: %s", sub.name, reason, exc_info=trace)
        self.unsubscribe(sub.name)

    def _rebuild(self) -> None:
        routes: dict[tuple[str, str], list[Subscription]] = {}
        for sub in self._subscriptions:
            routes.setdefault((sub.symbol, sub.interval), []).append(sub)
        self._routes = {key: tuple(subs) for key, subs in routes.items()}
