from __future__ import annotations

import pickle

import pytest

from barbus.daemon.core.errors import DataError
from barbus.daemon.core.events import (
    Bar,
    BarGuard,
    format_time_ms,
    interval_ms,
    parse_utc_ms,
    validate_bar,
)
from tests.factories import T0_MS, make_bar


def test_bar_is_immutable_and_picklable() -> None:
    bar = make_bar(101.5, volume=2.0)
    with pytest.raises(AttributeError):
        bar.close = 1.0  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(bar)) == bar


@pytest.mark.parametrize(
    ("bar", "message"),
    [
        (make_bar(100.0, high=99.0, low=101.0), "high 99.0 < low 101.0"),
        (make_bar(100.0, volume=-1.0), "negative volume"),
        (make_bar(float("nan")), "NaN"),
        (make_bar(100.0, high=100.0, low=90.0, open=120.0), "outside"),
        (make_bar(0.0), "non-positive"),
    ],
)
def test_invalid_bar_is_rejected_with_message_naming_it(bar: Bar, message: str) -> None:
    with pytest.raises(DataError, match=message) as info:
        validate_bar(bar)
    assert "BTCUSDT 1m bar at 2025-05-20T00:00:00Z" in str(info.value)


def test_guard_rejects_repeated_and_earlier_open_times() -> None:
    guard = BarGuard()
    guard.check(make_bar(minute=1))
    with pytest.raises(DataError, match="strictly rising"):
        guard.check(make_bar(minute=1))
    with pytest.raises(DataError, match="00:00:00Z"):
        guard.check(make_bar(minute=0))
    assert guard.check(make_bar(minute=5)).open_time_ms == T0_MS + 5 * 60_000


def test_time_helpers_round_trip_utc() -> None:
    assert format_time_ms(T0_MS) == "2025-05-20T00:00:00Z"
    assert parse_utc_ms("2025-05-20") == T0_MS
    assert parse_utc_ms("2025-05-20T02:00:00+02:00") == T0_MS
    assert parse_utc_ms(str(T0_MS)) == T0_MS
    assert interval_ms("15m") == 900_000
    with pytest.raises(DataError, match="cannot read time"):
        parse_utc_ms("yesterday")
    with pytest.raises(DataError, match="unknown interval"):
        interval_ms("7m")
