"""Warm-up over REST beyond one page: the feed pages back through the sim exchange's history.

The sim runs in-process (``running_sim``) with a middleware that records every klines query, so
the test sees the pages asked for as well as the bars delivered; the expected bars are the
slice's own rows, indexed by hand. At ``speed=0`` (real time) the sim's clock closes one more
bar at once and the next a minute later, so ``history + 1`` bars are closed during a test.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from aiohttp import web

from barbus.daemon.core.events import MINUTE_MS, Bar
from barbus.daemon.core.series import BarSeries
from barbus.daemon.feeds.binance import BinanceFeed
from barbus.daemon.feeds.sim import SimExchange
from barbus.replay.loader import load_bars
from tests.conftest import BTC_2025
from tests.factories import bars_of
from tests.integration.test_live_feed import SYMBOL, running_sim

ROWS = 3_000


@dataclass
class Served:
    """A sim exchange, its bars, the klines queries it answered, and a feed pointed at it."""

    feed: BinanceFeed
    bars: list[Bar]
    queries: list[dict[str, str]]
    exchange: SimExchange


@pytest.fixture(scope="module")
def series() -> BarSeries:
    return BarSeries.from_bars(
        bars_of(load_bars(BTC_2025))[10_000 : 10_000 + ROWS], "BTCUSDT 2025 slice"
    )


@asynccontextmanager
async def serve(series: BarSeries, history: int, page_limit: int = 1000) -> AsyncIterator[Served]:
    queries: list[dict[str, str]] = []

    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path == "/api/v3/klines":
            queries.append(dict(request.query))
        return await handler(request)

    async with running_sim(series, speed=0, history_bars=history, middlewares=[record]) as sim:
        feed = BinanceFeed(sim.feed_config(rest_page_limit=page_limit), {SYMBOL: None})
        yield Served(feed, series.to_bars(), queries, sim.exchange)


@pytest.fixture
async def sim_2500(series: BarSeries) -> AsyncIterator[Served]:
    async with serve(series, history=2_499) as served:  # 2,500 closed bars
        yield served


async def test_warm_up_pages_back_beyond_one_request_without_duplicates(sim_2500: Served) -> None:
    bars = await sim_2500.feed.fetch_recent(SYMBOL, 2_200)

    assert bars == sim_2500.bars[300:2_500]
    assert all(b.open_time_ms - a.open_time_ms == MINUTE_MS for a, b in itertools.pairwise(bars))
    # Newest page first (no range), then older ones ending a minute before the oldest bar so far.
    asked = {"symbol": SYMBOL, "interval": "1m"}
    assert sim_2500.queries == [
        {**asked, "limit": "1000"},
        {**asked, "limit": "1000", "endTime": str(sim_2500.bars[1_499].open_time_ms)},
        {**asked, "limit": "200", "endTime": str(sim_2500.bars[499].open_time_ms)},
    ]
    assert sim_2500.feed.counters.rejected == {}


async def test_warm_up_stops_at_a_short_page_when_the_exchange_has_fewer_bars(
    sim_2500: Served,
) -> None:
    bars = await sim_2500.feed.fetch_recent(SYMBOL, 4_000)

    assert bars == sim_2500.bars[:2_500]  # all the history there is, once each
    assert [q["limit"] for q in sim_2500.queries] == ["1000", "1000", "1000"]
    assert sim_2500.queries[-1]["endTime"] == str(sim_2500.bars[499].open_time_ms)
    assert sim_2500.feed.counters.rejected == {}


async def test_warm_up_pages_are_as_small_as_rest_page_limit_says(series: BarSeries) -> None:
    async with serve(series, history=699, page_limit=300) as served:
        bars = await served.feed.fetch_recent(SYMBOL, 650)

    assert bars == served.bars[50:700]
    assert [q["limit"] for q in served.queries] == ["300", "300", "50"]


async def test_sim_klines_with_end_time_only_answer_the_latest_bars_up_to_it(
    sim_2500: Served,
) -> None:
    exchange, bars = sim_2500.exchange, sim_2500.bars
    end = bars[999].open_time_ms

    assert exchange.latest_bars(SYMBOL, end, 400) == bars[600:1_000]
    assert exchange.latest_bars(SYMBOL, end + 30_000, 400) == bars[600:1_000]
    assert exchange.latest_bars(SYMBOL, None, 3) == bars[2_497:2_500]  # closed ones only
    assert exchange.latest_bars(SYMBOL, bars[5].open_time_ms, 400) == bars[:6]
