"""One trading session: the bus, the engines and the accounts they share, driven bar by bar.

Replay, batch workers, parity and the daemon all build a :class:`Session` and push 1-minute bars
into it; none of them talks to an engine's books directly. The session is synchronous: a replay
loops over bars without an event loop, the daemon pushes each bar its feed pump hands over.

When an account is shared by strategies on different symbols, the order in which those symbols'
bars of one minute reach the engines decides who gets the cash. Live, the streams of two symbols
arrive in no fixed order, so the session then holds bars back (a minute barrier) until every
symbol has delivered that minute or a later one, and releases each minute's bars together: the
engines run in the order they were added (the config's order), each on its symbol's bar. A
symbol that stops delivering holds the minute back until it resumes; without a cross-symbol
account, bars pass straight through.
"""

from __future__ import annotations

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
        """Subscribe ``engine`` to its symbol's 1-minute bars, after the engines added before."""
        self.bus.subscribe(engine.name, [engine.symbol], ["1m"], engine.on_bar)
        self.engines.append(engine)
        if engine.own_account:
            self.accounts.setdefault(engine.account.name, engine.account)
        symbols = {e.symbol for e in engine.account.holders if isinstance(e, StrategyEngine)}
        if len(symbols) > 1 and self._barrier is None:
            self._barrier = _MinuteBarrier()
        if self._barrier is not None:
            self._barrier.symbols = [e.symbol for e in self.engines]
        return engine

    @property
    def holds_minutes(self) -> bool:
        """True when bars wait for the other symbols' bars of their minute (a minute barrier)."""
        return self._barrier is not None

    def push(self, bar: Bar) -> list[Bar]:
        """Hand one bar in; return the bars the engines processed now, in processing order (the
        bar itself without a barrier; with one, the minutes this bar completed)."""
        barrier = self._barrier
        if barrier is None:
            self.bus.publish(bar)
            return [bar]
        released: list[Bar] = []
        for minute in barrier.add(bar):
            self._publish_minute(minute)
            released.extend(minute)
        return released

    def run(self, batches: Iterable[Sequence[Bar]]) -> int:
        """Push every bar of ``batches`` in order, flush held minutes; return the bar count."""
        count = 0
        barrier = self._barrier
        if barrier is None:
            publish = self.bus.publish
            for batch in batches:
                for bar in batch:
                    publish(bar)
                count += len(batch)
            return count
        for batch in batches:
            for bar in batch:
                for minute in barrier.add(bar):
                    self._publish_minute(minute)
            count += len(batch)
        self.flush()
        return count

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
    """Hold bars until every symbol has reached their minute, then release whole minutes."""

    __slots__ = ("_held", "_latest", "symbols")

    def __init__(self) -> None:
        self.symbols: list[str] = []
        self._held: dict[int, list[Bar]] = {}
        self._latest: dict[str, int] = {}

    def add(self, bar: Bar) -> list[list[Bar]]:
        self._held.setdefault(bar.open_time_ms, []).append(bar)
        if bar.open_time_ms > self._latest.get(bar.symbol, -1):
            self._latest[bar.symbol] = bar.open_time_ms
        if any(symbol not in self._latest for symbol in self.symbols):
            return []
        watermark = min(self._latest[symbol] for symbol in self.symbols)
        return self._release(lambda t: t <= watermark)

    def drain(self) -> list[list[Bar]]:
        return self._release(lambda t: True)

    def _release(self, due: Callable[[int], bool]) -> list[list[Bar]]:
        order = {symbol: i for i, symbol in reversed(list(enumerate(self.symbols)))}
        released = []
        for minute in sorted(t for t in self._held if due(t)):
            bars = self._held.pop(minute)
            bars.sort(key=lambda b: order.get(b.symbol, len(order)))
            released.append(bars)
        return released
