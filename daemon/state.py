"""Durable daemon state in SQLite: every processed bar, fills, trades and strategy snapshots.

One transaction per bar holds the bar itself, the stream's new last open time, and for every
engine that saw the bar its snapshot and any new fills and trades. WAL mode with
``synchronous=NORMAL`` survives a killed process (the committed transactions are in the WAL);
a restart reads the last committed bar per stream and the snapshots, so processing resumes
exactly: no fill lost, none repeated. Crash-only: opening the store is the recovery.

Schema version lives in ``PRAGMA user_version``; migrations are applied in order on open.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.errors import ConfigError, DataError
from daemon.events import Bar, ExitReason, Fill, Trade

__all__ = ["EngineRecord", "EngineUpdate", "StateStore", "StreamRecord"]

SCHEMA_VERSION = 1
_MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1
    """
    CREATE TABLE bars (
        symbol TEXT NOT NULL, open_time_ms INTEGER NOT NULL,
        open REAL NOT NULL, high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL,
        volume REAL NOT NULL, source TEXT NOT NULL,
        PRIMARY KEY (symbol, open_time_ms)
    ) WITHOUT ROWID;
    CREATE TABLE streams (
        symbol TEXT PRIMARY KEY, last_open_time_ms INTEGER NOT NULL,
        live_from_ms INTEGER NOT NULL
    );
    CREATE TABLE engines (
        name TEXT PRIMARY KEY, strategy TEXT NOT NULL, symbol TEXT NOT NULL,
        config TEXT NOT NULL, snapshot TEXT NOT NULL, last_open_time_ms INTEGER NOT NULL
    );
    CREATE TABLE fills (
        id INTEGER PRIMARY KEY, engine TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
        time_ms INTEGER NOT NULL, price REAL NOT NULL, size REAL NOT NULL, fee REAL NOT NULL,
        reason TEXT NOT NULL, bar_open_time_ms INTEGER NOT NULL
    );
    CREATE TABLE trades (
        id INTEGER PRIMARY KEY, engine TEXT NOT NULL, symbol TEXT NOT NULL,
        entry_time_ms INTEGER NOT NULL, exit_time_ms INTEGER NOT NULL,
        entry_price REAL NOT NULL, exit_price REAL NOT NULL, size REAL NOT NULL,
        entry_fee REAL NOT NULL, exit_fee REAL NOT NULL, profit REAL NOT NULL,
        profit_pct REAL NOT NULL, exit_reason TEXT NOT NULL
    );
    """,
)


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
    """What one engine changed while processing one bar."""

    name: str
    strategy: str
    symbol: str
    config: dict[str, Any]
    snapshot: dict[str, Any]
    new_fills: Sequence[Fill]
    new_trades: Sequence[Trade]


class StateStore:
    """The daemon's SQLite state; a value you pass around, never a global."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise DataError(f"{self.path}: not a usable barbus state database: {exc}") from None
        self.last_commit_seconds = 0.0

    def _migrate(self) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"{self.path}: state schema {version} is newer than this barbus ({SCHEMA_VERSION})"
            )
        for number in range(version, SCHEMA_VERSION):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executescript(_MIGRATIONS[number].replace("\n    ", "\n"))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            # executescript commits on its own; the version goes in its own transaction.
            self._db.execute(f"PRAGMA user_version = {number + 1}")

    def close(self) -> None:
        self._db.close()

    # -- reading ------------------------------------------------------------------------------

    def streams(self) -> dict[str, StreamRecord]:
        rows = self._db.execute("SELECT symbol, last_open_time_ms, live_from_ms FROM streams")
        return {r[0]: StreamRecord(*r) for r in rows}

    def engines(self) -> dict[str, EngineRecord]:
        rows = self._db.execute(
            "SELECT name, strategy, symbol, config, snapshot, last_open_time_ms FROM engines"
        )
        return {
            r[0]: EngineRecord(r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4]), r[5])
            for r in rows
        }

    def bars(self, symbol: str) -> list[tuple[Bar, str]]:
        """Every recorded bar of ``symbol`` with its source ('warmup' or 'live'), in order."""
        rows = self._db.execute(
            "SELECT open_time_ms, open, high, low, close, volume, source FROM bars "
            "WHERE symbol = ? ORDER BY open_time_ms",
            (symbol,),
        )
        return [(Bar(symbol, "1m", *r[:6]), r[6]) for r in rows]

    def trades(self, engine: str | None = None) -> list[Trade]:
        query = (
            "SELECT engine, symbol, entry_time_ms, exit_time_ms, entry_price, exit_price, size, "
            "entry_fee, exit_fee, profit, profit_pct, exit_reason FROM trades"
        )
        args: tuple[str, ...] = ()
        if engine is not None:
            query += " WHERE engine = ?"
            args = (engine,)
        rows = self._db.execute(query + " ORDER BY id", args)
        return [
            Trade(
                strategy=r[0],
                symbol=r[1],
                entry_time_ms=r[2],
                exit_time_ms=r[3],
                entry_price=r[4],
                exit_price=r[5],
                size=r[6],
                entry_fee=r[7],
                exit_fee=r[8],
                profit=r[9],
                profit_pct=r[10],
                exit_reason=ExitReason(r[11]),
            )
            for r in rows
        ]

    def fill_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM fills").fetchone()[0])

    # -- writing ------------------------------------------------------------------------------

    def commit_bar(
        self, bar: Bar, source: str, live_from_ms: int, updates: Iterable[EngineUpdate]
    ) -> None:
        """Record ``bar`` and what every engine did with it, atomically."""
        started = time.perf_counter()
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "INSERT INTO bars VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    bar.symbol,
                    bar.open_time_ms,
                    bar.open,
                    bar.high,
                    bar.low,
                    bar.close,
                    bar.volume,
                    source,
                ),
            )
            db.execute(
                "INSERT INTO streams VALUES (?, ?, ?) ON CONFLICT(symbol) DO UPDATE SET "
                "last_open_time_ms = excluded.last_open_time_ms",
                (bar.symbol, bar.open_time_ms, live_from_ms),
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
                        bar.open_time_ms,
                    ),
                )
                db.executemany(
                    "INSERT INTO fills (engine, symbol, side, time_ms, price, size, fee, reason, "
                    "bar_open_time_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            f.strategy,
                            f.symbol,
                            f.side.value,
                            f.time_ms,
                            f.price,
                            f.size,
                            f.fee,
                            f.reason.value,
                            bar.open_time_ms,
                        )
                        for f in u.new_fills
                    ],
                )
                db.executemany(
                    "INSERT INTO trades (engine, symbol, entry_time_ms, exit_time_ms, "
                    "entry_price, exit_price, size, entry_fee, exit_fee, profit, profit_pct, "
                    "exit_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            t.strategy,
                            t.symbol,
                            t.entry_time_ms,
                            t.exit_time_ms,
                            t.entry_price,
                            t.exit_price,
                            t.size,
                            t.entry_fee,
                            t.exit_fee,
                            t.profit,
                            t.profit_pct,
                            t.exit_reason.value,
                        )
                        for t in u.new_trades
                    ],
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.last_commit_seconds = time.perf_counter() - started
