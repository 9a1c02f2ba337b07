"""A state file written by the previous release (long-only engine, schema 2) opens with this
daemon, is upgraded in place, continues on more bars, and still passes ``barbus parity``."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

from barbus.daemon.core.tradelog import trade_row
from barbus.daemon.state import StateStore
from barbus.daemon.state_schema import SCHEMA_VERSION
from tests.conftest import BTC_2025
from tests.kit.probes import all_bars_processed
from tests.kit.processes import REPO_ROOT, Processes, barbus
from tests.kit.scenario import Engine, write_config, write_slice
from tests.kit.waiting import wait_until
from tests.net import free_port

OLD_STATE = REPO_ROOT / "tests" / "data" / "previous_release_state.sqlite"
OLD_BARS = 1_200  # what the previous release recorded: the first 1,200 minutes of BTC_2025
MORE = 300
# The strategies the previous release ran (tests/data/README.md says how the file was made).
OLD_ENGINES = (
    Engine("sma-1m", "sma_cross"),
    Engine(
        "sma-15m-sl",
        "sma_cross",
        {"timeframe": "15m", "fast": 3, "slow": 8, "stop_loss_pct": 0.3},
    ),
    Engine("random-7", "random", {"seed": 7}),
)


def _rows(path: Path) -> tuple[int, dict[str, list[tuple[object, ...]]]]:
    with closing(sqlite3.connect(path)) as db:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        rows = db.execute(
            "SELECT engine, symbol, entry_time_ms, exit_time_ms, entry_price, exit_price, size, "
            "entry_fee, exit_fee, profit, profit_pct, exit_reason FROM trades ORDER BY id"
        ).fetchall()
    by_engine: dict[str, list[tuple[object, ...]]] = {}
    for row in rows:
        by_engine.setdefault(str(row[0]), []).append(row)
    return version, by_engine


def test_previous_release_state_upgrades_continues_and_passes_parity(
    tmp_path: Path, processes: Processes
) -> None:
    state = tmp_path / "state.sqlite"
    shutil.copyfile(OLD_STATE, state)
    old_version, old_trades = _rows(state)
    assert old_version == 2  # the previous release's schema
    assert {name for name in old_trades} == {"sma-1m", "sma-15m-sl", "random-7"}
    # Read as it is (no upgrade: parity opens read-only), the old record already replays
    # identically through this release's kernel.
    _assert_parity(state)
    assert _rows(state)[0] == 2
    series = write_slice(BTC_2025, 0, OLD_BARS + MORE, tmp_path / "data")
    _, sim_port = processes.sim(Path(series.source), history=OLD_BARS)
    http_port = free_port()
    config = write_config(
        tmp_path / "barbus.toml",
        sim_port=sim_port,
        http_port=http_port,
        state=state,
        engines=OLD_ENGINES,
    )
    daemon = processes.daemon(config)
    wait_until(all_bars_processed(http_port, series, total=False), 90, "every bar", watch=daemon)
    log = daemon.stop_cleanly()
    assert "resumed " in log, log[-3000:]
    assert "restored strategy=sma-15m-sl" in log, log[-3000:]

    version, new_trades = _rows(state)
    assert version == SCHEMA_VERSION == 3
    store = StateStore(state, read_only=True)
    try:
        assert len(store.bars("BTCUSDT")) == OLD_BARS + MORE
        for name, rows in old_trades.items():
            # The old rows stay exactly as they were, read back as longs; trading went on.
            assert new_trades[name][: len(rows)] == rows
            assert all(t.direction == "long" for t in store.trades(name))
            assert all(trade_row(t)[-1] == "long" for t in store.trades(name)[: len(rows)])
        assert sum(map(len, new_trades.values())) > sum(map(len, old_trades.values()))
        snapshots = {name: r.snapshot for name, r in store.engines().items()}
        assert {s["version"] for s in snapshots.values()} == {2}
    finally:
        store.close()
    _assert_parity(state)


def _assert_parity(state: Path) -> None:
    done = barbus("parity", "--state", state)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert sorted(line.split(":")[0] for line in lines) == sorted(e.name for e in OLD_ENGINES)
    assert all(line.endswith(": identical") for line in lines), done.stdout
