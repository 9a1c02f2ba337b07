"""The state file's schema: its tables, the upgrades from every older version, and the check
that a file holds what the schema says.

The version lives in ``PRAGMA user_version``; an older file is upgraded in place on its first
writable open, every step in one transaction (schema 3: trades get ``direction``, old rows
``long``; fills their ``order_id``; tables ``accounts`` and ``order_events``). A read-only open
of an older file reads it as it is, so the check knows which table and column each version has:
every table and column present, every row of the right type and every number finite, every JSON
document an object. Apart from :mod:`barbus.daemon.state` because what a file must look like,
per version, is a job of its own next to opening, reading and committing it.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from barbus.daemon.core.errors import DataError
from barbus.daemon.core.events import ExitReason

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "is_state_id",
    "migrate",
    "parse_object",
    "read_state_id",
    "short",
    "validate",
]

SCHEMA_VERSION = 3
MIGRATIONS: tuple[str, ...] = (
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
    # 1 -> 2: the state's identity (see the module docstring) and the last open time.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO meta VALUES ('state_id', lower(hex(randomblob(16))));
    """,
    # 2 -> 3: orders and accounts. Trades of the long-only releases were longs; a fill's order.
    """
    ALTER TABLE trades ADD COLUMN direction TEXT NOT NULL DEFAULT 'long';
    ALTER TABLE fills ADD COLUMN order_id INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE accounts (
        name TEXT PRIMARY KEY, starting_cash REAL NOT NULL, allow_short INTEGER NOT NULL,
        snapshot TEXT NOT NULL
    );
    CREATE TABLE order_events (
        id INTEGER PRIMARY KEY, engine TEXT NOT NULL, time_ms INTEGER NOT NULL,
        order_id INTEGER NOT NULL, event TEXT NOT NULL, side TEXT NOT NULL, type TEXT NOT NULL,
        price REAL, detail TEXT NOT NULL
    );
    """,
)
_SINCE: dict[str, int] = {"meta": 2, "accounts": 3, "order_events": 3}
"""The schema version that added a table (the others are there from version 1)."""
_COLUMNS_SINCE: dict[tuple[str, str], int] = {("trades", "direction"): 3, ("fills", "order_id"): 3}


def _finite_sql(column: str) -> str:
    return f"typeof({column}) IN ('real', 'integer') AND abs({column}) <= 1.7976931348623157e308"


def _int_sql(column: str) -> str:
    return f"typeof({column}) = 'integer'"


def _text_sql(column: str) -> str:
    return f"typeof({column}) = 'text'"


# Per table: the columns it must have, and an SQL condition every row must meet.
_TABLES: dict[str, tuple[tuple[str, ...], str]] = {
    "meta": (("key", "value"), f"{_text_sql('key')} AND {_text_sql('value')}"),
    "bars": (
        ("symbol", "open_time_ms", "open", "high", "low", "close", "volume", "source"),
        " AND ".join(
            [_text_sql("symbol"), _int_sql("open_time_ms"), "source IN ('warmup', 'live')"]
            + [_finite_sql(c) for c in ("open", "high", "low", "close", "volume")]
        ),
    ),
    "streams": (
        ("symbol", "last_open_time_ms", "live_from_ms"),
        " AND ".join(
            [_text_sql("symbol"), _int_sql("last_open_time_ms"), _int_sql("live_from_ms")]
        ),
    ),
    "engines": (
        ("name", "strategy", "symbol", "config", "snapshot", "last_open_time_ms"),
        " AND ".join(
            [_text_sql(c) for c in ("name", "strategy", "symbol", "config", "snapshot")]
            + [_int_sql("last_open_time_ms")]
        ),
    ),
    "fills": (
        ("id", "engine", "symbol", "side", "time_ms", "price", "size", "fee", "reason",
         "bar_open_time_ms"),
        " AND ".join(
            [_text_sql(c) for c in ("engine", "symbol")]
            + ["side IN ('buy', 'sell')", _text_sql("reason")]
            + [_int_sql(c) for c in ("time_ms", "bar_open_time_ms")]
            + [_finite_sql(c) for c in ("price", "size", "fee")]
        ),
    ),
    "trades": (
        ("id", "engine", "symbol", "entry_time_ms", "exit_time_ms", "entry_price", "exit_price",
         "size", "entry_fee", "exit_fee", "profit", "profit_pct", "exit_reason"),
        " AND ".join(
            [_text_sql(c) for c in ("engine", "symbol")]
            + [f"exit_reason IN ({', '.join(repr(r.value) for r in ExitReason)})"]
            + [_int_sql(c) for c in ("entry_time_ms", "exit_time_ms")]
            + [
                _finite_sql(c)
                for c in ("entry_price", "exit_price", "size", "entry_fee", "exit_fee", "profit",
                          "profit_pct")
            ]
        ),
    ),
    "accounts": (
        ("name", "starting_cash", "allow_short", "snapshot"),
        " AND ".join(
            [_text_sql("name"), _finite_sql("starting_cash"), "allow_short IN (0, 1)",
             _text_sql("snapshot")]
        ),
    ),
    "order_events": (
        ("id", "engine", "time_ms", "order_id", "event", "side", "type", "price", "detail"),
        " AND ".join(
            [_text_sql(c) for c in ("engine", "event", "type", "detail")]
            + [_int_sql("time_ms"), _int_sql("order_id"), "side IN ('buy', 'sell')"]
            + [f"(price IS NULL OR ({_finite_sql('price')}))"]
        ),
    ),
}  # fmt: skip
# Conditions on columns a later schema added: (since version, condition).
_CONDITIONS_SINCE: dict[str, tuple[int, str]] = {
    "trades": (3, "direction IN ('long', 'short')"),
    "fills": (3, _int_sql("order_id")),
}
ID_CHARS = frozenset("0123456789abcdef")


def short(text: object) -> str:
    """At most ~200 characters of something read from the file, for an error line."""
    words = str(text)
    return words if len(words) <= 200 else words[:200] + "..."


def is_state_id(text: str) -> bool:
    """A state id as schema 2 makes it (and its marker copies it): 32 lowercase hex digits."""
    return len(text) == 32 and set(text) <= ID_CHARS


def validate(db: sqlite3.Connection, path: Path, version: int) -> None:
    """Every table and column there, every row well-typed and finite, every JSON an object."""
    if version == 0:
        return
    try:
        for table, (all_columns, base) in _TABLES.items():
            if version < _SINCE.get(table, 1):
                continue
            columns = [c for c in all_columns if version >= _COLUMNS_SINCE.get((table, c), 1)]
            since, extra = _CONDITIONS_SINCE.get(table, (version + 1, ""))
            condition = f"{base} AND {extra}" if version >= since else base
            present = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
            if not present:
                raise DataError(f"{path}: damaged: table {table!r} is missing")
            missing = [c for c in columns if c not in present]
            if missing:
                raise DataError(
                    f"{path}: damaged: table {table!r} lacks column(s) " + ", ".join(missing)
                )
            bad = db.execute(f"SELECT * FROM {table} WHERE NOT ({condition}) LIMIT 1").fetchone()
            if bad is not None:
                raise DataError(
                    f"{path}: damaged: a row of {table!r} has a wrong type, a missing "
                    f"or non-finite number: {short(bad)}"
                )
        # Where each stream resumes must be its last recorded bar (one index probe each).
        off = db.execute(
            "SELECT symbol, last_open_time_ms, (SELECT max(open_time_ms) FROM bars "
            "WHERE bars.symbol = streams.symbol) AS last_bar FROM streams "
            "WHERE last_bar IS NOT last_open_time_ms LIMIT 1"
        ).fetchone()
        if off is not None:
            raise DataError(
                f"{path}: damaged: stream {short(off[0])!r} says its last bar opened "
                f"at {off[1]}, but the last recorded bar opened at {off[2]}"
            )
        for name, config, snapshot in db.execute("SELECT name, config, snapshot FROM engines"):
            for what, text in (("config", config), ("snapshot", snapshot)):
                parse_object(path, name, what, text)
        if version >= 3:
            for name, snapshot in db.execute("SELECT name, snapshot FROM accounts"):
                parse_object(path, name, "snapshot", snapshot, "account")
        if version >= 2:
            state_id = read_state_id(db, path)
            if not is_state_id(state_id):
                raise DataError(f"{path}: damaged: state id {short(state_id)!r}")
    except sqlite3.DatabaseError as exc:
        raise DataError(f"{path}: damaged: {exc}") from None


def parse_object(
    path: Path, name: str, what: str, text: str, owner: str = "strategy"
) -> dict[str, Any]:
    """A JSON column that must hold an object (a config or a snapshot)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise DataError(
            f"{path}: damaged: {what} of {owner} {short(name)!r} is not JSON: {exc}"
        ) from None
    if not isinstance(value, dict):
        raise DataError(
            f"{path}: damaged: {what} of {owner} {short(name)!r} is "
            f"{type(value).__name__}, not an object"
        )
    return value


def read_state_id(db: sqlite3.Connection, path: Path) -> str:
    """The state's id in ``meta`` (schema 2 and later)."""
    row = db.execute("SELECT value FROM meta WHERE key = 'state_id'").fetchone()
    if row is None:
        raise DataError(f"{path}: damaged: no state id in table 'meta'")
    return str(row[0])


def migrate(db: sqlite3.Connection, version: int) -> None:
    """Upgrade from ``version`` to :data:`SCHEMA_VERSION` in one transaction."""
    if version == SCHEMA_VERSION:
        return
    # Every step in one transaction, the version bump included: a crash leaves either the
    # old schema or the new one, never tables without their version.
    steps = "\n".join(m.replace("\n    ", "\n") for m in MIGRATIONS[version:])
    try:
        db.executescript(
            f"BEGIN IMMEDIATE;\n{steps}\nPRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;"
        )
    except BaseException:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise
