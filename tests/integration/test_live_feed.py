"""The live feed against the simulated exchange over real sockets on 127.0.0.1: no mocks.

The exchange is the real :class:`SimExchange` app served by aiohttp's ``AppRunner`` and
``TCPSite``; the client is the real :class:`BinanceFeed`. Data is a real slice of the bundled
2023 file around the 2023-03-24 halt: 72 flat zero-volume minutes, then an 80-minute gap.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from barbus.daemon.core.events import MINUTE_MS, Bar, parse_utc_ms
from barbus.daemon.core.series import BarSeries
from barbus.daemon.feeds.binance import BinanceFeed
from barbus.daemon.feeds.binance_codec import decode_rest_klines, decode_ws_message
from barbus.daemon.feeds.binance_config import FeedConfig, FeedCounters
from barbus.daemon.feeds.sim import SimExchange
from barbus.daemon.feeds.sim_faults import FaultConfig
from barbus.replay.bars_out import write_bars
from barbus.replay.loader import load_bars
from tests.factories import bars_of
from tests.kit.processes import Proc, Processes, announced
from tests.net import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SYMBOL = "BTCUSDT"
HOST = "127.0.0.1"
SLICE_START_MS = parse_utc_ms("2023-03-23T12:00")
SLICE_END_MS = parse_utc_ms("2023-03-25T00:00")  # 2,160 minutes, 80 of them missing
TAIL_MINUTES = 30  # served after the slice in fault runs, so a fault at the very end resolves
LAST_BEFORE_GAP_MS = parse_utc_ms("2023-03-24T12:39")
FIRST_AFTER_GAP_MS = parse_utc_ms("2023-03-24T14:00")
HALT_START_MS = parse_utc_ms("2023-03-24T11:28")

# -- data ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bars_2023(btc_2023_path: Path) -> BarSeries:
    return load_bars(btc_2023_path)


@pytest.fixture(scope="module")
def halt_slice(bars_2023: BarSeries) -> BarSeries:
    """2,080 real minutes from 2023-03-23 12:00 to 2023-03-25 00:00, across the halt and gap."""
    return bars_2023.between(SLICE_START_MS, SLICE_END_MS)


@pytest.fixture(scope="module")
def halt_slice_with_tail(bars_2023: BarSeries) -> BarSeries:
    return bars_2023.between(SLICE_START_MS, SLICE_END_MS + TAIL_MINUTES * MINUTE_MS)


def first_bars(series: BarSeries, count: int) -> BarSeries:
    return series.between(None, int(series.open_time_ms[count]))


# -- the simulated exchange ----------------------------------------------------------------------


@dataclass
class RunningSim:
    exchange: SimExchange
    port: int

    @property
    def rest_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}"

    def feed_config(self, **options: Any) -> FeedConfig:
        return FeedConfig(self.rest_url, self.ws_url, (SYMBOL,), **options)


@asynccontextmanager
async def running_sim(
    series: BarSeries,
    *,
    speed: float,
    history_bars: int,
    faults: FaultConfig | None = None,
    port: int = 0,
    middlewares: Sequence[Any] = (),
) -> AsyncIterator[RunningSim]:
    """The real SimExchange app on 127.0.0.1 (``port`` 0: any free port), cleaned up after;
    ``middlewares`` (aiohttp) see every request, e.g. to record what a client asked."""
    exchange = SimExchange([series], speed=speed, history_bars=history_bars, faults=faults)
    app = exchange.app()
    app.middlewares.extend(middlewares)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, HOST, port).start()
        yield RunningSim(exchange, int(runner.addresses[0][1]))
    finally:
        await runner.cleanup()


async def get_json(url: str, **params: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url, params=params) as response:
        return response.status, await response.json()


async def get_klines(sim: RunningSim, **params: str) -> list[Bar]:
    status, payload = await get_json(
        f"{sim.rest_url}/api/v3/klines", symbol=SYMBOL, interval="1m", **params
    )
    assert status == 200, payload
    return decode_rest_klines(payload, SYMBOL, "1m")


async def sim_status(sim: RunningSim) -> dict[str, Any]:
    status, payload = await get_json(f"{sim.rest_url}/sim/status")
    assert status == 200
    assert isinstance(payload, dict)
    return payload


# -- the feed, consumed in a task ------------------------------------------------------------------


@dataclass
class FeedRun:
    """A feed whose ``batches()`` are consumed by a task into ``received``."""

    feed: BinanceFeed
    received: list[Bar] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    async def _consume(self) -> None:
        async for batch in self.feed.batches():
            self.received.extend(batch)

    def start(self) -> None:
        self.task = asyncio.create_task(self._consume())

    @property
    def counters(self) -> FeedCounters:
        return self.feed.counters

    def raise_if_failed(self) -> None:
        """Re-raise whatever escaped the feed's iterator (it should never end by itself)."""
        assert self.task is not None
        if self.task.done():
            self.task.result()
            raise AssertionError("feed.batches() ended without being stopped")

    async def wait_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Poll ``done`` until true or ``timeout``; raise what escaped the feed meanwhile."""
        deadline = time.monotonic() + timeout
        while not done():
            self.raise_if_failed()
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def wait_for_bar(self, open_time_ms: int, timeout: float) -> None:
        reached = await self.wait_until(
            lambda: bool(self.received) and self.received[-1].open_time_ms >= open_time_ms,
            timeout,
        )
        last = self.received[-1].open_time_ms if self.received else None
        assert reached, f"bar {open_time_ms} not delivered in {timeout} s (last: {last})"

    async def stop(self, timeout: float = 10.0) -> float:
        """``feed.stop()``, then wait for the iterator to end; seconds it took."""
        assert self.task is not None
        started = time.monotonic()
        await self.feed.stop()
        await asyncio.wait({self.task}, timeout=timeout)
        elapsed = time.monotonic() - started
        await self._cancel()
        return elapsed

    async def _cancel(self) -> None:
        assert self.task is not None
        if not self.task.done():
            self.task.cancel()
        with suppress(asyncio.CancelledError):
            await self.task


@asynccontextmanager
async def feed_running(config: FeedConfig, last_open_ms: int | None) -> AsyncIterator[FeedRun]:
    """A started feed; stopped (and its task cancelled if need be) on the way out."""
    run = FeedRun(BinanceFeed(config, {SYMBOL: last_open_ms}))
    run.start()
    try:
        yield run
    finally:
        assert run.task is not None
        if not run.task.done():
            await run.feed.stop()
            await asyncio.wait({run.task}, timeout=5.0)
        await run._cancel()


async def warm_up(sim: RunningSim, count: int = 500) -> list[Bar]:
    """What a daemon does at start: the most recent closed bars, over REST."""
    return await BinanceFeed(sim.feed_config(), {}).fetch_recent(SYMBOL, count)


def after(bars: list[Bar], open_time_ms: int) -> list[Bar]:
    return [b for b in bars if b.open_time_ms > open_time_ms]


def assert_strictly_rising(bars: list[Bar]) -> None:
    steps = [b.open_time_ms - a.open_time_ms for a, b in itertools.pairwise(bars)]
    assert all(step > 0 for step in steps), "open times are not strictly increasing"


def assert_counters_add_up(run: FeedRun) -> None:
    assert run.counters.live_bars + run.counters.backfilled == len(run.received)


# -- REST ----------------------------------------------------------------------------------------


@pytest.fixture
async def frozen_sim(halt_slice: BarSeries) -> AsyncIterator[RunningSim]:
    """A sim in real time (one bar a minute): its virtual now does not move during a test.

    1,700 history bars put the virtual now at 2023-03-24 16:21, after the 80-minute gap.
    """
    async with running_sim(halt_slice, speed=0, history_bars=1700) as sim:
        yield sim


async def test_klines_without_a_range_are_the_500_most_recent_closed(
    frozen_sim: RunningSim, halt_slice: BarSeries
) -> None:
    # Arrange
    now_ms = (await sim_status(frozen_sim))["now_ms"]
    closed = [b for b in bars_of(halt_slice) if b.open_time_ms + MINUTE_MS <= now_ms]

    # Act
    bars = await get_klines(frozen_sim)

    # Assert
    assert bars == closed[-500:]
    assert bars[-1].open_time_ms == now_ms - MINUTE_MS  # the minute that just closed is there


async def test_klines_honour_start_and_end_time_inclusively(
    frozen_sim: RunningSim, halt_slice: BarSeries
) -> None:
    # Arrange
    source = bars_of(halt_slice)
    start, end = source[10].open_time_ms, source[20].open_time_ms

    # Act
    exact = await get_klines(frozen_sim, startTime=str(start), endTime=str(end))
    mid_minute = await get_klines(frozen_sim, startTime=str(start + 1), endTime=str(end - 1))

    # Assert
    assert exact == source[10:21]
    assert mid_minute == source[11:20]


@pytest.mark.parametrize(
    ("limit", "expected"), [("7", 7), ("1000", 1000), ("1001", 1000), ("5000", 1000)]
)
async def test_klines_limit_is_honoured_up_to_1000(
    frozen_sim: RunningSim, halt_slice: BarSeries, limit: str, expected: int
) -> None:
    # Arrange
    source = bars_of(halt_slice)

    # Act
    bars = await get_klines(frozen_sim, startTime=str(source[0].open_time_ms), limit=limit)

    # Assert
    assert bars == source[:expected]


async def test_klines_return_only_candles_closed_at_the_virtual_now(
    frozen_sim: RunningSim, halt_slice: BarSeries
) -> None:
    # Arrange: the candle opened one minute before now has just closed; the one opened at now
    # (and every later one) is still to come, though the sim's data holds them.
    source = bars_of(halt_slice)
    now_ms = (await sim_status(frozen_sim))["now_ms"]
    expected = [b for b in source if now_ms - 5 * MINUTE_MS <= b.open_time_ms < now_ms]

    # Act: ask for far more than exists, up to far in the future.
    bars = await get_klines(
        frozen_sim, startTime=str(now_ms - 5 * MINUTE_MS), endTime=str(now_ms + 600 * MINUTE_MS)
    )

    # Assert
    assert bars == expected
    assert [b.open_time_ms for b in bars] == [now_ms - k * MINUTE_MS for k in range(5, 0, -1)]
    assert any(b.open_time_ms == now_ms for b in source)


async def test_klines_across_the_gap_skip_the_missing_minutes(
    frozen_sim: RunningSim, halt_slice: BarSeries
) -> None:
    # Arrange
    source = bars_of(halt_slice)
    expected = [b for b in source if b.open_time_ms >= LAST_BEFORE_GAP_MS - 2 * MINUTE_MS][:5]

    # Act
    across = await get_klines(
        frozen_sim, startTime=str(LAST_BEFORE_GAP_MS - 2 * MINUTE_MS), limit="5"
    )
    inside = await get_klines(
        frozen_sim, startTime=str(LAST_BEFORE_GAP_MS + 10 * MINUTE_MS), limit="2"
    )

    # Assert
    assert across == expected
    assert [b.open_time_ms for b in across[2:4]] == [LAST_BEFORE_GAP_MS, FIRST_AFTER_GAP_MS]
    assert inside[0].open_time_ms == FIRST_AFTER_GAP_MS


@pytest.mark.parametrize(
    ("params", "code"),
    [
        pytest.param({"symbol": "ETHUSDT", "interval": "1m"}, -1121, id="unknown-symbol"),
        pytest.param({"symbol": "NOPE", "interval": "1m"}, -1121, id="made-up-symbol"),
        pytest.param({"interval": "1m"}, -1121, id="no-symbol"),
        pytest.param({"symbol": SYMBOL, "interval": "5m"}, -1121, id="interval-not-served"),
        pytest.param(
            {"symbol": SYMBOL, "interval": "1m", "startTime": "yesterday"}, -1100, id="bad-start"
        ),
        pytest.param({"symbol": SYMBOL, "interval": "1m", "limit": "ten"}, -1100, id="bad-limit"),
    ],
)
async def test_klines_bad_request_is_a_400_with_a_binance_error(
    frozen_sim: RunningSim, params: dict[str, str], code: int
) -> None:
    # Act
    status, payload = await get_json(f"{frozen_sim.rest_url}/api/v3/klines", **params)

    # Assert
    assert status == 400
    assert payload["code"] == code
    assert payload["msg"]


async def test_sim_status_before_the_clock_moves(
    frozen_sim: RunningSim, halt_slice: BarSeries
) -> None:
    # Act
    status = await sim_status(frozen_sim)

    # Assert: 1,700 minutes of history, and the first tick has closed one more.
    assert status == {
        "now_ms": SLICE_START_MS + 1701 * MINUTE_MS,
        "last_open_ms": int(halt_slice.open_time_ms[-1]),
        "finished": False,
        "subscribers": 0,
        "final_candles_sent": 0,
        "pauses": 0,
    }


async def test_sim_status_reports_progress_to_the_end(halt_slice: BarSeries) -> None:
    # Arrange
    series = first_bars(halt_slice, 300)
    last_open_ms = int(series.open_time_ms[-1])
    async with (
        running_sim(series, speed=1000, history_bars=100) as sim,
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{sim.ws_url}/stream?streams=btcusdt@kline_1m") as ws,
    ):
        # Act
        seen = [await sim_status(sim)]
        deadline = time.monotonic() + 20
        while not seen[-1]["finished"] and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            seen.append(await sim_status(sim))
        await ws.close()

    # Assert
    now_values = [s["now_ms"] for s in seen]
    assert now_values == sorted(now_values)
    assert seen[-1]["finished"] is True
    assert seen[-1]["now_ms"] > last_open_ms
    assert seen[-1]["last_open_ms"] == last_open_ms
    assert seen[-1]["subscribers"] == 1
    assert 0 < seen[-1]["final_candles_sent"] <= 300 - 100


# -- WebSocket: SUBSCRIBE on a raw stream ---------------------------------------------------------


async def test_subscribe_on_a_raw_connection_is_acknowledged_then_streams_klines(
    halt_slice: BarSeries,
) -> None:
    # Arrange
    source = bars_of(halt_slice)
    async with (
        running_sim(halt_slice, speed=500, history_bars=500) as sim,
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{sim.ws_url}/ws/ethusdt@kline_1m") as ws,  # nothing to stream
    ):
        # Act
        await ws.send_str('{"method":"SUBSCRIBE","params":["btcusdt@kline_1m"],"id":7}')
        ack = await ws.receive(timeout=5)
        texts: list[str] = []
        bars: list[Bar] = []
        while len(bars) < 20:
            message = await ws.receive(timeout=5)
            assert message.type == aiohttp.WSMsgType.TEXT, message
            texts.append(message.data)
            bar = decode_ws_message(message.data)
            if bar is not None:
                bars.append(bar)

    # Assert
    assert ack.type == aiohttp.WSMsgType.TEXT
    assert json.loads(ack.data) == {"result": None, "id": 7}
    assert all(json.loads(t)["e"] == "kline" for t in texts)  # raw events, no envelope
    first = source.index(bars[0])
    assert bars == source[first : first + 20]
    assert len(texts) == 40  # an open-candle update before each final candle


# -- the feed: clean run -------------------------------------------------------------------------


async def test_clean_run_delivers_every_later_bar_exactly_once(halt_slice: BarSeries) -> None:
    # Arrange
    source = bars_of(halt_slice)
    async with running_sim(halt_slice, speed=1000, history_bars=500) as sim:
        warm = await warm_up(sim)
        expected = after(source, warm[-1].open_time_ms)
        async with feed_running(sim.feed_config(), warm[-1].open_time_ms) as run:
            # Act
            await run.wait_for_bar(source[-1].open_time_ms, timeout=30)
            stop_seconds = await run.stop()

    # Assert
    start = source.index(warm[0])
    assert warm == source[start : start + 500]
    assert run.received == expected
    assert_strictly_rising(run.received)
    assert len(expected) > 1400
    assert stop_seconds < 1.0
    assert_counters_add_up(run)
    assert run.counters.malformed == 0
    assert run.counters.unexpected == 0
    assert run.counters.reconnects == 0


async def test_clean_run_crosses_the_halt_and_the_gap_without_inventing_bars(
    halt_slice: BarSeries,
) -> None:
    # Arrange
    source = bars_of(halt_slice)
    async with running_sim(halt_slice, speed=1000, history_bars=500) as sim:
        warm = await warm_up(sim)
        async with feed_running(sim.feed_config(), warm[-1].open_time_ms) as run:
            # Act
            await run.wait_for_bar(source[-1].open_time_ms, timeout=30)

    # Assert
    times = [b.open_time_ms for b in run.received]
    across = times.index(LAST_BEFORE_GAP_MS)
    assert times[across + 1] == FIRST_AFTER_GAP_MS
    assert not [t for t in times if LAST_BEFORE_GAP_MS < t < FIRST_AFTER_GAP_MS]
    flat = [b for b in run.received if HALT_START_MS <= b.open_time_ms <= LAST_BEFORE_GAP_MS]
    assert len(flat) == 72
    assert all(b.volume == 0.0 and b.open == b.high == b.low == b.close for b in flat)
    assert flat == [b for b in source if HALT_START_MS <= b.open_time_ms <= LAST_BEFORE_GAP_MS]


# -- the feed under faults -------------------------------------------------------------------------

FAULTS = [
    pytest.param(FaultConfig(drop_every=300), ("reconnects", "backfilled"), id="drop"),
    pytest.param(FaultConfig(malformed_every=40), ("malformed",), id="malformed"),
    pytest.param(FaultConfig(duplicate_probability=0.2), ("duplicates",), id="duplicate"),
    pytest.param(
        FaultConfig(reorder_probability=0.2), ("out_of_order", "backfilled"), id="reorder"
    ),
    pytest.param(FaultConfig(pause_every=400, pause_seconds=0.1), (), id="pause"),
    pytest.param(
        FaultConfig(
            drop_every=300,
            malformed_every=40,
            duplicate_probability=0.2,
            reorder_probability=0.2,
            pause_every=400,
            pause_seconds=0.1,
        ),
        ("reconnects", "backfilled", "malformed", "duplicates", "out_of_order"),
        id="all-together",
    ),
]


@pytest.mark.parametrize(("faults", "seen"), FAULTS)
async def test_feed_under_faults_still_delivers_exactly_the_source_series(
    halt_slice_with_tail: BarSeries,
    faults: FaultConfig,
    seen: tuple[str, ...],
) -> None:
    # Arrange: the sim serves 30 minutes past the slice, so a fault on the slice's last bar is
    # followed by more traffic (see test_reorder_fault_still_sends_the_last_candle_of_the_data).
    source = bars_of(halt_slice_with_tail)
    slice_last_ms = SLICE_END_MS - MINUTE_MS
    config_options = {"reconnect_initial_seconds": 0.05, "reconnect_max_seconds": 0.5}
    async with running_sim(
        halt_slice_with_tail, speed=2000, history_bars=500, faults=faults
    ) as sim:
        warm = await warm_up(sim)
        expected = after(source, warm[-1].open_time_ms)
        async with feed_running(sim.feed_config(**config_options), warm[-1].open_time_ms) as run:
            # Act
            await run.wait_for_bar(slice_last_ms, timeout=40)
            await run.stop()

    # Assert: exactly the source series, at least up to the slice's last bar.
    assert run.received == expected[: len(run.received)]
    assert run.received[-1].open_time_ms >= slice_last_ms
    assert_strictly_rising(run.received)
    assert_counters_add_up(run)
    counters = run.counters
    assert {name: getattr(counters, name) > 0 for name in seen} == dict.fromkeys(seen, True)
    assert counters.unexpected == 0
    if not faults.malformed_every:
        assert counters.malformed == 0


async def test_reorder_fault_still_sends_the_last_candle_of_the_data(
    halt_slice: BarSeries,
) -> None:
    # Arrange: ten bars, eight closed at start; the ninth closes at once (before anyone
    # connects), the tenth half a second later. With reorder_probability=1 the sim holds a
    # final candle back until the next one: the last candle of the data has no next one.
    series = first_bars(halt_slice, 10)
    source = bars_of(series)
    faults = FaultConfig(reorder_probability=1.0, partial_updates=False)
    async with running_sim(series, speed=2, history_bars=8, faults=faults) as sim:
        warm = await warm_up(sim, 10)
        async with feed_running(sim.feed_config(), warm[-1].open_time_ms) as run:
            # Act
            await asyncio.wait_for(sim.exchange.finished.wait(), timeout=10)
            delivered = await run.wait_until(lambda: len(run.received) >= 1, timeout=2.0)
        final_candles_sent = sim.exchange.sent_final

    # Assert
    assert warm == source[:9]
    assert final_candles_sent == 1
    assert delivered, "the last candle was never sent: the reorder fault dropped it"
    assert run.received == source[9:]


# -- the feed against a dead exchange -------------------------------------------------------------


def config_at(port: int, **options: Any) -> FeedConfig:
    """The feed's config for an exchange on ``port`` of this host (maybe none there yet)."""
    return FeedConfig(f"http://{HOST}:{port}", f"ws://{HOST}:{port}", (SYMBOL,), **options)


async def test_dead_exchange_is_retried_with_growing_delays_without_raising() -> None:
    # Arrange
    port = free_port()
    config = config_at(port, reconnect_initial_seconds=0.1, reconnect_max_seconds=10.0)
    retried_at: list[float] = []
    async with feed_running(config, SLICE_START_MS) as run:
        # Act
        def count_retries() -> bool:
            while len(retried_at) < run.counters.reconnects:
                retried_at.append(time.monotonic())
            return len(retried_at) >= 5

        reached = await run.wait_until(count_retries, timeout=15)

    # Assert: delay i lies in [0.05, 0.1] * 2**i, so delay i + 2 is at least twice delay i.
    assert reached
    gaps = [b - a for a, b in itertools.pairwise(retried_at)]
    assert all(gaps[i + 2] > 1.5 * gaps[i] for i in range(len(gaps) - 2)), gaps
    assert gaps[-1] > 3 * gaps[0], gaps
    assert not run.received
    assert all("ClientConnectorError" in e for e in run.counters.errors)


async def test_stop_ends_the_iterator_promptly_while_backing_off() -> None:
    # Arrange: let the backoff grow until the feed sleeps >= 0.8 s before its next attempt.
    port = free_port()
    config = config_at(port, reconnect_initial_seconds=0.1, reconnect_max_seconds=10.0)
    async with feed_running(config, SLICE_START_MS) as run:
        reached = await run.wait_until(lambda: run.counters.reconnects >= 5, timeout=15)
        assert reached

        # Act
        stop_seconds = await run.stop()

    # Assert
    assert stop_seconds < 0.5, f"stop() took {stop_seconds:.2f} s to end the iterator"


async def test_sim_started_later_on_the_port_is_picked_up_and_backfilled(
    halt_slice: BarSeries,
) -> None:
    # Arrange: the feed last saw the first bar; 1,479 more are closed when the sim appears
    # (its virtual now starts inside the gap), so catching up takes two REST pages of 1,000.
    source = bars_of(halt_slice)
    port = free_port()
    config = config_at(port, reconnect_initial_seconds=0.2, reconnect_max_seconds=1.0)
    async with feed_running(config, source[0].open_time_ms) as run:
        await asyncio.sleep(1.0)  # the exchange is down for a second
        run.raise_if_failed()
        retries_while_down = run.counters.reconnects

        # Act
        async with running_sim(halt_slice, speed=2000, history_bars=1500, port=port) as sim:
            await run.wait_for_bar(source[-1].open_time_ms, timeout=30)
            await run.stop()
        assert sim.port == port

    # Assert
    assert retries_while_down >= 2
    assert run.received == source[1:]
    closed_at_start = [b for b in source if b.open_time_ms < SLICE_START_MS + 1501 * MINUTE_MS]
    assert run.counters.backfilled >= len(closed_at_start) - 1 > 1000
    assert_counters_add_up(run)


async def test_pause_fault_counts_messages_of_the_run_so_connection_drops_cannot_hide_it(
    halt_slice: BarSeries,
) -> None:
    # Arrange: every connection is closed after 5 messages, a pause is due every 7th message.
    # Counted per connection (as it once was), 7 is never reached and the pause never fires.
    series = first_bars(halt_slice, 80)
    source = bars_of(series)
    faults = FaultConfig(drop_every=5, pause_every=7, pause_seconds=0.01, partial_updates=False)
    options = {"reconnect_initial_seconds": 0.02, "reconnect_max_seconds": 0.1}
    async with running_sim(series, speed=200, history_bars=40, faults=faults) as sim:
        warm = await warm_up(sim)
        async with feed_running(sim.feed_config(**options), warm[-1].open_time_ms) as run:
            # Act
            await run.wait_for_bar(source[-1].open_time_ms, timeout=30)
            await run.stop()
        status = await sim_status(sim)

    # Assert: one pause per 7 messages sent, and the bars still arrive exactly once.
    assert run.received == after(source, warm[-1].open_time_ms)
    assert run.counters.reconnects > 0
    assert status["pauses"] == sim.exchange.sent_messages // 7 > 0


# -- the feed with a receive timeout -------------------------------------------------------------


async def test_receive_timeout_on_a_paused_sim_reconnects_and_delivers_exactly_once(
    halt_slice: BarSeries,
) -> None:
    # Arrange: the sim goes silent for 2 s after every message; the feed gives up after 0.5 s.
    series = first_bars(halt_slice, 31)
    source = bars_of(series)
    faults = FaultConfig(pause_every=1, pause_seconds=2.0)
    options = {
        "receive_timeout_seconds": 0.5,
        "reconnect_initial_seconds": 0.1,
        "reconnect_max_seconds": 0.5,
    }
    async with running_sim(series, speed=2, history_bars=26, faults=faults) as sim:
        warm = await warm_up(sim, 100)
        async with feed_running(sim.feed_config(**options), warm[-1].open_time_ms) as run:
            # Act
            await run.wait_for_bar(source[-1].open_time_ms, timeout=40)
            await run.stop()

    # Assert
    assert warm == source[:27]
    assert run.received == source[27:]
    assert run.counters.reconnects > 0
    assert any("TimeoutError" in error for error in run.counters.errors)
    assert_counters_add_up(run)


# -- the deprecation that breaks the feed under -W error -----------------------------------------


async def test_feed_uses_no_deprecated_aiohttp_argument(halt_slice: BarSeries) -> None:
    # Arrange
    series = first_bars(halt_slice, 600)
    async with running_sim(series, speed=500, history_bars=500) as sim:
        warm = await warm_up(sim)
        async with feed_running(sim.feed_config(), warm[-1].open_time_ms) as run:
            # Act: pyproject's filterwarnings=error turns any DeprecationWarning into an error.
            await run.wait_for_bar(int(series.open_time_ms[-1]), timeout=20)

    # Assert
    assert run.received == after(bars_of(series), warm[-1].open_time_ms)


# -- the command line ----------------------------------------------------------------------------


@dataclass
class SimProcess:
    """``barbus sim-exchange ... --exit-at-end`` running as a subprocess."""

    process: Proc
    host: str
    port: int

    @property
    def ws_stream_url(self) -> str:
        return f"ws://{self.host}:{self.port}/stream?streams=btcusdt@kline_1m"


def small_data_file(folder: Path, bars: list[Bar]) -> Path:
    """``bars`` as a barbus CSV whose name starts with the symbol (exact float text)."""
    return write_bars(folder / "BTCUSDT_1m_small.csv", bars)


def cli_sim_exchange(processes: Processes, data: Path) -> SimProcess:
    """The CLI sim on any free port, 100 history bars, 200 bars/s (ended at teardown)."""
    proc, port = processes.sim(data, speed=200, history=100, start_on_connect=False)
    return SimProcess(proc, announced(proc)["host"], port)


async def read_bars_until(
    ws: aiohttp.ClientWebSocketResponse, last_open_ms: int | None
) -> list[Bar]:
    """Closed bars from ``ws`` until the one opened at ``last_open_ms`` (None: until closed)."""
    bars: list[Bar] = []
    async for message in ws:
        bar = decode_ws_message(message.data)
        if bar is not None:
            bars.append(bar)
            if bar.open_time_ms == last_open_ms:
                break
    return bars


async def test_cli_sim_exchange_prints_its_port_serves_klines_and_exits_at_the_end(
    tmp_path: Path, halt_slice: BarSeries, processes: Processes
) -> None:
    # Arrange: 300 real minutes, 100 of them history; 200 more at 200 bars/s.
    source = bars_of(first_bars(halt_slice, 300))
    data = small_data_file(tmp_path, source)
    sim = cli_sim_exchange(processes, data)
    # Act
    status, rows = await get_json(
        f"http://{sim.host}:{sim.port}/api/v3/klines",
        symbol=SYMBOL,
        interval="1m",
        startTime=str(source[0].open_time_ms),
        limit="1000",
    )
    async with aiohttp.ClientSession() as session, session.ws_connect(sim.ws_stream_url) as ws:
        live = await asyncio.wait_for(read_bars_until(ws, source[-1].open_time_ms), timeout=30)
    code = sim.process.wait(timeout=15)

    # Assert
    assert sim.host == HOST
    assert sim.port > 0
    assert status == 200
    served = decode_rest_klines(rows, SYMBOL, "1m")
    assert len(served) >= 101
    assert served == source[: len(served)]
    assert live, "no live kline before the end"
    first = source.index(live[0])
    assert live == source[first:]
    assert code == 0, sim.process.log()
    assert len(sim.process.stdout().splitlines()) == 1  # the port line is the only thing printed


async def test_cli_sim_exchange_exits_at_the_end_while_a_client_stays_connected(
    tmp_path: Path, halt_slice: BarSeries, processes: Processes
) -> None:
    # Arrange: the data ends about 1 s after start, then the sim lingers 1 s and exits.
    source = bars_of(first_bars(halt_slice, 300))
    data = small_data_file(tmp_path, source)
    sim = cli_sim_exchange(processes, data)
    async with aiohttp.ClientSession() as session, session.ws_connect(sim.ws_stream_url) as ws:
        # Act: a client that keeps listening, as a daemon would.
        live = await asyncio.wait_for(read_bars_until(ws, source[-1].open_time_ms), timeout=30)
        last_bar_at = time.monotonic()
        try:
            await asyncio.wait_for(read_bars_until(ws, None), timeout=6)
            closed = True
        except TimeoutError:
            closed = False
        closed_after = time.monotonic() - last_bar_at

    # Assert
    assert live[-1] == source[-1]
    assert closed, f"the sim still held the connection {closed_after:.1f} s after its data ended"
    assert sim.process.wait(timeout=5) == 0
