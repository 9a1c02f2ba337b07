"""Time and period parsing: epoch units, colons inside times, TOML values, empty periods."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from barbus.daemon.core.errors import ConfigError
from barbus.replay.periods import parse_period, parse_time, split_period

# 2025-05-20T00:00:00Z, by hand: 20228 days after 1970-01-01 times 86400 s.
T0_S = 20228 * 86400
T0_MS = T0_S * 1000


def test_a_bare_number_below_1e11_is_seconds_else_milliseconds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="barbus.periods")

    assert parse_time(str(T0_S), "--start") == T0_MS
    assert parse_time(str(T0_MS), "--end") == T0_MS
    assert parse_time(99_999_999_999, "start") == 99_999_999_999_000  # just below: seconds
    assert parse_time(100_000_000_000, "start") == 100_000_000_000  # 1e11: milliseconds

    assert f"--start {T0_S} read as epoch seconds: 2025-05-20T00:00:00Z" in caplog.messages
    assert f"--end {T0_MS} read as epoch milliseconds: 2025-05-20T00:00:00Z" in caplog.messages


def test_toml_dates_and_datetimes_are_utc_unless_they_say_otherwise() -> None:
    assert parse_time(dt.date(2025, 5, 20), "start") == T0_MS
    assert parse_time(dt.datetime(2025, 5, 20, 2, 0), "start") == T0_MS + 2 * 3_600_000
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert parse_time(dt.datetime(2025, 5, 20, 2, 0, tzinfo=plus_two), "start") == T0_MS


@pytest.mark.parametrize("value", [True, -5, "-5", 1.5, "banana", str(10**30)])
def test_what_is_not_a_time_is_one_config_error_naming_the_option(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^--start"):
        parse_time(value, "--start")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-07-01:2025-07-02", ("2025-07-01", "2025-07-02")),
        ("2025-07-01T12:00:2025-07-02", ("2025-07-01T12:00", "2025-07-02")),
        ("2025-07-01T12:00:00:2025-07-02T01:30", ("2025-07-01T12:00:00", "2025-07-02T01:30")),
        ("2025-07-01T12:00Z:2025-07-02", ("2025-07-01T12:00Z", "2025-07-02")),
        (f"{T0_S}:{T0_S + 60}", (str(T0_S), str(T0_S + 60))),
        ("2025-07-01:", ("2025-07-01", None)),
        (":2025-07-01T06:00", (None, "2025-07-01T06:00")),
    ],
)
def test_a_period_splits_at_the_colon_between_two_times(
    text: str, expected: tuple[str | None, str | None]
) -> None:
    assert split_period(text) == expected


@pytest.mark.parametrize("text", ["banana", "2025-07-01", "a:b", ""])
def test_a_text_that_is_no_period_is_one_error(text: str) -> None:
    with pytest.raises(ConfigError, match="is not a period: expected START:END"):
        split_period(text)


def test_an_empty_period_says_how_its_ends_relate() -> None:
    with pytest.raises(ConfigError, match=r"is empty: its end \(2025-05-20T00:00:00Z\) is before"):
        parse_period("2025-05-21", str(T0_S))
    with pytest.raises(ConfigError, match="is the same as its start"):
        parse_period(T0_MS, "2025-05-20")
    assert parse_period(None, "2025-05-21") == (None, T0_MS + 86_400_000)
