"""One trading session: the bus, the engines and the accounts they share, driven bar by bar.

Replay, batch workers, parity and the daemon all build a :class:`Session` and push 1-minute bars
into it; none of them talks to an engine's books directly. The session is synchronous: a replay
loops over bars without an event loop, the daemon pushes each bar its feed pump hands over.

When an account is shared by strategies on different symbols, the order in which those symbols'
bars of one minute reach the engines decides who gets the cash. Live, the streams of two symbols
arrive in no fixed order, so the session then holds bars back (a minute barrier) until every
symbol has delivered that minute or a later one, and releases each minute's bars together: the
engines run in the order they were added (the config's order), each on its symbol's bar. A
symbol that stops delivering holds the minute back until it resumes. Only the symbols of such
accounts are held; every other bar passes straight through.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from typing import final

from barbus.daemon.core.account import Account
from barbus.daemon.core.bus import EventBus
from barbus.daemon.core.engine import StrategyEngine
from barbus.daemon.core.events import Bar, EngineEvent, StrategyHalted

__all__ = ["Session"]


@final
class Session:
    """Engines on one bus, with their accounts; bars in, events out."""

    __slots__ = ("_barrier", "_halts_reported", "accounts", "bus", "engines")

    def __init__(self) -> None:
        self.bus = EventBus()
        self.engines: list[StrategyEngine] = []
        self.accounts: dict[str, Account] = {}
        self._barrier: _MinuteBarrier | None = None
        self._halts_reported: set[str] = set()

    def open_account(self, name: str, cash: float, *, allow_short: bool = False) -> Account:
        """A shared account that engines join by passing it to :class:`StrategyEngine`."""
        if name in self.accounts:
            raise ValueError(f"an account named {name!r} is already open")
        account = Account(name, cash, allow_short=allow_short)
        self.accounts[name] = account
        return account

    def add(self, engine: StrategyEngine) -> StrategyEngine:
        """Subscribe ``engine`` to its symbol's input bars, after the engines added before."""
        if engine.own_account:
            name = engine.account.name
            if name in self.accounts and self.accounts[name] is not engine.account:
                raise ValueError(
                    f"strategy {engine.name}: its own account would share the name {name!r} "
                    "of another account; rename the strategy or the account"
                )
            self.accounts[name] = engine.account
        self.bus.subscribe(engine.name, [engine.symbol], [engine.bar_interval], engine.on_bar)
        self.engines.append(engine)
        held = {
            e.symbol
            for account in self.accounts.values()
            if len({h.symbol for h in account.holders if isinstance(h, StrategyEngine)}) > 1
            for e in account.holders
            if isinstance(e, StrategyEngine)
        }
        if held:
            order = [e.symbol for e in self.engines if e.symbol in held]
            self._barrier = _MinuteBarrier(list(dict.fromkeys(order)))
        return engine

    @property
    def holds_minutes(self) -> bool:
        """True when bars wait for the other symbols' bars of their minute (a minute barrier)."""
        return self._barrier is not None

    def push(self, bar: Bar) -> list[Bar]:
        """Hand one bar in; return the bars the engines processed now, in processing order (the
        bar itself, unless its symbol trades through a cross-symbol account: then the bars of
        the minutes this bar completed, possibly none)."""
        barrier = self._barrier
        if barrier is None or bar.symbol not in barrier.symbols:
            self.bus.publish(bar)
            return [bar]
        released: list[Bar] = []
        for minute in barrier.add(bar):
            self._publish_minute(minute)
            released.extend(minute)
        return released

    def run(
        self,
        batches: Iterable[Sequence[Bar]],
        on_events: Callable[[list[EngineEvent]], None] | None = None,
    ) -> int:
        """Push every bar of ``batches`` in order, flush held minutes; return the bar count.

        With ``on_events`` the engines' events are drained into it after each batch, so a long
        replay never holds them all; without it they stay in the outboxes for the caller."""
        count = 0
        barrier = self._barrier
        bus = self.bus  # bus.publish on the typed bus: a direct call in the compiled kernel
        for batch in batches:
            if barrier is None:
                for bar in batch:
                    bus.publish(bar)
            else:
                for bar in batch:
                    if bar.symbol not in barrier.symbols:
                        bus.publish(bar)
                        continue
                    for minute in barrier.add(bar):
                        self._publish_minute(minute)
            count += len(batch)
            self._hand_over(on_events)
        self.flush()
        self._hand_over(on_events)
        return count

    def _hand_over(self, on_events: Callable[[list[EngineEvent]], None] | None) -> None:
        if on_events is None:
            return
        for engine in self.engines:
            if engine.outbox:
                on_events(engine.drain())

    def flush(self) -> list[Bar]:
        """Release every held minute (the end of the data); return the bars processed."""
        released: list[Bar] = []
        if self._barrier is not None:
            for minute in self._barrier.drain():
                self._publish_minute(minute)
                released.extend(minute)
        return released

    def _publish_minute(self, bars: list[Bar]) -> None:
        self.bus.publish_each({(bar.symbol, bar.interval): bar for bar in bars})

    def finish(self) -> None:
        """End of data: every engine still running drops its orders and closes its position."""
        self.flush()
        for engine in self.engines:
            if engine.name not in self.bus.halted:
                engine.finish()

    def mark_halted(self, name: str, reason: str) -> None:
        """Record ``name`` as halted in an earlier run: it gets no bars, and neither an error
        nor a new halt event is counted for it."""
        self.bus.halted[name] = reason
        self._halts_reported.add(name)

    def drain(self) -> list[EngineEvent]:
        """Every engine's events since the last drain (engine order), then new halts."""
        events: list[EngineEvent] = []
        for engine in self.engines:
            if engine.outbox:
                events.extend(engine.drain())
        for name, reason in self.bus.halted.items():
            if name not in self._halts_reported:
                self._halts_reported.add(name)
                halted = next((e for e in self.engines if e.name == name), None)
                last = halted.last_bar if halted is not None else None
                events.append(StrategyHalted(name, last.open_time_ms if last else 0, reason))
        return events


@final
class _MinuteBarrier:
    """Hold bars of ``symbols`` until every one of them has reached their minute, then release
    whole minutes, oldest first (a heap of held minutes and a running watermark: O(log n)),
    each minute's bars in the order of ``symbols`` (the order their engines were added)."""

    __slots__ = ("_held", "_latest", "_rank", "_times", "_watermark", "symbols")

    def __init__(self, ordered_symbols: list[str]) -> None:
        self.symbols = frozenset(ordered_symbols)
        self._rank = {symbol: i for i, symbol in enumerate(ordered_symbols)}
        self._held: dict[int, list[Bar]] = {}
        self._times: list[int] = []
        self._latest: dict[str, int] = {}
        self._watermark = -1

    def add(self, bar: Bar) -> list[list[Bar]]:
        t = bar.open_time_ms
        previous = self._latest.get(bar.symbol)
        if previous is not None and t <= previous:
            return []  # not newer for its symbol (the feeds guarantee it is): dropped
        minute = self._held.get(t)
        if minute is None:
            self._held[t] = [bar]
            heapq.heappush(self._times, t)
        else:
            minute.append(bar)
        self._latest[bar.symbol] = t
        if len(self._latest) < len(self.symbols) or (
            previous is not None and previous > self._watermark
        ):
            return []  # a symbol has not started yet, or this one was not the one behind
        watermark = min(self._latest.values())
        if watermark <= self._watermark:
            return []
        self._watermark = watermark
        return self._release(watermark)

    def drain(self) -> list[list[Bar]]:
        return self._release(None)

    def _release(self, upto: int | None) -> list[list[Bar]]:
        times = self._times
        released = []
        rank = self._rank.__getitem__
        while times and (upto is None or times[0] <= upto):
            minute = self._held.pop(heapq.heappop(times))
            minute.sort(key=lambda bar: rank(bar.symbol))
            released.append(minute)
        return released
