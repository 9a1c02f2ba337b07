"""The Binance kline codec on real Binance payloads, on malformed messages and on round trips.

The real payloads live in ``tests/data/binance_messages.json`` (copied verbatim, with sources).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from barbus.daemon.core.events import INTERVAL_MS, MINUTE_MS, Bar, format_time_ms, parse_utc_ms
from barbus.daemon.feeds.binance_codec import (
    MessageError,
    decode_rest_klines,
    decode_ws_message,
    encode_rest_kline,
    encode_ws_kline,
    stream_name,
)
from barbus.replay.loader import load_bars
from tests.conftest import BTC_2023_WITH_GAP, BTC_2025
from tests.factories import bars_of

MESSAGES_PATH = Path(__file__).resolve().parents[2] / "data" / "binance_messages.json"
DAY_MS = INTERVAL_MS["1d"]


# -- the bundled real payloads -----------------------------------------------------------------


@cache
def _messages() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(MESSAGES_PATH.read_text(encoding="utf-8"))
    return data


def rest_payload(name: str) -> dict[str, Any]:
    """One real ``/api/v3/klines`` response (``rows``, ``symbol``, ``interval``, ``source``)."""
    (item,) = [r for r in _messages()["rest_klines"] if r["name"] == name]
    return dict(item)


def ws_text(name: str) -> str:
    """One real WebSocket message, exactly as Binance sent it."""
    (item,) = [m for m in _messages()["ws_messages"] if m["name"] == name]
    text: str = item["text"]
    return text


def closed_raw_event(**kline_changes: Any) -> str:
    """The real raw 1m push of 2023-01-09 19:11, made final (x=true), with ``k`` fields changed.

    A value of ``...`` removes the field.
    """
    event = json.loads(ws_text("btcusdt_1m_raw_open_2023_01_09"))
    event["k"]["x"] = True
    for key, value in kline_changes.items():
        if value is ...:
            del event["k"][key]
        else:
            event["k"][key] = value
    return json.dumps(event)


def expected_bar_of_row(row: list[Any], symbol: str, interval: str) -> Bar:
    return Bar(symbol, interval, row[0], *(float(row[i]) for i in range(1, 6)))


@pytest.fixture(scope="module")
def slice_2023_bars() -> list[Bar]:
    """2,160 real minutes around the 2023-03-24 halt: flat zero-volume minutes and an 80 min gap."""
    series = load_bars(BTC_2023_WITH_GAP).between(
        parse_utc_ms("2023-03-24T00:00"), parse_utc_ms("2023-03-25T12:00")
    )
    return bars_of(series)


# -- the data file itself ----------------------------------------------------------------------


def test_every_bundled_payload_names_its_source() -> None:
    # Arrange
    items = [*_messages()["rest_klines"], *_messages()["ws_messages"]]

    # Act
    missing = [item["name"] for item in items if not item.get("source")]

    # Assert
    assert len(items) == 10
    assert missing == []


# -- REST: decode_rest_klines ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["btcusdt_1d_2021_01_01", "ethusdt_1d_2022_09_14", "bnbusdt_1m_2022_06_04"]
)
def test_real_rest_response_decodes_to_bars_of_its_rows(name: str) -> None:
    # Arrange
    payload = rest_payload(name)
    rows, symbol, interval = payload["rows"], payload["symbol"], payload["interval"]

    # Act
    bars = decode_rest_klines(rows, symbol, interval)

    # Assert
    assert bars == [expected_bar_of_row(row, symbol, interval) for row in rows]
    assert [row[6] for row in rows] == [b.open_time_ms + INTERVAL_MS[interval] - 1 for b in bars]


def test_real_btcusdt_daily_response_gives_the_first_two_days_of_2021() -> None:
    # Arrange
    rows = rest_payload("btcusdt_1d_2021_01_01")["rows"]

    # Act
    first, second = decode_rest_klines(rows, "BTCUSDT", "1d")

    # Assert
    assert format_time_ms(first.open_time_ms) == "2021-01-01T00:00:00Z"
    assert first == Bar(
        "BTCUSDT", "1d", 1609459200000, 28923.63, 29600.0, 28624.57, 29331.69, 54182.925011
    )
    assert second.open_time_ms - first.open_time_ms == DAY_MS
    assert second.high == 33300.0


def test_docs_sample_row_decodes_field_by_field() -> None:
    # Arrange: a documentation sample of unknown symbol; its close time says 1w, which barbus
    # does not model, so decode it as a 1d row (the close time field is not read).
    (row,) = rest_payload("docs_sample")["rows"]

    # Act
    (bar,) = decode_rest_klines([row], "DOCSAMPLE", "1d")

    # Assert
    assert bar == Bar(
        "DOCSAMPLE", "1d", 1499040000000, 0.0163479, 0.8, 0.015758, 0.015771, 148976.11427815
    )


@pytest.mark.parametrize(
    ("now_offset_ms", "kept"),
    [
        pytest.param(DAY_MS - 1, 1, id="newest-day-still-open-at-its-close-time"),
        pytest.param(DAY_MS, 2, id="newest-day-closed-once-its-interval-ended"),
        pytest.param(0, 1, id="newest-day-just-opened"),
    ],
)
def test_rest_row_whose_candle_is_still_open_is_dropped(now_offset_ms: int, kept: int) -> None:
    # Arrange
    rows = rest_payload("btcusdt_1d_2021_01_01")["rows"]
    now_ms = rows[1][0] + now_offset_ms

    # Act
    bars = decode_rest_klines(rows, "BTCUSDT", "1d", now_ms=now_ms)

    # Assert
    assert [b.open_time_ms for b in bars] == [row[0] for row in rows[:kept]]


def test_rest_response_that_is_not_a_list_is_rejected() -> None:
    with pytest.raises(MessageError, match="klines response is dict, not a list"):
        decode_rest_klines({"code": -1121, "msg": "Invalid symbol."}, "BTCUSDT", "1m")


def _with_bad_row(change: str) -> tuple[list[Any], str]:
    """The real 1m pair plus a third row broken by ``change``; and what the error must say."""
    rows = [list(r) for r in rest_payload("bnbusdt_1m_2022_06_04")["rows"]]
    bad: Any = [*rows[1]]
    bad[0] += MINUTE_MS
    if change == "too-short":
        bad = bad[:5]
        expected = "row 2 is not an array of at least 6 fields"
    elif change == "not-an-array":
        bad = {"open": "300.3"}
        expected = "row 2 is not an array"
    elif change == "non-numeric-price":
        bad[2] = "300.5O"
        expected = "row 2 field 2 is '300.5O', not a number"
    elif change == "bool-price":
        bad[1] = True
        expected = "row 2 field 1 is True"
    elif change == "nan-price":
        bad[4] = "NaN"
        expected = "row 2 field 4 is 'NaN', not finite"
    elif change == "string-open-time":
        bad[0] = str(bad[0])
        expected = "row 2 open time is '1654355880000', not an integer"
    elif change == "high-below-low":
        bad[2], bad[3] = bad[3], bad[2]
        # A value error names the bar by its open time: that is the row's identity.
        expected = f"{format_time_ms(bad[0])}: high 300.2 < low 300.5"
    else:
        raise AssertionError(change)
    return [*rows, bad], expected


@pytest.mark.parametrize(
    "change",
    [
        "too-short",
        "not-an-array",
        "non-numeric-price",
        "bool-price",
        "nan-price",
        "string-open-time",
        "high-below-low",
    ],
)
def test_malformed_rest_row_is_rejected_naming_the_row(change: str) -> None:
    # Arrange
    payload, expected = _with_bad_row(change)

    # Act
    with pytest.raises(MessageError) as caught:
        decode_rest_klines(payload, "BNBUSDT", "1m")

    # Assert
    assert expected in str(caught.value)


# -- WebSocket: decode_ws_message on real messages ---------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "btcusdt_1m_combined_open_2025_07_07",
        "btcusdt_1m_raw_open_2023_01_09",
        "btcusdt_5m_raw_open_2021_04_04",
    ],
)
def test_real_update_of_an_open_candle_is_not_a_bar(name: str) -> None:
    assert decode_ws_message(ws_text(name)) is None


def test_real_subscribe_ack_is_not_a_bar() -> None:
    assert decode_ws_message(ws_text("subscribe_ack")) is None


def test_real_closed_1s_push_is_rejected_as_an_unknown_interval() -> None:
    # barbus models 1m and longer intervals; a 1s stream must be refused, not misread as 1m.
    with pytest.raises(MessageError, match=r"k\.i is '1s', not a known interval"):
        decode_ws_message(ws_text("btcusdt_1s_raw_closed_2023_04_22"))


def test_real_closed_push_as_1m_decodes_to_its_bar() -> None:
    # Arrange: per the Binance docs a closed 1m push differs only in "i" and "T".
    event = json.loads(ws_text("btcusdt_1s_raw_closed_2023_04_22"))
    event["k"]["i"] = "1m"
    event["k"]["T"] = event["k"]["t"] + MINUTE_MS - 1

    # Act
    bar = decode_ws_message(json.dumps(event))

    # Assert
    assert bar == Bar("BTCUSDT", "1m", 1682146336000, 27340.99, 27341.0, 27340.99, 27340.99, 0.028)


def test_real_combined_push_made_final_equals_the_bundled_csv_bar() -> None:
    # Arrange: the 2025-07-07 14:09 candle, with the final values Binance later published.
    envelope = json.loads(ws_text("btcusdt_1m_combined_open_2025_07_07"))
    kline = envelope["data"]["k"]
    kline.update(x=True, o="108521.04000000", h="108523.00000000", l="108473.02000000")
    kline.update(c="108523.00000000", v="9.65380000")
    series = load_bars(BTC_2025).between(kline["t"], kline["t"] + MINUTE_MS)

    # Act
    bar = decode_ws_message(json.dumps(envelope))

    # Assert
    assert bars_of(series) == [bar]


def test_combined_and_raw_envelopes_and_bytes_give_the_same_bar() -> None:
    # Arrange
    raw = closed_raw_event()
    combined = json.dumps({"stream": "btcusdt@kline_1m", "data": json.loads(raw)})

    # Act
    bars = [decode_ws_message(raw), decode_ws_message(combined), decode_ws_message(raw.encode())]

    # Assert
    expected = Bar("BTCUSDT", "1m", 1673291460000, 17339.63, 17340.44, 17337.52, 17339.32, 51.33462)
    assert bars == [expected, expected, expected]


def test_closed_push_without_close_time_still_decodes() -> None:
    assert decode_ws_message(closed_raw_event(T=...)) is not None


# -- WebSocket: malformed messages -------------------------------------------------------------


def _envelope(data: Any) -> str:
    return json.dumps({"stream": "btcusdt@kline_1m", "data": data})


MALFORMED_WS = [
    pytest.param('{"e": "kline", "k": {"t": "garbage"', "not JSON", id="not-json"),
    pytest.param(b"\xff\xfe{}", "not JSON", id="not-utf8"),
    pytest.param("[1, 2, 3]", "expected a JSON object, got list", id="json-array"),
    pytest.param('"kline"', "expected a JSON object, got str", id="json-string"),
    pytest.param(
        json.dumps({"e": "trade", "s": "BTCUSDT", "p": "1.0"}),
        "not a kline event",
        id="trade-event",
    ),
    pytest.param(json.dumps({"result": None}), "not a kline event", id="half-an-ack"),
    pytest.param(_envelope([1, 2]), "not a kline event", id="combined-data-not-an-object"),
    pytest.param(json.dumps({"e": "kline", "s": "BTCUSDT"}), "without a 'k' object", id="no-k"),
    pytest.param(
        json.dumps({"e": "kline", "k": [1, 2]}), "without a 'k' object", id="k-not-an-object"
    ),
    pytest.param(closed_raw_event(x="true"), "k.x is 'true', not a boolean", id="x-string"),
    pytest.param(closed_raw_event(x=1), "k.x is 1, not a boolean", id="x-integer"),
    pytest.param(closed_raw_event(x=...), "k.x is None, not a boolean", id="x-missing"),
    pytest.param(closed_raw_event(i="7m"), "k.i is '7m', not a known interval", id="interval-7m"),
    pytest.param(closed_raw_event(i="1M"), "k.i is '1M', not a known interval", id="interval-1M"),
    pytest.param(closed_raw_event(s=""), "k.s is '', not a symbol", id="empty-symbol"),
    pytest.param(closed_raw_event(t="1673291460000"), "k.t is '1673291460000'", id="t-string"),
    pytest.param(closed_raw_event(t=...), "k.t is None, not an integer", id="t-missing"),
    pytest.param(
        closed_raw_event(T=1673291520000),
        "k.T 1673291520000 does not close the candle opened at 1673291460000",
        id="close-time-one-ms-late",
    ),
    pytest.param(
        closed_raw_event(T=1673291460000 + 5 * MINUTE_MS - 1),
        "does not close the candle",
        id="close-time-of-a-5m-candle",
    ),
    pytest.param(closed_raw_event(o="17339.6.3"), "k.o is '17339.6.3', not a number", id="o-text"),
    pytest.param(closed_raw_event(c=""), "k.c is '', not a number", id="c-empty"),
    pytest.param(closed_raw_event(h=None), "k.h is None, not a decimal string", id="h-null"),
    pytest.param(closed_raw_event(l=True), "k.l is True, not a decimal string", id="l-bool"),
    pytest.param(closed_raw_event(h="NaN"), "k.h is 'NaN', not finite", id="h-nan-string"),
    pytest.param(closed_raw_event(c="inf"), "k.c is 'inf', not finite", id="c-inf-string"),
    pytest.param(closed_raw_event(v="-Infinity"), "not finite", id="v-minus-infinity"),
    pytest.param(
        closed_raw_event(o=float("nan")), "k.o is nan, not finite", id="o-json-nan-literal"
    ),
    pytest.param(
        closed_raw_event(h="17337.00000000"), "high 17337.0 < low 17337.52", id="high-below-low"
    ),
    pytest.param(
        closed_raw_event(c="17341.00000000"),
        "open/close outside [low, high]",
        id="close-above-high",
    ),
    pytest.param(closed_raw_event(v="-0.5"), "negative volume -0.5", id="negative-volume"),
    pytest.param(
        closed_raw_event(o="0", l="0", c="0", h="0"), "non-positive price 0.0", id="zero-price"
    ),
]


@pytest.mark.parametrize(("text", "expected"), MALFORMED_WS)
def test_malformed_ws_message_is_rejected_saying_why(text: str | bytes, expected: str) -> None:
    with pytest.raises(MessageError) as caught:
        decode_ws_message(text)

    assert expected in str(caught.value)


def test_value_error_names_the_candle() -> None:
    with pytest.raises(MessageError, match=r"BTCUSDT 1m bar at 2023-01-09T19:11:00Z"):
        decode_ws_message(closed_raw_event(v="-1"))


# -- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("combined", [True, False], ids=["combined", "raw"])
def test_bundled_bars_survive_the_ws_round_trip_exactly(
    slice_2023_bars: list[Bar], combined: bool
) -> None:
    # Arrange
    bars = slice_2023_bars

    # Act
    decoded = [
        decode_ws_message(
            encode_ws_kline(b, event_time_ms=b.open_time_ms + MINUTE_MS + 5, combined=combined)
        )
        for b in bars
    ]

    # Assert
    assert decoded == bars
    assert sum(b.volume == 0.0 for b in bars) == 72  # the halt's flat minutes are in the slice


def test_bundled_bars_survive_the_rest_round_trip_exactly(slice_2023_bars: list[Bar]) -> None:
    # Arrange
    bars = slice_2023_bars
    payload = json.loads(json.dumps([encode_rest_kline(b) for b in bars]))

    # Act
    decoded = decode_rest_klines(payload, "BTCUSDT", "1m", now_ms=bars[-1].open_time_ms + MINUTE_MS)

    # Assert
    assert decoded == bars


def test_encoded_update_of_an_open_candle_decodes_to_nothing(slice_2023_bars: list[Bar]) -> None:
    bar = slice_2023_bars[0]

    text = encode_ws_kline(bar, event_time_ms=bar.open_time_ms + 1000, closed=False)

    assert decode_ws_message(text) is None


def test_encoded_ws_kline_has_binance_shape(slice_2023_bars: list[Bar]) -> None:
    # Arrange
    bar = slice_2023_bars[0]
    real = json.loads(ws_text("btcusdt_1m_combined_open_2025_07_07"))

    # Act
    ours = json.loads(encode_ws_kline(bar, event_time_ms=bar.open_time_ms + MINUTE_MS))

    # Assert
    assert ours.keys() == real.keys()
    assert ours["data"].keys() == real["data"].keys()
    assert ours["data"]["k"].keys() == real["data"]["k"].keys()
    assert ours["stream"] == "btcusdt@kline_1m"
    assert ours["data"]["k"]["T"] == bar.open_time_ms + MINUTE_MS - 1


def test_encoded_rest_row_has_binance_shape(slice_2023_bars: list[Bar]) -> None:
    # Arrange
    bar = slice_2023_bars[0]
    real = rest_payload("bnbusdt_1m_2022_06_04")["rows"][0]

    # Act
    ours = encode_rest_kline(bar)

    # Assert
    assert [type(v) for v in ours] == [type(v) for v in real]
    assert ours[6] == bar.open_time_ms + MINUTE_MS - 1


@st.composite
def bars(draw: st.DrawFn) -> Bar:
    """Consistent bars: low <= open, close <= high; prices anywhere in 1e-8..1e9."""
    prices = sorted(
        draw(st.lists(st.floats(min_value=1e-8, max_value=1e9), min_size=4, max_size=4))
    )
    low, middle_a, middle_b, high = prices
    open_, close = (middle_a, middle_b) if draw(st.booleans()) else (middle_b, middle_a)
    interval = draw(st.sampled_from(sorted(INTERVAL_MS)))
    step = INTERVAL_MS[interval]
    open_time = draw(st.integers(min_value=0, max_value=4_000_000_000_000 // step)) * step
    symbol = draw(st.sampled_from(["BTCUSDT", "ETHUSDT", "BNBBTC", "1INCHUSDT"]))
    volume = draw(st.floats(min_value=0.0, max_value=1e12))
    return Bar(symbol, interval, open_time, open_, high, low, close, volume)


@given(bar=bars(), combined=st.booleans())
def test_any_consistent_bar_survives_the_ws_round_trip(bar: Bar, combined: bool) -> None:
    text = encode_ws_kline(bar, event_time_ms=bar.open_time_ms + 1, combined=combined)

    assert decode_ws_message(text) == bar


@given(bar=bars())
def test_any_consistent_bar_survives_the_rest_round_trip(bar: Bar) -> None:
    payload = json.loads(json.dumps([encode_rest_kline(bar)]))

    assert decode_rest_klines(payload, bar.symbol, bar.interval) == [bar]


# -- stream names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "interval", "expected"),
    [
        ("BTCUSDT", "1m", "btcusdt@kline_1m"),
        ("EthUsdt", "15m", "ethusdt@kline_15m"),
        ("bnbbtc", "1h", "bnbbtc@kline_1h"),
    ],
)
def test_stream_name_lowercases_the_symbol(symbol: str, interval: str, expected: str) -> None:
    assert stream_name(symbol, interval) == expected


def test_stream_name_matches_the_real_combined_stream() -> None:
    envelope = json.loads(ws_text("btcusdt_1m_combined_open_2025_07_07"))

    assert stream_name(envelope["data"]["s"], envelope["data"]["k"]["i"]) == envelope["stream"]
