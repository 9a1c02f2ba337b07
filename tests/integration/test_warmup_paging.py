"""Warm-up over REST beyond one page: the feed pages back through the sim exchange's history.

The sim runs in-process (its aiohttp app on a loopback port) with a middleware that records
every klines query, so the test sees the pages asked for as well as the bars delivered; the
expected bars are the slice's own rows, indexed by hand.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from aiohttp import web

from barbus.daemon.events import MINUTE_MS, Bar
from barbus.daemon.feeds.binance import BinanceFeed, FeedConfig
from barbus.daemon.feeds.sim import SimExchange
from barbus.replay.loader import load_bars
from tests.conftest import BTC_2025
from tests.factories import bars_of, series_from_bars
from tests.net import free_port

ROWS = 3_000


@dataclass
class Served:
    """A sim exchange on a port, the bars it holds, and the klines queries it answered."""

    feed: BinanceFeed
    bars: list[Bar]
    queries: list[dict[str, str]]
    exchange: SimExchange


@pytest.fixture
def rows() -> list[Bar]:
    return bars_of(load_bars(BTC_2025))[10_000 : 10_000 + ROWS]


async def serve(rows: list[Bar], history: int, page_limit: int = 1000) -> AsyncIterator[Served]:
    exchange = SimExchange([series_from_bars(rows)], history_bars=history, start_on_connect=True)
    queries: list[dict[str, str]] = []

    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path == "/api/v3/klines":
            queries.append(dict(request.query))
        return await handler(request)

    app = exchange.app()
    app.middlewares.append(record)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    config = FeedConfig(
        rest_url=f"http://127.0.0.1:{port}",
        ws_url=f"ws://127.0.0.1:{port}",
        symbols=("BTCUSDT",),
        rest_page_limit=page_limit,
    )
    try:
        yield Served(BinanceFeed(config, {"BTCUSDT": None}), rows, queries, exchange)
    finally:
        await runner.cleanup()


@pytest.fixture
async def sim_2500(rows: list[Bar]) -> AsyncIterator[Served]:
    async for served in serve(rows, history=2_500):
        yield served


async def test_warm_up_pages_back_beyond_one_request_without_duplicates(sim_2500: Served) -> None:
    bars = await sim_2500.feed.fetch_recent("BTCUSDT", 2_200)

    # The sim's clock has not started: exactly the first 2,500 rows are closed.
    assert bars == sim_2500.bars[300:2_500]
    times = [b.open_time_ms for b in bars]
    assert all(b - a == MINUTE_MS for a, b in itertools.pairwise(times))
    # Newest page first (no range), then older ones ending a minute before the oldest bar so far.
    first_open = sim_2500.bars[1_500].open_time_ms
    second_open = sim_2500.bars[500].open_time_ms
    asked = {"symbol": "BTCUSDT", "interval": "1m"}
    assert sim_2500.queries == [
        {**asked, "limit": "1000"},
        {**asked, "limit": "1000", "endTime": str(first_open - MINUTE_MS)},
        {**asked, "limit": "200", "endTime": str(second_open - MINUTE_MS)},
    ]
    assert sim_2500.feed.counters.rejected == {}


async def test_warm_up_stops_at_a_short_page_when_the_exchange_has_fewer_bars(
    sim_2500: Served,
) -> None:
    bars = await sim_2500.feed.fetch_recent("BTCUSDT", 4_000)

    assert bars == sim_2500.bars[:2_500]  # all the history there is, once each
    assert [q["limit"] for q in sim_2500.queries] == ["1000", "1000", "1000"]
    assert sim_2500.queries[-1]["endTime"] == str(sim_2500.bars[499].open_time_ms)
    assert sim_2500.feed.counters.rejected == {}


async def test_warm_up_pages_are_as_small_as_rest_page_limit_says(rows: list[Bar]) -> None:
    async for served in serve(rows, history=700, page_limit=300):
        bars = await served.feed.fetch_recent("BTCUSDT", 650)

        assert bars == rows[50:700]
        assert [q["limit"] for q in served.queries] == ["300", "300", "50"]


async def test_sim_klines_with_end_time_only_answer_the_latest_bars_up_to_it(
    sim_2500: Served,
) -> None:
    exchange, bars = sim_2500.exchange, sim_2500.bars
    end = bars[999].open_time_ms

    assert exchange.latest_bars("BTCUSDT", end, 400) == bars[600:1_000]
    assert exchange.latest_bars("BTCUSDT", end + 30_000, 400) == bars[600:1_000]
    assert exchange.latest_bars("BTCUSDT", None, 3) == bars[2_497:2_500]  # closed ones only
    assert exchange.latest_bars("BTCUSDT", bars[5].open_time_ms, 400) == bars[:6]
