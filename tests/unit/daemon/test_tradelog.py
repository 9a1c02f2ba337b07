"""The trade log's CSV row and JSON object, against hand-written expectations."""

from __future__ import annotations

import dataclasses
import sqlite3
from contextlib import closing
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from barbus.daemon.core.events import Direction, ExitReason, Trade
from barbus.daemon.core.tradelog import (
    TRADE_COLUMNS,
    TRADE_FIELDS,
    trade_dict,
    trade_from_values,
    trade_row,
    trade_values,
)
from barbus.daemon.state import StateStore

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


def test_the_columns_are_the_first_releases_then_the_direction() -> None:
    assert TRADE_COLUMNS == (
        "strategy", "symbol", "entry_time", "exit_time", "entry_time_ms", "exit_time_ms",
        "entry_price", "exit_price", "size", "entry_fee", "exit_fee", "profit", "profit_pct",
        "exit_reason", "direction",
    )  # fmt: skip


def test_a_trades_values_are_its_fields_in_order_with_reasons_as_text() -> None:
    values = trade_values(TRADE)

    assert values == (
        "sma", "BTCUSDT", 1_747_699_200_000, 1_747_702_800_000, 0.1 + 0.2, 101.5, 0.25, 0.01,
        0.02, 0.345, 1.1, "stop_loss", "long",
    )  # fmt: skip
    assert [type(v) for v in values[-2:]] == [str, str]  # plain text, not the enums


_FLOATS = st.floats(allow_nan=False, allow_infinity=False)


@given(
    st.builds(
        Trade,
        st.text(),
        st.text(),
        st.integers(0, 2**62),
        st.integers(0, 2**62),
        *([_FLOATS] * 7),
        st.sampled_from(ExitReason),
        st.sampled_from(Direction),
    )
)
def test_values_turn_back_into_the_same_trade(trade: Trade) -> None:
    assert trade_from_values(trade_values(trade)) == trade
    assert trade_from_values(list(trade_values(trade))) == trade


def test_the_states_trades_table_has_a_trades_fields_as_columns(tmp_path: Path) -> None:
    StateStore(tmp_path / "state.sqlite").close()

    with closing(sqlite3.connect(tmp_path / "state.sqlite")) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(trades)")]

    assert columns == ["id", "engine", *TRADE_FIELDS[1:]]  # the strategy is its engine
