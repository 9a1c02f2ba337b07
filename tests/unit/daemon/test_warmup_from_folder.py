"""The warm-up's split between the data folder and the exchange, against a feed that counts
its requests: the folder's bars up to its newest, the exchange's after it, the last ``count``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from barbus.daemon.core.data_folder import DataFolder, month_span
from barbus.daemon.core.events import MINUTE_MS, Bar
from barbus.daemon.warmup import _recent

T0 = 1_751_328_000_000  # 2025-07-01T00:00Z


def bar(i: int, interval: str = "1m", step: int = MINUTE_MS) -> Bar:
    price = 100.0 + i
    return Bar("BTCUSDT", interval, T0 + i * step, price, price + 1, price - 1, price, 1.0)


class CountingFeed:
    """The exchange's closed bars; ``fetch_recent`` returns the last ``count`` of them."""

    def __init__(self, bars: list[Bar]) -> None:
        self.bars = bars
        self.asked: list[int] = []

    async def fetch_recent(self, symbol: str, count: int) -> list[Bar]:
        self.asked.append(count)
        return self.bars[-count:]


def recent(feed: CountingFeed, count: int, stored: list[Bar]) -> tuple[list[Bar], int]:
    feed_any: Any = feed
    return asyncio.run(_recent(feed_any, "BTCUSDT", count, stored))


EXCHANGE = [bar(i) for i in range(1_000)]


def test_the_folder_gives_what_it_has_and_the_exchange_the_rest() -> None:
    feed = CountingFeed(EXCHANGE)

    bars, stored = recent(feed, 300, EXCHANGE[:990])

    assert bars == EXCHANGE[-300:]
    assert stored == 290
    assert feed.asked == [1, 10]  # the newest bar, then the ten after the folder's


def test_a_folder_one_bar_behind_needs_only_the_newest_bar() -> None:
    feed = CountingFeed(EXCHANGE)

    bars, stored = recent(feed, 300, EXCHANGE[:999])

    assert (bars, stored, feed.asked) == (EXCHANGE[-300:], 299, [1])


def test_a_folder_as_new_as_the_exchange_needs_one_request() -> None:
    feed = CountingFeed(EXCHANGE)

    assert recent(feed, 300, EXCHANGE) == (EXCHANGE[-300:], 300)
    assert feed.asked == [1]


def test_bars_the_exchange_has_not_closed_yet_are_not_taken_from_the_folder() -> None:
    feed = CountingFeed(EXCHANGE[:800])  # a sim whose clock is behind the folder

    bars, stored = recent(feed, 300, EXCHANGE)

    assert (bars, stored) == (EXCHANGE[500:800], 300)


def test_a_folder_older_than_the_warm_up_is_not_used() -> None:
    feed = CountingFeed(EXCHANGE)

    bars, stored = recent(feed, 300, EXCHANGE[:700])

    assert (bars, stored, feed.asked) == (EXCHANGE[-300:], 0, [1, 300])


def test_no_folder_is_one_fetch_of_everything() -> None:
    feed = CountingFeed(EXCHANGE)

    assert recent(feed, 300, []) == (EXCHANGE[-300:], 0)
    assert feed.asked == [300]


@pytest.mark.parametrize("interval", ["1m", "4h"])
def test_the_folder_tail_reads_the_newest_bars_across_month_files(
    tmp_path: Any, interval: str
) -> None:
    step = MINUTE_MS if interval == "1m" else 240 * MINUTE_MS
    bars = [bar(i, interval, step) for i in range(-300, 300)]  # from June on
    folder = DataFolder(tmp_path)
    folder.add_bars("BTCUSDT", interval, bars)

    assert len(folder.month_files("BTCUSDT", interval)) > 1
    assert folder.tail_bars("BTCUSDT", interval, 450) == bars[-450:]
    assert folder.tail_bars("BTCUSDT", interval, 5_000) == bars
    assert folder.tail_bars("ETHUSDT", interval, 10) == []


@pytest.mark.parametrize(
    ("month", "start", "end"),
    [
        ("2025-06", "2025-06-01", "2025-07-01"),
        ("2024-12", "2024-12-01", "2025-01-01"),  # into the next year
        ("2024-02", "2024-02-01", "2024-03-01"),  # a leap February
    ],
)
def test_a_month_spans_its_first_day_to_the_next_months(month: str, start: str, end: str) -> None:
    def ms(day: str) -> int:
        return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()) * 1000

    assert month_span(month) == (ms(start), ms(end))
    with pytest.raises(ValueError, match="unconverted data remains"):
        month_span("2025-13")
