"""Start-up recovery (crash-only): every engine rebuilt from the state file before a bar flows.

Each ``[[strategy]]`` gets its engine, restored from its last committed snapshot after its
record is checked against the config (:mod:`daemon.records`); a strategy left out of the config
for a while is caught up on the bars recorded meanwhile (trading on them as if it had never
left, so parity holds; only one with an account of its own), a new one learns from the recorded
bars, trading none. What was restored and caught up is kept as log lines, said once the start
is accepted (a refused start says one line, no more). Apart from the service because it runs
once, before the lifecycle starts, and from the books because it reads the record back.
"""

from __future__ import annotations

import logging
from typing import Any

from barbus.daemon.books import Book, Books
from barbus.daemon.core.engine import StrategyEngine
from barbus.daemon.core.errors import ConfigError, DataError
from barbus.daemon.core.events import BarGuard, format_time_ms, interval_ms
from barbus.daemon.log import kv
from barbus.daemon.records import check_record, engine_config
from barbus.daemon.state import EngineRecord, StateStore, StreamRecord
from barbus.strategies import create_strategy

__all__ = ["Recovery"]


class Recovery:
    """Restores ``books`` from ``state``; :attr:`log_lines` and :attr:`caught_up` say what it
    did (the caller logs the one and commits the other)."""

    def __init__(self, books: Books, state: StateStore) -> None:
        self.books = books
        self.state = state
        self.config = books.config
        self.log_lines: list[tuple[int, str]] = []
        self.caught_up: list[Book] = []  # returning engines whose catch-up is to commit
        # After a restart, per symbol: [last bar before it, bars backfilled, first, last]
        # until its first WebSocket bar, which logs what the backfill brought.
        self.resume_backfill: dict[str, list[int]] = {}

    def restore(self) -> None:
        books, state, config = self.books, self.state, self.config
        streams = state.streams()
        saved = state.engines()
        for symbol, stream in streams.items():
            was = state.recorded_interval(symbol)
            if was is not None and was != config.feed.interval:
                raise ConfigError(
                    f"{config.state_path}: recorded {symbol} bars of {was}, but [feed] "
                    f"interval is {config.feed.interval}: set it back, or start a new state file"
                )
            books.live_from[symbol] = stream.live_from_ms
            books.guards[symbol] = BarGuard(stream.last_open_time_ms)
        self._open_accounts(saved)
        upgrades: dict[str, tuple[str, dict[str, Any]]] = {}
        moved: set[str] = set()
        halts = state.halts()
        session, bus = books.session, books.bus
        base = config.source.parent if config.source is not None else None
        for cfg in config.strategies:
            strategy = create_strategy(cfg.source, cfg.params)
            engine = StrategyEngine(
                strategy,
                cfg.symbol,
                config.execution_for(cfg),
                name=cfg.name,
                account=session.accounts[cfg.account] if cfg.account else None,
                bar_interval=config.feed.interval,
            )
            book = Book(cfg, engine)
            record = saved.get(cfg.name)
            if record is not None:
                wanted = engine_config(cfg, config.execution)
                rewrite = check_record(cfg, record.config, wanted, base)
                if rewrite is not None:
                    upgrades[cfg.name] = (cfg.spec, wanted)
                    if rewrite == "moved":
                        moved.add(cfg.name)
                try:
                    engine.restore(record.snapshot)
                except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
                    raise DataError(
                        f"{config.state_path}: damaged: the snapshot of strategy "
                        f"{cfg.name!r} does not restore: {type(exc).__name__}: {str(exc)[:200]}"
                    ) from None
                recorded = state.trades(cfg.name)
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
                    self.log_lines.append((logging.WARNING, line))
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
                    self.caught_up.append(book)
            elif cfg.symbol in streams:
                self._catch_up_new_engine(book)
            books.by_name[cfg.name] = book
            session.add(engine)
            # The session subscribed the engine itself; the daemon times it (same place, same
            # order: re-subscribed at once, before the next engine is added).
            bus.unsubscribe(cfg.name)
            if book.halt_reason is None:
                bus.subscribe(
                    cfg.name, [cfg.symbol], [engine.bar_interval], books.timed(cfg.name, engine)
                )
            elif book.halted_earlier:
                session.mark_halted(cfg.name, book.halt_reason)
            else:  # it failed while catching up: halted as the bus halts a failing subscriber
                bus.halt(cfg.name, book.halt_reason)
        self._check_holders(saved)
        if streams:
            self._log_resumed(streams, saved)
        state.rewrite_engine_configs(upgrades)
        for name, (spec, wanted) in upgrades.items():
            fields = {"strategy": name, "spec": spec, "fingerprint": wanted["fingerprint"]}
            what = (
                "the strategy's file moved, its code is the same: recorded its new spec"
                if name in moved
                else "recorded the strategy spec and fingerprint of an older state"
            )
            self.log_lines.append((logging.INFO, f"{what} {kv(fields)}"))
        metrics = books.metrics
        for symbol in config.feed.symbols:
            for source in ("warmup", "live"):
                metrics.bars.labels(symbol, source)
                metrics.bars_dropped.labels(symbol, source)
            metrics.decision_lag.labels(symbol)

    def _open_accounts(self, saved: dict[str, EngineRecord]) -> None:
        """Open the ``[[account]]`` tables, each restored from its record; an account whose
        cash or shorting changed, or a recorded strategy of a configured shared account that
        is no longer configured, is refused with one line (a shared account's strategies run
        together, or their books would not add up)."""
        recorded = self.state.accounts()
        configured = {cfg.name for cfg in self.config.strategies}
        for acc in self.config.accounts:
            account = self.books.session.open_account(
                acc.name, acc.cash, allow_short=acc.allow_short
            )
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
        for name, record in self.state.accounts().items():
            order = record.snapshot.get("holders")
            account = self.books.session.accounts.get(name)
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

    def _log_restored(self, book: Book, record: EngineRecord) -> None:
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
        self.log_lines.append((logging.INFO, f"restored {kv(fields)}"))

    def _log_resumed(
        self, streams: dict[str, StreamRecord], saved: dict[str, EngineRecord]
    ) -> None:
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
            "open_positions": sum(
                b.engine.position.size != 0.0 for b in self.books.by_name.values()
            ),
        }
        self.log_lines.append((logging.INFO, f"resumed {kv(fields)}"))
        for symbol, stream in streams.items():
            if symbol in self.config.feed.symbols:
                self.resume_backfill[symbol] = [stream.last_open_time_ms, 0, 0, 0]

    def _catch_up_returning_engine(self, book: Book, record: EngineRecord) -> None:
        """A strategy left out of the config and now back: fed the bars recorded while it was
        away, trading on them as it would have (a backfill, from the state), so its log stays
        what a replay of the recorded bars gives. Without those bars it is refused."""
        name, symbol, engine = book.config.name, book.config.symbol, book.engine
        last_ms = record.last_open_time_ms
        recorded = self.state.bars(symbol, from_ms=last_ms, interval=self.config.feed.interval)
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
                self.log_lines.append((logging.ERROR, line))
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
        self.log_lines.append((logging.INFO, f"caught up {kv(fields)}"))

    def _catch_up_new_engine(self, book: Book) -> None:
        """A strategy added to a running daemon learns from the recorded bars, trading none."""
        recorded = self.state.bars(book.config.symbol, interval=self.config.feed.interval)
        engine = book.engine
        engine.trade_from_ms = recorded[-1][0].open_time_ms + interval_ms(engine.bar_interval)
        for bar, _ in recorded:
            engine.on_bar(bar)
        ready = "indicators ready" if engine.strategy.ready else "indicators not ready yet"
        line = f"{book.config.name}: warmed up on {len(recorded)} recorded bars, {ready}"
        self.log_lines.append((logging.INFO, line))
