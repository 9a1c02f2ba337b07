"""The paper-trading daemon as real processes against the simulated exchange.

Every scenario starts ``barbus sim-exchange`` on a small slice of a bundled file and
``barbus run`` with a config written here, then watches them from outside: HTTP endpoints,
sd_notify datagrams, log lines, exit codes and the SQLite state. The heart is parity: whatever
the feed went through (faults, kill -9), the daemon's trades equal a replay of the same bars.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from barbus.daemon.core.events import format_time_ms
from barbus.daemon.core.series import BarSeries
from barbus.daemon.feeds.binance_codec import decode_ws_message
from tests.conftest import BTC_2023_WITH_GAP, BTC_2025
from tests.kit.notify import NotifyListener
from tests.kit.probes import (
    all_bars_processed,
    get_status,
    http_get,
    metric_samples,
    readyz_answers,
    sample,
)
from tests.kit.processes import Processes, barbus
from tests.kit.recorded import (
    assert_bars_are_the_slice,
    assert_parity_cli_identical,
    read_state,
    replayed_rows,
)
from tests.kit.scenario import (
    ENGINE_NAMES,
    ENGINES,
    FAULTS,
    HISTORY,
    ROWS,
    SPEED,
    Engine,
    one_engine_config,
    write_config,
    write_slice,
)
from tests.kit.waiting import wait_until
from tests.net import free_port, free_ports

# -- one clean run, observed from every side ---------------------------------------------------


@dataclass
class CleanRun:
    series: BarSeries
    state: Path
    config: Path
    http_port: int
    streaming_status: dict[str, Any]
    streaming_readyz: tuple[int, str]
    streaming_healthz: tuple[int, str]
    streaming_metrics: str
    final_status: dict[str, Any]
    final_metrics: str
    sim_exit_seconds_after_end: float | None
    readyz_after_sim_exit: tuple[int, str] | None
    exit_code: int
    stop_seconds: float
    log: str
    notifications: list[str]


@pytest.fixture(scope="module")
def slice_2025(tmp_path_factory: pytest.TempPathFactory) -> BarSeries:
    return write_slice(BTC_2025, 20_000, ROWS, tmp_path_factory.mktemp("slice-2025"))


@pytest.fixture(scope="module")
def clean_run(
    tmp_path_factory: pytest.TempPathFactory, slice_2025: BarSeries
) -> Iterator[CleanRun]:
    """Sim + daemon (4 engines) from warm-up to the end of the data; HTTP looked at while
    streaming, SIGHUP twice on the way (a broken config, then DEBUG), SIGTERM at the end."""
    folder = tmp_path_factory.mktemp("clean-run")
    procs = Processes(folder / "processes")
    notify = NotifyListener()
    try:
        sim, sim_port = procs.sim(Path(slice_2025.source))
        http_port = free_port()
        state = folder / "state.sqlite"
        config = write_config(
            folder / "barbus.toml", sim_port=sim_port, http_port=http_port, state=state
        )
        daemon = procs.daemon(config, {"NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "200000"})

        def streaming() -> dict[str, Any] | None:
            status = get_status(http_port)
            live = 0 if status is None else status["bars_processed"] - HISTORY
            return status if status is not None and 100 <= live < ROWS - HISTORY - 300 else None

        wait_until(streaming, 60, "live bars flowing", watch=daemon)
        streaming_healthz = http_get(http_port, "/healthz")
        streaming_readyz = http_get(http_port, "/readyz")
        streaming_metrics = http_get(http_port, "/metrics")
        streaming_status = get_status(http_port)
        assert streaming_healthz is not None
        assert streaming_readyz is not None
        assert streaming_metrics is not None
        assert streaming_status is not None

        config.write_text(config.read_text(encoding="utf-8") + "\n[oops\n", encoding="utf-8")
        daemon.signal(signal.SIGHUP)
        wait_until(
            lambda: "reload failed" in daemon.log(), 10, "reload failure logged", watch=daemon
        )
        write_config(config, sim_port=sim_port, http_port=http_port, state=state, level="DEBUG")
        daemon.signal(signal.SIGHUP)
        wait_until(
            lambda: "log level is now DEBUG" in daemon.log(), 10, "new log level", watch=daemon
        )

        final_status = wait_until(
            all_bars_processed(http_port, slice_2025),
            (ROWS - HISTORY) / SPEED + 60,
            "every bar of the slice processed",
            watch=daemon,
        )
        final_metrics = http_get(http_port, "/metrics")
        assert final_metrics is not None

        # The sim's data has ended: it should exit (--exit-at-end), and the feed then drops.
        ended = time.monotonic()
        sim_exit: float | None = None
        readyz_after: tuple[int, str] | None = None
        try:
            sim.wait(timeout=5)
            sim_exit = time.monotonic() - ended
            readyz_after = wait_until(
                readyz_answers(http_port, 503),
                10,
                "/readyz 503 after the exchange went away",
                watch=daemon,
            )
        except subprocess.TimeoutExpired:
            pass

        stopping = time.monotonic()
        daemon.signal(signal.SIGTERM)
        try:
            exit_code = daemon.wait(timeout=15)
        except subprocess.TimeoutExpired:
            exit_code = -999
        stop_seconds = time.monotonic() - stopping
        # Give the last datagram (STOPPING=1) a moment to be drained.
        wait_until(
            lambda: any("STOPPING=1" in m for m in notify.messages) or None,
            5,
            "STOPPING=1",
        )
        yield CleanRun(
            series=slice_2025,
            state=state,
            config=config,
            http_port=http_port,
            streaming_status=streaming_status,
            streaming_readyz=streaming_readyz,
            streaming_healthz=streaming_healthz,
            streaming_metrics=streaming_metrics[1],
            final_status=final_status,
            final_metrics=final_metrics[1],
            sim_exit_seconds_after_end=sim_exit,
            readyz_after_sim_exit=readyz_after,
            exit_code=exit_code,
            stop_seconds=stop_seconds,
            log=daemon.log(),
            notifications=list(notify.messages),
        )
    finally:
        procs.close()
        notify.close()


def test_sigterm_stops_the_daemon_cleanly_with_exit_code_0(clean_run: CleanRun) -> None:
    assert clean_run.exit_code == 0, clean_run.log[-3000:]
    assert clean_run.stop_seconds < 10
    assert f"stopped after {ROWS} bars" in clean_run.log
    assert "Traceback" not in clean_run.log


def test_daemon_processed_warm_up_plus_every_live_bar(clean_run: CleanRun) -> None:
    status = clean_run.final_status

    assert status["bars_processed"] == ROWS
    assert status["warm"] is True
    assert status["feed"]["live_bars"] + status["feed"]["backfilled"] >= ROWS - HISTORY


def test_recorded_bars_are_exactly_the_slice_with_their_source(clean_run: CleanRun) -> None:
    recorded = read_state(clean_run.state)

    assert_bars_are_the_slice(recorded, clean_run.series)


def test_parity_command_says_identical_for_every_engine(clean_run: CleanRun) -> None:
    assert_parity_cli_identical(clean_run.state)


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_NAMES)
def test_daemon_trades_equal_an_independent_replay_of_the_slice(
    clean_run: CleanRun, engine: Engine
) -> None:
    recorded = read_state(clean_run.state)
    trade_from_ms = recorded.trade_from_ms[engine.name]

    expected = replayed_rows(clean_run.series, engine, trade_from_ms)

    assert trade_from_ms == int(clean_run.series.open_time_ms[HISTORY])  # warm-up saw H bars
    assert len(recorded.trades[engine.name]) >= 1
    assert recorded.trades[engine.name] == expected


def test_healthz_and_readyz_answer_while_streaming(clean_run: CleanRun) -> None:
    assert clean_run.streaming_healthz == (200, "ok\n")
    assert clean_run.streaming_readyz == (200, "ready\n")


def test_status_shows_every_strategy_and_the_feed_counters(clean_run: CleanRun) -> None:
    status = clean_run.streaming_status

    assert status["ready"] is True
    assert [s["name"] for s in status["strategies"]] == ENGINE_NAMES
    for strategy in status["strategies"]:
        assert {"position", "cash", "equity", "pnl", "last_bar", "trading_from"} <= set(strategy)
        assert strategy["pnl"] == pytest.approx(strategy["equity"] - 10_000.0)
        assert strategy["trading_from"] == format_time_ms(
            int(clean_run.series.open_time_ms[HISTORY])
        )
    feed = status["feed"]
    assert feed["connected"] is True
    assert {"messages", "live_bars", "backfilled", "malformed", "duplicates", "reconnects"} <= set(
        feed
    )
    assert feed["live_bars"] > 0
    assert status["lag_ms"]["samples"] > 0


def test_final_status_matches_the_recorded_engine_snapshots(clean_run: CleanRun) -> None:
    recorded = read_state(clean_run.state)
    last_close = float(clean_run.series.close[-1])

    for strategy in clean_run.final_status["strategies"]:
        snapshot = recorded.snapshots[strategy["name"]]
        cash, size = snapshot["cash"], snapshot["position"]["size"]
        assert strategy["cash"] == cash
        assert strategy["position"] == size
        assert strategy["equity"] == cash + size * last_close
        assert strategy["trades"] == len(recorded.trades[strategy["name"]])


def test_metrics_count_bars_by_source_and_export_equity_per_strategy(
    clean_run: CleanRun,
) -> None:
    samples = metric_samples(clean_run.final_metrics)
    streaming = metric_samples(clean_run.streaming_metrics)

    live = sample(samples, "barbus_bars_processed_total", source="live", symbol="BTCUSDT")
    warm = sample(samples, "barbus_bars_processed_total", source="warmup", symbol="BTCUSDT")
    assert (warm, live) == (HISTORY, ROWS - HISTORY)
    assert sample(streaming, "barbus_feed_connected") == 1.0
    assert ("barbus_feed_connected", frozenset()) in samples
    for strategy in clean_run.final_status["strategies"]:
        name = strategy["name"]
        assert sample(samples, "barbus_equity_quote", strategy=name) == strategy["equity"]
        assert sample(samples, "barbus_cash_quote", strategy=name) == strategy["cash"]
        assert sample(samples, "barbus_pnl_quote", strategy=name) == pytest.approx(strategy["pnl"])
    assert sample(samples, "barbus_last_bar_open_time_seconds", symbol="BTCUSDT") == (
        int(clean_run.series.open_time_ms[-1]) / 1000
    )


def test_sd_notify_sends_ready_then_watchdogs_then_stopping(clean_run: CleanRun) -> None:
    messages = clean_run.notifications

    ready = [i for i, m in enumerate(messages) if "READY=1" in m]
    stopping = [i for i, m in enumerate(messages) if "STOPPING=1" in m]
    assert messages[0] == "STATUS=starting"
    assert len(ready) == 1
    assert len(stopping) == 1
    assert messages[ready[0]] == "READY=1\nSTATUS=trading 4 strategies on BTCUSDT"
    assert ready[0] < stopping[0] == len(messages) - 1
    watchdogs_while_ready = messages[ready[0] + 1 : stopping[0]]
    assert watchdogs_while_ready.count("WATCHDOG=1") >= 5
    assert set(watchdogs_while_ready) == {"WATCHDOG=1"}
    assert messages[-1] == "STOPPING=1\nSTATUS=stopping"


def test_sighup_reloads_the_log_level_and_keeps_a_broken_config_out(clean_run: CleanRun) -> None:
    log = clean_run.log

    assert "reload failed, keeping the current settings" in log
    assert "not valid TOML" in log
    assert log.index("reload failed") < log.index("log level is now DEBUG")
    assert clean_run.exit_code == 0  # it kept running until SIGTERM


def test_sim_exchange_exits_soon_after_its_data_ends_and_readyz_then_fails(
    clean_run: CleanRun,
) -> None:
    # --exit-at-end: "stop when the data ends" (it waits 1 s for clients to read the last
    # candle). Then the daemon's feed is disconnected and /readyz must say so.
    assert clean_run.sim_exit_seconds_after_end is not None, (
        "the sim exchange was still running 5 s after the daemon had processed its last bar"
    )
    assert clean_run.readyz_after_sim_exit == (503, "feed disconnected\n")


# -- faults on the wire: same trades ------------------------------------------------------------


def test_parity_holds_when_the_feed_drops_garbles_duplicates_and_reorders(
    tmp_path: Path, processes: Processes
) -> None:
    # A slice with an 80-minute gap and flat (zero-volume) minutes, served badly and faster
    # than the daemon can follow: it falls behind, is dropped, and catches up over REST.
    series = write_slice(BTC_2023_WITH_GAP, 9_000, ROWS, tmp_path / "data")
    assert series.gaps().count == 1
    assert series.zero_volume_bars() > 0
    _, sim_port = processes.sim(Path(series.source), *FAULTS, speed=1_000, exit_at_end=False)
    http_port = free_port()
    state = tmp_path / "state.sqlite"
    config = write_config(
        tmp_path / "barbus.toml", sim_port=sim_port, http_port=http_port, state=state
    )
    daemon = processes.daemon(config)

    status = wait_until(
        all_bars_processed(http_port, series), 120, "every bar despite the faults", watch=daemon
    )
    daemon.stop_cleanly()

    feed = status["feed"]
    assert feed["reconnects"] > 0
    assert feed["malformed"] > 0
    assert feed["duplicates"] + feed["out_of_order"] > 0
    recorded = read_state(state)
    assert_bars_are_the_slice(recorded, series)
    assert_parity_cli_identical(state)
    for engine in ENGINES:
        expected = replayed_rows(series, engine, recorded.trade_from_ms[engine.name])
        assert len(expected) >= 1
        assert recorded.trades[engine.name] == expected, engine.name


async def test_reordering_sim_still_sends_the_last_candle_of_its_data(
    tmp_path: Path, processes: Processes
) -> None:
    # "No fault ever changes the bars themselves": a held-back (reordered) candle is sent after
    # the next one, but after the last candle of the data there is no next one. With
    # probability 1 every other candle is held: of 21 live candles, the 1st, 3rd, ... 21st.
    series = write_slice(BTC_2025, 20_000, HISTORY + 21, tmp_path / "data")
    _, port = processes.sim(Path(series.source), "--reorder-probability", "1")
    url = f"http://127.0.0.1:{port}"
    seen: list[int] = []

    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{url}/stream?streams=btcusdt@kline_1m") as ws,
    ):
        while True:
            try:
                message = await ws.receive(timeout=0.2)
            except TimeoutError:
                async with session.get(f"{url}/sim/status") as response:
                    if (await response.json())["finished"]:
                        break  # the clock has run out: nothing more will be sent
                continue
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            bar = decode_ws_message(message.data)
            if bar is not None:
                seen.append(bar.open_time_ms)

    assert sorted(seen) == series.open_time_ms[HISTORY:].tolist()


# -- kill -9 three times: same trades as the uninterrupted run ----------------------------------


def test_three_kill_9_and_restarts_end_with_the_same_trades_and_bars(
    tmp_path: Path, processes: Processes, clean_run: CleanRun
) -> None:
    series = clean_run.series
    # The same bars and clock; the sim stays up after its data ends (--exit-at-end would take
    # the exchange away from a daemon that happens to be restarting at that moment).
    _, sim_port = processes.sim(Path(series.source), exit_at_end=False)
    http_port = free_port()
    state = tmp_path / "state.sqlite"
    config = write_config(
        tmp_path / "barbus.toml", sim_port=sim_port, http_port=http_port, state=state
    )
    rng = random.Random(9)
    delays = [rng.uniform(0.2, 1.0) for _ in range(3)]
    last = format_time_ms(int(series.open_time_ms[-1]))

    daemon = processes.daemon(config)
    killed_mid_stream = 0
    for delay in delays:
        wait_until(
            lambda: (s := get_status(http_port)) is not None and s["warm"],
            60,
            "a warm daemon",
            watch=daemon,
        )
        time.sleep(delay)  # the seeded kill point
        status = get_status(http_port)
        assert status is not None
        killed_mid_stream += any(s["last_bar"] != last for s in status["strategies"])
        daemon.signal(signal.SIGKILL)
        assert daemon.wait(timeout=10) == -signal.SIGKILL
        daemon = processes.daemon(config)
    wait_until(
        all_bars_processed(http_port, series, total=False), 120, "the last bar", watch=daemon
    )
    daemon.stop_cleanly()

    assert killed_mid_stream >= 1
    interrupted = read_state(state)
    uninterrupted = read_state(clean_run.state)
    assert interrupted.trades == uninterrupted.trades
    assert interrupted.bars == uninterrupted.bars
    assert interrupted.fills == uninterrupted.fills
    assert len(set(interrupted.fills)) == len(interrupted.fills)
    assert_parity_cli_identical(state)


# -- start-up: exchange not there yet, bad configs ----------------------------------------------


def test_daemon_started_before_the_exchange_waits_not_ready_then_trades(
    tmp_path: Path, processes: Processes, slice_2025: BarSeries
) -> None:
    sim_port, http_port = free_ports(2)
    config = one_engine_config(tmp_path, sim_port=sim_port, http_port=http_port)
    daemon = processes.daemon(config)

    not_ready = wait_until(lambda: http_get(http_port, "/readyz"), 30, "/readyz", watch=daemon)
    assert not_ready == (503, "warming up\n")
    # The exchange comes up a second later; the daemon must have waited for it (watch=daemon
    # fails at once, with its log, if it gave up instead).
    processes.sim(Path(slice_2025.source), port=sim_port, speed=1_000)
    ready = wait_until(
        readyz_answers(http_port, 200),
        60,
        "/readyz 200 once the exchange is up",
        watch=daemon,
    )
    assert ready == (200, "ready\n")


def test_daemon_waiting_for_an_unreachable_exchange_stops_on_sigterm(
    tmp_path: Path, processes: Processes
) -> None:
    dead_port, http_port = free_ports(2)
    config = one_engine_config(tmp_path, sim_port=dead_port, http_port=http_port)
    daemon = processes.daemon(config)
    not_ready = wait_until(readyz_answers(http_port, 503), 30, "/readyz", watch=daemon)
    wait_until(lambda: "retrying" in daemon.log(), 30, "a warm-up retry", watch=daemon)

    daemon.signal(signal.SIGTERM)
    code = daemon.wait(timeout=10)

    assert not_ready == (503, "warming up\n")
    assert code == 0, daemon.log()[-3000:]
    assert "stopped after 0 bars" in daemon.log()
    assert "Traceback" not in daemon.log()


def test_bad_config_exits_2_with_one_error_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[feed]\nrest_url = "http://127.0.0.1:1"\nws_urll = "x"\n', encoding="utf-8")

    done = barbus("run", "--config", str(config))

    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("barbus: error: ")
    assert "did you mean 'ws_url'?" in lines[0]
    assert done.stdout == ""


def test_restart_with_changed_params_under_the_same_name_exits_2_asking_for_a_new_name(
    tmp_path: Path, clean_run: CleanRun
) -> None:
    state = tmp_path / "state.sqlite"
    shutil.copyfile(clean_run.state, state)
    changed = (Engine("sma-1m", "sma_cross", {"fast": 5, "slow": 20}), *ENGINES[1:])
    config = write_config(
        tmp_path / "barbus.toml", sim_port=1, http_port=free_port(), state=state, engines=changed
    )

    done = barbus("run", "--config", str(config))

    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("barbus: error:")]
    assert len(errors) == 1, done.stderr
    assert "'sma-1m'" in errors[0]
    assert "give it a new name" in errors[0]
    assert "Traceback" not in done.stderr
    assert read_state(state).trades == read_state(clean_run.state).trades  # nothing written


def test_restarted_daemon_shows_its_recorded_books_while_the_feed_reconnects_in_vain(
    tmp_path: Path, processes: Processes, clean_run: CleanRun
) -> None:
    state = tmp_path / "state.sqlite"
    shutil.copyfile(clean_run.state, state)
    recorded = read_state(state)
    dead_port, http_port = free_ports(2)
    config = write_config(
        tmp_path / "barbus.toml", sim_port=dead_port, http_port=http_port, state=state
    )

    daemon = processes.daemon(config)
    not_ready = wait_until(readyz_answers(http_port, 503), 30, "/readyz", watch=daemon)
    wait_until(lambda: "reconnecting" in daemon.log(), 30, "a reconnect attempt", watch=daemon)
    status = get_status(http_port)
    daemon.signal(signal.SIGTERM)
    code = daemon.wait(timeout=15)

    assert not_ready == (503, "feed disconnected\n")
    assert status is not None
    assert status["warm"] is True  # nothing to warm up: the history is recorded
    last = format_time_ms(int(clean_run.series.open_time_ms[-1]))
    last_close = float(clean_run.series.close[-1])
    for strategy in status["strategies"]:
        name = strategy["name"]
        snapshot = recorded.snapshots[name]
        cash, size = snapshot["cash"], snapshot["position"]["size"]
        assert strategy["last_bar"] == last
        assert (strategy["cash"], strategy["position"]) == (cash, size)
        assert strategy["equity"] == cash + size * last_close
    assert code == 0, daemon.log()[-3000:]
    assert "stopped after 0 bars" in daemon.log()
    assert read_state(state) == recorded  # a restart without bars changes nothing
    # The trade count belongs with cash and position: the strategy's, not this process's.
    assert {s["name"]: s["trades"] for s in status["strategies"]} == {
        name: len(rows) for name, rows in recorded.trades.items()
    }
