"""The feed's edge: what a kline must look like before it is believed, and bounded logging.

Pure units on real inputs (encoded the way the sim and Binance send them): no sockets here; the
same rules are exercised end to end in tests/integration/test_hostile_exchange.py.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from barbus.daemon.config import parse_config
from barbus.daemon.core.errors import ConfigError
from barbus.daemon.core.events import MINUTE_MS, Bar, parse_utc_ms
from barbus.daemon.feeds.binance import BinanceFeed
from barbus.daemon.feeds.binance_codec import (
    EdgeLimits,
    MessageError,
    RejectedBarError,
    RestPage,
    check_edge,
    decode_rest_page,
    decode_ws_message,
    encode_rest_kline,
    encode_ws_kline,
)
from barbus.daemon.feeds.binance_config import FeedConfig
from barbus.daemon.log import RateLimitedLog, clip

NOW_MS = parse_utc_ms("2026-12-01T08:00")
LIMITS = EdgeLimits(MINUTE_MS, max_skew_ms=5_000)
TEN_YEARS_MS = 3652 * 24 * 60 * MINUTE_MS


def bar_at(open_ms: int, price: float = 30_000.0, volume: float = 12.5) -> Bar:
    return Bar("BTCUSDT", "1m", open_ms, price, price * 1.001, price * 0.999, price, volume)


def ws_text(bar: Bar) -> str:
    return encode_ws_kline(bar, event_time_ms=bar.open_time_ms + MINUTE_MS)


def rows(*bars: Bar) -> list[Any]:
    """Rows as they arrive: encoded, through JSON and back."""
    decoded: list[Any] = json.loads(json.dumps([encode_rest_kline(b) for b in bars]))
    return decoded


# -- check_edge ----------------------------------------------------------------------------------


def test_a_bar_closed_before_now_passes() -> None:
    check_edge(bar_at(NOW_MS - MINUTE_MS), LIMITS, NOW_MS)


def test_a_bar_closing_within_the_skew_allowance_passes_and_without_it_does_not() -> None:
    bar = bar_at(NOW_MS - MINUTE_MS)
    clock_behind_ms = NOW_MS - 4_000  # our clock is 4 s behind the exchange's

    check_edge(bar, LIMITS, clock_behind_ms)
    with pytest.raises(RejectedBarError, match="is this machine's clock behind"):
        check_edge(bar, EdgeLimits(MINUTE_MS, max_skew_ms=0), clock_behind_ms)


@pytest.mark.parametrize(
    "open_ms",
    [NOW_MS, NOW_MS - MINUTE_MS + 6 * 60_000, NOW_MS + TEN_YEARS_MS],
    ids=["open-now", "closes-in-6-minutes", "ten-years-ahead"],
)
def test_a_bar_closing_after_now_plus_skew_is_rejected_as_future(open_ms: int) -> None:
    with pytest.raises(RejectedBarError, match="closes after now") as caught:
        check_edge(bar_at(open_ms), LIMITS, NOW_MS)
    assert caught.value.reason == "future"


def test_a_bar_off_the_minute_grid_is_rejected_as_misaligned() -> None:
    with pytest.raises(RejectedBarError, match="not a multiple of 60000") as caught:
        check_edge(bar_at(NOW_MS - 10 * MINUTE_MS + 1234), LIMITS, NOW_MS)
    assert caught.value.reason == "misaligned"


def test_a_bar_before_2010_is_implausible() -> None:
    with pytest.raises(RejectedBarError, match="before 2010") as caught:
        check_edge(bar_at(parse_utc_ms("2009-12-31T23:59")), LIMITS, NOW_MS)
    assert caught.value.reason == "implausible"


@pytest.mark.parametrize("price", [1e300, 1e307, 2e12])
def test_a_price_above_the_ceiling_is_implausible(price: float) -> None:
    with pytest.raises(RejectedBarError, match="above 1e\\+12") as caught:
        check_edge(bar_at(NOW_MS - MINUTE_MS, price), LIMITS, NOW_MS)
    assert caught.value.reason == "implausible"


def test_a_volume_above_the_ceiling_is_implausible() -> None:
    with pytest.raises(RejectedBarError, match="volume") as caught:
        check_edge(bar_at(NOW_MS - MINUTE_MS, volume=1e300), LIMITS, NOW_MS)
    assert caught.value.reason == "implausible"


# -- decoding absurd values ----------------------------------------------------------------------


def test_open_time_10_to_the_30_is_rejected_while_decoding_not_an_overflow() -> None:
    text = ws_text(bar_at(0)._replace(open_time_ms=10**30))

    with pytest.raises(RejectedBarError, match="after the year 2200") as caught:
        decode_ws_message(text)
    assert caught.value.reason == "future"


def test_open_time_10_to_the_30_with_a_bad_price_is_still_one_clean_error() -> None:
    # validate_bar names the bar by its time: formatting 10**30 ms used to raise OverflowError.
    bar = Bar("BTCUSDT", "1m", 10**30, 5.0, 1.0, 2.0, 3.0, 1.0)
    with pytest.raises(RejectedBarError):
        decode_ws_message(ws_text(bar))
    page = page_of(rows(bar), None, None)
    assert page.bars == []
    assert page.rejected == {"future": 1}


def test_a_megabyte_field_is_not_echoed_in_the_error() -> None:
    message = json.loads(ws_text(bar_at(NOW_MS - MINUTE_MS)))
    message["data"]["k"]["o"] = "9" * 1_000_000 + "x"
    with pytest.raises(MessageError) as caught:
        decode_ws_message(json.dumps(message))
    assert len(str(caught.value)) < 300
    assert "1000003 chars" in str(caught.value)


# -- REST pages ----------------------------------------------------------------------------------


def page_of(
    payload: object, start: int | None, end: int | None, limit: int = 1000, now_ms: int = NOW_MS
) -> RestPage:
    return decode_rest_page(
        payload,
        "BTCUSDT",
        "1m",
        start_ms=start,
        end_ms=end,
        limit=limit,
        now_ms=now_ms,
        limits=LIMITS,
    )


T0 = NOW_MS - 100 * MINUTE_MS
GOOD = [bar_at(T0 + i * MINUTE_MS, 30_000.0 + i) for i in range(10)]


def test_a_clean_page_gives_its_bars() -> None:
    page = page_of(rows(*GOOD), T0, None, limit=10)
    assert page.bars == GOOD
    assert page.rows == 10
    assert page.rejected == {}


def test_duplicate_rows_are_dropped_and_counted_keeping_the_first() -> None:
    other = GOOD[3]._replace(close=GOOD[3].low)
    page = page_of(rows(*GOOD[:4], other, GOOD[3], *GOOD[4:]), T0, None, limit=20)
    assert page.bars == GOOD
    assert page.rejected == {"duplicate_row": 2}


def test_unsorted_rows_are_put_in_order_and_counted() -> None:
    shuffled = [GOOD[1], GOOD[0], *GOOD[2:7], GOOD[9], GOOD[7], GOOD[8]]
    page = page_of(rows(*shuffled), T0, None, limit=10)
    assert page.bars == GOOD
    assert page.rejected == {"unsorted_row": 3}


def test_rows_outside_start_and_end_time_are_dropped_and_counted() -> None:
    page = page_of(rows(*GOOD), GOOD[2].open_time_ms, GOOD[6].open_time_ms, limit=10)
    assert page.bars == GOOD[2:7]
    assert page.rejected == {"out_of_range_row": 5}


def test_future_misaligned_and_absurd_rows_are_refused_by_reason_and_the_rest_kept() -> None:
    future = GOOD[-1]._replace(open_time_ms=GOOD[-1].open_time_ms + TEN_YEARS_MS)
    misaligned = GOOD[4]._replace(open_time_ms=GOOD[4].open_time_ms + 1234)
    absurd = bar_at(GOOD[-1].open_time_ms + MINUTE_MS, 1e300)
    huge = [10**30, "1", "1", "1", "1", "1", 0, "0", 0, "0", "0", "0"]
    payload = [*rows(*GOOD[:5], misaligned, *GOOD[5:], absurd, future), huge]
    page = page_of(payload, T0, None, limit=20)
    assert page.bars == GOOD
    assert page.rejected == {"misaligned": 1, "implausible": 1, "future": 2}
    assert page.example


def test_the_still_open_candle_is_skipped_silently() -> None:
    now_ms = GOOD[-1].open_time_ms + MINUTE_MS - 1_000  # the last candle closes in 1 s
    page = page_of(rows(*GOOD), T0, None, limit=20, now_ms=now_ms)
    assert page.bars == GOOD[:-1]
    assert page.rejected == {}


@pytest.mark.parametrize(
    "payload",
    [{"code": -1121, "msg": "Invalid symbol."}, "[]", None, [[1, 2]], [GOOD]],
    ids=["error-object", "string", "null", "short-row", "not-rows"],
)
def test_a_malformed_page_is_a_message_error(payload: object) -> None:
    with pytest.raises(MessageError):
        page_of(payload, T0, None)


def test_a_page_with_more_rows_than_asked_is_refused_before_decoding_any_row() -> None:
    flood = rows(GOOD[0]) * 400_000  # the rows are fine; there are just far too many

    started = time.perf_counter()
    with pytest.raises(MessageError, match="400000 rows, more than the 100 asked for"):
        page_of(flood, T0, None, limit=100)
    assert time.perf_counter() - started < 0.05


# -- plausibility against the previous close -----------------------------------------------------


def feed(**options: Any) -> BinanceFeed:
    config = FeedConfig("http://127.0.0.1:9", "ws://127.0.0.1:9", ("BTCUSDT",), **options)
    return BinanceFeed(config, {"BTCUSDT": None})


def test_a_bar_ten_times_the_previous_close_is_implausible_and_counted() -> None:
    f = feed()
    f.last_close["BTCUSDT"] = 30_000.0

    assert f._plausible(bar_at(T0, 30_000.0 * 9.9))
    assert f._plausible(bar_at(T0 + MINUTE_MS, 3_100.0))
    assert not f._plausible(bar_at(T0 + 2 * MINUTE_MS, 400_000.0))
    assert not f._plausible(bar_at(T0 + 3 * MINUTE_MS, 2_000.0))
    assert f.counters.rejected == {"implausible": 2}


def test_a_new_level_is_accepted_after_n_consecutive_bars_so_the_feed_never_stalls() -> None:
    f = feed(implausible_accept_after=3)
    f.last_close["BTCUSDT"] = 30_000.0
    level = [bar_at(T0 + i * MINUTE_MS, 600_000.0 + i) for i in range(3)]

    verdicts = [f._plausible(level[0]), f._plausible(level[0]), f._plausible(level[1])]
    accepted = f._plausible(level[2])

    assert verdicts == [False, False, False]  # the same bar twice (WS, then REST) counts once
    assert accepted
    assert f.counters.rejected == {"implausible": 3}


def test_implausible_bars_that_disagree_with_each_other_never_add_up() -> None:
    f = feed(implausible_accept_after=2)
    f.last_close["BTCUSDT"] = 30_000.0
    wild = [1e6, 1.0, 1e6 * 50, 2.0]
    assert not any(f._plausible(bar_at(T0 + i * MINUTE_MS, p)) for i, p in enumerate(wild))


def test_without_a_previous_close_only_the_ceilings_apply() -> None:
    assert feed()._plausible(bar_at(T0, 1e9))


# -- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_clock_skew_seconds", math.nan),
        ("max_clock_skew_seconds", -1.0),
        ("max_price", math.inf),
        ("plausible_factor", 0.5),
        ("implausible_accept_after", 0),
        ("rest_page_limit", 1001),
        ("max_backfill_pages", 0),
        ("gap_retries", -1),
        ("gap_retry_seconds", math.nan),
        ("max_backfill_pages", 2.5),
    ],
)
def test_edge_settings_out_of_range_are_config_errors(name: str, value: float) -> None:
    with pytest.raises(ConfigError, match=name):
        feed(**{name: value})


def test_the_edge_settings_are_feed_keys_of_the_daemon_config(tmp_path: Path) -> None:
    raw = {
        "feed": {
            "rest_url": "http://127.0.0.1:8765",
            "ws_url": "ws://127.0.0.1:8765",
            "symbols": ["BTCUSDT"],
            "max_clock_skew_seconds": 2,
            "max_price": 1e9,
            "plausible_factor": 4.0,
            "implausible_accept_after": 5,
            "max_backfill_pages": 100,
            "gap_retries": 0,
        },
        "strategy": [{"strategy": "sma_cross", "symbol": "BTCUSDT"}],
    }

    feed_config = parse_config(raw, tmp_path).feed

    assert feed_config.max_clock_skew_seconds == 2
    assert feed_config.max_price == 1e9
    assert feed_config.plausible_factor == 4.0
    assert feed_config.implausible_accept_after == 5
    assert feed_config.max_backfill_pages == 100
    assert feed_config.gap_retries == 0
    raw["feed"]["plausible_factor"] = math.nan  # type: ignore[index]
    with pytest.raises(ConfigError, match="plausible_factor"):
        parse_config(raw, tmp_path)
    raw["feed"]["plausible_factor"] = "10"  # type: ignore[index]
    with pytest.raises(ConfigError, match="plausible_factor: expected int or float"):
        parse_config(raw, tmp_path)


# -- the log limiter -----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    logger = logging.getLogger("barbus.test.edge")
    logger.addHandler(handler)
    logger.propagate = False
    yield handler
    logger.removeHandler(handler)


def test_a_flood_of_one_kind_gives_a_burst_then_one_summary_per_interval(lines: Lines) -> None:
    clock = Clock()
    limited = RateLimitedLog(
        logging.getLogger("barbus.test.edge"), burst=5, interval=60.0, clock=clock
    )

    for i in range(25_000):
        clock.now += 1.5 / 25_000
        limited.warning("malformed", "feed: malformed message skipped: %d", i)
    clock.now += 60.0
    limited.warning("malformed", "feed: malformed message skipped: %s", "late")

    assert lines.lines[:5] == [f"feed: malformed message skipped: {i}" for i in range(5)]
    assert lines.lines[5] == "feed: 24995 more malformed messages suppressed in the last 61 s"
    assert lines.lines[6:] == ["feed: malformed message skipped: late"]


def test_kinds_are_limited_separately_and_flush_tells_the_rest(lines: Lines) -> None:
    clock = Clock()
    limited = RateLimitedLog(logging.getLogger("barbus.test.edge"), burst=2, clock=clock)

    for _ in range(10):
        limited.warning("malformed", "m")
        limited.warning("future", "f")
    clock.now += 3.0
    limited.flush()

    assert lines.lines == [
        "m",
        "f",
        "m",
        "f",
        "feed: 8 more malformed messages suppressed in the last 3 s",
        "feed: 8 more future messages suppressed in the last 3 s",
    ]


def test_tick_tells_the_suppressed_lines_once_their_window_ends(lines: Lines) -> None:
    clock = Clock()
    limited = RateLimitedLog(
        logging.getLogger("barbus.test.edge"), burst=1, interval=10.0, clock=clock
    )
    for _ in range(4):
        limited.warning("malformed", "m")

    limited.tick(clock.now + 9.0)
    before_the_window_ends = list(lines.lines)
    limited.tick(clock.now + 10.0)
    limited.tick(clock.now + 11.0)

    assert before_the_window_ends == ["m"]
    assert lines.lines == ["m", "feed: 3 more malformed messages suppressed in the last 10 s"]


def test_clip_cuts_long_input_and_says_how_long_it_was() -> None:
    assert clip("short") == "short"
    clipped = clip("x" * 1_000_000)
    assert clipped == "x" * 200 + "... (1000000 chars)"
