"""The daemon with orders: a limit entry with a bracket, shorts on an account that allows them,
and one account shared by strategies on BTCUSDT and ETHUSDT, as real processes against the sim.

One clean run and one run killed with SIGKILL mid-stream and restarted, on the same bars: both
pass ``barbus parity``, and the killed run recorded exactly what the clean one did. A short on an
account without ``allow_short`` halts that strategy alone. The fills are checked by hand against
the recorded bars and the fill rules (not against the engine's own arithmetic).
"""

from __future__ import annotations

import json
import signal
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from barbus.daemon.core.events import Bar, format_time_ms, parse_utc_ms
from barbus.daemon.core.series import BarSeries
from tests.conftest import BTC_2025
from tests.kit.probes import get_status, http_get, metric_samples, sample
from tests.kit.processes import REPO_ROOT, Processes, barbus
from tests.kit.scenario import FAULTS, HISTORY, Engine, write_config, write_slice
from tests.kit.waiting import wait_until
from tests.net import free_port

ETH_2025 = REPO_ROOT / "replay" / "data" / "ETHUSDT_1m_2025-05-20_2025-08-18.csv.gz"
FILE = REPO_ROOT / "tests" / "integration" / "order_strategies.py"
START, ROWS = 20_000, 2_500
ACCOUNTS = (
    '[[account]]\nname = "pool"\ncash = 10000\n\n[[account]]\nname = "solo"\ncash = 10000\n\n'
)
ENGINES = (
    Engine("dip-btc", f"{FILE}:DipBuyer", symbol="BTCUSDT", account="pool"),
    Engine("turns-eth", f"{FILE}:Turns", symbol="ETHUSDT", account="pool"),
    Engine("flip-short", f"{FILE}:Flipper", symbol="BTCUSDT", allow_short=True),
    Engine("flip-noshort", f"{FILE}:Flipper", symbol="ETHUSDT", account="solo"),
    # Fails on the bar whose open filled its buy: that fill moved the pool and must be kept.
    Engine(
        "fails-eth",
        f"{FILE}:FailsAfterFill",
        {"at": HISTORY + 400},  # after the warm-up (whose orders are ignored)
        symbol="ETHUSDT",
        account="pool",
    ),
)
NAMES = sorted(e.name for e in ENGINES)
FAILING = ("flip-noshort", "fails-eth")


@dataclass
class Run:
    state: Path
    log: str
    statuses: list[dict[str, Any]]
    final_status: dict[str, Any]
    final_metrics: str


@dataclass
class Runs:
    btc: BarSeries
    eth: BarSeries
    clean: Run
    killed: Run


def _run(folder: Path, procs: Processes, data: list[Path], btc: BarSeries, kill: bool) -> Run:
    # The killed run also goes through the sim's faults: drops, garbage, duplicates, reorders.
    sim, sim_port = procs.sim(data, *(FAULTS if kill else ()), exit_at_end=False)
    http_port = free_port()
    state = folder / "state.sqlite"
    config = write_config(
        folder / "barbus.toml",
        sim_port=sim_port,
        http_port=http_port,
        state=state,
        engines=ENGINES,
        symbols=("BTCUSDT", "ETHUSDT"),
        accounts=ACCOUNTS,
    )
    daemon = procs.daemon(config)
    log = ""
    if kill:
        wait_until(
            lambda: (
                (s := get_status(http_port)) is not None
                and s["bars_processed"] > 2 * HISTORY + 1200
            ),
            90,
            "live bars flowing",
            watch=daemon,
        )
        daemon.signal(signal.SIGKILL)
        daemon.wait(timeout=10)
        log = daemon.log()
        daemon = procs.daemon(config)
    statuses: list[dict[str, Any]] = []
    last = format_time_ms(int(btc.open_time_ms[-1]))

    def done() -> dict[str, Any] | None:  # every running strategy saw the last minute
        status = get_status(http_port)
        running = [] if status is None else [s for s in status["strategies"] if not s["halted"]]
        return status if running and all(s["last_bar"] == last for s in running) else None

    def done_and_recorded() -> dict[str, Any] | None:  # every /status on the way is kept
        final = done()
        if final is None and (status := get_status(http_port)) is not None:
            statuses.append(status)
        return final

    final = wait_until(done_and_recorded, 120, "the daemon to process every bar", watch=daemon)
    metrics = http_get(http_port, "/metrics")
    assert metrics is not None
    log += daemon.stop_cleanly()
    sim.stop()
    return Run(state, log, statuses, final, metrics[1])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    data = tmp_path_factory.mktemp("orders-data")
    btc = write_slice(BTC_2025, START, ROWS, data)
    eth = write_slice(ETH_2025, START, ROWS, data, symbol="ETHUSDT")
    assert list(btc.open_time_ms) == list(eth.open_time_ms)
    files = [Path(btc.source), Path(eth.source)]
    procs = Processes(tmp_path_factory.mktemp("orders-procs"))
    try:
        clean = _run(tmp_path_factory.mktemp("orders-clean"), procs, files, btc, kill=False)
        killed = _run(tmp_path_factory.mktemp("orders-killed"), procs, files, btc, kill=True)
        yield Runs(btc, eth, clean, killed)
    finally:
        procs.close()


def _rows(state: Path, query: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(state)) as db:
        return db.execute(query).fetchall()


def _bars(state: Path, symbol: str) -> dict[int, Bar]:
    rows = _rows(
        state,
        "SELECT open_time_ms, open, high, low, close, volume FROM bars WHERE symbol = "
        f"'{symbol}' ORDER BY open_time_ms",
    )
    return {r[0]: Bar(symbol, "1m", *r) for r in rows}


# -- parity and crash safety ---------------------------------------------------------------------


@pytest.mark.parametrize("which", ["clean", "killed"])
def test_parity_passes_for_every_strategy(runs: Runs, which: str) -> None:
    run: Run = getattr(runs, which)
    done = barbus("parity", "--state", run.state)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert sorted(line.split(":")[0] for line in lines) == NAMES
    assert all(line.endswith(": identical") for line in lines), done.stdout


def test_the_killed_run_recorded_exactly_what_the_clean_run_did(runs: Runs) -> None:
    assert "resumed " in runs.killed.log
    # Halted before the kill, on an account of the config (not caught up alone): it stays so.
    assert "strategy flip-noshort stays halted: StrategyError: " in runs.killed.log
    [status] = [s for s in runs.killed.final_status["strategies"] if s["name"] == "flip-noshort"]
    assert "does not allow shorts" in status["halted"]
    for table, order in (
        ("trades", "id"),
        ("fills", "id"),
        ("order_events", "id"),
        ("bars", "symbol, open_time_ms"),
    ):
        query = f"SELECT * FROM {table} ORDER BY {order}"
        clean = [r[1:] if table != "bars" else r for r in _rows(runs.clean.state, query)]
        killed = [r[1:] if table != "bars" else r for r in _rows(runs.killed.state, query)]
        assert killed == clean, table
    assert _rows(runs.killed.state, "SELECT snapshot FROM accounts") == _rows(
        runs.clean.state, "SELECT snapshot FROM accounts"
    )


# -- what was traded, checked by hand ------------------------------------------------------------


def test_limit_entries_fill_by_the_rule_and_brackets_exit_them(runs: Runs) -> None:
    state = runs.clean.state
    bars = _bars(state, "BTCUSDT")
    placed = {
        r[0]: (r[1], r[2])
        for r in _rows(
            state,
            "SELECT order_id, time_ms, price FROM order_events "
            "WHERE engine = 'dip-btc' AND event = 'placed'",
        )
    }
    fills = _rows(
        state,
        "SELECT order_id, time_ms, price, reason FROM fills WHERE engine = 'dip-btc' ORDER BY id",
    )
    entries = [f for f in fills if f[3] == "limit"]
    assert len(entries) >= 5
    for order_id, time_ms, price, _ in entries:
        placed_ms, level = placed[order_id]
        bar = bars[time_ms]
        # Placed at a decision bar's close; fills on the first later minute whose low <= level,
        # at min(open, level), as a maker (no slippage).
        assert bar.low <= level
        assert price == min(bar.open, level)
        waited = [b for t, b in bars.items() if placed_ms <= t < time_ms]
        assert all(b.low > level for b in waited)
    exits = {f[3] for f in fills if f[3] != "limit"}
    assert exits <= {"take_profit", "stop_loss"}
    assert exits  # the bracket closed the entries
    expired = _rows(
        state, "SELECT count(*) FROM order_events WHERE engine = 'dip-btc' AND event = 'expired'"
    )
    assert expired[0][0] >= 1  # good_for_bars ran out on some


def test_stop_entries_trigger_by_the_rule_on_the_other_symbol(runs: Runs) -> None:
    state = runs.clean.state
    bars = _bars(state, "ETHUSDT")
    placed = {
        r[0]: (r[1], r[2])
        for r in _rows(
            state,
            "SELECT order_id, time_ms, price FROM order_events "
            "WHERE engine = 'turns-eth' AND event = 'placed' AND type = 'stop'",
        )
    }
    entries = _rows(
        state,
        "SELECT order_id, time_ms, price, fee, size FROM fills "
        "WHERE engine = 'turns-eth' AND reason = 'stop'",
    )
    assert len(entries) >= 5
    for order_id, time_ms, price, fee, size in entries:
        placed_ms, level = placed[order_id]
        bar = bars[time_ms]
        # Triggers on the first later minute whose high >= the stop, fills at max(open, stop)
        # plus 5 bps slippage, as a taker (10 bps fee).
        assert bar.high >= level
        assert price == pytest.approx(max(bar.open, level) * 1.0005, rel=1e-12)
        assert fee == pytest.approx(price * size * 0.001, rel=1e-12)
        assert all(b.high < level for t, b in bars.items() if placed_ms <= t < time_ms)


def test_shorts_are_recorded_with_their_direction(runs: Runs) -> None:
    directions = dict(
        _rows(
            runs.clean.state,
            "SELECT direction, count(*) FROM trades WHERE engine = 'flip-short' GROUP BY direction",
        )
    )
    assert directions.get("short", 0) >= 5
    assert directions.get("long", 0) >= 5
    # A short's profit is (entry - exit) x size minus fees, by hand.
    for entry, exit_, size, entry_fee, exit_fee, profit in _rows(
        runs.clean.state,
        "SELECT entry_price, exit_price, size, entry_fee, exit_fee, profit FROM trades "
        "WHERE engine = 'flip-short' AND direction = 'short'",
    ):
        assert profit == pytest.approx((entry - exit_) * size - entry_fee - exit_fee, rel=1e-9)


def test_the_shared_account_books_both_symbols_fills(runs: Runs) -> None:
    state = runs.clean.state
    cash = 10_000.0
    for side, price, size, fee in _rows(
        state,
        "SELECT side, price, size, fee FROM fills "
        "WHERE engine IN ('dip-btc', 'turns-eth', 'fails-eth') "
        "ORDER BY id",
    ):
        cash += -(price * size + fee) if side == "buy" else price * size - fee
    [(snapshot,)] = _rows(state, "SELECT snapshot FROM accounts WHERE name = 'pool'")
    recorded = json.loads(snapshot)
    assert recorded["cash"] == pytest.approx(cash, rel=1e-12)
    assert recorded["holders"] == ["dip-btc", "turns-eth", "fails-eth"]
    symbols = dict(
        _rows(state, "SELECT engine, count(DISTINCT symbol) FROM trades GROUP BY engine")
    )
    assert symbols["dip-btc"] == symbols["turns-eth"] == 1
    traded = {
        r[0]
        for r in _rows(
            state, "SELECT DISTINCT symbol FROM fills WHERE engine IN ('dip-btc', 'turns-eth')"
        )
    }
    assert traded == {"BTCUSDT", "ETHUSDT"}


def test_an_order_the_shared_cash_cannot_pay_is_reduced_to_the_free_cash(runs: Runs) -> None:
    state = runs.clean.state
    reduced = set(
        _rows(
            state,
            "SELECT engine, order_id FROM order_events WHERE event = 'reduced' "
            "AND engine IN ('dip-btc', 'turns-eth')",
        )
    )
    assert len(reduced) >= 3
    cash, seen = 10_000.0, 0
    for engine, order_id, side, price, size, fee in _rows(
        state,
        "SELECT engine, order_id, side, price, size, fee FROM fills "
        "WHERE engine IN ('dip-btc', 'turns-eth', 'fails-eth') ORDER BY id",
    ):
        cost = price * size + fee
        if (engine, order_id) in reduced:
            # Long only: the free cash is the account's cash; the fill spends all of it.
            assert side == "buy"
            assert cash * (1 - 1e-12) <= cost <= cash * (1 + 1e-12)
            seen += 1
        cash += -cost if side == "buy" else price * size - fee
    assert seen == len(reduced)


def test_a_short_without_allow_short_halts_that_strategy_alone(runs: Runs) -> None:
    run = runs.clean
    lines = [line for line in run.log.splitlines() if "does not allow shorts" in line]
    assert len(lines) == 1, lines
    assert "flip-noshort" in lines[0]
    assert "ERROR" in lines[0]
    by_name = {s["name"]: s for s in run.final_status["strategies"]}
    assert "does not allow shorts" in by_name["flip-noshort"]["halted"]
    assert all(by_name[n]["halted"] is None for n in NAMES if n not in FAILING)
    halted_at = by_name["flip-noshort"]["halted"].split(" bar at ")[1].split(",")[0]
    halt_ms = parse_utc_ms(halted_at.split(" ")[0])
    later = _rows(
        run.state,
        f"SELECT DISTINCT engine FROM trades WHERE exit_time_ms > {halt_ms}",
    )
    assert {r[0] for r in later} == {"dip-btc", "turns-eth", "flip-short"}
    metrics = metric_samples(run.final_metrics)
    assert sample(metrics, "barbus_strategy_halted", strategy="flip-noshort") == 1
    assert sample(metrics, "barbus_strategy_halted", strategy="flip-short") == 0


# -- /status and metrics -----------------------------------------------------------------------


def test_status_shows_accounts_open_orders_and_signed_positions(runs: Runs) -> None:
    run = runs.clean
    shorts = [
        s
        for status in run.statuses
        for s in status["strategies"]
        if s["name"] == "flip-short" and s["position"] < 0
    ]
    assert shorts, "never saw the short"
    assert all(s["open_position"]["direction"] == "short" for s in shorts)
    assert all(s["open_position"]["size"] == s["position"] for s in shorts)
    working = [
        s
        for status in run.statuses
        for s in status["strategies"]
        if s["name"] == "dip-btc" and s["open_orders_count"]
    ]
    assert working, "never saw the resting limit"
    for s in working:
        [order] = s["open_orders"]
        assert (order["side"], order["type"], order["tag"]) == ("buy", "limit", "dip")
        assert order["take_profit_pct"] == 0.3
    final = run.final_status
    accounts = {a["name"]: a for a in final["accounts"]}
    assert set(accounts) == {"pool", "solo", "flip-short"}
    pool = accounts["pool"]
    assert pool["shared"] is True
    assert pool["strategies"] == ["dip-btc", "turns-eth", "fails-eth"]
    [(snapshot,)] = _rows(run.state, "SELECT snapshot FROM accounts WHERE name = 'pool'")
    assert pool["cash"] == json.loads(snapshot)["cash"]
    by_name = {s["name"]: s for s in final["strategies"]}
    closes = {"BTCUSDT": float(runs.btc.close[-1]), "ETHUSDT": float(runs.eth.close[-1])}
    positions = sum(
        by_name[n]["position"] * closes[by_name[n]["symbol"]] for n in pool["strategies"]
    )
    assert pool["equity"] == pytest.approx(pool["cash"] + positions, rel=1e-12)
    assert by_name["dip-btc"]["account"] == "pool"
    assert by_name["dip-btc"]["cash"] == pool["cash"]

    metrics = metric_samples(run.final_metrics)
    assert sample(metrics, "barbus_account_cash_quote", account="pool") == pool["cash"]
    assert sample(metrics, "barbus_account_equity_quote", account="pool") == pool["equity"]
    for name in NAMES:
        s = by_name[name]
        assert sample(metrics, "barbus_position_units", strategy=name) == s["position"]
        assert sample(metrics, "barbus_open_orders", strategy=name) == s["open_orders_count"]
    for gauge in ("barbus_account_cash_quote", "barbus_account_equity_quote", "barbus_open_orders"):
        assert f"# HELP {gauge} " in run.final_metrics


# -- a shared account's strategies run together ------------------------------------------------


def _refused(tmp_path: Path, runs: Runs, engines: tuple[Engine, ...], accounts: str) -> str:
    """``barbus run`` on a copy of the clean run's state with another config: must refuse
    before it connects anywhere (the feed points at a closed port) with exit 2 and one line."""
    state = tmp_path / "state.sqlite"
    state.write_bytes(runs.clean.state.read_bytes())
    config = write_config(
        tmp_path / "barbus.toml",
        sim_port=free_port(),
        http_port=free_port(),
        state=state,
        engines=engines,
        symbols=("BTCUSDT", "ETHUSDT"),
        accounts=accounts,
    )
    done = barbus("run", "--config", config, timeout=60)
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line or "error" in line]
    assert len(errors) == 1, done.stderr[-2000:]
    return errors[0]


def test_a_shared_account_without_one_of_its_strategies_is_refused(
    tmp_path: Path, runs: Runs
) -> None:
    line = _refused(tmp_path, runs, tuple(e for e in ENGINES if e.name != "turns-eth"), ACCOUNTS)
    assert "account 'pool' is shared by strategies turns-eth" in line


def test_reordering_a_shared_accounts_strategies_is_refused(tmp_path: Path, runs: Runs) -> None:
    line = _refused(tmp_path, runs, (ENGINES[1], ENGINES[0], *ENGINES[2:]), ACCOUNTS)
    assert "order dip-btc, turns-eth" in line
    assert "turns-eth, dip-btc" in line


def test_changing_a_shared_accounts_cash_is_refused(tmp_path: Path, runs: Runs) -> None:
    line = _refused(tmp_path, runs, ENGINES, ACCOUNTS.replace("10000", "20000"))
    assert "account 'pool' was saved with cash 10000.0" in line
    assert "now configured with cash 20000.0" in line


def test_a_shared_account_left_behind_is_not_caught_up_alone(tmp_path: Path, runs: Runs) -> None:
    # As if the account had been out of the config for one more minute than the others ran.
    state = tmp_path / "behind.sqlite"
    state.write_bytes(runs.clean.state.read_bytes())
    with closing(sqlite3.connect(state)) as db:
        (last,) = db.execute(
            "SELECT max(open_time_ms) FROM bars WHERE symbol = 'ETHUSDT'"
        ).fetchone()
        db.execute(
            "INSERT INTO bars SELECT symbol, open_time_ms + 60000, open, high, low, close, "
            "volume, source FROM bars WHERE symbol = 'ETHUSDT' AND open_time_ms = ?",
            (last,),
        )
        db.execute(
            "UPDATE streams SET last_open_time_ms = ? WHERE symbol = 'ETHUSDT'", (last + 60_000,)
        )
        db.execute(
            "UPDATE engines SET last_open_time_ms = ? WHERE name = 'flip-noshort'", (last + 60_000,)
        )
        db.commit()
    config = write_config(
        tmp_path / "barbus.toml",
        sim_port=free_port(),
        http_port=free_port(),
        state=state,
        engines=ENGINES,
        symbols=("BTCUSDT", "ETHUSDT"),
        accounts=ACCOUNTS,
    )
    done = barbus("run", "--config", config, timeout=60)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "strategy 'turns-eth' last ran on the ETHUSDT bar at" in done.stderr
    assert "cannot be caught up alone" in done.stderr


@pytest.mark.parametrize(
    ("tamper", "who", "what"),
    [
        (
            "UPDATE trades SET direction = 'long' WHERE id = (SELECT min(id) FROM trades "
            "WHERE engine = 'flip-short' AND direction = 'short')",
            ["flip-short"],
            ",long != replay ",
        ),
        (
            "UPDATE accounts SET snapshot = json_set(snapshot, '$.cash', "
            "json_extract(snapshot, '$.cash') + 0.01) WHERE name = 'pool'",
            ["dip-btc", "fails-eth", "turns-eth"],
            "final equity: daemon ",
        ),
    ],
    ids=["a-short-recorded-as-long", "the-shared-cash-off-by-a-cent"],
)
def test_parity_sees_a_direction_or_a_shared_account_that_differs(
    tmp_path: Path, runs: Runs, tamper: str, who: list[str], what: str
) -> None:
    state = tmp_path / "state.sqlite"
    state.write_bytes(runs.clean.state.read_bytes())
    with closing(sqlite3.connect(state)) as db:
        db.execute(tamper)
        db.commit()
    done = barbus("parity", "--state", state)
    assert done.returncode == 1, done.stdout + done.stderr
    differing = sorted(
        line.split(":")[0] for line in done.stdout.splitlines() if not line.endswith("identical")
    )
    assert differing == who, done.stdout
    assert what in done.stdout, done.stdout


def test_export_names_a_shared_accounts_strategies_and_an_own_accounts_shorts(
    tmp_path: Path, runs: Runs
) -> None:
    done = barbus("parity", "--state", runs.clean.state, "--export", tmp_path / "export")
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == [
        "BTCUSDT_1m_recorded.csv",
        "ETHUSDT_1m_recorded.csv",
    ]
    lines = [line.strip() for line in done.stdout.splitlines()]
    [short] = [line for line in lines if "--name flip-short" in line]
    assert "--allow-short" in short.split()
    for name, account in (("dip-btc", "pool"), ("turns-eth", "pool"), ("flip-noshort", "solo")):
        assert f"# {name} trades through the shared account {account}: " in done.stdout


def test_the_shared_account_example_trades_on_the_sim_with_parity(
    tmp_path: Path, processes: Processes
) -> None:
    """examples/shared_account.toml as shipped (maker and taker fees, a shorting account of
    three strategies on two symbols), pointed at a local sim and a temporary state."""
    data = tmp_path / "data"
    btc = write_slice(BTC_2025, START, 6_000, data)
    eth = write_slice(ETH_2025, START, 6_000, data, symbol="ETHUSDT")
    files = [Path(btc.source), Path(eth.source)]
    _, sim_port = processes.sim(files, history=1_500, speed=400)
    http_port = free_port()
    text = (REPO_ROOT / "examples" / "shared_account.toml").read_text(encoding="utf-8")
    for old, new in (
        ("127.0.0.1:8765", f"127.0.0.1:{sim_port}"),
        ("port = 8080", f"port = {http_port}"),
        ('"../out/barbus-shared-account.sqlite"', json.dumps(str(tmp_path / "state.sqlite"))),
        ('"strategies/', f'"{REPO_ROOT}/examples/strategies/'),
    ):
        assert old in text
        text = text.replace(old, new)
    config = tmp_path / "shared_account.toml"
    config.write_text(text, encoding="utf-8")
    daemon = processes.daemon(config)
    last = format_time_ms(int(btc.open_time_ms[-1]))

    def done() -> dict[str, Any] | None:
        status = get_status(http_port)
        ok = status is not None and all(s["last_bar"] == last for s in status["strategies"])
        return status if ok else None

    status = wait_until(done, 120, "every bar", watch=daemon)
    daemon.stop_cleanly()
    assert [a["strategies"] for a in status["accounts"]] == [["dip-btc", "ema-eth", "sma-eth"]]
    fills = dict(_rows(tmp_path / "state.sqlite", "SELECT engine, count(*) FROM fills GROUP BY 1"))
    assert set(fills) == {"dip-btc", "ema-eth", "sma-eth"}, fills
    assert sum(fills.values()) >= 8, fills
    checked = barbus("parity", "--state", tmp_path / "state.sqlite")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = checked.stdout.splitlines()
    assert sorted(line.split(":")[0] for line in lines) == ["dip-btc", "ema-eth", "sma-eth"]
    assert all(line.endswith(": identical") for line in lines), checked.stdout


def test_a_strategy_that_fails_after_a_fill_keeps_that_fill(runs: Runs) -> None:
    # Its buy filled at the open of the bar it then failed on: the fill moved the shared cash,
    # so it is recorded (and parity, above, replays the same); the strategy stays halted.
    for run in (runs.clean, runs.killed):
        [fill] = _rows(run.state, "SELECT side FROM fills WHERE engine = 'fails-eth'")
        assert fill == ("buy",)
        [status] = [s for s in run.final_status["strategies"] if s["name"] == "fails-eth"]
        assert "planned failure on the bar that filled its buy" in status["halted"]
        assert status["position"] > 0.0
