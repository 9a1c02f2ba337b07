"""The REST klines client on its own: a plain aiohttp session, a base URL and limits, no feed.

The next issue's data download pages through the same endpoint, so the client must work without
a ``BinanceFeed`` around it. The sim exchange runs in-process (``running_sim``) with its clock
still (``speed=0`` holds the history closed); the expected bars are the slice's own rows, indexed
by hand, and the expected pages are counted by hand from ``page_limit`` and ``max_pages``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest

from barbus.daemon.core.events import MINUTE_MS
from barbus.daemon.core.series import BarSeries
from barbus.daemon.feeds.binance_codec import EdgeLimits
from barbus.daemon.feeds.binance_rest import FeedTemporaryError, KlinesClient
from barbus.daemon.feeds.sim_faults import FaultConfig
from barbus.daemon.log import RateLimitedLog
from barbus.replay.loader import load_bars
from tests.conftest import BTC_2025
from tests.factories import bars_of
from tests.integration.test_live_feed import SYMBOL, RunningSim, running_sim

HISTORY = 600  # bars already closed when the sim starts (its clock closes one more at once)


@pytest.fixture(scope="module")
def series() -> BarSeries:
    return BarSeries.from_bars(bars_of(load_bars(BTC_2025))[20_000:21_000], "BTCUSDT 2025 slice")


@asynccontextmanager
async def client(
    sim: RunningSim, *, page_limit: int = 1000, max_pages: int = 200
) -> AsyncIterator[tuple[KlinesClient, dict[str, int]]]:
    """A client of ``sim`` over its own session, and the tally it counts refusals in."""
    rejected: dict[str, int] = {}
    async with aiohttp.ClientSession() as session:
        yield (
            KlinesClient(
                session,
                sim.rest_url,
                "1m",
                EdgeLimits(MINUTE_MS),
                page_limit=page_limit,
                max_pages=max_pages,
                rejected=rejected,
                warnings=RateLimitedLog(logging.getLogger("test.klines")),
            ),
            rejected,
        )


async def test_a_page_is_the_closed_bars_of_the_range_asked_for(series: BarSeries) -> None:
    bars = series.to_bars()
    async with (
        running_sim(series, speed=0, history_bars=HISTORY) as sim,
        client(sim) as (
            klines,
            rejected,
        ),
    ):
        page = await klines.page(SYMBOL, bars[100].open_time_ms, bars[149].open_time_ms, 1000)
        capped = await klines.page(SYMBOL, bars[100].open_time_ms, None, 30)

    assert page.bars == bars[100:150]
    assert page.rows == 50
    assert capped.bars == bars[100:130]
    assert rejected == {}


async def test_recent_pages_back_and_stops_after_max_pages_with_one_warning(
    series: BarSeries, caplog: pytest.LogCaptureFixture
) -> None:
    bars = series.to_bars()
    async with (
        running_sim(series, speed=0, history_bars=HISTORY) as sim,
        client(sim, page_limit=100, max_pages=3) as (klines, rejected),
    ):
        with caplog.at_level(logging.WARNING, logger="barbus.feed"):
            recent = await klines.recent(SYMBOL, 500)

    # 3 pages of 100 back from the newest of the HISTORY + 1 closed bars: bars 301..600.
    assert recent == bars[HISTORY + 1 - 300 : HISTORY + 1]
    assert [r.getMessage() for r in caplog.records] == [
        "feed: warm-up of BTCUSDT stopped after 3 pages (max_backfill_pages) at 300 of 500 bars"
    ]
    assert rejected == {}


async def test_refused_rows_are_tallied_and_a_bad_page_is_a_temporary_error(
    series: BarSeries, caplog: pytest.LogCaptureFixture
) -> None:
    bars = series.to_bars()
    start, end = bars[10].open_time_ms, bars[19].open_time_ms
    duplicate = FaultConfig(rest_fault="duplicate", rest_fault_times=1)
    async with (
        running_sim(series, speed=0, history_bars=HISTORY, faults=duplicate) as sim,
        client(sim) as (klines, rejected),
    ):
        with caplog.at_level(logging.WARNING, logger="test.klines"):
            page = await klines.page(SYMBOL, start, end, 1000)
    not_list = FaultConfig(rest_fault="not_list")
    async with (
        running_sim(series, speed=0, history_bars=HISTORY, faults=not_list) as sim,
        client(sim) as (klines, refused),
    ):
        with pytest.raises(FeedTemporaryError, match="klines response for BTCUSDT"):
            await klines.page(SYMBOL, start, end, 1000)

    assert page.bars == bars[10:20]  # the repeated first row is dropped, the real ones kept
    assert rejected == {"duplicate_row": 1}
    assert [r.getMessage().split(", e.g.")[0] for r in caplog.records] == [
        "feed: 1 BTCUSDT klines row(s) refused (duplicate_row)"
    ]  # through the caller's rate-limited log
    assert refused == {"bad_page": 1}
