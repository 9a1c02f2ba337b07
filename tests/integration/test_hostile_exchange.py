"""A hostile or broken exchange against the real feed and the real daemon, over real sockets.

The exchange is the real :class:`SimExchange` with its hostile switches (fake candles, damaged
REST pages, silent streams), or a tiny aiohttp server written here where a fault needs raw
bytes (a 400,000-row page, a flood of garbage). The client is the real :class:`BinanceFeed`, or
``barbus run`` as a process. The rule checked throughout: the feed never dies, refuses and counts
what would poison later bars, says so in a bounded number of log lines, and still delivers
exactly the real bars the exchange has.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from barbus.daemon.core.events import MINUTE_MS, Bar, format_time_ms, parse_utc_ms
from barbus.daemon.core.series import BarSeries
from barbus.daemon.feeds.binance_codec import encode_rest_kline, encode_ws_kline
from barbus.daemon.feeds.binance_config import FeedConfig
from barbus.daemon.feeds.sim_faults import FaultConfig
from barbus.replay.bars_out import write_bars
from barbus.replay.loader import load_bars
from tests.conftest import BTC_2025
from tests.factories import bars_of
from tests.integration.test_live_feed import (
    HOST,
    SYMBOL,
    FeedRun,
    after,
    assert_counters_add_up,
    feed_running,
    running_sim,
    warm_up,
)
from tests.kit.probes import all_bars_processed, get_status, http_get
from tests.kit.processes import Processes, barbus
from tests.kit.recorded import assert_bars_are_the_slice, read_state
from tests.kit.scenario import HISTORY, Engine, tuned, write_config, write_slice
from tests.kit.waiting import wait_until
from tests.net import free_port

START_MS = parse_utc_ms("2023-03-23T12:00")
SMA = (Engine("sma", "sma_cross"),)  # one plain engine for the daemon scenarios

# A short receive timeout: when the sim's data ends on a hole (a skipped last candle, or a REST
# answer that came just before the sim's clock closed it), only a reconnect's backfill can
# deliver the last bar; without it the test would wait for the default 120 s.
FAST: dict[str, Any] = {
    "reconnect_initial_seconds": 0.05,
    "reconnect_max_seconds": 0.3,
    "receive_timeout_seconds": 1.0,
}
QUICK_GAPS: dict[str, Any] = {"gap_retry_seconds": 0.02}


@pytest.fixture(scope="module")
def series_2023(btc_2023_path: Path) -> BarSeries:
    return load_bars(btc_2023_path)


@pytest.fixture(scope="module")
def slice_800(series_2023: BarSeries) -> BarSeries:
    """800 contiguous real minutes (no gap in the data) from 2023-03-23 12:00."""
    return series_2023.between(START_MS, START_MS + 800 * MINUTE_MS)


class FeedLog(logging.Handler):
    """Every record of the ``barbus.feed`` logger, whatever the logger's propagation."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self, level: int = logging.WARNING) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= level]


@pytest.fixture
def feed_log() -> Iterator[FeedLog]:
    handler = FeedLog()
    logger = logging.getLogger("barbus.feed")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


async def run_against_sim(
    series: BarSeries,
    faults: FaultConfig,
    *,
    speed: float = 2000,
    timeout: float = 30,
    **options: Any,
) -> tuple[FeedRun, list[Bar], dict[str, Any]]:
    """Warm up, stream the whole series through the real feed, stop; what came out, what the
    sim served after the warm-up, and the sim's status."""
    async with running_sim(series, speed=speed, history_bars=500, faults=faults) as sim:
        warm = await warm_up(sim)
        expected = after(bars_of(series), warm[-1].open_time_ms)
        config = sim.feed_config(**{**FAST, **QUICK_GAPS, **options})
        async with feed_running(config, warm[-1].open_time_ms) as run:
            await run.wait_for_bar(expected[-1].open_time_ms, timeout=timeout)
            await run.stop()
        status = {
            "rest_faults": sim.exchange.rest_faults,
            "rest_requests": sim.exchange.rest_requests,
        }
    return run, expected, status


# -- item 2 and 4: fake candles over the WebSocket -----------------------------------------------

INJECTED = [
    pytest.param("future", {}, "future", id="ten-years-ahead"),
    pytest.param("misaligned", {}, "misaligned", id="minute-plus-1234-ms"),
    pytest.param("time_1e30", {}, "future", id="open-time-1e30"),
    pytest.param("price", {"inject_price": 1e300}, "implausible", id="price-1e300"),
    pytest.param("price", {"inject_price": 1e307}, "implausible", id="price-1e307"),
    pytest.param("price", {"inject_price": 1e6}, "implausible", id="price-35x-previous-close"),
]


@pytest.mark.parametrize(("kind", "extra", "reason"), INJECTED)
async def test_fake_candles_are_refused_and_every_real_bar_still_delivered(
    slice_800: BarSeries, feed_log: FeedLog, kind: str, extra: dict[str, Any], reason: str
) -> None:
    # Arrange: a fake final candle before every 25th real one (and its open-candle update).
    faults = FaultConfig(inject=kind, inject_every=25, **extra)

    # Act
    run, expected, _ = await run_against_sim(slice_800, faults)

    # Assert
    assert run.received == expected
    assert run.counters.rejected.get(reason, 0) >= len(expected) // 25 - 1 > 5
    assert_counters_add_up(run)
    refused = [line for line in feed_log.lines() if f"bar rejected ({reason})" in line]
    assert 1 <= len(refused) <= 5  # rate-limited
    assert all(len(line) < 400 for line in feed_log.lines())


# -- item 3: damaged REST pages ------------------------------------------------------------------

REST_FAULTS = [
    pytest.param("duplicate", "duplicate_row", id="duplicate-rows"),
    pytest.param("unsorted", "unsorted_row", id="unsorted-rows"),
    pytest.param("past_end", "out_of_range_row", id="rows-past-endTime"),
    pytest.param("future", "future", id="future-dated-row"),
    pytest.param("not_list", "bad_page", id="not-a-list"),
    pytest.param("oversize", "bad_page", id="far-more-rows-than-limit"),
]


@pytest.mark.parametrize(("fault", "reason"), REST_FAULTS)
async def test_damaged_rest_pages_are_counted_and_the_real_bars_still_delivered(
    slice_800: BarSeries, fault: str, reason: str
) -> None:
    # Arrange: holes (every 9th candle is never sent live) and reconnects (every 150 messages)
    # make the feed backfill over REST all the time; every other answer is damaged.
    faults = FaultConfig(
        skip_every=9,
        drop_every=150,
        rest_fault=fault,
        rest_fault_every=2,
        oversize_rows=5_000,
    )

    # Act
    run, expected, sim = await run_against_sim(slice_800, faults)

    # Assert
    assert run.received == expected
    # How many answers were damaged depends on how far the feed lags (one backfill after a
    # reconnect can cover several holes): at least one was, and the feed saw it.
    assert sim["rest_faults"] >= 1
    assert run.counters.rejected.get(reason, 0) > 0
    assert run.counters.gaps_recorded == 0
    assert_counters_add_up(run)


def flood_body(rows: int) -> bytes:
    row = json.dumps(encode_rest_kline(Bar(SYMBOL, "1m", START_MS, 1.0, 1.0, 1.0, 1.0, 1.0)))
    return b"[" + b",".join([row.encode()] * rows) + b"]"


@asynccontextmanager
async def hostile_server(app: web.Application) -> AsyncIterator[tuple[str, str]]:
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, HOST, 0).start()
        port = int(runner.addresses[0][1])
        yield f"http://{HOST}:{port}", f"ws://{HOST}:{port}"
    finally:
        await runner.cleanup()


async def max_loop_stall(seconds: float) -> float:
    """The longest the event loop went without running this task, over ``seconds``."""
    worst = 0.0
    deadline = time.monotonic() + seconds
    last = time.monotonic()
    while last < deadline:
        await asyncio.sleep(0.005)
        now = time.monotonic()
        worst = max(worst, now - last)
        last = now
    return worst


@pytest.mark.parametrize("limit", [100, 1000])
async def test_400000_rows_for_a_page_neither_block_the_loop_nor_kill_the_feed(limit: int) -> None:
    # Arrange: an exchange whose every klines answer is 400,000 rows (~50 MB); its stream is
    # quiet, so the feed keeps reconnecting and asking again.
    body = flood_body(400_000)
    served = 0

    async def klines(_: web.Request) -> web.Response:
        nonlocal served
        served += 1
        return web.Response(body=body, content_type="application/json")

    async def stream(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/api/v3/klines", klines)
    app.router.add_get("/stream", stream)
    async with hostile_server(app) as (rest_url, ws_url):
        config = FeedConfig(rest_url, ws_url, (SYMBOL,), rest_page_limit=limit, **FAST)
        async with feed_running(config, START_MS) as run:
            # Act
            stall = await max_loop_stall(2.0)
            run.raise_if_failed()

    # Assert
    assert served >= 3
    assert stall < 0.5, f"the event loop stalled for {stall:.2f} s"
    assert run.counters.rejected["bad_page"] >= 3
    assert any("larger than" in e for e in run.counters.errors), run.counters.errors
    assert not run.received


async def test_a_long_backfill_is_paged_capped_and_yields_to_the_loop(
    slice_800: BarSeries, feed_log: FeedLog
) -> None:
    # Arrange: the feed last saw the first bar; 700 are closed at the exchange. Pages of 10
    # rows, at most 20 pages (200 bars) per backfill: the backfill pauses, then goes on.
    source = bars_of(slice_800)
    options = {"rest_page_limit": 10, "max_backfill_pages": 20, **FAST}
    async with (
        running_sim(slice_800, speed=50, history_bars=700) as sim,
        feed_running(sim.feed_config(**options), source[0].open_time_ms) as run,
    ):
        # Act
        stall_task = asyncio.create_task(max_loop_stall(1.0))
        await run.wait_for_bar(source[-1].open_time_ms, timeout=30)
        stall = await stall_task
        await run.stop()

    # Assert
    assert run.received == source[1:]
    assert stall < 0.5
    paused = [line for line in feed_log.lines() if "paused after 20 pages" in line]
    assert paused
    assert run.counters.gaps_recorded == 0


async def test_pages_that_never_end_stop_at_the_page_cap(
    slice_800: BarSeries, feed_log: FeedLog
) -> None:
    # Arrange: every backfill answer is a full page, made up past the data if need be.
    faults = FaultConfig(rest_fault="endless")
    options = {"rest_page_limit": 50, "max_backfill_pages": 8, **FAST}
    async with (
        running_sim(slice_800, speed=0, history_bars=600, faults=faults) as sim,
        feed_running(sim.feed_config(**options), START_MS) as run,
    ):
        # Act
        await run.wait_until(lambda: sim.exchange.rest_requests >= 8, timeout=10)
        await asyncio.sleep(0.5)  # time for more requests, were there no cap
        requests = sim.exchange.rest_requests
        await run.stop()

    # Assert
    assert requests == 8
    assert len(run.received) == 8 * 50
    assert any("paused after 8 pages" in line for line in feed_log.lines())


# -- item 5: holes the exchange cannot fill ------------------------------------------------------


async def test_a_hole_answered_empty_is_retried_then_recorded_as_a_gap(
    slice_800: BarSeries, feed_log: FeedLog
) -> None:
    # Arrange: every 40th candle is never sent live, and REST answers every hole with [].
    faults = FaultConfig(skip_every=40, rest_fault="empty")

    # Act
    run, expected, sim = await run_against_sim(slice_800, faults, gap_retries=2)

    # Assert: each skipped minute is missing, retried twice, then recorded as a gap.
    delivered = {b.open_time_ms for b in run.received}
    skipped = [b.open_time_ms for b in expected if b.open_time_ms not in delivered]
    assert run.received == [b for b in expected if b.open_time_ms in delivered]
    assert len(skipped) > 4
    assert run.counters.gaps_recorded == len(skipped)
    assert sim["rest_faults"] == 3 * len(skipped)  # the first ask and two retries, each hole
    assert run.counters.recent_gaps == [(SYMBOL, t, t) for t in skipped[-10:]]
    first = format_time_ms(skipped[0])
    lines = "\n".join(feed_log.lines())
    assert f"feed: BTCUSDT has no bars from {first} to {first} on the exchange" in lines


@pytest.mark.parametrize("fault", ["empty", "stale"])
async def test_a_hole_answered_badly_once_is_filled_by_the_retry(
    slice_800: BarSeries, fault: str
) -> None:
    # Arrange: every other hole answer (3 of them) is empty or stale; the retry is right.
    faults = FaultConfig(skip_every=40, rest_fault=fault, rest_fault_every=2, rest_fault_times=3)

    # Act
    run, expected, sim = await run_against_sim(slice_800, faults, gap_retries=2)

    # Assert
    assert run.received == expected
    assert sim["rest_faults"] == 3
    assert run.counters.gaps_recorded == 0
    assert run.counters.backfilled >= 6


# -- item 6: a stream that answers pings but sends nothing --------------------------------------


async def test_a_silent_stream_that_answers_pings_is_left_after_the_receive_timeout(
    slice_800: BarSeries,
) -> None:
    # Arrange
    faults = FaultConfig(silent=True)
    options = {**FAST, "receive_timeout_seconds": 0.5, "heartbeat_seconds": 0.1}
    async with (
        running_sim(slice_800, speed=10, history_bars=600, faults=faults) as sim,
        feed_running(sim.feed_config(**options), None) as run,
    ):
        # Act
        await run.wait_until(lambda: run.counters.connected, timeout=5)
        started = time.monotonic()
        reconnected = await run.wait_until(lambda: run.counters.reconnects >= 2, timeout=5)
        elapsed = time.monotonic() - started

    # Assert: two timeouts of 0.5 s plus two short backoffs, well before 5 s.
    assert reconnected, run.counters.errors
    assert elapsed < 2.5
    assert "TimeoutError: no message for 0.5 s" in run.counters.errors[0]


# -- item 7 and 9: bounded, truncated log lines --------------------------------------------------


async def test_a_flood_of_25000_malformed_messages_gives_a_bounded_log(feed_log: FeedLog) -> None:
    # Arrange: a stream of 25,000 garbage messages, one of them a megabyte long.
    garbage = '{"e": "kline", "k": {"t": "garbage"'
    message = json.loads(
        encode_ws_kline(Bar(SYMBOL, "1m", START_MS, 1.0, 1.0, 1.0, 1.0, 1.0), event_time_ms=0)
    )
    message["data"]["k"]["o"] = "1" * 1_000_000 + "x"
    megabyte = json.dumps(message)
    sent = asyncio.Event()

    async def stream(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(megabyte)
        for _ in range(25_000):
            await ws.send_str(garbage)
        sent.set()
        async for _ in ws:
            pass
        return ws

    async def klines(_: web.Request) -> web.Response:
        return web.json_response([])

    app = web.Application()
    app.router.add_get("/api/v3/klines", klines)
    app.router.add_get("/stream", stream)
    async with hostile_server(app) as (rest_url, ws_url):
        config = FeedConfig(rest_url, ws_url, (SYMBOL,), **FAST)
        async with feed_running(config, None) as run:
            # Act
            await asyncio.wait_for(sent.wait(), timeout=20)
            await run.wait_until(lambda: run.counters.malformed >= 25_001, timeout=20)
            await run.stop()

    # Assert
    lines = feed_log.lines()
    assert run.counters.malformed == 25_001
    assert len(lines) <= 10, lines
    assert max(len(line) for line in lines) < 400
    assert any("more malformed messages suppressed" in line for line in lines), lines
    summary = next(line for line in lines if "suppressed" in line)
    assert summary.startswith("feed: 24996 more malformed messages suppressed in the last")


async def test_runs_of_dropped_duplicate_and_out_of_order_bars_are_logged_rate_limited(
    slice_800: BarSeries, feed_log: FeedLog
) -> None:
    # Arrange
    faults = FaultConfig(duplicate_probability=0.3, reorder_probability=0.2)

    # Act
    run, expected, _ = await run_against_sim(slice_800, faults)

    # Assert
    assert run.received == expected
    lines = feed_log.lines()
    duplicates = [line for line in lines if "dropped (duplicate)" in line]
    late = [line for line in lines if "dropped (out of order)" in line]
    assert run.counters.duplicates > 50
    assert 1 <= len(duplicates) <= 5
    assert run.counters.out_of_order > 10
    assert 1 <= len(late) <= 5
    assert any("more duplicate messages suppressed" in line for line in lines)


# -- the daemon: a future-dated bar, across a restart --------------------------------------------

ROWS_FUTURE = 1_300


@pytest.fixture(scope="module")
def slice_2025(tmp_path_factory: pytest.TempPathFactory) -> BarSeries:
    return write_slice(BTC_2025, 30_000, ROWS_FUTURE, tmp_path_factory.mktemp("hostile-slice"))


def test_daemon_refuses_future_dated_bars_live_and_over_rest_and_keeps_trading_after_restart(
    tmp_path: Path, processes: Processes, slice_2025: BarSeries
) -> None:
    # Arrange: a fake candle ten years ahead before every 50th real one over the WebSocket,
    # and one at the end of every backfill page; the sim keeps serving REST after its data.
    sim, sim_port = processes.sim(
        Path(slice_2025.source),
        "--inject",
        "future",
        "--inject-every",
        "50",
        "--rest-fault",
        "future",
        "--drop-every",
        "300",
        speed=150.0,
        exit_at_end=False,
    )
    http_port = free_port()
    state = tmp_path / "state.sqlite"
    config = write_config(
        tmp_path / "barbus.toml",
        sim_port=sim_port,
        http_port=http_port,
        state=state,
        engines=SMA,
    )

    # Act: run until 300 live bars are in, kill -9, restart, run to the end.
    daemon = processes.daemon(config)
    wait_until(
        lambda: (s := get_status(http_port)) is not None and s["bars_processed"] >= HISTORY + 300,
        30,
        "300 live bars",
        watch=daemon,
    )
    daemon.signal(signal.SIGKILL)
    daemon.wait(timeout=10)
    daemon = processes.daemon(config)
    final = wait_until(
        all_bars_processed(http_port, slice_2025, total=False), 40, "the last bar", watch=daemon
    )
    healthz = http_get(http_port, "/healthz")
    daemon.signal(signal.SIGTERM)
    code = daemon.wait(timeout=15)

    # Assert
    assert code == 0, daemon.log()[-3000:]
    assert healthz is not None
    assert healthz[0] == 200
    recorded = read_state(state)
    assert_bars_are_the_slice(recorded, slice_2025)
    assert final["feed"]["rejected"].get("future", 0) >= 1
    assert "bar rejected (future)" in daemon.log()
    assert "Traceback" not in daemon.log()
    assert sim.running()


def test_daemon_facing_duplicate_rows_in_rest_pages_keeps_running_and_records_the_real_bars(
    tmp_path: Path, processes: Processes, slice_2025: BarSeries
) -> None:
    # Arrange: holes (every 9th candle never sent live) and reconnects make the daemon backfill
    # all the time, and every backfill page repeats its first row. This used to kill it.
    _, sim_port = processes.sim(
        Path(slice_2025.source),
        "--skip-every",
        "9",
        "--drop-every",
        "200",
        "--rest-fault",
        "duplicate",
        speed=150.0,
        exit_at_end=False,
    )
    http_port = free_port()
    state = tmp_path / "state.sqlite"
    # A data end that falls on a skipped candle is only fetched by a reconnect's backfill.
    config = tuned(
        write_config(
            tmp_path / "barbus.toml",
            sim_port=sim_port,
            http_port=http_port,
            state=state,
            engines=SMA,
        ),
        receive_timeout_seconds=2.0,
    )

    # Act
    daemon = processes.daemon(config)
    healthz: list[int] = []

    def finished() -> dict[str, Any] | None:
        answer = http_get(http_port, "/healthz")
        if answer is not None:
            healthz.append(answer[0])
        status: dict[str, Any] | None = all_bars_processed(http_port, slice_2025)()
        return status

    final = wait_until(finished, 40, "every bar of the slice", watch=daemon)
    daemon.signal(signal.SIGTERM)
    code = daemon.wait(timeout=15)

    # Assert
    assert code == 0, daemon.log()[-3000:]
    assert len(healthz) > 10
    assert set(healthz) == {200}
    assert_bars_are_the_slice(read_state(state), slice_2025)
    assert final["feed"]["rejected"]["duplicate_row"] > 10
    assert final["feed"]["backfilled"] > 50
    assert "Traceback" not in daemon.log()


def test_sim_exchange_refuses_an_unknown_fault_kind_in_one_line() -> None:
    done = barbus("sim-exchange", "--port", "0", "--inject", "nonsense")

    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "barbus: error: sim-exchange: inject must be one of future, misaligned, time_1e30, price"
    ]


def test_restarted_daemon_judges_prices_against_the_recorded_close_and_accepts_a_new_level(
    tmp_path: Path, processes: Processes, slice_2025: BarSeries
) -> None:
    # Arrange: a daemon records the slice; then the exchange comes back with the next 100
    # minutes at 20 times the price (a broken feed, or a redenomination).
    first_sim, sim_port = processes.sim(Path(slice_2025.source), speed=300.0, exit_at_end=False)
    http_port = free_port()
    state = tmp_path / "state.sqlite"

    def configure(port: int) -> Path:
        return write_config(
            tmp_path / "barbus.toml", sim_port=port, http_port=http_port, state=state, engines=SMA
        )

    daemon = processes.daemon(configure(sim_port))
    wait_until(all_bars_processed(http_port, slice_2025), 30, "the slice", watch=daemon)
    daemon.stop_cleanly()
    first_sim.stop()
    later = bars_of(load_bars(BTC_2025))[30_000 + ROWS_FUTURE : 30_000 + ROWS_FUTURE + 100]
    assert later[0].open_time_ms == int(slice_2025.open_time_ms[-1]) + MINUTE_MS
    scaled = [
        b._replace(open=b.open * 20, high=b.high * 20, low=b.low * 20, close=b.close * 20)
        for b in later
    ]
    data = write_bars(tmp_path / "scaled" / "BTCUSDT_1m_scaled.csv", scaled)
    _, second_port = processes.sim(data, "--history-bars", "100", speed=300.0, exit_at_end=False)

    # Act
    daemon = processes.daemon(configure(second_port))
    final = wait_until(
        lambda: (
            (s := get_status(http_port)) is not None
            and s["strategies"][0]["last_bar"] == format_time_ms(scaled[-1].open_time_ms)
            and s
        ),
        30,
        "the scaled bars",
        watch=daemon,
    )
    daemon.stop_cleanly()

    # Assert: the first two scaled bars were refused, the third started the new level.
    bars = [bar for bar, _ in read_state(state).bars]
    assert bars == [*bars_of(slice_2025), *scaled[2:]]
    assert final["feed"]["rejected"] == {"implausible": 2}
    assert final["feed"]["gaps_recorded"] == 1
    assert "accepted at a new price level" in daemon.log()
    assert "Traceback" not in daemon.log()
