"""Damaged state files, damaged for real: every one is refused on open with one line naming it.

Each test builds a real state file with :class:`StateStore`, damages it the way disks, people
and other programs do (bytes written over a page, SQL run on it, truncation, replacement), and
opens it again. Never a traceback, never a run on damaged state.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from barbus.daemon.core.errors import DataError
from barbus.daemon.core.events import MINUTE_MS, EngineEvent, ExitReason, Fill, Side, Trade
from barbus.daemon.state import EngineUpdate, StateStore
from barbus.daemon.state_files import StateBusyError
from barbus.daemon.state_schema import SCHEMA_VERSION
from tests.factories import T0_MS, make_bar

SNAPSHOT: dict[str, Any] = {"portfolio": {"cash": 10_000.0}, "trade_from_ms": T0_MS}
CONFIG: dict[str, Any] = {"strategy": "sma_cross", "params": {}}


def update(n: int) -> tuple[EngineUpdate, list[EngineEvent]]:
    time_ms = T0_MS + n * MINUTE_MS
    fill = Fill("sma", "BTCUSDT", Side.BUY, time_ms, 100.0, 1.0, 0.1, ExitReason.SIGNAL)
    trade = Trade(
        "sma", "BTCUSDT", time_ms, time_ms, 100.0, 101.0, 1.0, 0.1, 0.1, 0.8, 0.8, ExitReason.SIGNAL
    )
    return EngineUpdate("sma", "sma_cross", "BTCUSDT", CONFIG, SNAPSHOT, time_ms), [fill, trade]


def build(path: Path, bars: int = 300) -> None:
    """A state file with ``bars`` bars, fills and trades, closed (WAL checkpointed)."""
    store = StateStore(path)
    try:
        for n in range(bars):
            engine, events = update(n)
            store.commit_bar(make_bar(100.0 + n, minute=n), "live", T0_MS, [engine], events)
    finally:
        store.close()


def run_sql(path: Path, *statements: str) -> None:
    with closing(sqlite3.connect(path)) as db:
        for statement in statements:
            db.execute(statement)
        db.commit()


def refused(path: Path, match: str, **options: bool) -> str:
    """Open ``path``; it must raise one DataError line naming the file and matching ``match``."""
    with pytest.raises(DataError, match=match) as caught:
        StateStore(path, **options).close()
    message = str(caught.value)
    assert str(path) in message
    assert "\n" not in message
    assert len(message) < 500
    return message


@pytest.fixture
def state(tmp_path: Path) -> Path:
    path = tmp_path / "state.sqlite"
    build(path)
    return path


# -- the integrity check -----------------------------------------------------------------------


def test_a_page_overwritten_with_garbage_is_refused_by_the_integrity_check(state: Path) -> None:
    page_size = 4096
    assert state.stat().st_size > 20 * page_size
    with state.open("r+b") as handle:  # a torn write in the middle of the bars' b-tree
        handle.seek(10 * page_size)
        handle.write(bytes(range(256)) * (page_size // 256))

    refused(state, "integrity check failed|malformed")
    refused(state, "integrity check failed|malformed", read_only=True)


def test_a_clobbered_header_is_not_a_state_database(state: Path) -> None:
    with state.open("r+b") as handle:
        handle.write(b"\xff" * 100)

    refused(state, "not a usable barbus state database|not a database")


# -- what the rows hold ------------------------------------------------------------------------

DAMAGE: dict[str, tuple[str, str]] = {
    "bad JSON in a snapshot": (
        """UPDATE engines SET snapshot = '{"portfolio": {"cash": 1'""",
        "snapshot of strategy 'sma' is not JSON",
    ),
    "a snapshot that is a list": (
        "UPDATE engines SET snapshot = '[1, 2]'",
        "snapshot of strategy 'sma' is list, not an object",
    ),
    "bad JSON in a config": (
        "UPDATE engines SET config = 'strategy=sma'",
        "config of strategy 'sma' is not JSON",
    ),
    "a price that is text": (
        "UPDATE bars SET close = 'abc' WHERE open_time_ms = " + str(T0_MS + 5 * MINUTE_MS),
        "a row of 'bars' has a wrong type",
    ),
    "an infinite price": (
        "UPDATE bars SET high = 9e999 WHERE open_time_ms = " + str(T0_MS + 7 * MINUTE_MS),
        "non-finite number",
    ),
    "a NULL volume (NaN is stored as NULL)": (
        # SQLite stores a NaN bound by any client as NULL: that is what a NaN looks like here.
        "UPDATE bars SET volume = NULL",
        "table 'bars'|a row of 'bars'",
    ),
    "an open time that is a float": (
        "UPDATE streams SET last_open_time_ms = 1.5",
        "a row of 'streams' has a wrong type",
    ),
    "a blob as a fill price": (
        "UPDATE fills SET price = x'00ff' WHERE id = 3",
        "a row of 'fills' has a wrong type",
    ),
    "an unknown exit reason": (
        "UPDATE trades SET exit_reason = 'magic' WHERE id = 2",
        "a row of 'trades'",
    ),
    "an infinite profit": (
        "UPDATE trades SET profit = -9e999 WHERE id = 4",
        "a row of 'trades'",
    ),
    "a stream resuming past its last bar": (
        "UPDATE streams SET last_open_time_ms = last_open_time_ms + 60000",
        "stream 'BTCUSDT' says its last bar opened at",
    ),
    "the last bars deleted": (
        f"DELETE FROM bars WHERE open_time_ms > {T0_MS + 100 * MINUTE_MS}",
        "the last recorded bar opened at " + str(T0_MS + 100 * MINUTE_MS),
    ),
    "a dropped table": ("DROP TABLE fills", "table 'fills' is missing"),
    "a dropped column": ("ALTER TABLE trades DROP COLUMN profit_pct", "lacks column.*profit_pct"),
    "a lost state id": ("DELETE FROM meta WHERE key = 'state_id'", "no state id"),
    "a dropped meta table": ("DROP TABLE meta", "table 'meta' is missing"),
    "a garbled state id": ("UPDATE meta SET value = 'x' WHERE key = 'state_id'", "state id 'x'"),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_damaged_rows_tables_and_columns_are_refused_on_open(state: Path, damage: str) -> None:
    statement, match = DAMAGE[damage]
    if "NULL volume" in damage:
        # bars' columns are NOT NULL: rebuild the table without the constraint, as a careless
        # repair tool would, then put the NULL in.
        run_sql(
            state,
            "CREATE TABLE b2 (symbol TEXT, open_time_ms INTEGER, open REAL, high REAL, low REAL, "
            "close REAL, volume REAL, source TEXT, PRIMARY KEY (symbol, open_time_ms)) "
            "WITHOUT ROWID",
            "INSERT INTO b2 SELECT * FROM bars",
            "DROP TABLE bars",
            "ALTER TABLE b2 RENAME TO bars",
        )
    run_sql(state, statement)

    refused(state, match)
    refused(state, match, read_only=True)  # barbus parity reads the same checks


# -- identity: an emptied, replaced or missing file --------------------------------------------


def marker(path: Path) -> str:
    return path.with_name(path.name + ".id").read_text(encoding="ascii").strip()


def state_id(path: Path) -> str:
    with closing(sqlite3.connect(path)) as db:
        return str(db.execute("SELECT value FROM meta WHERE key = 'state_id'").fetchone()[0])


def test_a_new_state_file_gets_a_random_id_and_a_marker_next_to_it(tmp_path: Path) -> None:
    first, second = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    build(first, 1)
    build(second, 1)

    assert marker(first) == state_id(first)
    assert len(marker(first)) == 32
    assert state_id(first) != state_id(second)


def test_a_zero_length_file_where_state_existed_is_refused_unless_new_state(state: Path) -> None:
    old_id = marker(state)
    state.write_bytes(b"")

    message = refused(state, "empty, but state.sqlite.id says it held state")
    assert "--new-state" in message
    assert state.stat().st_size == 0  # refusing wrote nothing

    store = StateStore(state, new_state=True)
    try:
        assert store.bars("BTCUSDT") == []
        assert store.state_id != old_id
    finally:
        store.close()
    assert marker(state) == state_id(state) != old_id
    StateStore(state).close()  # accepted from now on


def test_a_deleted_state_file_is_refused_and_not_recreated_unless_new_state(state: Path) -> None:
    state.unlink()

    refused(state, "missing, but state.sqlite.id says")
    assert not state.exists()

    StateStore(state, new_state=True).close()
    assert marker(state) == state_id(state)


def test_a_file_replaced_by_another_state_is_refused_unless_new_state(
    state: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other" / "state.sqlite"
    build(other, 3)
    shutil.copyfile(other, state)

    message = refused(state, "the file was replaced")
    assert marker(state) in message
    assert state_id(other) in message

    store = StateStore(state, new_state=True)  # adopted as it is: nothing deleted
    try:
        assert len(store.bars("BTCUSDT")) == 3
    finally:
        store.close()
    assert marker(state) == state_id(other)


def test_a_garbled_marker_is_refused(state: Path) -> None:
    state.with_name("state.sqlite.id").write_text("not an id at all\n", encoding="ascii")

    with pytest.raises(DataError, match="not a state marker"):
        StateStore(state)


def test_a_lost_marker_is_written_again_from_the_file(state: Path) -> None:
    state.with_name("state.sqlite.id").unlink()

    StateStore(state).close()

    assert marker(state) == state_id(state)


def test_read_only_opens_never_write_a_marker_and_refuse_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    refused(path, "no such state file", read_only=True)
    assert not path.exists()
    path.write_bytes(b"")

    refused(path, "empty: no barbus state", read_only=True)

    assert not path.with_name("state.sqlite.id").exists()


def test_a_folder_or_fifo_at_the_state_path_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "state.sqlite"
    folder.mkdir()
    fifo = tmp_path / "fifo.sqlite"
    os.mkfifo(fifo)

    for path in (folder, fifo):
        refused(path, "not a regular file")
        refused(path, "not a regular file", read_only=True)


# -- schema 1 files still open ---------------------------------------------------------------


def test_a_schema_1_file_migrates_to_the_current_schema_keeping_its_rows(tmp_path: Path) -> None:
    from barbus.daemon.state_schema import MIGRATIONS

    path = tmp_path / "state.sqlite"
    with closing(sqlite3.connect(path)) as db:
        db.executescript(MIGRATIONS[0])
        db.execute(
            "INSERT INTO bars VALUES ('BTCUSDT', ?, 1.0, 2.0, 0.5, 1.5, 3.0, 'live')", (T0_MS,)
        )
        db.execute("PRAGMA user_version = 1")
        db.commit()

    store = StateStore(path)
    try:
        assert [bar.close for bar, _ in store.bars("BTCUSDT")] == [1.5]
        assert store.state_id == marker(path)
    finally:
        store.close()
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


# -- one daemon per file -----------------------------------------------------------------------


def test_a_second_exclusive_open_is_refused_naming_the_holders_pid(state: Path) -> None:
    holder = StateStore(state, exclusive=True)
    try:
        with pytest.raises(StateBusyError, match=f"already in use by process {os.getpid()}"):
            StateStore(state, exclusive=True)
        reader = StateStore(state, read_only=True)  # parity still reads while it runs
        try:
            assert len(reader.bars("BTCUSDT")) == 300
        finally:
            reader.close()
    finally:
        holder.close()

    StateStore(state, exclusive=True).close()  # released with the store


def test_a_symlink_to_a_held_state_file_is_refused_too(state: Path, tmp_path: Path) -> None:
    link = tmp_path / "elsewhere" / "link.sqlite"
    link.parent.mkdir()
    link.symlink_to(state)
    holder = StateStore(state, exclusive=True)
    try:
        with pytest.raises(StateBusyError, match="already in use"):
            StateStore(link, exclusive=True)
    finally:
        holder.close()


# -- a full disk -------------------------------------------------------------------------------


def fill_up(store: StateStore, first: int) -> tuple[int, sqlite3.Error]:
    """Commit bars until the file is full; return how many went in and the error."""
    n = first
    while True:
        u, events = update(n)
        padded = {**SNAPSHOT, "pad": "x" * 3000, "n": n}
        try:
            store.commit_bar(
                make_bar(100.0, minute=n),
                "live",
                T0_MS,
                [EngineUpdate(u.name, u.strategy, u.symbol, u.config, padded, u.last_open_time_ms)],
                events[:1],
            )
        except sqlite3.Error as exc:
            return n, exc
        n += 1


def test_a_full_disk_reports_the_full_error_and_keeps_every_committed_bar(state: Path) -> None:
    store = StateStore(state)
    try:
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        # The file may grow by 40 pages, then SQLite gets SQLITE_FULL, as on a full disk.
        store._db.execute(f"PRAGMA max_page_count = {pages + 40}")
        committed, error = fill_up(store, 300)
    finally:
        store.close()

    assert committed > 300
    assert "full" in str(error)  # the first error, not "cannot rollback"
    store = StateStore(state)
    try:
        assert store._db.execute("PRAGMA quick_check").fetchall() == [("ok",)]
        bars = store.bars("BTCUSDT")
        assert [bar.open_time_ms for bar, _ in bars] == [
            T0_MS + n * MINUTE_MS for n in range(committed)
        ]
        assert store.streams()["BTCUSDT"].last_open_time_ms == T0_MS + (committed - 1) * MINUTE_MS
        assert store.engines()["sma"].snapshot["n"] == committed - 1
    finally:
        store.close()
