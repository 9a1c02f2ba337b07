"""The paper-trading daemon: feed -> bus -> engines -> SQLite, with HTTP, signals and sd_notify.

Start-up is recovery (crash-only): open the state, rebuild every engine from its last
committed snapshot, warm up what has no history (REST bars fed with trading disabled), then
stream. Each bar is published on the bus and committed with everything it caused in one SQLite
transaction before the next bar is read, so ``kill -9`` at any moment loses nothing that was
acknowledged and a restart redoes at most the bar in flight, identically.

SIGTERM / SIGINT stop intake at the next await point (a bar is never half-processed), close
the feed, flush and close the state, and exit 0. SIGHUP re-reads the log level from the config.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from daemon.broker import ExecutionConfig
from daemon.bus import EventBus
from daemon.config import DaemonConfig, StrategyConfig, load_config
from daemon.engine import StrategyEngine
from daemon.errors import ConfigError
from daemon.events import MINUTE_MS, Bar, BarGuard, Side, format_time_ms
from daemon.feeds.binance import BinanceFeed, FeedTemporaryError
from daemon.http import HttpLimits, app_runner, make_app, start_site
from daemon.log import configure_logging
from daemon.metrics import DaemonMetrics
from daemon.notify import sd_notify, watchdog_interval_seconds
from daemon.state import EngineUpdate, StateStore
from strategies import create_strategy

__all__ = ["Daemon", "run_daemon"]

log = logging.getLogger("barbus.daemon")


class _StoppedError(Exception):
    """A stop was requested while the daemon was still warming up."""


@dataclass
class _Book:
    """What the daemon tracks per engine beyond the engine itself."""

    config: StrategyConfig
    engine: StrategyEngine
    committed_fills: int = 0
    committed_trades: int = 0
    counted_orders: dict[Side, int] = field(default_factory=dict)
    trades_before_restart: int = 0  # closed in earlier runs (the engine's log starts empty)
    counted_errors: int = 0


class Daemon:
    """One daemon process; :meth:`run` returns the exit code."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.metrics = DaemonMetrics.create()
        self.bus = EventBus()
        self.books: dict[str, _Book] = {}
        self.guards: dict[str, BarGuard] = {}
        self.live_from: dict[str, int] = {}
        self.state: StateStore | None = None
        self.feed: BinanceFeed | None = None
        self.warm = False
        self.http_port: int | None = None
        self.last_bar_monotonic: float | None = None
        self.lags: deque[float] = deque(maxlen=10_000)
        self.bars_processed = 0
        self._stop = asyncio.Event()
        self._counted: dict[str, int] = {}

    # -- lifecycle ----------------------------------------------------------------------------

    def request_stop(self) -> None:
        if not self._stop.is_set():
            log.info("stop requested: finishing the bar in flight")
            self._stop.set()

    def reload(self) -> None:
        """SIGHUP: apply the log level from the config file again."""
        if self.config.source is None:
            return
        try:
            level = load_config(self.config.source).log_level
        except ConfigError as exc:
            log.error("reload failed, keeping the current settings: %s", exc)
            return
        configure_logging(level)
        log.info("log level is now %s", level)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        loop.add_signal_handler(signal.SIGINT, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        sd_notify("STATUS=starting")
        self.state = StateStore(self.config.state_path)
        http = self.config.http
        limits = HttpLimits(http.max_connections, http.idle_timeout_seconds)
        runner = app_runner(make_app(self.status, self.readiness, self.metrics.registry, limits))
        watchdog: asyncio.Task[None] | None = None
        try:
            self._restore_engines()
            await runner.setup()
            try:
                family = socket.AF_INET6 if ":" in http.host else socket.AF_INET
                sock = socket.create_server((http.host, http.port), family=family)
            except OSError as exc:
                raise ConfigError(
                    f"[http] cannot listen on {http.host}:{http.port}: {exc.strerror or exc}"
                ) from None
            self.http_port = sock.getsockname()[1]
            await start_site(runner, sock)
            log.info("http on %s:%s", http.host, self.http_port)
            if http.exposed:
                log.warning(
                    "http on %s:%s is exposed to the network (metrics, status): "
                    "[http] expose = true",
                    http.host,
                    self.http_port,
                )
            watchdog = asyncio.create_task(self._watchdog())
            self.feed = BinanceFeed(self.config.feed, self._last_open_times())
            try:
                await self._warm_up(self.feed)
            except _StoppedError:
                return 0  # stopped while waiting for the exchange
            self.warm = True
            symbols = ", ".join(self.config.feed.symbols)
            sd_notify("READY=1", f"STATUS=trading {len(self.books)} strategies on {symbols}")
            log.info("warmed up; trading %d strategies on %s", len(self.books), symbols)
            await self._stream(self.feed)
        finally:
            sd_notify("STOPPING=1", "STATUS=stopping")
            if watchdog is not None:
                watchdog.cancel()
            await runner.cleanup()
            self.state.close()
            log.info("stopped after %d bars", self.bars_processed)
        return 0

    async def _stream(self, feed: BinanceFeed) -> None:
        consume = asyncio.create_task(self._consume(feed))
        stopping = asyncio.create_task(self._stop.wait())
        done, _ = await asyncio.wait({consume, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if consume in done:
            stopping.cancel()
            consume.result()  # the feed never ends by itself: surface why it did
            return
        await feed.stop()
        consume.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consume

    async def _consume(self, feed: BinanceFeed) -> None:
        async for batch in feed.batches():
            for bar in batch:
                self._process(bar, "live")
            self._export_feed_counters(feed)

    async def _watchdog(self) -> None:
        interval = watchdog_interval_seconds()
        if interval is None:
            return
        while True:
            sd_notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    # -- engines and warm-up ------------------------------------------------------------------

    def _restore_engines(self) -> None:
        assert self.state is not None
        streams = self.state.streams()
        saved = self.state.engines()
        for symbol, stream in streams.items():
            self.live_from[symbol] = stream.live_from_ms
            self.guards[symbol] = BarGuard(stream.last_open_time_ms)
        for cfg in self.config.strategies:
            strategy = create_strategy(cfg.strategy, cfg.params)
            engine = StrategyEngine(
                strategy, cfg.symbol, self.config.execution_for(cfg), name=cfg.name
            )
            book = _Book(cfg, engine)
            record = saved.get(cfg.name)
            if record is not None:
                wanted = _engine_config(cfg, self.config.execution)
                if record.config != wanted:
                    raise ConfigError(
                        f"strategy {cfg.name!r} was saved with {record.config}, but is now "
                        f"configured as {wanted}; give it a new name (or use a new "
                        "state file) instead of changing a running strategy"
                    )
                engine.restore(record.snapshot)
                book.trades_before_restart = len(self.state.trades(cfg.name))
            elif cfg.symbol in streams:
                self._catch_up_new_engine(book)
            self.books[cfg.name] = book
            self.bus.subscribe(cfg.name, [cfg.symbol], ["1m"], self._timed(cfg.name, engine))
            self._export_engine(book)
            for side in Side:  # every series exists from the start, at 0
                self.metrics.fills.labels(cfg.name, side.value)
                self.metrics.orders.labels(cfg.name, side.value)
        for symbol in self.config.feed.symbols:
            for source in ("warmup", "live"):
                self.metrics.bars.labels(symbol, source)
            for source in ("live", "backfill"):
                self.metrics.bars_received.labels(symbol, source)
            self.metrics.decision_lag.labels(symbol)

    def _timed(self, name: str, engine: StrategyEngine) -> Callable[[Bar], None]:
        """The engine's bus handler, timed into barbus_strategy_on_bar_seconds{strategy}."""
        observe = self.metrics.on_bar.labels(name).observe
        on_bar = engine.on_bar

        def handler(bar: Bar) -> None:
            started = time.perf_counter()
            on_bar(bar)
            observe(time.perf_counter() - started)

        return handler

    def _catch_up_new_engine(self, book: _Book) -> None:
        """A strategy added to a running daemon learns from the recorded bars, trading none."""
        assert self.state is not None
        recorded = self.state.bars(book.config.symbol)
        engine = book.engine
        engine.trade_from_ms = recorded[-1][0].open_time_ms + MINUTE_MS
        for bar, _ in recorded:
            engine.on_bar(bar)
        log.info("%s: warmed up on %d recorded bars", book.config.name, len(recorded))

    def _last_open_times(self) -> dict[str, int | None]:
        return {
            s: (g.last_open_time_ms if (g := self.guards.get(s)) else None)
            for s in self.config.feed.symbols
        }

    async def _warm_up(self, feed: BinanceFeed) -> None:
        for symbol in self.config.feed.symbols:
            if symbol in self.live_from:
                continue  # history already recorded: the feed backfills from there
            bars = await self._fetch_warmup(feed, symbol)
            live_from = bars[-1].open_time_ms + MINUTE_MS if bars else 0
            self.live_from[symbol] = live_from
            for book in self.books.values():
                if book.config.symbol == symbol:
                    book.engine.trade_from_ms = live_from
            for bar in bars:
                self._process(bar, "warmup")
            if bars:
                feed.last_open_ms[symbol] = bars[-1].open_time_ms
            log.info(
                "%s: warmed up on %d bars, trading from %s",
                symbol,
                len(bars),
                format_time_ms(live_from) if live_from else "the first live bar",
            )

    async def _fetch_warmup(self, feed: BinanceFeed, symbol: str) -> list[Bar]:
        """Warm-up bars over REST, retried with backoff while the exchange is unreachable."""
        if not self.config.warmup_bars:
            return []
        delay = self.config.feed.reconnect_initial_seconds
        while True:
            try:
                return await feed.fetch_recent(symbol, self.config.warmup_bars)
            except FeedTemporaryError as exc:
                log.warning("warm-up of %s failed (%s); retrying in %.1f s", symbol, exc, delay)
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=delay)
            except TimeoutError:
                delay = min(delay * 2, self.config.feed.reconnect_max_seconds)
                continue
            raise _StoppedError

    # -- the per-bar path ---------------------------------------------------------------------

    def _process(self, bar: Bar, source: str) -> None:
        assert self.state is not None
        guard = self.guards.setdefault(bar.symbol, BarGuard())
        guard.check(bar)  # the feed guarantees order; a violation is a bug worth a crash
        if self.live_from.get(bar.symbol, 0) == 0:
            self.live_from[bar.symbol] = bar.open_time_ms
        started = time.perf_counter()
        self.bus.publish(bar)
        self.metrics.bus_publish.observe(time.perf_counter() - started)
        updates = []
        for book in self.books.values():
            if book.config.symbol != bar.symbol or book.config.name in self.bus.halted:
                continue
            engine = book.engine
            updates.append(
                EngineUpdate(
                    name=book.config.name,
                    strategy=book.config.strategy,
                    symbol=book.config.symbol,
                    config=_engine_config(book.config, self.config.execution),
                    snapshot=engine.snapshot(),
                    new_fills=engine.fills[book.committed_fills :],
                    new_trades=engine.trades[book.committed_trades :],
                )
            )
        try:
            self.state.commit_bar(bar, source, self.live_from[bar.symbol], updates)
        except sqlite3.Error:
            # Nothing of this bar is durable, so nothing may be acknowledged: stop here and
            # let the service manager restart us; recovery redoes the bar.
            self.metrics.state_write_errors.inc()
            log.critical("state write failed for %s; stopping", bar.describe())
            raise
        for book in self.books.values():
            if book.config.symbol == bar.symbol:
                for fill in book.engine.fills[book.committed_fills :]:
                    self.metrics.fills.labels(book.config.name, fill.side.value).inc()
                for side, placed in book.engine.orders.items():
                    counted = book.counted_orders.get(side, 0)
                    self.metrics.orders.labels(book.config.name, side.value).inc(placed - counted)
                    book.counted_orders[side] = placed
                book.committed_fills = len(book.engine.fills)
                book.committed_trades = len(book.engine.trades)
                self._export_engine(book)
        self.bars_processed += 1
        now = time.monotonic()
        self.last_bar_monotonic = now
        self.metrics.bars.labels(bar.symbol, source).inc()
        self.metrics.state_write.observe(self.state.last_commit_seconds)
        self.metrics.last_bar_time.labels(bar.symbol).set(bar.open_time_ms / 1000)
        feed = self.feed
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

    # -- observability ------------------------------------------------------------------------

    def _export_engine(self, book: _Book) -> None:
        engine, name = book.engine, book.config.name
        errors = self.bus.errors.get(name, 0)
        self.metrics.subscriber_errors.labels(name).inc(errors - book.counted_errors)
        book.counted_errors = errors
        price = engine.last_bar.close if engine.last_bar is not None else 0.0
        equity = engine.portfolio.equity(price)
        self.metrics.position.labels(name).set(engine.portfolio.size)
        self.metrics.cash.labels(name).set(engine.portfolio.cash)
        self.metrics.equity.labels(name).set(equity)
        self.metrics.pnl.labels(name).set(equity - book.config.capital)
        self.metrics.strategy_halted.labels(name).set(1 if name in self.bus.halted else 0)

    def _export_feed_counters(self, feed: BinanceFeed) -> None:
        c = feed.counters
        self.metrics.feed_connected.set(1 if c.connected else 0)
        for key, counter in (
            ("reconnects", self.metrics.feed_reconnects),
            ("malformed", self.metrics.feed_messages_malformed),
            ("duplicates", self.metrics.feed_messages_duplicated),
            ("out_of_order", self.metrics.feed_messages_out_of_order),
            ("backfilled", self.metrics.bars_backfilled),
        ):
            value = getattr(c, key)
            counter.inc(value - self._counted.get(key, 0))
            self._counted[key] = value
        for (symbol, source), value in c.received.items():
            key = f"received:{symbol}:{source}"
            self.metrics.bars_received.labels(symbol, source).inc(value - self._counted.get(key, 0))
            self._counted[key] = value

    def readiness(self) -> tuple[bool, str]:
        if not self.warm:
            return False, "warming up"
        if self.feed is None or not self.feed.counters.connected:
            return False, "feed disconnected"
        if self.last_bar_monotonic is not None:
            age = time.monotonic() - self.last_bar_monotonic
            if age > self.config.max_bar_age_seconds:
                return False, f"no bar for {age:.0f} s"
        return True, "ready"

    def status(self) -> dict[str, Any]:
        strategies = []
        for name, book in self.books.items():
            engine = book.engine
            last = engine.last_bar
            equity = engine.portfolio.equity(last.close if last is not None else 0.0)
            strategies.append(
                {
                    "name": name,
                    "strategy": book.config.strategy,
                    "symbol": book.config.symbol,
                    "position": engine.portfolio.size,
                    "cash": engine.portfolio.cash,
                    "equity": equity,
                    "pnl": equity - book.config.capital,
                    "trades": book.trades_before_restart + book.committed_trades,
                    "last_bar": format_time_ms(last.open_time_ms) if last is not None else None,
                    "trading_from": format_time_ms(engine.trade_from_ms),
                    "halted": self.bus.halted.get(name),
                }
            )
        counters = self.feed.counters if self.feed is not None else None
        lags = sorted(self.lags)
        ready, why = self.readiness()
        return {
            "ready": ready,
            "readiness": why,
            "warm": self.warm,
            "bars_processed": self.bars_processed,
            "feed": None
            if counters is None
            else {
                "connected": counters.connected,
                "messages": counters.messages,
                "live_bars": counters.live_bars,
                "backfilled": counters.backfilled,
                "malformed": counters.malformed,
                "duplicates": counters.duplicates,
                "out_of_order": counters.out_of_order,
                "reconnects": counters.reconnects,
            },
            "lag_ms": {
                "samples": len(lags),
                "p50": 1000 * lags[len(lags) // 2] if lags else None,
                "p99": 1000 * lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else None,
            },
            "strategies": strategies,
        }


def _engine_config(cfg: StrategyConfig, execution: ExecutionConfig) -> dict[str, Any]:
    """Everything that decides an engine's trades; stored so replay (parity) can redo them."""
    return {
        "strategy": cfg.strategy,
        "symbol": cfg.symbol,
        "capital": cfg.capital,
        "params": dict(sorted(cfg.params.items())),
        "fee_bps": execution.fee_bps,
        "slippage_bps": execution.slippage_bps,
        "fill_at": execution.fill_at,
    }


def run_daemon(config: DaemonConfig) -> int:
    """Run the daemon on uvloop until stopped; returns the exit code."""
    import uvloop

    return uvloop.run(Daemon(config).run())
