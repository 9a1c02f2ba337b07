"""Durable daemon state in SQLite: every processed bar, fills, trades, order events, strategy and
account snapshots.

One transaction per bar holds the bar itself (or, behind a shared account's minute barrier, the
bars that minute released), each stream's new last open time, the snapshot of every engine that
saw them and of the shared accounts, and the events the session drained (fills, trades, order
events). A bar the barrier still holds is not committed, so a stream's last bar is always a
committed one and a restart backfills from there. WAL mode with
``synchronous=NORMAL`` survives a killed process (the committed transactions are in the WAL);
a restart reads the last committed bar per stream and the snapshots, so processing resumes
exactly: no fill lost, none repeated. Crash-only: opening the store is the recovery.

The schema, its upgrades from older files and the check of a file against it are in
:mod:`barbus.daemon.state_schema`; the lock and marker files beside the database in
:mod:`barbus.daemon.state_files`. Opening is where both run, so nothing ever runs on a damaged
file: ``PRAGMA quick_check``, then the schema's check (any failure is one :class:`DataError`
naming the file and the problem), then, on a writable open, the upgrade. A read-only open of an
older file reads it as it is. The daemon then commits one small write
(:meth:`StateStore.check_writable`) before warm-up, so a read-only file or folder or a full disk
stops it at once; a commit that fails later leaves every earlier bar committed, and the first
error is the one reported (a failing ROLLBACK is never allowed to replace it).

Identity: schema 2 stores a random ``state_id`` in the ``meta`` table, and a writable open
keeps a copy next to the file (``<state>.id``). When that marker exists but the database is
missing, empty or holds another id, the file was emptied or replaced behind the daemon's back:
the open is refused unless ``new_state=True`` (``barbus run --new-state``), which accepts the
file as it is now (a fresh one if missing or empty) and rewrites the marker. Nothing is deleted.
The daemon opens with ``exclusive=True`` (one daemon per file, through ``<state>.lock``);
read-only opens (``barbus parity``, ``barbus trades``) take no lock.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from barbus.daemon.core.errors import BarbusError, ConfigError, DataError
from barbus.daemon.core.events import (
    INTERVAL_NAMES,
    Bar,
    EngineEvent,
    Fill,
    OrderEvent,
    Side,
    StrategyHalted,
    Trade,
)
from barbus.daemon.core.tradelog import trade_from_values, trade_values
from barbus.daemon.state_files import beside, lock, read_marker, write_marker
from barbus.daemon.state_schema import (
    SCHEMA_VERSION,
    migrate,
    parse_object,
    read_state_id,
    short,
    validate,
)

__all__ = [
    "AccountRecord",
    "EngineRecord",
    "EngineUpdate",
    "StateStore",
    "StateWriteError",
    "StreamRecord",
]


@dataclass(frozen=True)
class StreamRecord:
    symbol: str
    last_open_time_ms: int
    live_from_ms: int  # bars before this were warm-up: no orders


@dataclass(frozen=True)
class EngineRecord:
    name: str
    strategy: str
    symbol: str
    config: dict[str, Any]
    snapshot: dict[str, Any]
    last_open_time_ms: int


@dataclass(frozen=True)
class EngineUpdate:
    """An engine's state after the bars of one commit (its events are committed beside it)."""

    name: str
    strategy: str
    symbol: str
    config: dict[str, Any]
    snapshot: dict[str, Any]
    last_open_time_ms: int  # of the last bar it processed


@dataclass(frozen=True)
class AccountRecord:
    """A shared account: what it was opened with, and its last snapshot (cash)."""

    name: str
    starting_cash: float
    allow_short: bool
    snapshot: dict[str, Any]


class StateWriteError(BarbusError):
    """A bar could not be recorded (disk full, file gone read-only, I/O error): the daemon stops,
    everything committed before stays, and the service manager restarts it once fixed."""

    exit_code = 1


class StateStore:
    """The daemon's SQLite state; a value you pass around, never a global.

    ``read_only`` opens without writing anything (no migration, marker or lock): for
    ``barbus parity``, also while a daemon runs. ``exclusive`` holds the lock file for the life
    of the store. ``new_state`` accepts an emptied or replaced file (see the module docstring).
    """

    def __init__(
        self,
        path: Path,
        *,
        read_only: bool = False,
        exclusive: bool = False,
        new_state: bool = False,
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.last_commit_seconds = 0.0
        self.version = 0  # the schema version of the open file (after any migration)
        self._lock_fd: int | None = None
        if self.path.exists() and not self.path.is_file():
            raise DataError(f"{self.path}: not a regular file")
        if read_only:
            if not self.path.exists():
                raise DataError(f"{self.path}: no such state file")
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DataError(f"{self.path}: cannot create its folder: {exc.strerror}") from None
        if exclusive:
            self._lock_fd = lock(self.path, self.lock_path)
        try:
            self._open(new_state)
        except BaseException:
            self._release_lock()
            raise

    @property
    def marker_path(self) -> Path:
        return self._beside(".id")

    @property
    def lock_path(self) -> Path:
        return self._beside(".lock")

    def _beside(self, suffix: str) -> Path:
        """A sidecar next to the real file, so two paths to one file (a symlink) share it."""
        return beside(self.path, suffix)

    # -- opening ------------------------------------------------------------------------------

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def _open(self, new_state: bool) -> None:
        marker = None if self.read_only else read_marker(self.marker_path)
        if marker is not None and not new_state and not self.path.exists():
            raise DataError(
                f"{self.path}: missing, but {self.marker_path.name} says it held state {marker}; "
                "restore the file, or pass --new-state to start a new state there"
            )
        try:
            if self.read_only:
                self._db = self._connect_read_only()
            else:
                self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise DataError(f"{self.path}: cannot open: {exc}") from None
        try:
            self._check_and_migrate(marker, new_state)
        except BaseException:
            self._db.close()
            raise

    def _connect_read_only(self) -> sqlite3.Connection:
        """``mode=ro``; in a folder we may not write (no ``-shm`` can be made there) and with no
        ``-wal`` file to miss, ``immutable=1`` instead, which needs no ``-shm``."""
        uri = f"file:{urllib.parse.quote(str(self.path.resolve()))}?mode=ro"
        db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.OperationalError:
            wal = self.path.with_name(self.path.name + "-wal")
            if os.access(self.path.parent, os.W_OK) or wal.exists():
                return db  # the real problem; the checks that follow report it
        except sqlite3.DatabaseError:
            return db  # not a database: the checks that follow report it
        db.close()
        return sqlite3.connect(
            uri + "&immutable=1", uri=True, isolation_level=None, check_same_thread=False
        )

    def _check_and_migrate(self, marker: str | None, new_state: bool) -> None:
        db = self._db
        try:
            problems = [str(r[0]) for r in db.execute("PRAGMA quick_check").fetchall()]
            if problems != ["ok"]:
                more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
                raise DataError(f"{self.path}: integrity check failed: {short(problems[0])}{more}")
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            tables = int(db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            raise DataError(f"{self.path}: not a usable barbus state database: {exc}") from None
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"{self.path}: state schema {version} is newer than this barbus ({SCHEMA_VERSION})"
            )
        empty = version == 0 and tables == 0
        if version == 0 and not empty:
            raise DataError(f"{self.path}: an SQLite database, but not a barbus state file")
        if self.read_only and empty:
            raise DataError(f"{self.path}: empty: no barbus state in it")
        validate(db, self.path, version)
        self.version = version
        if self.read_only:
            return
        if marker is not None and not new_state:
            if empty:
                raise DataError(
                    f"{self.path}: empty, but {self.marker_path.name} says it held state "
                    f"{marker}: the file was emptied or replaced; restore it, or pass "
                    "--new-state to start a new state there"
                )
            held = read_state_id(self._db, self.path) if version >= 2 else "(none: schema 1)"
            if held != marker:
                raise DataError(
                    f"{self.path}: holds state {held}, but {self.marker_path.name} says "
                    f"{marker}: the file was replaced; pass --new-state to accept it"
                )
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            migrate(db, version)
            self.version = SCHEMA_VERSION
        except sqlite3.Error as exc:
            raise DataError(f"{self.path}: cannot use the state file: {exc}") from None
        state_id = read_state_id(self._db, self.path)
        if marker != state_id:
            write_marker(self.marker_path, state_id)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` .. ``COMMIT``), rolled back on any
        exception; an SQLite error is one line naming the file."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise DataError(f"{self.path}: cannot write the state file: {exc}") from None

    def check_writable(self) -> None:
        """Commit a real write (the open time, in ``meta``), so that a read-only file or folder
        or a full disk stops the daemon with one line before warm-up, not at its first bar."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO meta VALUES ('opened_at_ms', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(int(time.time() * 1000)),),
            )

    @property
    def state_id(self) -> str | None:
        """The random id of this state (None for a read-only schema-1 file)."""
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        return read_state_id(self._db, self.path) if version >= 2 else None

    def close(self) -> None:
        try:
            self._db.close()
        finally:
            self._release_lock()

    # -- reading ------------------------------------------------------------------------------

    def streams(self) -> dict[str, StreamRecord]:
        rows = self._db.execute("SELECT symbol, last_open_time_ms, live_from_ms FROM streams")
        return {r[0]: StreamRecord(*r) for r in rows}

    def engines(self) -> dict[str, EngineRecord]:
        rows = self._db.execute(
            "SELECT name, strategy, symbol, config, snapshot, last_open_time_ms FROM engines"
        )
        return {
            r[0]: EngineRecord(
                r[0],
                r[1],
                r[2],
                parse_object(self.path, r[0], "config", r[3]),
                parse_object(self.path, r[0], "snapshot", r[4]),
                r[5],
            )
            for r in rows
        }

    def bars(
        self, symbol: str, *, from_ms: int | None = None, interval: str | None = None
    ) -> list[tuple[Bar, str]]:
        """Every recorded bar of ``symbol`` with its source ('warmup' or 'live'), in order;
        with ``from_ms``, only those opened at or after it (an index range, not a scan). The
        rows do not repeat the feed's ``interval``: without it, :meth:`recorded_interval`."""
        rows = self._db.execute(
            "SELECT open_time_ms, open, high, low, close, volume, source FROM bars "
            "WHERE symbol = ? AND open_time_ms >= ? ORDER BY open_time_ms",
            (symbol, -(2**63) if from_ms is None else from_ms),
        )
        interval = interval or self.recorded_interval(symbol) or "1m"
        return [(Bar(symbol, interval, *r[:6]), r[6]) for r in rows]

    def recorded_interval(self, symbol: str) -> str | None:
        """The interval of ``symbol``'s recorded bars, as the loader tells a file's: the
        smallest step between its last 1,000 (None with fewer than two, or no known step)."""
        times = [
            r[0]
            for r in self._db.execute(
                "SELECT open_time_ms FROM bars WHERE symbol = ? ORDER BY open_time_ms DESC "
                "LIMIT 1000",
                (symbol,),
            )
        ]
        steps = [a - b for a, b in itertools.pairwise(times)]
        return INTERVAL_NAMES.get(min(steps)) if steps else None

    def trades(
        self,
        engine: str | None = None,
        *,
        since_ms: int | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[Trade]:
        """Closed trades, oldest exit first (``newest_first`` reverses it), of one engine or
        all, closed at or after ``since_ms``, at most ``limit`` of them."""
        query = (
            "SELECT engine, symbol, entry_time_ms, exit_time_ms, entry_price, exit_price, size, "
            "entry_fee, exit_fee, profit, profit_pct, exit_reason, "
            + ("direction" if self.version >= 3 else "'long'")
            + " FROM trades"
        )
        where: list[str] = []
        args: list[str | int] = []
        if engine is not None:
            where.append("engine = ?")
            args.append(engine)
        if since_ms is not None:
            where.append("exit_time_ms >= ?")
            args.append(since_ms)
        if where:
            query += " WHERE " + " AND ".join(where)
        # By exit time: a returning strategy's caught-up trades are recorded after newer ones
        # of the others (one engine's are recorded in exit order either way).
        query += (
            " ORDER BY exit_time_ms DESC, id DESC" if newest_first else " ORDER BY exit_time_ms, id"
        )
        if limit is not None:
            query += " LIMIT ?"
            args.append(limit)
        return [trade_from_values(r) for r in self._db.execute(query, args)]

    def halts(self) -> dict[str, str]:
        """Strategies halted in an earlier run, with the one-line reason (kept in ``meta``)."""
        if self.version < 2:
            return {}
        rows = self._db.execute("SELECT key, value FROM meta WHERE key LIKE 'halted:%'")
        return {str(r[0]).removeprefix("halted:"): str(r[1]) for r in rows}

    def accounts(self) -> dict[str, AccountRecord]:
        """The shared accounts recorded (none before schema 3)."""
        if self.version < 3:
            return {}
        rows = self._db.execute("SELECT name, starting_cash, allow_short, snapshot FROM accounts")
        return {
            r[0]: AccountRecord(
                r[0], r[1], bool(r[2]), parse_object(self.path, r[0], "snapshot", r[3], "account")
            )
            for r in rows
        }

    def order_events(self, engine: str | None = None) -> list[OrderEvent]:
        """Order events (placed, cancelled, expired, rejected, reduced), in commit order."""
        if self.version < 3:
            return []
        query = (
            "SELECT o.event, o.engine, e.symbol, o.time_ms, o.order_id, o.side, o.type, o.price, "
            "o.detail FROM order_events o LEFT JOIN engines e ON e.name = o.engine"
        )
        args: list[str] = []
        if engine is not None:
            query += " WHERE o.engine = ?"
            args.append(engine)
        rows = self._db.execute(query + " ORDER BY o.id", args)
        return [
            OrderEvent(r[0], r[1], r[2] or "", r[3], r[4], Side(r[5]), r[6], r[7], r[8])
            for r in rows
        ]

    def fill_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM fills").fetchone()[0])

    # -- writing ------------------------------------------------------------------------------

    def rewrite_engine_configs(self, configs: dict[str, tuple[str, dict[str, Any]]]) -> None:
        """Replace the recorded strategy and configuration of engines, in one transaction: a
        record written before barbus recorded specs and fingerprints gets them on its first
        start (``configs`` maps an engine name to its strategy spec and configuration)."""
        if not configs:
            return
        with self._transaction() as db:
            db.executemany(
                "UPDATE engines SET strategy = ?, config = ? WHERE name = ?",
                [
                    (spec, json.dumps(config, sort_keys=True), name)
                    for name, (spec, config) in configs.items()
                ],
            )

    def commit_bar(
        self,
        bar: Bar,
        source: str,
        live_from_ms: int,
        updates: Iterable[EngineUpdate],
        events: Sequence[EngineEvent] = (),
    ) -> None:
        """Record one bar and what the engines did with it, atomically (see :meth:`commit`)."""
        self.commit([(bar, source)], {bar.symbol: live_from_ms}, updates, events)

    def commit(
        self,
        bars: Sequence[tuple[Bar, str]],
        live_from_ms: Mapping[str, int],
        updates: Iterable[EngineUpdate],
        events: Sequence[EngineEvent],
        accounts: Iterable[AccountRecord] = (),
    ) -> None:
        """Record ``bars`` (with their source) and what they caused, atomically: each stream's
        last bar, the engines' snapshots, the shared accounts, and the drained events (fills,
        trades, order events; a halt as ``halted:<strategy>`` in ``meta``)."""
        started = time.perf_counter()
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO bars VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (b.symbol, b.open_time_ms, b.open, b.high, b.low, b.close, b.volume, source)
                    for b, source in bars
                ],
            )
            last: dict[str, int] = {}
            for b, _ in bars:
                last[b.symbol] = max(b.open_time_ms, last.get(b.symbol, b.open_time_ms))
            db.executemany(
                "INSERT INTO streams VALUES (?, ?, ?) ON CONFLICT(symbol) DO UPDATE SET "
                "last_open_time_ms = excluded.last_open_time_ms",
                [(symbol, t, live_from_ms.get(symbol, 0)) for symbol, t in last.items()],
            )
            for u in updates:
                db.execute(
                    "INSERT INTO engines VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE "
                    "SET snapshot = excluded.snapshot, "
                    "last_open_time_ms = excluded.last_open_time_ms",
                    (
                        u.name,
                        u.strategy,
                        u.symbol,
                        json.dumps(u.config, sort_keys=True),
                        json.dumps(u.snapshot),
                        u.last_open_time_ms,
                    ),
                )
            db.executemany(
                "INSERT INTO accounts VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE "
                "SET snapshot = excluded.snapshot",
                [
                    (a.name, a.starting_cash, int(a.allow_short), json.dumps(a.snapshot))
                    for a in accounts
                ],
            )
            for event in events:
                if isinstance(event, Fill):
                    db.execute(
                        "INSERT INTO fills (engine, symbol, side, time_ms, price, size, fee, "
                        "reason, bar_open_time_ms, order_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            event.strategy,
                            event.symbol,
                            event.side.value,
                            event.time_ms,
                            event.price,
                            event.size,
                            event.fee,
                            event.reason.value,
                            last.get(event.symbol, event.time_ms),
                            event.order_id,
                        ),
                    )
                elif isinstance(event, Trade):
                    db.execute(
                        "INSERT INTO trades (engine, symbol, entry_time_ms, exit_time_ms, "
                        "entry_price, exit_price, size, entry_fee, exit_fee, profit, profit_pct, "
                        "exit_reason, direction) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        trade_values(event),
                    )
                elif isinstance(event, StrategyHalted):
                    db.execute(
                        "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO NOTHING",
                        (f"halted:{event.strategy}", event.reason),  # the first reason stays
                    )
                elif isinstance(event, OrderEvent):
                    db.execute(
                        "INSERT INTO order_events (engine, time_ms, order_id, event, side, type, "
                        "price, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            event.strategy,
                            event.time_ms,
                            event.order_id,
                            event.event,
                            event.side.value,
                            event.order_type,
                            event.price,
                            event.detail,
                        ),
                    )
            db.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (a full disk does): a failing ROLLBACK must
            # not replace the error that matters.
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise
        self.last_commit_seconds = time.perf_counter() - started
