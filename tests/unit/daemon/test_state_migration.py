"""Schema 3 on real files: a previous release's state file is upgraded in place in one
transaction; order events, accounts and short trades round-trip."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from barbus.daemon.core.errors import DataError
from barbus.daemon.core.events import (
    MINUTE_MS,
    Direction,
    ExitReason,
    Fill,
    OrderEvent,
    Side,
    StrategyHalted,
    Trade,
)
from barbus.daemon.state import AccountRecord, EngineUpdate, StateStore
from tests.factories import T0_MS, make_bar

OLD_STATE = Path(__file__).resolve().parents[2] / "data" / "previous_release_state.sqlite"


def rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(query).fetchall()


@pytest.fixture
def old(tmp_path: Path) -> Path:
    path = tmp_path / "state.sqlite"
    shutil.copyfile(OLD_STATE, path)
    return path


def test_an_old_file_is_upgraded_in_place_and_its_trades_read_as_longs(old: Path) -> None:
    before = rows(old, "SELECT * FROM trades ORDER BY id")
    fills_before = rows(old, "SELECT * FROM fills ORDER BY id")
    assert rows(old, "PRAGMA user_version") == [(2,)]
    assert len(before) >= 10

    store = StateStore(old)
    try:
        trades = store.trades()
        assert store.accounts() == {}
        assert store.order_events() == []
    finally:
        store.close()

    assert rows(old, "PRAGMA user_version") == [(3,)]
    assert rows(old, "SELECT * FROM trades ORDER BY id") == [(*r, "long") for r in before]
    assert rows(old, "SELECT * FROM fills ORDER BY id") == [(*r, 0) for r in fills_before]
    assert len(trades) == len(before)
    assert {t.direction for t in trades} == {Direction.LONG}
    tables = {r[0] for r in rows(old, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"accounts", "order_events"} <= tables


def test_a_read_only_open_reads_an_old_file_as_it_is(old: Path) -> None:
    store = StateStore(old, read_only=True)
    try:
        trades = store.trades()
        assert store.accounts() == {}
    finally:
        store.close()
    assert rows(old, "PRAGMA user_version") == [(2,)]
    assert len(trades) == len(rows(old, "SELECT id FROM trades"))
    assert {t.direction for t in trades} == {Direction.LONG}


def test_a_migration_that_fails_half_way_leaves_the_old_schema_whole(old: Path) -> None:
    # A table in the way of the last step: the ALTERs before it must be rolled back too.
    with closing(sqlite3.connect(old)) as db:
        db.execute("CREATE TABLE order_events (x)")
        db.commit()

    with pytest.raises(DataError, match="order_events already exists"):
        StateStore(old).close()

    assert rows(old, "PRAGMA user_version") == [(2,)]
    columns = {r[1] for r in rows(old, "PRAGMA table_info(trades)")}
    assert "direction" not in columns
    assert rows(old, "SELECT name FROM sqlite_master WHERE name = 'accounts'") == []


def test_order_events_accounts_and_short_trades_round_trip(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.sqlite")
    bar = make_bar(100.0, minute=1)
    t = bar.open_time_ms
    cancelled = OrderEvent("cancelled", "a", "BTCUSDT", t, 4, Side.BUY, "market", None, "why")
    placed = OrderEvent("placed", "a", "BTCUSDT", t, 3, Side.SELL, "limit", 101.5, "")
    sell = Fill("a", "BTCUSDT", Side.SELL, t, 101.5, 2.0, 0.2, ExitReason.LIMIT, order_id=3)
    cover = Trade(
        "a", "BTCUSDT", t - MINUTE_MS, t, 102.0, 101.5, 2.0, 0.1, 0.2, 0.7, 0.35,
        ExitReason.LIMIT, Direction.SHORT,
    )  # fmt: skip
    account = AccountRecord("pool", 5_000.0, True, {"version": 1, "cash": 4_321.5})
    update = EngineUpdate("a", "x", "BTCUSDT", {"k": 1}, {"s": 1}, t)
    try:
        store.commit(
            [(bar, "live")], {"BTCUSDT": T0_MS}, [update], [placed, sell, cover, cancelled],
            [account],
        )  # fmt: skip
        assert store.trades("a") == [cover]
        assert store.order_events() == [placed, cancelled]
        assert store.accounts() == {"pool": account}
        assert rows(store.path, "SELECT order_id, reason FROM fills") == [(3, "limit")]
    finally:
        store.close()
    reopened = StateStore(tmp_path / "state.sqlite", read_only=True)
    try:
        assert reopened.accounts() == {"pool": account}
    finally:
        reopened.close()


def test_a_damaged_account_snapshot_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    StateStore(path).close()
    with closing(sqlite3.connect(path)) as db:
        db.execute("INSERT INTO accounts VALUES ('pool', 100.0, 0, '[1]')")
        db.commit()
    with pytest.raises(DataError, match="snapshot of account 'pool' is list, not an object"):
        StateStore(path)


def test_a_halt_is_recorded_with_its_bar_and_read_back(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.sqlite")
    bar = make_bar(100.0)
    try:
        assert store.halts() == {}
        halt = StrategyHalted("flip", bar.open_time_ms, "StrategyError: sold short (on bar)")
        store.commit([(bar, "live")], {"BTCUSDT": T0_MS}, [], [halt])
        assert store.halts() == {"flip": "StrategyError: sold short (on bar)"}
        again = StrategyHalted("flip", bar.open_time_ms, "the same, said again at a restart")
        store.commit(
            [(bar._replace(open_time_ms=bar.open_time_ms + 60_000), "live")], {}, [], [again]
        )
        assert store.halts() == {"flip": "StrategyError: sold short (on bar)"}
        assert rows(store.path, "SELECT count(*) FROM order_events") == [(0,)]
    finally:
        store.close()
