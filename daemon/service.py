"""The paper-trading daemon: feed -> session (bus, engines, accounts) -> events -> SQLite, with
HTTP, signals and sd_notify.

The daemon drives one kernel :class:`~barbus.daemon.core.session.Session`: the ``[[account]]``
tables opened first, then an engine per ``[[strategy]]`` in config order (its shared account or
one of its own). The feed pump hands each bar to the session; the bars it processed (none while
a cross-symbol account's minute barrier holds it, several when a minute completes) are
committed with the drained events (fills, trades, order events), every touched engine's
snapshot and the shared accounts' snapshots, in one transaction. Fills, orders and trades are
counted from those events, never by diffing the engines' lists.

Start-up is recovery (crash-only): open the state, rebuild every engine from its last
committed snapshot, catch up an engine that was left out of the config for a while on the bars
recorded meanwhile (trading on them as if it had never left, so parity holds; only a strategy
with an account of its own: the strategies of a shared account run together, so a shared
account missing one of them, reordered, changed or left behind is refused), warm up what has
no history (REST bars fed with trading disabled, as many as its strategies need: their
``warmup_bars`` of their own timeframe), then stream. A strategy whose recorded spec, code
fingerprint or settings differ from the config is refused with one line that says what changed;
a record from before specs and fingerprints were recorded gets them on its first start. What
was restored, caught up and then backfilled is logged in one ``key=value`` line each. Each bar
is pushed into the session and committed with everything it caused in one SQLite transaction
before the next bar is read, so ``kill -9`` at any moment loses nothing that was acknowledged
and a restart redoes at most the bar in flight (or the bars a minute barrier held), identically.

SIGTERM / SIGINT stop intake at the next await point (a bar is never half-processed), close
the feed, flush and close the state, and exit 0. SIGHUP re-reads the log level from the config.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import signal
import sqlite3
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from barbus.daemon.config import DaemonConfig, StrategyConfig, load_config
from barbus.daemon.core.account import Account
from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.engine import StrategyEngine
from barbus.daemon.core.errors import ConfigError, DataError, StrategyError
from barbus.daemon.core.events import (
    MINUTE_MS,
    Bar,
    BarGuard,
    EngineEvent,
    Fill,
    OrderEvent,
    Side,
    StrategyHalted,
    Trade,
    format_time_ms,
    interval_ms,
)
from barbus.daemon.core.session import Session
from barbus.daemon.core.tradelog import trade_dict
from barbus.daemon.feed import pump
from barbus.daemon.feeds.binance import BinanceFeed, FeedCounters, FeedTemporaryError
from barbus.daemon.http import HttpLimits, app_runner, listen, make_app, start_site
from barbus.daemon.log import configure_logging
from barbus.daemon.metrics import DaemonMetrics, LiveStateCollector
from barbus.daemon.notify import sd_notify, watchdog_interval_seconds
from barbus.daemon.state import (
    AccountRecord,
    EngineRecord,
    EngineUpdate,
    StateStore,
    StateWriteError,
)
from barbus.strategies import StrategySource, create_strategy, resolve_strategy

__all__ = ["Daemon", "run_daemon"]

log = logging.getLogger("barbus.daemon")


class _StoppedError(Exception):
    """A stop was requested while the daemon was still warming up."""


@dataclass
class _Book:
    """What the daemon tracks per engine beyond the engine itself: counted from the committed
    events (and, at start, from the recorded trades)."""

    config: StrategyConfig
    engine: StrategyEngine
    trades: int = 0  # closed trades recorded, this run's and earlier runs'
    realised: float = 0.0  # their profit
    counted_errors: int = 0
    halt_reason: str | None = None
    halted_earlier: bool = False  # restored halted: no new error, no new halt event


class Daemon:
    """One daemon process; :meth:`run` returns the exit code."""

    def __init__(self, config: DaemonConfig, *, new_state: bool = False) -> None:
        self.config = config
        self.new_state = new_state
        self.metrics = DaemonMetrics.create()
        self.session = Session()
        self.bus = self.session.bus
        # Behind a cross-symbol shared account's minute barrier: the source of each held bar.
        self._held: dict[tuple[str, int], str] = {}
        self.books: dict[str, _Book] = {}
        self.guards: dict[str, BarGuard] = {}
        self.live_from: dict[str, int] = {}
        self.state: StateStore | None = None
        self.feed: BinanceFeed | None = None
        self.warm = False
        self.http_port: int | None = None
        # When the last bar of this run went through the live path (WebSocket or its REST
        # backfill): readiness follows it. Warm-up bars do not count (they only prove REST).
        self.last_live_bar_monotonic: float | None = None
        self.streaming_since: float | None = None
        self.lags: deque[float] = deque(maxlen=10_000)
        self.bars_processed = 0
        self.bars_dropped = 0  # bars that reached the daemon but failed its guard
        self.dropped_run = 0  # of them, since the last processed bar
        self._stop = asyncio.Event()
        self._dropped_at_last_bar = 0  # all drops so far when the last live bar went through
        self._stall_reported_at: float | None = None  # when the current stall was last logged
        self._stall_since = 0.0  # and since when it lasts
        # After a restart, per symbol: [last bar before it, bars backfilled, first, last]
        # until its first WebSocket bar, which logs what the backfill brought.
        self._resume_backfill: dict[str, list[int]] = {}
        self._backfill_seen: dict[str, int] = {}  # the feed's backfill counter at the last batch
        # What the restore did (level, line), logged once the start is accepted.
        self._restore_log: list[tuple[int, str]] = []
        self._caught_up: list[_Book] = []  # returning engines whose catch-up is to commit
        self.metrics.registry.register(
            LiveStateCollector(
                config.feed.symbols,
                lambda: self.feed.counters if self.feed is not None else None,
                lambda: self.readiness()[0],
            )
        )

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
        # Locked, checked and proven writable before anything else happens (warm-up included):
        # damaged, replaced, busy or read-only state stops the daemon here with one line.
        self.state = StateStore(self.config.state_path, exclusive=True, new_state=self.new_state)
        try:
            self._restore_engines()  # a snapshot that does not restore is damage: one line
            self.state.check_writable()  # read-only or full: stop now, not after warm-up
            self._commit_caught_up()
            for level, line in self._restore_log:  # a refused start says one line, no more
                log.log(level, "%s", line)
            self._restore_log.clear()
        except BaseException:
            self.state.close()
            raise
        http = self.config.http
        limits = HttpLimits(http.max_connections, http.idle_timeout_seconds)
        runner = app_runner(
            make_app(
                self.status, self.readiness, self.metrics.registry, limits, self.recorded_trades
            )
        )
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
            self.feed = BinanceFeed(self.config.feed, self._last_open_times())
            self._seed_plausibility(self.feed)
            try:
                await self._warm_up(self.feed)
            except _StoppedError:
                return 0  # stopped while waiting for the exchange
            self.warm = True
            self.streaming_since = time.monotonic()
            monitor = asyncio.create_task(self._monitor())
            symbols = ", ".join(self.config.feed.symbols)
            sd_notify("READY=1", f"STATUS=trading {len(self.books)} strategies on {symbols}")
            log.info("warmed up; trading %d strategies on %s", len(self.books), symbols)
            await self._stream(self.feed)
        finally:
            sd_notify("STOPPING=1", "STATUS=stopping")
            for task in (watchdog, monitor):
                if task is not None:
                    task.cancel()
            if self.feed is not None:
                await self.feed.stop()
            await runner.cleanup()
            try:
                self.state.close()
            except sqlite3.Error as exc:  # the error that stopped us was reported already
                log.warning("closing %s: %s", self.config.state_path, exc)
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
        def note(batch: Sequence[Bar]) -> None:
            if self._resume_backfill and batch:
                self._note_resume_backfill(feed.counters, batch)

        await pump(feed, functools.partial(self._process, source="live"), note)

    def _note_resume_backfill(self, counters: FeedCounters, batch: Sequence[Bar]) -> None:
        """Count the REST pages that follow a restart; the first WebSocket bar of the symbol
        ends them and logs one line with what they brought."""
        symbol = batch[0].symbol
        report = self._resume_backfill.get(symbol)
        if report is None:
            return
        backfilled = counters.received.get((symbol, "backfill"), 0)
        seen, self._backfill_seen[symbol] = self._backfill_seen.get(symbol, 0), backfilled
        if backfilled - seen >= len(batch):  # a REST page (counted by the feed as it came)
            report[1] += len(batch)
            if not report[2]:
                report[2] = batch[0].open_time_ms
            report[3] = batch[-1].open_time_ms
            return
        del self._resume_backfill[symbol]
        resumed_after, bars, first, last = report
        fields: dict[str, object] = {"symbol": symbol, "bars": bars}
        if bars:
            fields.update(**{"from": format_time_ms(first), "to": format_time_ms(last)})
        fields["resumed_after"] = format_time_ms(resumed_after)
        fields["first_live_bar"] = format_time_ms(batch[0].open_time_ms)
        log.info("backfilled after restart %s", _kv(fields))

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
        self._open_accounts(saved)
        upgrades: dict[str, tuple[str, dict[str, Any]]] = {}
        moved: set[str] = set()
        caught_up: list[_Book] = []
        halts = self.state.halts()
        for cfg in self.config.strategies:
            strategy = create_strategy(cfg.source, cfg.params)
            engine = StrategyEngine(
                strategy,
                cfg.symbol,
                self.config.execution_for(cfg),
                name=cfg.name,
                account=self.session.accounts[cfg.account] if cfg.account else None,
            )
            book = _Book(cfg, engine)
            record = saved.get(cfg.name)
            if record is not None:
                wanted = _engine_config(cfg, self.config.execution)
                rewrite = self._check_record(cfg, record.config, wanted)
                if rewrite is not None:
                    upgrades[cfg.name] = (cfg.spec, wanted)
                    if rewrite == "moved":
                        moved.add(cfg.name)
                try:
                    engine.restore(record.snapshot)
                except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
                    raise DataError(
                        f"{self.config.state_path}: damaged: the snapshot of strategy "
                        f"{cfg.name!r} does not restore: {type(exc).__name__}: {str(exc)[:200]}"
                    ) from None
                recorded = self.state.trades(cfg.name)
                book.trades = len(recorded)
                book.realised = sum(t.profit for t in recorded)
                self._log_restored(book, record)
                ran = streams.get(cfg.symbol)
                halted = halts.get(cfg.name)
                if halted is not None:
                    # Halted for good (as a replay halts it): not caught up, not fed.
                    book.halt_reason = f"{halted} (halted in an earlier run)"
                    book.halted_earlier = True
                    line = f"strategy {cfg.name} stays halted: {book.halt_reason}"
                    self._restore_log.append((logging.WARNING, line))
                elif ran is not None and record.last_open_time_ms < ran.last_open_time_ms:
                    if cfg.account is not None:
                        raise ConfigError(
                            f"strategy {cfg.name!r} last ran on the {cfg.symbol} bar at "
                            f"{format_time_ms(record.last_open_time_ms)}, but account "
                            f"{cfg.account!r} traded on without it until "
                            f"{format_time_ms(ran.last_open_time_ms)}: a strategy on a shared "
                            "account cannot be caught up alone; start it over under a new "
                            "[[strategy]] name"
                        )
                    self._catch_up_returning_engine(book, record)
                    caught_up.append(book)
            elif cfg.symbol in streams:
                self._catch_up_new_engine(book)
            self.books[cfg.name] = book
            self.session.add(engine)
            # The session subscribed the engine itself; the daemon times it (same place, same
            # order: re-subscribed at once, before the next engine is added).
            self.bus.unsubscribe(cfg.name)
            if book.halt_reason is None:
                self.bus.subscribe(cfg.name, [cfg.symbol], ["1m"], self._timed(cfg.name, engine))
            elif book.halted_earlier:
                self.session.mark_halted(cfg.name, book.halt_reason)
            else:  # it failed while catching up: halted as the bus halts a failing subscriber
                self.bus.halt(cfg.name, book.halt_reason)
            self._export_engine(book)
            for side in Side:  # every series exists from the start, at 0
                self.metrics.fills.labels(cfg.name, side.value)
                self.metrics.orders.labels(cfg.name, side.value)
        self._check_holders(saved)
        self._caught_up = caught_up
        self._export_accounts()
        if streams:
            self._log_resumed(streams, saved)
        self.state.rewrite_engine_configs(upgrades)
        for name, (spec, wanted) in upgrades.items():
            fields = {"strategy": name, "spec": spec, "fingerprint": wanted["fingerprint"]}
            what = (
                "the strategy's file moved, its code is the same: recorded its new spec"
                if name in moved
                else "recorded the strategy spec and fingerprint of an older state"
            )
            line = f"{what} {_kv(fields)}"
            self._restore_log.append((logging.INFO, line))
        for symbol in self.config.feed.symbols:
            for source in ("warmup", "live"):
                self.metrics.bars.labels(symbol, source)
                self.metrics.bars_dropped.labels(symbol, source)
            self.metrics.decision_lag.labels(symbol)

    def _open_accounts(self, saved: dict[str, EngineRecord]) -> None:
        """Open the ``[[account]]`` tables, each restored from its record; an account whose
        cash or shorting changed, or a recorded strategy of a configured shared account that
        is no longer configured, is refused with one line (a shared account's strategies run
        together, or their books would not add up)."""
        assert self.state is not None
        recorded = self.state.accounts()
        configured = {cfg.name for cfg in self.config.strategies}
        for acc in self.config.accounts:
            account = self.session.open_account(acc.name, acc.cash, allow_short=acc.allow_short)
            record = recorded.get(acc.name)
            if record is None:
                continue
            if (record.starting_cash, record.allow_short) != (acc.cash, acc.allow_short):
                raise ConfigError(
                    f"account {acc.name!r} was saved with cash {record.starting_cash!r} and "
                    f"allow_short {str(record.allow_short).lower()}, but is now configured with "
                    f"cash {acc.cash!r} and allow_short {str(acc.allow_short).lower()}; give it "
                    "a new name (or use a new state file) instead of changing a running account"
                )
            try:
                account.restore(record.snapshot)
            except (KeyError, TypeError, ValueError) as exc:
                raise DataError(
                    f"{self.config.state_path}: damaged: the snapshot of account {acc.name!r} "
                    f"does not restore: {type(exc).__name__}: {str(exc)[:200]}"
                ) from None
            missing = [
                name
                for name, engine in saved.items()
                if engine.config.get("account") == acc.name and name not in configured
            ]
            if missing:
                raise ConfigError(
                    f"account {acc.name!r} is shared by strategies {', '.join(missing)}, which "
                    "are no longer configured: every strategy of a shared account runs while "
                    "the account does; configure them again (or give the account a new name)"
                )

    def _check_holders(self, saved: dict[str, EngineRecord]) -> None:
        """The recorded strategies of a shared account act in the recorded order (config
        order decides who gets the cash within a minute): one line if the config reorders them."""
        assert self.state is not None
        for name, record in self.state.accounts().items():
            order = record.snapshot.get("holders")
            account = self.session.accounts.get(name)
            if not isinstance(order, list) or account is None:
                continue
            now = [h.name for h in account.holders if isinstance(h, StrategyEngine)]
            kept = [n for n in now if n in order and n in saved]
            if kept != [n for n in order if n in kept]:
                raise ConfigError(
                    f"account {name!r}: its strategies were saved acting in the order "
                    f"{', '.join(order)}, but the config lists them as {', '.join(now)}; the "
                    "order decides who gets the cash within a minute: restore it"
                )

    def _commit_caught_up(self) -> None:
        """Commit what catching up did at once, with the engines' snapshots, so a crash right
        after the start cannot commit those trades a second time."""
        assert self.state is not None
        books, self._caught_up = self._caught_up, []
        done = [b for b in books if b.halt_reason is None]
        events: list[EngineEvent] = [e for b in done for e in b.engine.drain()]
        for book in books:
            book.engine.drain()  # what a failed catch-up did is not committed; its halt is
            if book.halt_reason is not None:
                events.append(StrategyHalted(book.config.name, 0, book.halt_reason))
        if not events and not done:
            return
        self._count_events(events)
        try:
            self.state.commit([], {}, [self._update(b) for b in done], events, self._accounts())
        except sqlite3.Error as exc:
            raise StateWriteError(
                f"{self.config.state_path}: could not record the catch-up ({exc}); stopping"
            ) from None

    def _check_record(
        self, cfg: StrategyConfig, saved: dict[str, Any], wanted: dict[str, Any]
    ) -> str | None:
        """Refuse, with one line, a strategy whose spec, code or settings changed since its
        record was saved. Says why the record is to be rewritten: ``"older"`` when it predates
        specs and fingerprints (its ``strategy`` is the spec as written then, taken from the
        config's folder), ``"moved"`` when the same class with the same code is now at another
        path (a moved folder); else None."""
        old_spec = saved.get("strategy")
        legacy = "fingerprint" not in saved
        moved = (
            not legacy
            and isinstance(old_spec, str)
            and old_spec != cfg.spec
            and saved.get("fingerprint") == cfg.fingerprint
            and old_spec.rpartition(":")[2] == cfg.spec.rpartition(":")[2]
        )
        over = "to start it over, give it a new [[strategy]] name (or use a new state file)"
        if (
            old_spec != cfg.spec
            and not moved
            and not (legacy and self._same_spec(old_spec, cfg.spec))
        ):
            raise ConfigError(
                f"strategy {cfg.name!r} was saved running another strategy: spec {old_spec} "
                f"-> {cfg.spec}; {over}, or point it back at {old_spec}"
            )
        fingerprint = saved.get("fingerprint")
        if not legacy and fingerprint != cfg.fingerprint:
            code = _code_file(cfg.source)
            raise ConfigError(
                f"strategy {cfg.name!r}: its code changed since it was saved: fingerprint "
                f"{fingerprint} -> {cfg.fingerprint} of {code}; {over}, or restore {code} "
                "as it was"
            )
        before, now = _settings(saved), _settings(wanted)
        if before != now:
            raise ConfigError(
                f"strategy {cfg.name!r} was saved with {before}, but is now configured as "
                f"{now}; give it a new name (or use a new state file) instead of changing a "
                "running strategy"
            )
        if legacy:
            return "older"
        return "moved" if moved else None

    def _same_spec(self, written: object, spec: str) -> bool:
        """Whether a spec as an older barbus recorded it resolves to ``spec`` now."""
        if not isinstance(written, str):
            return False
        base = self.config.source.parent if self.config.source is not None else None
        try:
            return resolve_strategy(written, base).spec == spec
        except StrategyError:
            return False

    def _log_restored(self, book: _Book, record: EngineRecord) -> None:
        engine = book.engine
        position = engine.position
        fields: dict[str, object] = {
            "strategy": book.config.name,
            "symbol": book.config.symbol,
            "last_bar": format_time_ms(record.last_open_time_ms),
            "trades": book.trades,
            "account": engine.account.name,
            "cash": engine.account.cash,
            "position": position.size,
            "open_orders": len(engine.open_orders),
        }
        if position.size != 0.0:
            fields["entry_time"] = format_time_ms(position.entry_time_ms)
            fields["entry_price"] = position.entry_price
        self._restore_log.append((logging.INFO, f"restored {_kv(fields)}"))

    def _log_resumed(self, streams: dict[str, Any], saved: dict[str, EngineRecord]) -> None:
        """One line: what this start resumed from the state file."""
        configured = [cfg.name for cfg in self.config.strategies]
        fields: dict[str, object] = {
            "state": self.config.state_path,
            "restored": ",".join(n for n in configured if n in saved) or "none",
            "new": ",".join(n for n in configured if n not in saved) or "none",
            "not_configured": ",".join(sorted(set(saved) - set(configured))) or "none",
            "last_bar": ",".join(
                f"{symbol}@{format_time_ms(stream.last_open_time_ms)}"
                for symbol, stream in sorted(streams.items())
            ),
            "open_positions": sum(b.engine.position.size != 0.0 for b in self.books.values()),
        }
        self._restore_log.append((logging.INFO, f"resumed {_kv(fields)}"))
        for symbol, stream in streams.items():
            if symbol in self.config.feed.symbols:
                self._resume_backfill[symbol] = [stream.last_open_time_ms, 0, 0, 0]

    def _catch_up_returning_engine(self, book: _Book, record: EngineRecord) -> None:
        """A strategy left out of the config and now back: fed the bars recorded while it was
        away, trading on them as it would have (a backfill, from the state), so its log stays
        what a replay of the recorded bars gives. Without those bars it is refused."""
        assert self.state is not None
        name, symbol, engine = book.config.name, book.config.symbol, book.engine
        last_ms = record.last_open_time_ms
        recorded = self.state.bars(symbol, from_ms=last_ms)
        if not recorded or recorded[0][0].open_time_ms != last_ms:
            raise ConfigError(
                f"strategy {name!r} last ran on the {symbol} bar at {format_time_ms(last_ms)}, "
                f"but {self.config.state_path} no longer holds the bars since, so it cannot be "
                "caught up; start it over under a new [[strategy]] name (it then learns from "
                "the recorded bars and trades from the next one)"
            )
        missed = [bar for bar, _ in recorded[1:]]
        fills, trades = engine.fills, len(engine.trades)
        for bar in missed:
            try:
                engine.on_bar(bar)
            except Exception as exc:  # as the bus isolates a failing subscriber
                # Halted as the bus halts a failing subscriber; what the catch-up did is not
                # committed, its halt is (a restart keeps it halted, trading nothing).
                reason = f"{type(exc).__name__}: {exc} (on {bar.describe()}, catching up)"
                book.halt_reason = reason
                line = f"subscriber {name} raised and is halted: {reason}"
                self._restore_log.append((logging.ERROR, line))
                break
        fields = {
            "strategy": name,
            "symbol": symbol,
            "bars": len(missed),
            "from": format_time_ms(missed[0].open_time_ms),
            "to": format_time_ms(missed[-1].open_time_ms),
            "fills": engine.fills - fills,
            "trades": len(engine.trades) - trades,
            "position": engine.position.size,
        }
        self._restore_log.append((logging.INFO, f"caught up {_kv(fields)}"))

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
        ready = "indicators ready" if engine.strategy.ready else "indicators not ready yet"
        line = f"{book.config.name}: warmed up on {len(recorded)} recorded bars, {ready}"
        self._restore_log.append((logging.INFO, line))

    def _last_open_times(self) -> dict[str, int | None]:
        return {
            s: (g.last_open_time_ms if (g := self.guards.get(s)) else None)
            for s in self.config.feed.symbols
        }

    def _seed_plausibility(self, feed: BinanceFeed) -> None:
        """The feed judges a bar against the previous close: after a restart, the recorded one."""
        for book in self.books.values():
            last = book.engine.last_bar
            if last is not None and feed.last_open_ms.get(last.symbol) == last.open_time_ms:
                feed.last_close[last.symbol] = last.close

    async def _warm_up(self, feed: BinanceFeed) -> None:
        warmed: list[tuple[str, int, int]] = []
        for symbol in self.config.feed.symbols:
            if symbol in self.live_from:
                continue  # history already recorded: the feed backfills from there
            bars = await self._fetch_warmup(feed, symbol)
            live_from = max(b.open_time_ms for b in bars) + MINUTE_MS if bars else 0
            self.live_from[symbol] = live_from
            for book in self.books.values():
                if book.config.symbol == symbol:
                    book.engine.trade_from_ms = live_from
            for bar in bars:
                self._process(bar, "warmup")
            if bars:  # the last bar accepted, whatever order the exchange sent them in
                feed.last_open_ms[symbol] = self.guards[symbol].last_open_time_ms
            warmed.append((symbol, len(bars), live_from))
        # Said once every symbol is in: a minute barrier releases a symbol's bars only then.
        for symbol, count, live_from in warmed:
            books = [b for b in self.books.values() if b.config.symbol == symbol]
            cold = [b.config.name for b in books if not b.engine.strategy.ready]
            log.log(
                logging.WARNING if cold else logging.INFO,
                "%s: warmed up on %d bars (%d wanted), trading from %s; %s",
                symbol,
                count,
                self._warmup_minutes(symbol),
                format_time_ms(live_from) if live_from else "the first live bar",
                f"indicators not ready yet: {', '.join(cold)} (the exchange had too few bars)"
                if cold
                else "indicators ready",
            )

    def _warmup_minutes(self, symbol: str) -> int:
        """1-minute bars to warm ``symbol``'s strategies up on: ``[feed] warmup_bars`` (0: no
        warm-up), or more where a strategy needs ``warmup_bars`` bars of its timeframe before
        its first decision, plus the partial bucket the first minute may fall in."""
        floor = self.config.warmup_bars
        if not floor:
            return 0
        needs = [floor]
        for book in self.books.values():
            if book.config.symbol == symbol:
                strategy = book.engine.strategy
                minutes = interval_ms(strategy.params.timeframe) // MINUTE_MS
                needs.append(strategy.warmup_bars * minutes + minutes - 1)
        return max(needs)

    async def _fetch_warmup(self, feed: BinanceFeed, symbol: str) -> list[Bar]:
        """Warm-up bars over REST, retried with backoff while the exchange is unreachable."""
        count = self._warmup_minutes(symbol)
        if not count:
            return []
        delay = self.config.feed.reconnect_initial_seconds
        while True:
            try:
                return await feed.fetch_recent(symbol, count)
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
        books = [b for b in self.books.values() if b.config.symbol in symbols]
        updates = [
            update
            for b in books
            if b.config.name not in halted or b.config.name in failed_now
            if (update := self._update_or_none(b, b.config.name in failed_now)) is not None
        ]
        try:
            self.state.commit(bars, self.live_from, updates, events, self._accounts())
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
            self._count_events(events)
        for book in books:
            self._export_engine(book)
        if self.config.accounts:
            self._export_accounts()
        self.bars_processed += len(released)
        now = time.monotonic()
        feed = self.feed
        if source == "live":
            self.last_live_bar_monotonic = now
            dropped = _dropped(feed.counters) if feed is not None else 0
            self._dropped_at_last_bar = dropped + self.bars_dropped
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

    def _update_or_none(self, book: _Book, failed: bool) -> EngineUpdate | None:
        """The book's update; for a strategy that just failed, None when its snapshot fails
        too (a broken strategy): it then keeps the last committed one."""
        if not failed:
            return self._update(book)
        try:
            return self._update(book)
        except Exception as exc:  # the strategy's own snapshot code: isolate it as the bus does
            log.warning(
                "%s failed and its snapshot too (%s): the last one stays", book.config.name, exc
            )
            return None

    def _update(self, book: _Book) -> EngineUpdate:
        engine = book.engine
        last = engine.last_bar
        return EngineUpdate(
            name=book.config.name,
            strategy=book.config.spec,
            symbol=book.config.symbol,
            config=_engine_config(book.config, self.config.execution),
            snapshot=engine.snapshot(),
            last_open_time_ms=last.open_time_ms if last is not None else 0,
        )

    def _accounts(self) -> list[AccountRecord]:
        """The shared accounts as recorded: cash, and the order their strategies act in."""
        records = []
        for acc in self.config.accounts:
            account = self.session.accounts[acc.name]
            snapshot = account.snapshot()
            snapshot["holders"] = [h.name for h in account.holders if isinstance(h, StrategyEngine)]
            records.append(AccountRecord(acc.name, acc.cash, acc.allow_short, snapshot))
        return records

    def _count_events(self, events: Sequence[EngineEvent]) -> None:
        """Fills and orders counted from the committed events: an order is counted when placed,
        a signal or a bracket exit (a market order placed and filled at once) at its fill."""
        metrics = self.metrics
        for event in events:
            if isinstance(event, Fill):
                metrics.fills.labels(event.strategy, event.side.value).inc()
                if event.order_id == 0:
                    metrics.orders.labels(event.strategy, event.side.value).inc()
            elif isinstance(event, OrderEvent) and event.event == "placed":
                metrics.orders.labels(event.strategy, event.side.value).inc()
            elif isinstance(event, Trade):
                book = self.books.get(event.strategy)
                if book is not None:
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

    # -- observability ------------------------------------------------------------------------

    def _export_engine(self, book: _Book) -> None:
        engine, name = book.engine, book.config.name
        errors = self.bus.errors.get(name, 0)
        self.metrics.subscriber_errors.labels(name).inc(errors - book.counted_errors)
        book.counted_errors = errors
        account = engine.account
        self.metrics.position.labels(name).set(engine.position.size)
        self.metrics.cash.labels(name).set(account.cash)
        self.metrics.equity.labels(name).set(account.equity())
        self.metrics.pnl.labels(name).set(_pnl(book))
        self.metrics.open_orders.labels(name).set(len(engine.open_orders))
        self.metrics.strategy_halted.labels(name).set(1 if name in self.bus.halted else 0)
        if engine.own_account:
            self._export_account(account)

    def _export_accounts(self) -> None:
        for acc in self.config.accounts:
            self._export_account(self.session.accounts[acc.name])

    def _export_account(self, account: Account) -> None:
        self.metrics.account_cash.labels(account.name).set(account.cash)
        self.metrics.account_equity.labels(account.name).set(account.equity())

    def readiness(self) -> tuple[bool, str]:
        """Ready = warmed up, feed connected, and a bar processed live in this run no longer
        than ``max_bar_age_seconds`` ago. Bars that arrive but are dropped (stale, duplicate,
        rejected) do not count: a daemon that only drops bars is not trading."""
        if not self.warm:
            return False, "warming up"
        if self.feed is None or not self.feed.counters.connected:
            return False, "feed disconnected"
        if self.last_live_bar_monotonic is None:
            return False, "waiting for the first bar"
        age = time.monotonic() - self.last_live_bar_monotonic
        if age > self.config.max_bar_age_seconds:
            return False, f"no bar processed for {age:.0f} s"
        return True, "ready"

    async def _monitor(self) -> None:
        """Say so when no bar was processed for ``max_bar_age_seconds`` (and when bars flow
        again), with what the feed dropped meanwhile: a stalled daemon never stays silent."""
        interval = max(0.05, min(1.0, self.config.max_bar_age_seconds / 2))
        while True:
            await asyncio.sleep(interval)
            self._check_stall(time.monotonic())

    def _check_stall(self, now: float) -> None:
        since = self.last_live_bar_monotonic or self.streaming_since
        if since is None:
            return
        idle = now - since
        reported = self._stall_reported_at
        if idle <= self.config.max_bar_age_seconds:
            if reported is not None:
                self._stall_reported_at = None
                log.info(
                    "processing bars again after %.0f s without one", since - self._stall_since
                )
            return
        # Once per stall, then at most once a minute while it lasts.
        if reported is not None and now - reported < max(60.0, self.config.max_bar_age_seconds):
            return
        self._stall_reported_at = now
        self._stall_since = since
        c = self.feed.counters if self.feed is not None else None
        if c is None:
            return
        what = "in this run" if self.last_live_bar_monotonic is None else "since the last one"
        log.warning(
            "no bar processed for %.0f s (feed %s, %d reconnects); %d bars arrived and were "
            "dropped %s (totals: out of order %d, duplicates %d, rejected %d, refused by the "
            "daemon %d)",
            idle,
            "connected" if c.connected else "disconnected",
            c.reconnects,
            _dropped(c) + self.bars_dropped - self._dropped_at_last_bar,
            what,
            c.out_of_order,
            c.duplicates,
            sum(c.rejected.values()),
            self.bars_dropped,
        )

    def status(self) -> dict[str, Any]:
        strategies = []
        for name, book in self.books.items():
            engine = book.engine
            last = engine.last_bar
            account = engine.account
            orders = engine.open_orders
            strategies.append(
                {
                    "name": name,
                    "strategy": book.config.strategy,
                    "spec": book.config.spec,
                    "fingerprint": book.config.fingerprint,
                    "symbol": book.config.symbol,
                    "indicators_ready": engine.strategy.ready,
                    "warmup_bars": engine.strategy.warmup_bars,
                    "account": account.name,
                    "shared_account": not engine.own_account,
                    "position": engine.position.size,
                    "cash": account.cash,
                    "equity": account.equity(),
                    "pnl": _pnl(book),
                    "realised_pnl": book.realised,
                    "trades": book.trades,
                    "open_orders_count": len(orders),
                    "open_orders": [_order_status(o) for o in orders],
                    "last_bar": format_time_ms(last.open_time_ms) if last is not None else None,
                    "trading_from": format_time_ms(engine.trade_from_ms),
                    "halted": self.bus.halted.get(name),
                    "open_position": _open_position(engine),
                }
            )
        accounts = [
            {
                "name": account.name,
                "shared": account.name in {a.name for a in self.config.accounts},
                "allow_short": account.allow_short,
                "starting_cash": account.starting_cash,
                "cash": account.cash,
                "equity": account.equity(),
                "strategies": [h.name for h in account.holders if isinstance(h, StrategyEngine)],
            }
            for account in self.session.accounts.values()
        ]
        counters = self.feed.counters if self.feed is not None else None
        lags = sorted(self.lags)
        ready, why = self.readiness()
        return {
            "ready": ready,
            "readiness": why,
            "warm": self.warm,
            "bars_processed": self.bars_processed,
            "bars_dropped": self.bars_dropped,
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
                "rejected": dict(sorted(counters.rejected.items())),
                "gaps_recorded": counters.gaps_recorded,
                "recent_gaps": [
                    {"symbol": s, "from": format_time_ms(a), "to": format_time_ms(b)}
                    for s, a, b in counters.recent_gaps
                ],
            },
            "lag_ms": {
                "samples": len(lags),
                "p50": 1000 * lags[len(lags) // 2] if lags else None,
                "p99": 1000 * lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else None,
            },
            "strategies": strategies,
            "accounts": accounts,
        }

    def recorded_trades(
        self, strategy: str | None, since_ms: int | None, limit: int
    ) -> list[dict[str, Any]]:
        """``/trades``: from the state file, newest first; KeyError for an unknown strategy."""
        assert self.state is not None
        found = self.state.trades(strategy, since_ms=since_ms, limit=limit, newest_first=True)
        known = found or strategy in self.books or strategy in self.state.engines()
        if strategy is not None and not known:  # unknown to the state, as `barbus trades` says
            raise KeyError(f"no strategy named {strategy[:100]!r}")
        return [trade_dict(t) for t in found]


UNREALISED_BASIS = (
    "size x (close of the last processed 1m bar - entry price) - entry fee; no exit fee or slippage"
)


def _open_position(engine: StrategyEngine) -> dict[str, Any] | None:
    """The open position of ``engine`` (a short has a negative size) marked at the last
    processed bar's close, or None if flat."""
    position, last = engine.position, engine.last_bar
    if position.size == 0.0 or last is None:
        return None
    return {
        "direction": "long" if position.size > 0.0 else "short",
        "entry_time": format_time_ms(position.entry_time_ms),
        "entry_time_ms": position.entry_time_ms,
        "entry_price": position.entry_price,
        "size": position.size,
        "entry_fee": position.entry_fee,
        "mark_price": last.close,
        "mark_bar": format_time_ms(last.open_time_ms),
        "unrealised_pnl": _unrealised(engine),
        "unrealised_pnl_basis": UNREALISED_BASIS,
    }


def _unrealised(engine: StrategyEngine) -> float:
    position, last = engine.position, engine.last_bar
    if position.size == 0.0 or last is None:
        return 0.0
    return position.size * (last.close - position.entry_price) - position.entry_fee


def _pnl(book: _Book) -> float:
    """Equity minus starting cash on an account of its own; on a shared one, the strategy's
    attributed profit: its recorded trades plus the unrealised profit of its position."""
    engine = book.engine
    if engine.own_account:
        return engine.account.equity() - engine.account.starting_cash
    return book.realised + _unrealised(engine)


def _order_status(order: dict[str, Any]) -> dict[str, Any]:
    """A working order for /status: what was asked, when it works and expires (None: GTC)."""
    expires = order["expires_ms"]
    return {
        "order_id": order["order_id"],
        "side": order["side"],
        "type": order["kind"],
        "price": order["price"],
        "fraction": order["fraction"],
        "quote": order["quote"],
        "units": order["units"],
        "target": order["target"],
        "tag": order["tag"],
        "active_from": format_time_ms(order["active_from_ms"]),
        "expires": format_time_ms(expires) if expires else None,
        "stop_loss_pct": order["stop_loss_pct"],
        "take_profit_pct": order["take_profit_pct"],
        "trailing_stop_pct": order["trailing_stop_pct"],
    }


def _kv(fields: dict[str, object]) -> str:
    """``key=value`` words for one log line; a value with a space, quote or ``=`` is quoted."""
    words = []
    for key, value in fields.items():
        text = repr(value) if isinstance(value, float) else str(value)
        if not text or any(c in text for c in ' "=\n\t'):
            text = json.dumps(text)
        words.append(f"{key}={text}")
    return " ".join(words)


def _dropped(counters: FeedCounters) -> int:
    """Bars of subscribed streams that arrived but were not delivered (counted by the feed)."""
    return counters.duplicates + counters.out_of_order + sum(counters.rejected.values())


def _engine_config(cfg: StrategyConfig, execution: ExecutionConfig) -> dict[str, Any]:
    """Everything that decides an engine's trades; stored so replay (parity) can redo them.
    Settings added after the first release are stored only when not at their default, so a
    record of an older release still matches a config that does not use them."""
    config: dict[str, Any] = {
        "strategy": cfg.spec,
        "fingerprint": cfg.fingerprint,
        "symbol": cfg.symbol,
        "capital": cfg.capital,
        "params": dict(sorted(cfg.params.items())),
        "fee_bps": execution.fee_bps,
        "slippage_bps": execution.slippage_bps,
        "fill_at": execution.fill_at,
    }
    if cfg.account is not None:
        config["account"] = cfg.account
        del config["capital"]  # the account's, recorded with it
    elif cfg.allow_short:
        config["allow_short"] = True
    if execution.maker_fee_bps is not None:
        config["maker_fee_bps"] = execution.maker_fee_bps
    if execution.taker_fee_bps is not None:
        config["taker_fee_bps"] = execution.taker_fee_bps
    return config


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    """A recorded engine configuration without the strategy's identity (spec, fingerprint)."""
    return {k: v for k, v in config.items() if k not in ("strategy", "fingerprint")}


def _code_file(source: StrategySource) -> str:
    """The file whose text the fingerprint is of (the strategy's module)."""
    module = sys.modules.get(source.cls.__module__)
    return str(getattr(module, "__file__", None) or source.origin)


def run_daemon(config: DaemonConfig, *, new_state: bool = False) -> int:
    """Run the daemon on uvloop until stopped; returns the exit code. ``new_state`` accepts an
    emptied or replaced state file (see :mod:`daemon.state`)."""
    import uvloop

    return uvloop.run(Daemon(config, new_state=new_state).run())
