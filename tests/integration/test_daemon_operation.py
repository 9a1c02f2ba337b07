"""The daemon in operation, as real processes against the sim exchange: the trades it made
(``barbus trades``, ``/trades``), its open positions in ``/status``, what a restart says it
resumed and backfilled, and a strategy that leaves the config and comes back.

One module fixture runs three daemons in turn on one sim clock: both strategies, then
``sma-1m`` alone, then both again (``random-7`` returns after missing the second run's bars).
Everything is checked against the slice's own bars and hand arithmetic on the recorded fills.
"""

from __future__ import annotations

import csv
import io
import json
import shlex
import shutil
import sqlite3
import subprocess
import urllib.parse
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from barbus.daemon.core.events import MINUTE_MS, format_time_ms
from barbus.daemon.core.series import BarSeries
from tests.conftest import BTC_2025
from tests.integration.test_damaged_state import in_private_mounts, needs_mounts
from tests.kit.probes import all_bars_processed, get_status, http_get
from tests.kit.processes import Processes, barbus
from tests.kit.recorded import assert_bars_are_the_slice, read_state, replayed_rows
from tests.kit.scenario import ENGINES, HISTORY, ROWS, write_config, write_slice
from tests.kit.waiting import wait_until
from tests.net import free_port

SMA, RANDOM = ENGINES[0], ENGINES[3]
BOTH = (SMA, RANDOM)
SPEED = 100.0  # bars/s: 25 s of live bars, time for three daemons to start on one clock
FEE = 10 / 10_000  # the kit's configs use the default fee_bps 10 and slippage_bps 5
SLIP = 5 / 10_000


@dataclass(frozen=True)
class Stopped:
    """What one daemon run left: its log and the state's facts right after it stopped."""

    log: str
    last_bar_ms: int  # the stream's last bar
    engine_last_ms: dict[str, int]
    positions: dict[str, dict[str, Any]]
    trades: dict[str, int]


@dataclass
class Runs:
    series: BarSeries
    state: Path
    http_port: int
    runs: list[Stopped]
    open_status: dict[str, Any]  # a /status with an open position, taken while streaming
    open_fills: list[tuple[Any, ...]]  # the fills table read right after it
    open_trades: list[tuple[Any, ...]]
    final_status: dict[str, Any]
    cli: dict[str, subprocess.CompletedProcess[str]]  # barbus trades while the daemon ran
    http: dict[str, tuple[int, str] | None]  # /trades answers while the daemon ran
    state_after_second: Path  # a copy of the state as the second run left it


def _position(snapshot: dict[str, Any]) -> dict[str, Any]:
    """An engine snapshot's position with its account's cash (version 2: cash beside it)."""
    return {**snapshot["position"], "cash": snapshot["cash"]}


def _facts(state: Path, log: str) -> Stopped:
    with closing(sqlite3.connect(f"file:{state}?mode=ro", uri=True)) as db:
        last = db.execute("SELECT last_open_time_ms FROM streams").fetchone()[0]
        engines = db.execute("SELECT name, last_open_time_ms, snapshot FROM engines").fetchall()
        trades = dict(db.execute("SELECT engine, count(*) FROM trades GROUP BY engine"))
    return Stopped(
        log=log,
        last_bar_ms=last,
        engine_last_ms={name: ms for name, ms, _ in engines},
        positions={name: _position(json.loads(snap)) for name, _, snap in engines},
        trades={name: trades.get(name, 0) for name, _, _ in engines},
    )


def _fills_and_trades(state: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with closing(sqlite3.connect(f"file:{state}?mode=ro", uri=True)) as db:
        fills = db.execute(
            "SELECT engine, side, time_ms, price, size, fee FROM fills ORDER BY id"
        ).fetchall()
        trades = db.execute(
            "SELECT engine, exit_time_ms, profit FROM trades ORDER BY id"
        ).fetchall()
    return fills, trades


def _stop(daemon: Any) -> str:
    log: str = daemon.stop_cleanly(timeout=20)
    return log


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    folder = tmp_path_factory.mktemp("operation")
    series = write_slice(BTC_2025, 20_000, ROWS, folder / "data")
    procs = Processes(folder / "processes")
    try:
        _, sim_port = procs.sim(Path(series.source), speed=SPEED, exit_at_end=False)
        http_port = free_port()
        state = folder / "state.sqlite"
        config = folder / "barbus.toml"

        def configure(engines: tuple[Any, ...]) -> Path:
            return write_config(
                config, sim_port=sim_port, http_port=http_port, state=state, engines=engines
            )

        stopped: list[Stopped] = []
        # 1: both strategies, until random-7 has closed a trade.
        daemon = procs.daemon(configure(BOTH))

        def traded() -> bool:
            status = get_status(http_port)
            return (
                status is not None
                and status["bars_processed"] >= HISTORY + 300
                and all(s["trades"] >= 1 for s in status["strategies"] if s["name"] == RANDOM.name)
            )

        wait_until(traded, 60, "random-7's first trade", watch=daemon)
        stopped.append(_facts(state, _stop(daemon)))
        # 2: sma-1m alone for 300 bars; random-7 misses them.
        daemon = procs.daemon(configure((SMA,)))
        wait_until(
            lambda: (s := get_status(http_port)) is not None and s["bars_processed"] >= 300,
            60,
            "300 bars without random-7",
            watch=daemon,
        )
        # random-7 is in the state but not configured now: known, with no trades after 2100.
        away = http_get(http_port, f"/trades?strategy={RANDOM.name}&since=2100-01-01")
        stopped.append(_facts(state, _stop(daemon)))
        second = folder / "after-second"
        second.mkdir()
        shutil.copyfile(state, second / "state.sqlite")
        # 3: random-7 is back.
        daemon = procs.daemon(configure(BOTH))

        def open_position() -> dict[str, Any] | None:
            status = get_status(http_port)
            if status is None or status["bars_processed"] == 0:
                return None
            return status if any(s["open_position"] for s in status["strategies"]) else None

        open_status = wait_until(open_position, 60, "an open position", watch=daemon)
        open_fills, open_trades = _fills_and_trades(state)
        final_status = wait_until(
            all_bars_processed(http_port, series, total=False),
            ROWS / SPEED + 60,
            "the slice's last bar",
            watch=daemon,
        )
        cli = {
            "table": barbus("trades", "--state", state),
            "csv": barbus("trades", "--state", state, "--format", "csv"),
            "json": barbus("trades", "--state", state, "--format", "json"),
            "random": barbus(
                "trades", "--state", state, "--strategy", RANDOM.name, "--format", "json"
            ),
        }
        trades_json = json.loads(cli["json"].stdout)
        middle = trades_json[len(trades_json) // 2]
        cli["since"] = barbus(
            "trades", "--state", state, "--since", middle["exit_time"], "--format", "json"
        )
        cli["since_ms"] = barbus(
            "trades", "--state", state, "--since", middle["exit_time_ms"], "--format", "json"
        )
        seconds = middle["exit_time_ms"] // 1000
        cli["since_s"] = barbus("trades", "--state", state, "--since", seconds, "--format", "json")
        since = urllib.parse.quote(middle["exit_time"])
        queries = {
            "default": "/trades",
            "limit": "/trades?limit=3",
            "max": "/trades?limit=1000",
            "since": f"/trades?since={since}",
            "since_ms": f"/trades?since={middle['exit_time_ms']}&strategy={RANDOM.name}",
            "strategy": f"/trades?strategy={RANDOM.name}&limit=2",
            "since_s": f"/trades?since={middle['exit_time_ms'] // 1000}",
            "since_s_spaced": f"/trades?since=%20{middle['exit_time_ms'] // 1000}%20",
            "limit_0": "/trades?limit=0",
            "limit_big": "/trades?limit=1001",
            "limit_text": "/trades?limit=ten",
            "limit_negative": "/trades?limit=-5",
            "since_bad": "/trades?since=yesterday",
            "since_huge": "/trades?since=" + "9" * 40,
            "unknown": "/trades?limt=5",
            "twice": "/trades?limit=1&limit=2",
            "no_such": "/trades?strategy=nope",
        }
        http = {key: http_get(http_port, path) for key, path in queries.items()}
        http["away"] = away
        stopped.append(_facts(state, _stop(daemon)))
        yield Runs(
            series=series,
            state=state,
            http_port=http_port,
            runs=stopped,
            open_status=open_status,
            open_fills=open_fills,
            open_trades=open_trades,
            final_status=final_status,
            cli=cli,
            http=http,
            state_after_second=second / "state.sqlite",
        )
    finally:
        procs.close()


def _opens(series: BarSeries) -> dict[int, float]:
    return {int(t): float(o) for t, o in zip(series.open_time_ms, series.open, strict=True)}


def _closes(series: BarSeries) -> dict[int, float]:
    return {int(t): float(c) for t, c in zip(series.open_time_ms, series.close, strict=True)}


def _parse_ms(text: str) -> int:
    from barbus.daemon.core.events import parse_utc_ms

    return parse_utc_ms(text)


def _lines(log: str, what: str) -> list[dict[str, str]]:
    """The ``key=value`` fields of every ``barbus.daemon: <what> ...`` line."""
    marker = f"barbus.daemon: {what} "
    return [
        dict(word.split("=", 1) for word in shlex.split(line.split(marker, 1)[1]))
        for line in log.splitlines()
        if marker in line
    ]


# -- item 7: a strategy that comes back is caught up ------------------------------------------


def test_the_sequence_ran_as_planned(runs: Runs) -> None:
    first, second, _ = runs.runs
    assert first.engine_last_ms[RANDOM.name] == first.last_bar_ms
    # random-7 missed the second run's bars: its record stayed where the first run left it
    assert second.engine_last_ms[RANDOM.name] == first.last_bar_ms
    assert second.last_bar_ms >= first.last_bar_ms + 300 * MINUTE_MS


def test_a_returning_strategy_trades_as_if_it_never_left_and_parity_is_identical(
    runs: Runs,
) -> None:
    recorded = read_state(runs.state)
    assert_bars_are_the_slice(recorded, runs.series)
    trade_from = recorded.trade_from_ms
    for engine in BOTH:
        # an independent replay of the whole slice, the same warm-up boundary
        assert recorded.trades[engine.name] == replayed_rows(
            runs.series, engine, trade_from[engine.name]
        ), engine.name
    done = barbus("parity", "--state", runs.state)
    assert done.returncode == 0, done.stdout + done.stderr
    assert all(line.endswith(": identical") for line in done.stdout.splitlines()), done.stdout


def test_the_catch_up_is_one_line_naming_the_missed_bars(runs: Runs) -> None:
    first, second, third = runs.runs
    [line] = _lines(third.log, "caught up")
    missed = [
        int(t) for t in runs.series.open_time_ms if first.last_bar_ms < t <= second.last_bar_ms
    ]
    assert line["strategy"] == RANDOM.name
    assert int(line["bars"]) == len(missed)
    assert (line["from"], line["to"]) == (format_time_ms(missed[0]), format_time_ms(missed[-1]))
    assert _lines(second.log, "caught up") == []  # sma-1m never left


def test_a_returning_strategy_whose_bars_are_gone_is_refused_with_one_line(
    runs: Runs, tmp_path: Path
) -> None:
    state = tmp_path / "state.sqlite"
    shutil.copyfile(runs.state_after_second, state)
    first = runs.runs[0]
    with closing(sqlite3.connect(state)) as db:  # the bars since random-7 ran are not recorded
        db.execute(
            "DELETE FROM bars WHERE open_time_ms BETWEEN ? AND ?",
            (first.last_bar_ms, first.last_bar_ms + 10 * MINUTE_MS),
        )
        db.commit()
    before = state.read_bytes()
    config = write_config(
        tmp_path / "barbus.toml", sim_port=1, http_port=free_port(), state=state, engines=BOTH
    )

    done = barbus("run", "--config", config, timeout=60)

    assert done.returncode == 2, done.stderr[-3000:]
    errors = done.stderr.splitlines()
    assert len(errors) == 1, done.stderr  # nothing "restored" before a refused start
    assert errors[0].startswith("barbus: error: ")
    assert f"{RANDOM.name!r}" in errors[0]
    assert "new [[strategy]] name" in errors[0]
    assert "Traceback" not in done.stderr
    assert state.read_bytes() == before


# -- item 6: a restart says what it resumed and what it backfilled ------------------------------


def test_each_restart_logs_what_it_restored(runs: Runs) -> None:
    first, second, third = runs.runs
    assert _lines(first.log, "resumed") == []  # a new state resumes nothing
    for previous, run in ((first, second), (second, third)):
        [resumed] = _lines(run.log, "resumed")
        assert resumed["state"] == str(runs.state)
        assert resumed["last_bar"] == f"BTCUSDT@{format_time_ms(previous.last_bar_ms)}"
        restored = {line["strategy"]: line for line in _lines(run.log, "restored")}
        assert list(restored) == resumed["restored"].split(",")
        for name, line in restored.items():
            # what the state held for it: the last run it was in left it there
            left = first if name == RANDOM.name else previous
            position = left.positions[name]
            assert line["symbol"] == "BTCUSDT"
            assert line["last_bar"] == format_time_ms(left.engine_last_ms[name])
            assert int(line["trades"]) == left.trades[name]
            assert float(line["position"]) == position["size"]
            assert float(line["cash"]) == position["cash"]
            if position["size"] > 0:
                assert float(line["entry_price"]) == position["entry_price"]
                assert line["entry_time"] == format_time_ms(position["entry_time_ms"])
            else:
                assert "entry_price" not in line
    [second_resumed] = _lines(second.log, "resumed")
    assert (second_resumed["restored"], second_resumed["new"]) == (SMA.name, "none")
    assert second_resumed["not_configured"] == RANDOM.name
    assert int(second_resumed["open_positions"]) == (first.positions[SMA.name]["size"] > 0)
    [third_resumed] = _lines(third.log, "resumed")
    assert third_resumed["restored"] == f"{SMA.name},{RANDOM.name}"
    assert third_resumed["not_configured"] == "none"
    [caught_up] = _lines(third.log, "caught up")
    assert int(third_resumed["open_positions"]) == (second.positions[SMA.name]["size"] > 0) + (
        float(caught_up["position"]) > 0
    )


def test_each_restart_logs_what_was_backfilled_up_to_the_first_websocket_bar(
    runs: Runs,
) -> None:
    times = [int(t) for t in runs.series.open_time_ms]
    for previous, run in zip(runs.runs, runs.runs[1:], strict=False):
        [line] = _lines(run.log, "backfilled after restart")
        assert line["symbol"] == "BTCUSDT"
        assert line["resumed_after"] == format_time_ms(previous.last_bar_ms)
        first_live = _parse_ms(line["first_live_bar"])
        between = [t for t in times if previous.last_bar_ms < t < first_live]
        assert int(line["bars"]) == len(between)
        assert len(between) > 0  # the sim's clock ran on while the daemon restarted
        assert (line["from"], line["to"]) == (
            format_time_ms(between[0]),
            format_time_ms(between[-1]),
        )


# -- item 5: /status shows the open position, marked at the last bar's close -------------------


def test_status_open_position_is_the_last_entry_fill_marked_at_the_last_close(
    runs: Runs,
) -> None:
    opens, closes = _opens(runs.series), _closes(runs.series)
    checked = 0
    for strategy in runs.open_status["strategies"]:
        position = strategy["open_position"]
        if position is None:
            assert strategy["position"] == 0.0
            continue
        last_ms = _parse_ms(strategy["last_bar"])
        buys = [
            f
            for f in runs.open_fills
            if f[0] == strategy["name"] and f[1] == "buy" and f[2] <= last_ms
        ]
        _, _, time_ms, price, size, fee = buys[-1]
        # the fill itself, by hand: next open plus slippage, fee on the notional
        assert price == pytest.approx(opens[time_ms] * (1 + SLIP), rel=1e-12)
        assert fee == pytest.approx(size * price * FEE, rel=1e-12)
        assert position["entry_time"] == format_time_ms(time_ms)
        assert (position["entry_price"], position["size"], position["entry_fee"]) == (
            price,
            size,
            fee,
        )
        assert position["mark_price"] == closes[last_ms]
        assert position["mark_bar"] == strategy["last_bar"]
        unrealised = size * (closes[last_ms] - price) - fee
        assert position["unrealised_pnl"] == pytest.approx(unrealised, rel=1e-9, abs=1e-9)
        assert "close of the last processed 1m bar" in position["unrealised_pnl_basis"]
        # the books add up: PnL = realised profits + unrealised
        realised = sum(t[2] for t in runs.open_trades if t[0] == strategy["name"])
        assert strategy["pnl"] == pytest.approx(realised + unrealised, rel=1e-9, abs=1e-6)
        checked += 1
    assert checked >= 1


def test_final_status_has_an_open_position_key_for_every_strategy(runs: Runs) -> None:
    for strategy in runs.final_status["strategies"]:
        assert "open_position" in strategy
        assert (strategy["open_position"] is None) == (strategy["position"] == 0.0)


# -- item 5: barbus trades ------------------------------------------------------------------------


def _by_hand(trade: dict[str, Any], opens: dict[int, float]) -> None:
    """A trade's numbers from the slice's opens and the fee and slippage rates."""
    assert trade["entry_price"] == pytest.approx(opens[trade["entry_time_ms"]] * (1 + SLIP))
    assert trade["exit_price"] == pytest.approx(opens[trade["exit_time_ms"]] * (1 - SLIP))
    size = trade["size"]
    assert trade["entry_fee"] == pytest.approx(size * trade["entry_price"] * FEE, rel=1e-12)
    assert trade["exit_fee"] == pytest.approx(size * trade["exit_price"] * FEE, rel=1e-12)
    profit = (
        size * trade["exit_price"]
        - size * trade["entry_price"]
        - trade["entry_fee"]
        - trade["exit_fee"]
    )
    assert trade["profit"] == pytest.approx(profit, rel=1e-9, abs=1e-9)
    assert trade["profit_pct"] == pytest.approx(
        100 * profit / (size * trade["entry_price"] + trade["entry_fee"]), rel=1e-9, abs=1e-12
    )


def test_trades_json_while_the_daemon_runs_adds_up_from_the_fills(runs: Runs) -> None:
    done = runs.cli["json"]
    assert done.returncode == 0, done.stderr
    trades = json.loads(done.stdout)
    assert {t["strategy"] for t in trades} == {SMA.name, RANDOM.name}
    exits = [t["exit_time_ms"] for t in trades]
    assert exits == sorted(exits)  # oldest first, the caught-up trades in their place
    fills, _ = _fills_and_trades(runs.state)
    opens = _opens(runs.series)
    for trade in trades:
        _by_hand(trade, opens)
        assert trade["entry_time"] == format_time_ms(trade["entry_time_ms"])
        assert trade["exit_time"] == format_time_ms(trade["exit_time_ms"])
        entry = [f for f in fills if f[:3] == (trade["strategy"], "buy", trade["entry_time_ms"])]
        exit_ = [f for f in fills if f[:3] == (trade["strategy"], "sell", trade["exit_time_ms"])]
        assert [f[3:] for f in entry] == [(trade["entry_price"], trade["size"], trade["entry_fee"])]
        assert [f[3:] for f in exit_] == [(trade["exit_price"], trade["size"], trade["exit_fee"])]
    recorded = read_state(runs.state)
    assert len(trades) == sum(len(rows) for rows in recorded.trades.values())


def test_trades_csv_has_the_columns_and_rows_of_a_replay_trades_csv(
    runs: Runs, tmp_path: Path
) -> None:
    done = barbus(
        "replay", "--strategy", "sma_cross", "--data", runs.series.source,
        "--out", tmp_path, "--no-plot", "--no-cache",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    replay_header = (tmp_path / "trades.csv").read_text(encoding="utf-8").splitlines()[0]
    out = runs.cli["csv"]
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == replay_header
    rows = list(csv.reader(io.StringIO(out.stdout)))[1:]
    trade_from = read_state(runs.state).trade_from_ms
    for engine in BOTH:
        mine = [row for row in rows if row[0] == engine.name]
        assert mine == replayed_rows(runs.series, engine, trade_from[engine.name])


def test_trades_table_is_aligned_with_iso_times(runs: Runs) -> None:
    done = runs.cli["table"]
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    trades = json.loads(runs.cli["json"].stdout)
    assert len(rows) == len(trades)
    columns = header.split()
    assert columns[:4] == ["strategy", "symbol", "entry_time", "exit_time"]
    for row, trade in zip(rows, trades, strict=True):
        cells = row.split()
        assert len(cells) == len(columns)
        # left-aligned text starts under its header, right-aligned numbers end under theirs
        assert row.index(trade["entry_time"]) == header.index("entry_time")
        assert row.index(trade["exit_time"]) == header.index("exit_time")
        end = header.index("profit_pct") + len("profit_pct")
        assert row[:end].rstrip().endswith(f"{trade['profit_pct']:+.3f}")
        assert row[end : end + 1] in ("", " ")
        assert float(cells[columns.index("profit")]) == pytest.approx(trade["profit"], abs=0.006)


def test_trades_filters_by_strategy_and_since(runs: Runs) -> None:
    trades = json.loads(runs.cli["json"].stdout)
    only = json.loads(runs.cli["random"].stdout)
    assert only == [t for t in trades if t["strategy"] == RANDOM.name]
    middle = trades[len(trades) // 2]
    expected = [t for t in trades if t["exit_time_ms"] >= middle["exit_time_ms"]]
    assert json.loads(runs.cli["since"].stdout) == expected
    assert json.loads(runs.cli["since_ms"].stdout) == expected
    assert json.loads(runs.cli["since_s"].stdout) == expected  # epoch seconds, as --start


@pytest.mark.parametrize(
    ("setup", "args", "words"),
    [
        ("missing", [], "no such state file"),
        ("text", [], "not a usable barbus state"),
        ("copy", ["--strategy", "random7"], "did you mean 'random-7'?"),
        ("copy", ["--since", "yesterday"], "cannot read time"),
        ("copy", ["--since", "9" * 40], "out of range"),
    ],
    ids=["missing", "not-a-state", "unknown-strategy", "bad-since", "huge-since"],
)
def test_trades_problems_are_one_line_and_exit_2(
    runs: Runs, tmp_path: Path, setup: str, args: list[str], words: str
) -> None:
    state = tmp_path / "state.sqlite"
    if setup == "text":
        state.write_text("hello\n" * 100, encoding="utf-8")
    elif setup == "copy":
        shutil.copyfile(runs.state, state)

    done = barbus("trades", "--state", state, *args)

    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("barbus: error: "), line
    assert words in line, line


@needs_mounts
def test_trades_reads_a_read_only_copy(runs: Runs, tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    state = folder / "state.sqlite"
    shutil.copyfile(runs.state, state)
    mount = f"mount --bind {folder} {folder}\nmount -o remount,bind,ro {folder}"

    done = in_private_mounts(mount, ["trades", "--state", str(state), "--format", "json"])

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json.loads(runs.cli["json"].stdout)
    assert sorted(p.name for p in folder.iterdir()) == ["state.sqlite"]


# -- item 5: /trades ------------------------------------------------------------------------------


def _answer(runs: Runs, key: str) -> tuple[int, Any]:
    answer = runs.http[key]
    assert answer is not None, key
    return answer[0], json.loads(answer[1])


def test_trades_endpoint_is_newest_first_with_limit_since_and_strategy(runs: Runs) -> None:
    oldest_first = json.loads(runs.cli["json"].stdout)
    newest_first = list(reversed(oldest_first))
    assert len(newest_first) > 3
    middle = oldest_first[len(oldest_first) // 2]  # the fixture's since
    since = [t for t in newest_first if t["exit_time_ms"] >= middle["exit_time_ms"]]
    expected = {
        "default": newest_first[:100],
        "limit": newest_first[:3],
        "max": newest_first[:1000],
        "since": since[:100],
        "since_ms": [t for t in since if t["strategy"] == RANDOM.name][:100],
        "strategy": [t for t in newest_first if t["strategy"] == RANDOM.name][:2],
        "since_s": since[:100],
        "since_s_spaced": since[:100],  # read as the CLI reads it: stripped, then seconds
    }
    for key, trades in expected.items():
        assert _answer(runs, key) == (200, trades), key
    assert _answer(runs, "away") == (200, [])  # in the state, not configured: not a 404
    exits = [t["exit_time_ms"] for t in newest_first]
    assert exits == sorted(exits, reverse=True)


@pytest.mark.parametrize(
    ("key", "status", "words"),
    [
        ("limit_0", 400, "limit must be an integer from 1 to 1000"),
        ("limit_big", 400, "limit must be an integer from 1 to 1000"),
        ("limit_text", 400, "limit must be an integer"),
        ("limit_negative", 400, "limit must be an integer"),
        ("since_bad", 400, "cannot read time"),
        ("since_huge", 400, "out of range"),
        ("unknown", 400, "unknown parameter 'limt'"),
        ("twice", 400, "at most once"),
        ("no_such", 404, "no strategy named 'nope'"),
    ],
)
def test_trades_endpoint_refuses_bad_values_with_a_one_line_json_error(
    runs: Runs, key: str, status: int, words: str
) -> None:
    code, body = _answer(runs, key)
    assert code == status
    assert set(body) == {"error"}
    assert words in body["error"], body
    assert "\n" not in body["error"]
