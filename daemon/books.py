"""The daemon's books: per engine what it has done, and the per-bar path that keeps them.

Each bar is checked by its stream's guard, pushed into the session, and committed with every
event it caused, every touched engine's snapshot and the shared accounts' snapshots in one
SQLite transaction. The books count closed trades, fills and orders from those committed
events (never by diffing the engines' lists); metrics and ``/status`` read them when asked, so
the per-bar path builds nothing for them. Apart from the service because this is the part a
bar goes through, while the service only starts, streams and stops.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from barbus.daemon.config import DaemonConfig, StrategyConfig
from barbus.daemon.core.engine import StrategyEngine
from barbus.daemon.core.errors import DataError
from barbus.daemon.core.events import (
    Bar,
    BarGuard,
    EngineEvent,
    Fill,
    OrderEvent,
    Side,
    StrategyHalted,
    Trade,
)
from barbus.daemon.core.session import Session
from barbus.daemon.feed import LiveFeed, dropped
from barbus.daemon.metrics import DaemonMetrics
from barbus.daemon.records import engine_config
from barbus.daemon.state import AccountRecord, EngineUpdate, StateStore, StateWriteError

__all__ = ["Book", "Books", "unrealised"]

log = logging.getLogger("barbus.daemon")


def _per_side() -> dict[str, int]:
    return dict.fromkeys((side.value for side in Side), 0)


@dataclass
class Book:
    """What the daemon tracks per engine beyond the engine itself: counted from the committed
    events (and, at start, from the recorded trades)."""

    config: StrategyConfig
    engine: StrategyEngine
    trades: int = 0  # closed trades recorded, this run's and earlier runs'
    realised: float = 0.0  # their profit
    halt_reason: str | None = None
    halted_earlier: bool = False  # restored halted: no new error, no new halt event
    fills: dict[str, int] = field(default_factory=_per_side)  # this run's, by side
    orders: dict[str, int] = field(default_factory=_per_side)  # this run's, by side
    created: float = field(default_factory=time.time)  # when its counters began

    def pnl(self) -> float:
        """Equity minus starting cash on an account of its own; on a shared one, the
        strategy's attributed profit: its recorded trades plus the unrealised profit of its
        position."""
        engine = self.engine
        if engine.own_account:
            return engine.account.equity() - engine.account.starting_cash
        return self.realised + unrealised(engine)


def unrealised(engine: StrategyEngine) -> float:
    """The open position marked at the last processed bar's close, less its entry fee."""
    position, last = engine.position, engine.last_bar
    if position.size == 0.0 or last is None:
        return 0.0
    return position.size * (last.close - position.entry_price) - position.entry_fee


class Books:
    """Every engine's book, the session they trade in, and the per-bar path into the state."""

    def __init__(self, config: DaemonConfig, metrics: DaemonMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self.session = Session()
        self.bus = self.session.bus
        self.by_name: dict[str, Book] = {}
        self.guards: dict[str, BarGuard] = {}
        self.live_from: dict[str, int] = {}
        self.state: StateStore | None = None
        self.feed: LiveFeed | None = None
        # Behind a cross-symbol shared account's minute barrier: the source of each held bar.
        self._held: dict[tuple[str, int], str] = {}
        # When the last bar of this run went through the live path (WebSocket or its REST
        # backfill): readiness follows it. Warm-up bars do not count (they only prove REST).
        self.last_live_bar_monotonic: float | None = None
        self.lags: deque[float] = deque(maxlen=10_000)
        self.bars_processed = 0
        self.bars_dropped = 0  # bars that reached the daemon but failed its guard
        self.dropped_run = 0  # of them, since the last processed bar
        self.dropped_at_last_bar = 0  # all drops so far when the last live bar went through

    def timed(self, name: str, engine: StrategyEngine) -> Callable[[Bar], None]:
        """The engine's bus handler, timed into barbus_strategy_on_bar_seconds{strategy}."""
        observe = self.metrics.on_bar.labels(name).observe
        on_bar = engine.on_bar

        def handler(bar: Bar) -> None:
            started = time.perf_counter()
            on_bar(bar)
            observe(time.perf_counter() - started)

        return handler

    def process(self, bar: Bar, source: str) -> None:
        """One bar through the session, committed with everything it caused."""
        assert self.state is not None
        guard = self.guards.setdefault(bar.symbol, BarGuard())
        try:
            guard.check(bar)  # the feed guarantees order: this is the last line of defence
        except DataError as exc:
            self._drop(bar, source, exc)
            return
        if self.dropped_run:
            log.warning(
                "%d %s bar(s) dropped before %s", self.dropped_run, bar.symbol, bar.describe()
            )
            self.dropped_run = 0
        if self.live_from.get(bar.symbol, 0) == 0:
            self.live_from[bar.symbol] = bar.open_time_ms
        session = self.session
        held = self._held
        if session.holds_minutes:
            held[(bar.symbol, bar.open_time_ms)] = source
        halts_before = len(self.bus.halted)
        started = time.perf_counter()
        released = session.push(bar)
        self.metrics.bus_publish.observe(time.perf_counter() - started)
        if not released:
            return  # held until the other symbols reach this minute; committed then
        # Everything these bars did is committed, also by a strategy that failed on them: its
        # fills before the failure moved its (maybe shared) account, and a replay keeps them.
        events = session.drain()
        halted = self.bus.halted
        failed_now = (
            {e.strategy for e in events if isinstance(e, StrategyHalted)}
            if len(halted) != halts_before
            else set()
        )
        if held:
            bars = [(b, held.pop((b.symbol, b.open_time_ms), source)) for b in released]
        else:
            bars = [(bar, source)]
        symbols = {b.symbol for b in released}
        books = [b for b in self.by_name.values() if b.config.symbol in symbols]
        updates = [
            update
            for b in books
            if b.config.name not in halted or b.config.name in failed_now
            if (update := self._update_or_none(b, b.config.name in failed_now)) is not None
        ]
        try:
            self.state.commit(bars, self.live_from, updates, events, self.account_records())
        except sqlite3.Error as exc:
            # Nothing of this bar is durable, so nothing may be acknowledged: stop here and
            # let the service manager restart us; recovery redoes the bar. Every bar before
            # it is committed and stays.
            self.metrics.state_write_errors.inc()
            raise StateWriteError(
                f"{self.config.state_path}: could not record the {bar.describe()} "
                f"({type(exc).__name__}: {exc}); stopping, every earlier bar is kept"
            ) from None
        if events:
            self.count(events)
        self.bars_processed += len(released)
        now = time.monotonic()
        feed = self.feed
        if source == "live":
            self.last_live_bar_monotonic = now
            self.dropped_at_last_bar = (dropped(feed.counters) if feed else 0) + self.bars_dropped
        for done, done_source in bars:
            self.metrics.bars.labels(done.symbol, done_source).inc()
            self.metrics.last_bar_time.labels(done.symbol).set(done.open_time_ms / 1000)
        self.metrics.state_write.observe(self.state.last_commit_seconds)
        received = feed.received_monotonic.get(bar.symbol) if feed is not None else None
        # Lag of the candle that just arrived live (not of bars fetched over REST before it).
        if (
            source == "live"
            and received is not None
            and feed is not None
            and feed.last_open_ms.get(bar.symbol) == bar.open_time_ms
        ):
            lag = now - received
            self.lags.append(lag)
            self.metrics.decision_lag.labels(bar.symbol).observe(lag)

    def commit_catch_up(self, books: Sequence[Book]) -> None:
        """Commit what catching up did at once, with the engines' snapshots, so a crash right
        after the start cannot commit those trades a second time."""
        assert self.state is not None
        done = [b for b in books if b.halt_reason is None]
        events: list[EngineEvent] = [e for b in done for e in b.engine.drain()]
        for book in books:
            book.engine.drain()  # what a failed catch-up did is not committed; its halt is
            if book.halt_reason is not None:
                events.append(StrategyHalted(book.config.name, 0, book.halt_reason))
        if not events and not done:
            return
        self.count(events)
        try:
            updates = [self.update(b) for b in done]
            self.state.commit([], {}, updates, events, self.account_records())
        except sqlite3.Error as exc:
            raise StateWriteError(
                f"{self.config.state_path}: could not record the catch-up ({exc}); stopping"
            ) from None

    def _update_or_none(self, book: Book, failed: bool) -> EngineUpdate | None:
        """The book's update; for a strategy that just failed, None when its snapshot fails
        too (a broken strategy): it then keeps the last committed one."""
        if not failed:
            return self.update(book)
        try:
            return self.update(book)
        except Exception as exc:  # the strategy's own snapshot code: isolate it as the bus does
            log.warning(
                "%s failed and its snapshot too (%s): the last one stays", book.config.name, exc
            )
            return None

    def update(self, book: Book) -> EngineUpdate:
        """What the state records of ``book`` after a bar: its settings and snapshot."""
        engine = book.engine
        last = engine.last_bar
        return EngineUpdate(
            name=book.config.name,
            strategy=book.config.spec,
            symbol=book.config.symbol,
            config=engine_config(book.config, self.config.execution),
            snapshot=engine.snapshot(),
            last_open_time_ms=last.open_time_ms if last is not None else 0,
        )

    def account_records(self) -> list[AccountRecord]:
        """The shared accounts as recorded: cash, and the order their strategies act in."""
        records = []
        for acc in self.config.accounts:
            account = self.session.accounts[acc.name]
            snapshot = account.snapshot()
            snapshot["holders"] = [h.name for h in account.holders if isinstance(h, StrategyEngine)]
            records.append(AccountRecord(acc.name, acc.cash, acc.allow_short, snapshot))
        return records

    def count(self, events: Sequence[EngineEvent]) -> None:
        """Fills, orders and trades counted from the committed events: an order is counted
        when placed, a signal or a bracket exit (a market order placed and filled at once) at
        its fill."""
        books = self.by_name
        for event in events:
            book = books.get(event.strategy)
            if book is None:
                continue
            if isinstance(event, Fill):
                book.fills[event.side.value] += 1
                if event.order_id == 0:
                    book.orders[event.side.value] += 1
            elif isinstance(event, OrderEvent):
                if event.event == "placed":
                    book.orders[event.side.value] += 1
            elif isinstance(event, Trade):
                book.trades += 1
                book.realised += event.profit

    def _drop(self, bar: Bar, source: str, exc: DataError) -> None:
        """A bar the feed let through but that would poison the record (older than the last
        one, or insane values): never recorded, counted, and logged once per run of drops."""
        self.bars_dropped += 1
        self.dropped_run += 1
        self.metrics.bars_dropped.labels(bar.symbol, source).inc()
        if self.dropped_run == 1:
            log.warning("%s bar dropped: %s", source, str(exc)[:200])
