"""The paper-trading daemon's lifecycle: start-up order, streaming, signals, sd_notify, stop.

The daemon drives one kernel :class:`~barbus.daemon.core.session.Session` through its books
(:mod:`daemon.books`): the feed pump hands each bar to the per-bar path, which commits the bars
it processed with everything they caused in one SQLite transaction before the next bar is read,
so ``kill -9`` at any moment loses nothing that was acknowledged and a restart redoes at most
the bar in flight (or the bars a minute barrier held), identically.

Start-up, in this order: the state is opened (locked, checked, proven writable), the engines
are restored and caught up (:mod:`daemon.recovery`) and the catch-up committed, HTTP listens,
the feed is made and symbols without history are warmed up (:mod:`daemon.warmup`), READY is
sent, and the feed is streamed until it ends or a stop is asked for. The feed and the state
store are passed in (``feed`` is a factory: it needs the last recorded bar per symbol, known
only once the state is read), so a test runs the daemon in-process on a scripted feed and a
temporary SQLite file; the CLI passes neither and gets the Binance feed and the configured
state file.

SIGTERM / SIGINT stop intake at the next await point (a bar is never half-processed), close
the feed, flush and close the state, and exit 0. SIGHUP re-reads the log level from the config.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import sqlite3
import time
from collections.abc import Callable, Sequence

from barbus.daemon.books import Books
from barbus.daemon.config import DaemonConfig, load_config
from barbus.daemon.core.errors import ConfigError
from barbus.daemon.core.events import Bar
from barbus.daemon.feed import LiveFeed, pump
from barbus.daemon.feeds.binance import BinanceFeed
from barbus.daemon.feeds.binance_config import FeedConfig
from barbus.daemon.http import app_runner, make_app, start_site
from barbus.daemon.http_guard import HttpLimits
from barbus.daemon.listen import listen
from barbus.daemon.log import configure_logging
from barbus.daemon.metrics import BooksCollector, DaemonMetrics, LiveStateCollector
from barbus.daemon.notify import sd_notify, watchdog_interval_seconds
from barbus.daemon.recovery import Recovery
from barbus.daemon.state import StateStore
from barbus.daemon.status import Status
from barbus.daemon.warmup import (
    ResumeBackfill,
    StoppedError,
    last_open_times,
    seed_plausibility,
    warm_up,
)

__all__ = ["Daemon", "FeedFactory", "run_daemon"]

log = logging.getLogger("barbus.daemon")

FeedFactory = Callable[[FeedConfig, dict[str, int | None]], LiveFeed]
"""Makes the feed from ``[feed]`` and the last recorded bar per symbol (None: none)."""


class Daemon:
    """One daemon process; :meth:`run` returns the exit code.

    ``store`` is an open state store to use (default: the configured file, opened exclusively
    by :meth:`run`); ``feed`` makes the feed (default: :class:`BinanceFeed`)."""

    def __init__(
        self,
        config: DaemonConfig,
        *,
        new_state: bool = False,
        store: StateStore | None = None,
        feed: FeedFactory = BinanceFeed,
    ) -> None:
        self.config = config
        self.new_state = new_state
        self._store = store
        self._make_feed = feed
        self.metrics = DaemonMetrics.create()
        self.books = Books(config, self.metrics)
        self.view = Status(self.books)
        self.http_port: int | None = None
        self._stop = asyncio.Event()
        self._resume = ResumeBackfill({})
        registry = self.metrics.registry
        registry.register(
            LiveStateCollector(
                config.feed.symbols,
                lambda: self.books.feed.counters if self.books.feed is not None else None,
                lambda: self.view.readiness()[0],
            )
        )
        registry.register(BooksCollector(self.books))

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

    def restore(self) -> None:
        """Open the state (unless one was passed in), restore and catch up every engine, and
        commit the catch-up; what it did is logged once the start is accepted."""
        if self._store is None:
            # Locked, checked and proven writable before anything else happens (warm-up
            # included): damaged, replaced, busy or read-only state stops the daemon here.
            path = self.config.state_path
            self._store = StateStore(path, exclusive=True, new_state=self.new_state)
        state = self.books.state = self._store
        try:
            recovery = Recovery(self.books, state)
            recovery.restore()  # a snapshot that does not restore is damage: one line
            state.check_writable()  # read-only or full: stop now, not after warm-up
            self.books.commit_catch_up(recovery.caught_up)
            for level, line in recovery.log_lines:  # a refused start says one line, no more
                log.log(level, "%s", line)
        except BaseException:
            state.close()
            raise
        self._resume = ResumeBackfill(recovery.resume_backfill)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        loop.add_signal_handler(signal.SIGINT, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        sd_notify("STATUS=starting")
        self.restore()
        books, status = self.books, self.view
        assert books.state is not None
        http = self.config.http
        limits = HttpLimits(http.max_connections, http.idle_timeout_seconds)
        app = make_app(
            status.status, status.readiness, self.metrics.registry, limits, status.recorded_trades
        )
        runner = app_runner(app)
        watchdog: asyncio.Task[None] | None = None
        monitor: asyncio.Task[None] | None = None
        try:
            await runner.setup()
            sock = listen(http.host, http.port, "[http]")
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
            feed = books.feed = self._make_feed(self.config.feed, last_open_times(books))
            seed_plausibility(books, feed)
            try:
                await warm_up(books, feed, self._stop)
            except StoppedError:
                return 0  # stopped while waiting for the exchange
            status.warm = True
            status.streaming_since = time.monotonic()
            monitor = asyncio.create_task(self._monitor())
            symbols = ", ".join(self.config.feed.symbols)
            count = len(books.by_name)
            sd_notify("READY=1", f"STATUS=trading {count} strategies on {symbols}")
            log.info("warmed up; trading %d strategies on %s", count, symbols)
            await self._stream(feed)
        finally:
            sd_notify("STOPPING=1", "STATUS=stopping")
            for task in (watchdog, monitor):
                if task is not None:
                    task.cancel()
            if books.feed is not None:
                await books.feed.stop()
            await runner.cleanup()
            try:
                books.state.close()
            except sqlite3.Error as exc:  # the error that stopped us was reported already
                log.warning("closing %s: %s", self.config.state_path, exc)
            log.info("stopped after %d bars", books.bars_processed)
        return 0

    async def _stream(self, feed: LiveFeed) -> None:
        consume = asyncio.create_task(self._consume(feed))
        stopping = asyncio.create_task(self._stop.wait())
        done, _ = await asyncio.wait({consume, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if consume in done:
            stopping.cancel()
            consume.result()  # the live feed never ends by itself: surface why it did
            return
        await feed.stop()
        consume.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consume

    async def _consume(self, feed: LiveFeed) -> None:
        def note(batch: Sequence[Bar]) -> None:
            self._resume.note(feed, batch)

        await pump(feed, functools.partial(self.books.process, source="live"), note)

    async def _watchdog(self) -> None:
        interval = watchdog_interval_seconds()
        if interval is None:
            return
        while True:
            sd_notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    async def _monitor(self) -> None:
        """Check for a stall twice per ``max_bar_age_seconds`` (at most once a second)."""
        interval = max(0.05, min(1.0, self.config.max_bar_age_seconds / 2))
        while True:
            await asyncio.sleep(interval)
            self.view.check_stall(time.monotonic())


def run_daemon(config: DaemonConfig, *, new_state: bool = False) -> int:
    """Run the daemon on uvloop until stopped; returns the exit code. ``new_state`` accepts an
    emptied or replaced state file (see :mod:`daemon.state`)."""
    import uvloop

    return uvloop.run(Daemon(config, new_state=new_state).run())
