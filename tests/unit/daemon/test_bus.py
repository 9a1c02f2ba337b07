from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence

import pytest

from barbus.daemon.core.bus import EventBus
from barbus.daemon.core.events import Bar
from barbus.daemon.feed import pump
from tests.factories import bars_from_closes, make_bar


def test_publish_delivers_in_subscription_order_to_matching_stream_only() -> None:
    bus = EventBus()
    seen: list[tuple[str, float]] = []
    bus.subscribe("a", ["BTCUSDT"], ["1m"], lambda bar: seen.append(("a", bar.close)))
    bus.subscribe("b", ["BTCUSDT", "ETHUSDT"], ["1m"], lambda bar: seen.append(("b", bar.close)))
    bus.subscribe("c", ["ETHUSDT"], ["1m"], lambda bar: seen.append(("c", bar.close)))

    bus.publish(make_bar(1.0))
    bus.publish(make_bar(2.0, symbol="ETHUSDT"))
    bus.publish(make_bar(3.0, interval="5m"))

    assert seen == [("a", 1.0), ("b", 1.0), ("b", 2.0), ("c", 2.0)]
    assert bus.subscribers("BTCUSDT", "1m") == ["a", "b"]


def test_raising_subscriber_is_halted_counted_and_others_still_served(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    before: list[float] = []
    after: list[float] = []

    def broken(bar: Bar) -> None:
        if bar.close >= 2.0:
            raise RuntimeError("boom")
        before.append(bar.close)

    bus.subscribe("first", ["BTCUSDT"], ["1m"], lambda bar: before.append(-bar.close))
    bus.subscribe("broken", ["BTCUSDT"], ["1m"], broken)
    bus.subscribe("last", ["BTCUSDT"], ["1m"], lambda bar: after.append(bar.close))

    with caplog.at_level(logging.ERROR, logger="barbus.bus"):
        for bar in bars_from_closes([1.0, 2.0, 3.0]):
            bus.publish(bar)

    assert after == [1.0, 2.0, 3.0]
    assert before == [-1.0, 1.0, -2.0, -3.0]
    assert bus.errors["broken"] == 1
    assert "RuntimeError: boom" in bus.halted["broken"]
    assert "BTCUSDT 1m bar at" in bus.halted["broken"]
    assert bus.subscribers("BTCUSDT", "1m") == ["first", "last"]


def test_duplicate_subscriber_name_is_rejected() -> None:
    bus = EventBus()
    bus.subscribe("x", ["BTCUSDT"], ["1m"], lambda bar: None)
    with pytest.raises(ValueError, match="already registered"):
        bus.subscribe("x", ["ETHUSDT"], ["1m"], lambda bar: None)


class ListFeed:
    def __init__(self, batches: list[list[Bar]]) -> None:
        self._batches = batches

    async def batches(self) -> AsyncIterator[Sequence[Bar]]:
        for batch in self._batches:
            await asyncio.sleep(0)
            yield batch


async def test_pump_publishes_every_bar_of_every_batch_in_order() -> None:
    bars = bars_from_closes([float(i) for i in range(1, 8)])
    bus = EventBus()
    seen: list[float] = []
    bus.subscribe("s", ["BTCUSDT"], ["1m"], lambda bar: seen.append(bar.close))

    count = await pump(ListFeed([bars[:3], [], bars[3:]]), bus)

    assert count == 7
    assert seen == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
