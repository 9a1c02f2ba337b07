"""What a daemon left behind, and the replay it must equal: its state file, trade rows, parity."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.events import Bar
from barbus.daemon.core.series import BarSeries
from barbus.daemon.core.tradelog import trade_row
from barbus.daemon.state import StateStore
from barbus.replay.runner import ReplayConfig, run_replay
from tests.factories import bars_of
from tests.kit.processes import barbus
from tests.kit.scenario import ENGINE_NAMES, HISTORY, Engine


def replayed_rows(series: BarSeries, engine: Engine, trade_from_ms: int) -> list[list[str]]:
    """The trade rows ``barbus replay`` gives for ``engine`` on ``series`` (not the daemon's)."""
    result = run_replay(
        ReplayConfig(
            strategy=engine.strategy,
            params=engine.params,
            symbol="BTCUSDT",
            execution=ExecutionConfig(starting_cash=10_000.0),
            trade_from_ms=trade_from_ms,
            close_at_end=False,
            name=engine.name,
        ),
        series=series,
    )
    return [trade_row(t) for t in result.trades]


@dataclass(frozen=True)
class Recorded:
    """What a daemon left in its state file."""

    trades: dict[str, list[list[str]]]
    trade_from_ms: dict[str, int]
    bars: list[tuple[Bar, str]]
    fills: list[tuple[Any, ...]]
    snapshots: dict[str, dict[str, Any]]


def read_state(path: Path) -> Recorded:
    with closing(sqlite3.connect(path)) as db:
        fills = db.execute(
            "SELECT engine, symbol, side, time_ms, price, size, fee, reason, bar_open_time_ms "
            "FROM fills ORDER BY id"
        ).fetchall()
    store = StateStore(path)
    try:
        engines = store.engines()
        return Recorded(
            trades={name: [trade_row(t) for t in store.trades(name)] for name in engines},
            trade_from_ms={name: int(r.snapshot["trade_from_ms"]) for name, r in engines.items()},
            bars=store.bars("BTCUSDT"),
            fills=fills,
            snapshots={name: r.snapshot for name, r in engines.items()},
        )
    finally:
        store.close()


def assert_bars_are_the_slice(recorded: Recorded, series: BarSeries) -> None:
    expected = bars_of(series)
    assert [bar for bar, _ in recorded.bars] == expected
    sources = [source for _, source in recorded.bars]
    assert sources == ["warmup"] * HISTORY + ["live"] * (len(expected) - HISTORY)


def assert_parity_cli_identical(state: Path) -> None:
    done = barbus("parity", "--state", str(state))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert sorted(line.split(":")[0] for line in lines) == sorted(ENGINE_NAMES)
    assert all(line.endswith(": identical") for line in lines), done.stdout
