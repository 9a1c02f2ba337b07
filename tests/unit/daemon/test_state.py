"""The daemon's SQLite state on real files: round trips, atomic bars, and recovery after kill -9."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from barbus.daemon.core.errors import ConfigError, DataError
from barbus.daemon.core.events import MINUTE_MS, Bar, EngineEvent, ExitReason, Fill, Side, Trade
from barbus.daemon.state import EngineUpdate, StateStore
from barbus.daemon.state_schema import SCHEMA_VERSION
from tests.factories import T0_MS, make_bar

REPO_ROOT = Path(__file__).resolve().parents[3]
ENGINE_CONFIG: dict[str, Any] = {
    "strategy": "sma_cross",
    "symbol": "BTCUSDT",
    "capital": 10_000.0,
    "params": {"fast": 5, "slow": 20},
    "fee_bps": 10.0,
    "slippage_bps": 5.0,
    "fill_at": "next_open",
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    opened = StateStore(tmp_path / "state.sqlite")
    yield opened
    opened.close()


def fill(side: Side, minute: int, price: float, size: float, reason: ExitReason) -> Fill:
    return Fill("sma", "BTCUSDT", side, T0_MS + minute * MINUTE_MS, price, size, 0.1 + 0.2, reason)


def update(
    snapshot: dict[str, Any],
    fills: list[Fill] | None = None,
    trades: list[Trade] | None = None,
    name: str = "sma",
) -> tuple[str, dict[str, Any], list[EngineEvent]]:
    """One engine's change in a bar: its name, its snapshot, the events it drained."""
    return name, snapshot, [*(fills or []), *(trades or [])]


def commit(
    store: StateStore,
    bar: Bar,
    source: str,
    live_from_ms: int,
    changes: list[tuple[str, dict[str, Any], list[EngineEvent]]],
) -> None:
    """``commit_bar`` with each change as the daemon makes it (snapshot beside its events)."""
    updates = [
        EngineUpdate(name, "sma_cross", "BTCUSDT", ENGINE_CONFIG, snapshot, bar.open_time_ms)
        for name, snapshot, _ in changes
    ]
    store.commit_bar(bar, source, live_from_ms, updates, [e for *_, ev in changes for e in ev])


def sqlite_rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(query).fetchall()


# -- schema ------------------------------------------------------------------------------------


def test_new_file_gets_the_current_schema_version_and_empty_tables(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "folder" / "state.sqlite"

    StateStore(path).close()

    assert sqlite_rows(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert SCHEMA_VERSION >= 1
    tables = {r[0] for r in sqlite_rows(path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"bars", "streams", "engines", "fills", "trades"} <= tables
    assert sqlite_rows(path, "PRAGMA journal_mode") == [("wal",)]


def test_reopening_keeps_the_data_and_the_version(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    first = StateStore(path)
    commit(first, make_bar(100.0), "warmup", T0_MS + MINUTE_MS, [update({"n": 1})])
    first.close()

    second = StateStore(path)
    try:
        assert [bar for bar, _ in second.bars("BTCUSDT")] == [make_bar(100.0)]
        assert second.engines()["sma"].snapshot == {"n": 1}
    finally:
        second.close()
    assert sqlite_rows(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]


def test_file_that_is_not_sqlite_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    path.write_bytes(b"this is a text file, not a database\n" * 200)

    with pytest.raises(DataError, match="not a usable barbus state database") as caught:
        StateStore(path)

    assert str(path) in str(caught.value)


def test_state_from_a_newer_barbus_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")

    with pytest.raises(ConfigError, match=f"schema {SCHEMA_VERSION + 1} is newer"):
        StateStore(path)


# -- one bar, one transaction ------------------------------------------------------------------


def test_commit_bar_round_trips_bars_streams_engines_fills_and_trades_exactly(
    store: StateStore,
) -> None:
    warm = make_bar(100.0, minute=0, high=100.5, low=99.25, volume=0.1 + 0.2)
    live = make_bar(101.0 + 1e-9, minute=1, open=100.0, volume=12.345678901234567)
    buy = fill(Side.BUY, 1, 100.05000000000001, 99.7 / 3, ExitReason.SIGNAL)
    sell = fill(Side.SELL, 2, 101.95, 99.7 / 3, ExitReason.TAKE_PROFIT)
    trade = Trade(
        "sma",
        "BTCUSDT",
        buy.time_ms,
        sell.time_ms,
        buy.price,
        sell.price,
        buy.size,
        buy.fee,
        sell.fee,
        profit=1 / 3,
        profit_pct=2 / 3,
        exit_reason=ExitReason.TAKE_PROFIT,
    )
    snapshot = {"strategy": {"sma": [1.5, None]}, "pending": 1, "trade_from_ms": live.open_time_ms}
    live_from = live.open_time_ms

    commit(store, warm, "warmup", live_from, [update({"pending": 0})])
    commit(store, live, "live", live_from, [update(snapshot, [buy, sell], [trade])])

    assert store.bars("BTCUSDT") == [(warm, "warmup"), (live, "live")]
    assert store.bars("ETHUSDT") == []
    [stream] = store.streams().values()
    assert (stream.symbol, stream.last_open_time_ms, stream.live_from_ms) == (
        "BTCUSDT",
        live.open_time_ms,
        live_from,
    )
    record = store.engines()["sma"]
    assert (record.strategy, record.symbol) == ("sma_cross", "BTCUSDT")
    assert record.config == ENGINE_CONFIG
    assert record.snapshot == snapshot
    assert record.last_open_time_ms == live.open_time_ms
    assert store.trades() == [trade]
    assert store.trades("sma") == [trade]
    assert store.trades("other") == []
    assert store.fill_count() == 2
    assert sqlite_rows(
        store.path,
        "SELECT engine, symbol, side, time_ms, price, size, fee, reason, bar_open_time_ms "
        "FROM fills ORDER BY id",
    ) == [
        ("sma", "BTCUSDT", "buy", buy.time_ms, buy.price, buy.size, buy.fee, "signal", live_from),
        ("sma", "BTCUSDT", "sell", sell.time_ms, sell.price, sell.size, sell.fee, "take_profit",
         live_from),
    ]  # fmt: skip


def test_several_engines_and_symbols_are_kept_apart(store: StateStore) -> None:
    btc = make_bar(100.0)
    eth = make_bar(5.0, symbol="ETHUSDT")

    commit(store, btc, "live", btc.open_time_ms, [update({"a": 1}), update({"b": 2}, name="b")])
    commit(store, eth, "warmup", eth.open_time_ms + MINUTE_MS, [update({"e": 3}, name="e")])

    assert set(store.streams()) == {"BTCUSDT", "ETHUSDT"}
    assert store.streams()["ETHUSDT"].live_from_ms == eth.open_time_ms + MINUTE_MS
    assert {name: r.snapshot for name, r in store.engines().items()} == {
        "sma": {"a": 1},
        "b": {"b": 2},
        "e": {"e": 3},
    }
    assert store.bars("ETHUSDT") == [(eth, "warmup")]


def test_same_bar_twice_raises_and_leaves_the_first_commit_untouched(store: StateStore) -> None:
    bar = make_bar(100.0)
    commit(store, bar, "live", bar.open_time_ms, [update({"n": 1})])
    buy = fill(Side.BUY, 0, 100.0, 1.0, ExitReason.SIGNAL)

    with pytest.raises(sqlite3.IntegrityError):
        commit(store, bar._replace(close=90.0), "live", 0, [update({"n": 2}, [buy])])

    assert store.bars("BTCUSDT") == [(bar, "live")]
    assert store.engines()["sma"].snapshot == {"n": 1}
    assert store.streams()["BTCUSDT"].live_from_ms == bar.open_time_ms
    assert store.fill_count() == 0


def test_failure_after_the_bar_was_written_rolls_the_whole_bar_back(store: StateStore) -> None:
    first = make_bar(100.0, minute=0)
    second = make_bar(101.0, minute=1)
    commit(store, first, "live", first.open_time_ms, [update({"n": 1})])
    buy = fill(Side.BUY, 1, 101.0, 1.0, ExitReason.SIGNAL)
    # The bar, the stream and the first engine are written before the second engine's snapshot
    # turns out not to be JSON: all of it must go.
    updates = [update({"n": 2}, [buy]), update({"bad": {1, 2}}, name="broken")]

    with pytest.raises(TypeError):
        commit(store, second, "live", first.open_time_ms, updates)

    assert store.bars("BTCUSDT") == [(first, "live")]
    assert store.streams()["BTCUSDT"].last_open_time_ms == first.open_time_ms
    assert set(store.engines()) == {"sma"}
    assert store.engines()["sma"].snapshot == {"n": 1}
    assert store.fill_count() == 0
    # ...and the store is still usable: the same bar commits cleanly afterwards.
    commit(store, second, "live", first.open_time_ms, [update({"n": 2}, [buy])])
    assert [bar for bar, _ in store.bars("BTCUSDT")] == [first, second]
    assert store.fill_count() == 1


def test_commit_time_is_measured(store: StateStore) -> None:
    commit(store, make_bar(100.0), "live", T0_MS, [update({"n": 1})])

    assert 0.0 < store.last_commit_seconds < 5.0


# -- crash-only: kill -9 in the middle of a stream of commits ----------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from barbus.daemon.core.events import Bar, ExitReason, Fill, Side, Trade
    from barbus.daemon.state import EngineUpdate, StateStore

    T0, MINUTE = {t0}, 60_000
    store = StateStore(Path(sys.argv[1]))
    stream = store.streams().get("BTCUSDT")
    n = 0 if stream is None else (stream.last_open_time_ms - T0) // MINUTE + 1
    pad = "x" * 4000  # big rows: the kill lands inside a write more often
    while True:
        t = T0 + n * MINUTE
        bar = Bar("BTCUSDT", "1m", t, 100.0, 101.0, 99.0, 100.0 + n, 1.0)
        fills = [Fill("sma", "BTCUSDT", Side.BUY if n % 2 == 0 else Side.SELL, t, 100.0 + n,
                      1.0, 0.1, ExitReason.SIGNAL)]
        trades = [] if n % 2 == 0 else [Trade("sma", "BTCUSDT", t - MINUTE, t, 99.0 + n,
                                              100.0 + n, 1.0, 0.1, 0.1, 0.8, 0.8,
                                              ExitReason.SIGNAL)]
        snapshot = {{"bars": n + 1, "last": t, "pad": pad}}
        updates = [EngineUpdate(name, "sma_cross", "BTCUSDT", {{"k": name}}, snapshot, t)
                   for name in ("sma", "other")]
        store.commit_bar(bar, "live", T0, updates, [*fills, *trades])
        print(n + 1, flush=True)
        n += 1
    """
).format(t0=T0_MS)


def run_writer_until_killed(path: Path, rng: random.Random) -> int:
    """Start the writer, SIGKILL it after a random number of acknowledged commits; return the
    highest acknowledged count."""
    target = rng.randint(50, 400)
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    acknowledged = 0
    try:
        assert child.stdout is not None
        for line in child.stdout:
            acknowledged = int(line)
            if acknowledged >= target:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    return acknowledged


def assert_consistent_prefix(path: Path, acknowledged: int) -> int:
    store = StateStore(path)
    try:
        bars = [bar for bar, _ in store.bars("BTCUSDT")]
        n = len(bars)
        assert n >= acknowledged  # every acknowledged commit survived the kill
        assert [b.open_time_ms for b in bars] == [T0_MS + i * MINUTE_MS for i in range(n)]
        assert [b.close for b in bars] == [100.0 + i for i in range(n)]
        last = bars[-1].open_time_ms
        assert store.streams()["BTCUSDT"].last_open_time_ms == last
        engines = store.engines()
        assert set(engines) == {"sma", "other"}
        for record in engines.values():
            assert record.last_open_time_ms == last
            assert (record.snapshot["bars"], record.snapshot["last"]) == (n, last)
        assert store.fill_count() == n
        fill_bars = sqlite_rows(path, "SELECT bar_open_time_ms FROM fills ORDER BY id")
        assert [r[0] for r in fill_bars] == [b.open_time_ms for b in bars]
        trades = store.trades()
        assert [t.exit_time_ms for t in trades] == [
            b.open_time_ms for i, b in enumerate(bars) if i % 2 == 1
        ]
        return n
    finally:
        store.close()


@pytest.mark.process
def test_kill_9_during_commits_leaves_a_consistent_prefix_every_time(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    rng = random.Random(20250520)
    recorded = 0

    for _ in range(3):
        acknowledged = run_writer_until_killed(path, rng)
        recorded = assert_consistent_prefix(path, acknowledged)

    assert recorded >= 150  # three runs resumed from each other's last committed bar


def test_snapshot_json_is_stored_as_text_that_parses_back(store: StateStore) -> None:
    snapshot = {"nested": {"list": [1, 2.5, None, "x"]}, "inf": float("inf")}

    commit(store, make_bar(100.0), "live", T0_MS, [update(snapshot)])

    [(text,)] = sqlite_rows(store.path, "SELECT snapshot FROM engines")
    assert json.loads(text) == snapshot
    assert store.engines()["sma"].snapshot == snapshot
