"""Metrics and readiness tell the truth (issue 10, items 8 and 9), with real processes.

``/metrics`` must describe the feed as it is when scraped (an outage included), and ``/readyz``
must follow the age of the last bar the daemon actually processed in this run, not of the last
message that arrived.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client import generate_latest

from barbus.daemon.config import load_config
from barbus.daemon.core.events import MINUTE_MS, Bar
from barbus.daemon.core.series import BarSeries
from barbus.daemon.feeds.binance_codec import encode_ws_kline
from barbus.daemon.service import Daemon
from barbus.daemon.state import StateStore
from barbus.replay.loader import load_bars
from tests.conftest import BTC_2025
from tests.factories import bars_of
from tests.kit.probes import all_bars_processed, get_status, http_get, metric_samples, sample
from tests.kit.processes import Processes
from tests.kit.scenario import ENGINES, one_engine_config, tuned, write_config, write_slice
from tests.kit.waiting import wait_until
from tests.net import free_port, free_ports

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

FEED_SERIES = (
    "barbus_feed_connected",
    "barbus_feed_reconnects_total",
    "barbus_feed_messages_malformed_total",
    "barbus_feed_messages_duplicated_total",
    "barbus_feed_messages_out_of_order_total",
    "barbus_feed_messages_unexpected_total",
    "barbus_feed_bars_backfilled_total",
    "barbus_feed_gaps_total",
)


def scrape(port: int) -> Samples | None:
    answer = http_get(port, "/metrics")
    return metric_samples(answer[1]) if answer is not None and answer[0] == 200 else None


# A recent minute: bars of the hostile exchange are in the past, as a real exchange's are.
RECENT_MS = (int(time.time() * 1000) // MINUTE_MS - 30) * MINUTE_MS


def unsubscribed(i: int) -> Bar:
    """Closed candles of a symbol the daemon did not subscribe to."""
    return Bar("ETHUSDT", "1m", RECENT_MS + i * MINUTE_MS, 1.0, 1.0, 1.0, 1.0, 1.0)


def two_then_stale(i: int) -> Bar:
    """Two good BTCUSDT candles, then the one before them again and again (stale)."""
    return Bar("BTCUSDT", "1m", RECENT_MS + (i if i < 2 else -1) * MINUTE_MS, 1, 1, 1, 1, 1)


class HostileExchange:
    """A WebSocket that sends closed candles ``bars(0), bars(1), ...`` every 20 ms on every
    connection (and a REST endpoint with no bars), on its own thread and event loop."""

    def __init__(self, bars: Callable[[int], Bar]) -> None:
        self.bars = bars
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._started.wait(10), "the hostile exchange did not start"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._started.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/stream", self._stream)
        app.router.add_get("/api/v3/klines", self._klines)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _klines(self, _: web.Request) -> web.Response:
        return web.json_response([])

    async def _stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        i = 0
        try:
            while not ws.closed:
                bar = self.bars(i)
                await ws.send_str(encode_ws_kline(bar, event_time_ms=int(time.time() * 1000)))
                i += 1
                await asyncio.sleep(0.02)
        except ConnectionError:
            pass  # the client went away
        finally:
            self._sockets.discard(ws)
        return ws

    def close(self) -> None:
        async def stop() -> None:
            assert self._runner is not None
            for ws in list(self._sockets):
                await ws.close()
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture
def hostile(request: pytest.FixtureRequest) -> Iterator[HostileExchange]:
    """Parametrize indirectly with the bar function."""
    exchange = HostileExchange(request.param)
    try:
        yield exchange
    finally:
        exchange.close()


@pytest.fixture(scope="module")
def short_slice(tmp_path_factory: pytest.TempPathFactory) -> BarSeries:
    return write_slice(BTC_2025, 20_000, 800, tmp_path_factory.mktemp("short-slice"))


# -- item 8: feed metrics at scrape time --------------------------------------------------------


def test_every_feed_series_exists_at_zero_before_the_feed_connects(
    tmp_path: Path, processes: Processes
) -> None:
    dead_port, http_port = free_ports(2)
    config = one_engine_config(tmp_path, sim_port=dead_port, http_port=http_port)
    daemon = processes.daemon(config)

    samples = wait_until(lambda: scrape(http_port), 30, "/metrics", watch=daemon)

    for name in FEED_SERIES:
        assert sample(samples, name) == 0.0, name
    for source in ("live", "backfill"):
        assert sample(samples, "barbus_bars_received_total", symbol="BTCUSDT", source=source) == 0
    for source in ("warmup", "live"):
        assert sample(samples, "barbus_bars_dropped_total", symbol="BTCUSDT", source=source) == 0
    rejected = {k: v for k, v in samples.items() if k[0] == "barbus_feed_bars_rejected_total"}
    assert rejected, "no barbus_feed_bars_rejected_total{reason} series"
    assert set(rejected.values()) == {0.0}
    assert sample(samples, "barbus_ready") == 0.0


def test_feed_metrics_say_disconnected_and_count_reconnects_during_an_outage(
    tmp_path: Path, processes: Processes, short_slice: BarSeries
) -> None:
    sim, sim_port = processes.sim(Path(short_slice.source), speed=1_000, exit_at_end=False)
    http_port = free_port()
    config = one_engine_config(tmp_path, sim_port=sim_port, http_port=http_port)
    daemon = processes.daemon(config)
    wait_until(all_bars_processed(http_port, short_slice), 60, "every bar", watch=daemon)
    before = scrape(http_port)
    assert before is not None
    assert sample(before, "barbus_feed_connected") == 1.0
    live = sample(before, "barbus_bars_received_total", symbol="BTCUSDT", source="live")
    assert live > 0

    sim.popen.kill()  # the exchange vanishes without a goodbye
    sim.wait(timeout=10)

    def outage() -> tuple[dict[str, object], Samples] | None:
        status = get_status(http_port)
        samples = scrape(http_port)
        if status is None or samples is None or status["feed"]["reconnects"] < 3:
            return None
        return status, samples

    status, during = wait_until(outage, 30, "three reconnect attempts", watch=daemon)
    feed = status["feed"]
    assert isinstance(feed, dict)
    assert feed["connected"] is False
    assert sample(during, "barbus_feed_connected") == 0.0
    assert sample(during, "barbus_feed_reconnects_total") >= 3
    assert sample(during, "barbus_ready") == 0.0
    # Nothing arrives during the outage: the bar counts stand where they were.
    assert sample(during, "barbus_bars_received_total", symbol="BTCUSDT", source="live") == live
    later = wait_until(
        lambda: (
            s
            if (s := scrape(http_port)) is not None
            and sample(s, "barbus_feed_reconnects_total")
            > sample(during, "barbus_feed_reconnects_total")
            else None
        ),
        30,
        "the reconnect counter to rise while disconnected",
        watch=daemon,
    )
    assert sample(later, "barbus_feed_connected") == 0.0
    assert (http_get(http_port, "/readyz") or (0, ""))[0] == 503


@pytest.mark.parametrize("hostile", [unsubscribed], indirect=True)
def test_messages_of_unsubscribed_streams_are_counted_in_metrics(
    tmp_path: Path, hostile: HostileExchange, processes: Processes
) -> None:
    http_port = free_port()
    config = tuned(
        one_engine_config(tmp_path, sim_port=hostile.port, http_port=http_port),
        warmup_bars=0,
    )
    daemon = processes.daemon(config)

    def counted() -> Samples | None:
        samples = scrape(http_port)
        unexpected = ("barbus_feed_messages_unexpected_total", frozenset[tuple[str, str]]())
        if samples is None or samples.get(unexpected, 0) < 20:
            return None
        return samples

    samples = wait_until(counted, 30, "unexpected messages counted", watch=daemon)

    assert sample(samples, "barbus_feed_connected") == 1.0
    assert sample(samples, "barbus_bars_received_total", symbol="BTCUSDT", source="live") == 0
    assert (
        "barbus_bars_received_total",
        frozenset({("symbol", "ETHUSDT"), ("source", "live")}),
    ) not in samples
    status = get_status(http_port)
    assert status is not None
    assert status["bars_processed"] == 0
    assert (http_get(http_port, "/readyz") or (0, ""))[0] == 503


# -- item 9: readiness follows the last processed bar -------------------------------------------


def test_restart_on_state_ahead_of_the_exchange_waits_for_a_processed_bar(
    tmp_path: Path, processes: Processes
) -> None:
    """Run A records rows 1500..2099. Run B restarts on that state against an exchange that
    replays rows 0..2599: every live bar up to row 2099 is stale and dropped, then bars flow."""
    ahead = write_slice(BTC_2025, 1_500, 600, tmp_path / "ahead")
    behind = write_slice(BTC_2025, 0, 2_600, tmp_path / "behind")
    assert behind.gaps().count == 0
    state = tmp_path / "state.sqlite"

    sim_a, port_a = processes.sim(Path(ahead.source), speed=1_000)
    http_port = free_port()
    config = write_config(
        tmp_path / "a.toml", sim_port=port_a, http_port=http_port, state=state, engines=ENGINES[:1]
    )
    first = processes.daemon(config)
    wait_until(all_bars_processed(http_port, ahead), 60, "run A's bars", watch=first)
    first.stop_cleanly()
    sim_a.stop()

    _, port_b = processes.sim(Path(behind.source), speed=400, exit_at_end=False)
    config = tuned(
        write_config(
            tmp_path / "b.toml",
            sim_port=port_b,
            http_port=http_port,
            state=state,
            engines=ENGINES[:1],
        ),
        max_bar_age_seconds=1.0,
    )
    daemon = processes.daemon(config)

    # Poll until bars are processed again; every answer before that must be "not ready".
    seen: list[tuple[tuple[int, str] | None, int, bool]] = []

    def processed() -> int | None:
        answer = http_get(http_port, "/readyz")
        status = get_status(http_port)
        if status is None or status["feed"] is None:
            return None
        if count := int(status["bars_processed"]):
            return count
        seen.append((answer, int(status["feed"]["out_of_order"]), status["feed"]["connected"]))
        return None

    wait_until(processed, 60, "a processed bar", watch=daemon)

    dropping = [answer for answer, out_of_order, connected in seen if connected and out_of_order]
    assert len(dropping) >= 10, seen[-5:]  # the drop run lasts ~4 s
    assert set(dropping) == {(503, "waiting for the first bar\n")}
    assert max(out_of_order for _, out_of_order, _ in seen) >= 1_000
    assert all(answer is None or answer[0] == 503 for answer, _, _ in seen)
    stall = [line for line in daemon.log().splitlines() if "no bar processed" in line]
    assert stall, daemon.log()[-3000:]
    assert "bars arrived and were dropped in this run" in stall[0]
    assert len(stall[0]) < 300

    ready = wait_until(
        lambda: a if (a := http_get(http_port, "/readyz")) and a[0] == 200 else None,
        10,
        "ready once bars are processed",
        watch=daemon,
    )
    assert ready == (200, "ready\n")
    wait_until(
        lambda: "processing bars again" in daemon.log(), 10, "the recovery line", watch=daemon
    )
    # The data ends while the exchange stays connected: not ready once the last bar is old.
    wait_until(
        lambda: (
            a
            if (a := http_get(http_port, "/readyz")) and a[1].startswith("no bar processed for")
            else None
        ),
        15,
        "not ready again after max_bar_age_seconds without a bar",
        watch=daemon,
    )
    assert "Traceback" not in daemon.log()


@pytest.mark.parametrize("hostile", [two_then_stale], indirect=True)
def test_daemon_that_only_drops_bars_is_not_ready_and_says_so(
    tmp_path: Path, hostile: HostileExchange, processes: Processes
) -> None:
    http_port = free_port()
    config = tuned(
        one_engine_config(tmp_path, sim_port=hostile.port, http_port=http_port),
        warmup_bars=0,
        max_bar_age_seconds=1.0,
    )
    daemon = processes.daemon(config)

    def logged() -> str | None:
        lines = [line for line in daemon.log().splitlines() if "no bar processed for" in line]
        return lines[0] if lines else None

    line = wait_until(logged, 30, "the stall logged", watch=daemon)
    status = get_status(http_port)
    readyz = http_get(http_port, "/readyz")

    assert status is not None
    assert status["bars_processed"] == 2
    assert status["feed"]["connected"] is True
    assert status["feed"]["out_of_order"] >= 20  # bars keep arriving, every one stale
    assert readyz is not None
    assert readyz[0] == 503
    assert readyz[1].startswith("no bar processed for ")
    assert "feed connected" in line
    assert "since the last one" in line
    dropped = int(line.split("; ")[1].split()[0])
    assert "bars arrived and were dropped" in line
    assert dropped >= 20
    samples = scrape(http_port)
    assert samples is not None
    assert sample(samples, "barbus_ready") == 0.0
    assert sample(samples, "barbus_feed_messages_out_of_order_total") >= dropped
    assert "Traceback" not in daemon.log()


# -- the daemon's own guard: a bar the feed let through that would poison the record ------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_bars_failing_the_daemons_guard_are_dropped_counted_and_logged(tmp_path: Path) -> None:
    """In process, with a real state file: the feed guarantees order, so a stale, duplicate or
    insane bar reaching the daemon is a feed bug; it must not stop the daemon or be recorded."""
    config = load_config(one_engine_config(tmp_path, sim_port=1, http_port=0))
    b = bars_of(load_bars(BTC_2025))[:4]
    insane = b[2]._replace(high=math.inf)
    records = _Records()
    logger = logging.getLogger("barbus.daemon")
    logger.addHandler(records)
    state = StateStore(config.state_path)
    daemon = Daemon(config, store=state)
    try:
        daemon.restore()
        for bar in (b[0], b[1], b[0], b[1], insane, b[2], b[3]):
            daemon.books.process(bar, "live")
        recorded = [bar for bar, _ in state.bars("BTCUSDT")]
        samples = metric_samples(generate_latest(daemon.metrics.registry).decode())
    finally:
        state.close()
        logger.removeHandler(records)

    assert recorded == b
    assert (daemon.books.bars_processed, daemon.books.bars_dropped) == (4, 3)
    assert daemon.view.status()["bars_dropped"] == 3
    assert sample(samples, "barbus_bars_dropped_total", symbol="BTCUSDT", source="live") == 3
    assert sample(samples, "barbus_bars_dropped_total", symbol="BTCUSDT", source="warmup") == 0
    dropped = [line for line in records.lines if "dropped" in line]
    assert len(dropped) == 2, records.lines  # the first of the run, then the run's size
    assert dropped[0].startswith("live bar dropped: ")
    assert "3 BTCUSDT bar(s) dropped before" in dropped[1]
