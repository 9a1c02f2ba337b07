"""The trade log's CSV row and JSON object, against hand-written expectations."""

from __future__ import annotations

import dataclasses

from barbus.daemon.core.events import Direction, ExitReason, Trade
from barbus.daemon.core.tradelog import TRADE_COLUMNS, trade_dict, trade_row

TRADE = Trade(
    "sma",
    "BTCUSDT",
    1_747_699_200_000,
    1_747_702_800_000,
    0.1 + 0.2,
    101.5,
    0.25,
    0.01,
    0.02,
    0.345,
    1.1,
    ExitReason.STOP_LOSS,
)


def test_a_csv_row_writes_times_both_ways_and_floats_exactly() -> None:
    assert trade_row(TRADE) == [
        "sma", "BTCUSDT", "2025-05-20T00:00:00Z", "2025-05-20T01:00:00Z",
        "1747699200000", "1747702800000", "0.30000000000000004", "101.5", "0.25", "0.01",
        "0.02", "0.345", "1.1", "stop_loss", "long",
    ]  # fmt: skip


def test_a_short_trade_row_ends_with_its_direction() -> None:
    short = dataclasses.replace(TRADE, direction=Direction.SHORT)

    assert trade_row(short)[:-1] == trade_row(TRADE)[:-1]
    assert trade_row(short)[-1] == "short"
    assert TRADE_COLUMNS[-1] == "direction"


def test_a_json_object_has_the_csv_columns_and_keeps_numbers() -> None:
    obj = trade_dict(TRADE)

    assert tuple(obj) == TRADE_COLUMNS
    assert obj["entry_time_ms"] == 1_747_699_200_000
    assert obj["entry_price"] == 0.1 + 0.2
    assert obj["exit_time"] == "2025-05-20T01:00:00Z"
