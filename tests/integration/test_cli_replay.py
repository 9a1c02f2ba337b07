"""The real ``barbus`` command line, run as a subprocess on the bundled data and on bad inputs."""

from __future__ import annotations

import csv
import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from barbus.daemon.core.events import ExitReason, format_time_ms, parse_utc_ms
from barbus.daemon.core.tradelog import TRADE_COLUMNS
from tests.integration.test_readme_outputs import readme_summary_keys
from tests.kit.processes import barbus as checkout_barbus

REPO_ROOT = Path(__file__).resolve().parents[2]
WEEK = ("--start", "2025-06-01", "--end", "2025-06-08")
WEEK_BARS = 7 * 24 * 60
T0_MS = 1_747_699_200_000  # 2025-05-20T00:00:00Z
MINUTE_MS = 60_000
HEADER_LINE = "open_time_ms,open,high,low,close,volume"


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str
    out: Path | None = None

    @property
    def trades_csv(self) -> Path:
        assert self.out is not None
        return self.out / "trades.csv"

    def summary(self) -> dict[str, Any]:
        assert self.out is not None
        data: dict[str, Any] = json.loads((self.out / "summary.json").read_text(encoding="utf-8"))
        return data

    def trade_rows(self) -> list[dict[str, str]]:
        with self.trades_csv.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))


def barbus(*args: str | Path, out: Path | None = None) -> Run:
    """Run ``python -m daemon.cli ARGS [--out OUT]`` from the repository root."""
    done = checkout_barbus(*args, *(() if out is None else ("--out", out)))
    return Run(done.returncode, done.stdout, done.stderr, out)


def assert_succeeded(run: Run) -> None:
    assert run.code == 0, run.stderr
    assert "Traceback" not in run.stdout + run.stderr


def write_klines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def good_lines(n: int = 5) -> list[str]:
    """Header-layout lines of ``n`` consistent minutes (file line 1 is the header)."""
    lines = [HEADER_LINE]
    for i in range(n):
        base = 100.0 + i
        lines.append(f"{T0_MS + i * MINUTE_MS},{base},{base + 2.0},{base - 1.0},{base + 0.5},1.5")
    return lines


def with_line(lines: list[str], line_number: int, replacement: str) -> list[str]:
    changed = list(lines)
    changed[line_number - 1] = replacement
    return changed


# --------------------------------------------------------------------------------------------
# one week of sma_cross on the bundled 2025 file, shared by several tests


@pytest.fixture(scope="module")
def sma_week(btc_2025_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("sma_week")
    return barbus("replay", "--strategy", "sma_cross", "--data", btc_2025_path, *WEEK, out=out)


def test_replay_sma_cross_week_exits_zero_and_prints_the_report(sma_week: Run) -> None:
    assert_succeeded(sma_week)
    report = sma_week.stdout
    for label in (
        "total return",
        "buy and hold",
        "max drawdown",
        "sharpe",
        "trades",
        "win rate",
        "exposure",
        "bars/s",
    ):
        assert label in report, label
    assert "sma_cross (timeframe=1m" in report
    assert "fast=10, slow=30" in report
    assert "BTCUSDT 2025-06-01T00:00:00Z -> 2025-06-07T23:59:00Z, 10,080 bars, no gaps" in report
    assert f"wrote         {sma_week.trades_csv}" in report


def test_replay_sma_cross_week_writes_one_trades_row_per_trade(sma_week: Run) -> None:
    with sma_week.trades_csv.open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    rows = sma_week.trade_rows()
    summary = sma_week.summary()

    assert tuple(header) == TRADE_COLUMNS
    assert summary["trades"] > 0
    assert len(rows) == summary["trades"]
    assert sma_week.trades_csv.read_bytes().count(b"\n") == len(rows) + 1


def test_replay_sma_cross_week_trade_rows_are_consistent(sma_week: Run) -> None:
    rows = sma_week.trade_rows()
    start_ms, end_ms = parse_utc_ms("2025-06-01"), parse_utc_ms("2025-06-08")
    reasons = {reason.value for reason in ExitReason}

    for i, row in enumerate(rows):
        assert row["strategy"] == "sma_cross"
        assert row["symbol"] == "BTCUSDT"
        assert row["exit_reason"] in reasons
        if i < len(rows) - 1:
            assert row["exit_reason"] != ExitReason.END_OF_DATA.value
        entry_ms, exit_ms = int(row["entry_time_ms"]), int(row["exit_time_ms"])
        assert start_ms <= entry_ms < exit_ms <= end_ms
        assert row["entry_time"] == format_time_ms(entry_ms)
        assert row["exit_time"] == format_time_ms(exit_ms)
        assert float(row["entry_fee"]) > 0.0
    entries = [int(r["entry_time_ms"]) for r in rows]
    exits = [int(r["exit_time_ms"]) for r in rows]
    assert all(x <= e for x, e in zip(exits, entries[1:], strict=False))  # one position at a time


def test_replay_sma_cross_week_summary_has_every_summary_key(sma_week: Run) -> None:
    expected_keys = readme_summary_keys()

    summary = sma_week.summary()

    assert set(summary) == set(expected_keys)
    assert summary["strategy"] == "sma_cross"
    assert summary["symbol"] == "BTCUSDT"
    assert summary["bars"] == WEEK_BARS
    assert summary["first_bar"] == "2025-06-01T00:00:00Z"
    assert summary["last_bar"] == "2025-06-07T23:59:00Z"
    assert summary["gaps"] == 0
    assert summary["params"]["fast"] == 10
    assert summary["params"]["slow"] == 30
    assert summary["fee_bps"] == 10.0
    assert summary["slippage_bps"] == 5.0
    assert summary["fill_at"] == "next_open"
    assert summary["starting_cash"] == 10_000.0


def test_replay_same_command_twice_gives_byte_identical_trades_csv(
    sma_week: Run, btc_2025_path: Path, tmp_path: Path
) -> None:
    again = barbus(
        "replay", "--strategy", "sma_cross", "--data", btc_2025_path, *WEEK, out=tmp_path / "again"
    )

    assert_succeeded(again)
    assert sma_week.trades_csv.read_bytes() == again.trades_csv.read_bytes()
    assert len(again.trade_rows()) > 0


def test_replay_fill_at_close_changes_the_trade_log(
    sma_week: Run, btc_2025_path: Path, tmp_path: Path
) -> None:
    at_close = barbus(
        "replay",
        "--strategy",
        "sma_cross",
        "--data",
        btc_2025_path,
        *WEEK,
        "--fill-at",
        "close",
        out=tmp_path / "close",
    )

    assert_succeeded(at_close)
    assert at_close.summary()["fill_at"] == "close"
    assert at_close.trades_csv.read_bytes() != sma_week.trades_csv.read_bytes()


# --------------------------------------------------------------------------------------------
# options reach the summary


def test_replay_param_options_are_reflected_in_summary_params(
    btc_2025_path: Path, tmp_path: Path
) -> None:
    run = barbus(
        "replay",
        "--strategy",
        "sma_cross",
        "--data",
        btc_2025_path,
        *WEEK,
        "--param",
        "fast=5",
        "--param",
        "slow=20",
        out=tmp_path,
    )

    assert_succeeded(run)
    params = run.summary()["params"]
    assert params["fast"] == 5
    assert params["slow"] == 20
    assert "fast=5, slow=20" in run.stdout


def test_replay_zero_fee_and_slippage_are_reflected_in_summary_and_trades(
    btc_2025_path: Path, tmp_path: Path
) -> None:
    run = barbus(
        "replay",
        "--strategy",
        "sma_cross",
        "--data",
        btc_2025_path,
        *WEEK,
        "--fee-bps",
        "0",
        "--slippage-bps",
        "0",
        out=tmp_path,
    )

    assert_succeeded(run)
    summary = run.summary()
    assert summary["fee_bps"] == 0.0
    assert summary["slippage_bps"] == 0.0
    rows = run.trade_rows()
    assert rows
    assert all(float(r["entry_fee"]) == 0.0 and float(r["exit_fee"]) == 0.0 for r in rows)


# --------------------------------------------------------------------------------------------
# whole files


def test_replay_without_data_uses_the_bundled_sample_for_metatrend(tmp_path: Path) -> None:
    run = barbus("replay", "--strategy", "metatrend", out=tmp_path)

    assert_succeeded(run)
    assert "130,708 bars" in run.stdout
    assert "metatrend (timeframe=15m" in run.stdout
    summary = run.summary()
    assert summary["bars"] == 130_708
    assert summary["data"].endswith("BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz")


def test_replay_2023_file_reports_the_80_minute_gap_and_completes(
    btc_2023_path: Path, tmp_path: Path
) -> None:
    run = barbus("replay", "--strategy", "sma_cross", "--data", btc_2023_path, out=tmp_path)

    assert_succeeded(run)
    assert "71,041 bars" in run.stdout
    assert "1 gap(s), 80 missing minute(s), largest 80 min after 2023-03-24T12:39:00Z" in run.stdout
    assert "gap" in run.stderr  # the warning log line
    summary = run.summary()
    assert (summary["gaps"], summary["largest_gap_minutes"], summary["missing_minutes"]) == (
        1,
        80,
        80,
    )
    assert summary["zero_volume_bars"] == 72


def test_strategies_command_lists_every_strategy() -> None:
    run = barbus("strategies")

    assert_succeeded(run)
    names = {line.split(":")[0] for line in run.stdout.splitlines() if not line.startswith(" ")}
    assert names == {"sma_cross", "metatrend", "bbrs", "random"}
    assert "    fast = 10" in run.stdout


# --------------------------------------------------------------------------------------------
# bad input: non-zero exit, one "barbus: error:" line, never a traceback


def assert_one_error_line(run: Run, *fragments: str) -> None:
    assert run.code != 0
    assert "Traceback" not in run.stdout + run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("barbus: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


BAD_FILES: list[tuple[str, list[str], list[str]]] = [
    (
        "wrong-header",
        with_line(good_lines(), 1, "time,open,high,low,close,volume"),
        ["unexpected header"],
    ),
    (
        "non-numeric-field",
        with_line(good_lines(), 4, f"{T0_MS + 2 * MINUTE_MS},102.0,104.0,101.0,abc,1.5"),
        ["line 4", "close is not a number: 'abc'"],
    ),
    (
        "unsorted-timestamps",
        [good_lines()[i] for i in (0, 1, 3, 2, 4, 5)],
        ["line 4", "not sorted"],
    ),
    (
        "duplicated-timestamps",
        with_line(good_lines(), 4, f"{T0_MS + MINUTE_MS},102.0,104.0,101.0,102.5,1.5"),
        ["line 4", "duplicated open time"],
    ),
    (
        "infinite-open-time",
        with_line(good_lines(), 4, "inf,102.0,104.0,101.0,102.5,1.5"),
        ["line 4"],
    ),
]


@pytest.mark.parametrize(
    ("lines", "fragments"),
    [pytest.param(lines, fragments, id=name) for name, lines, fragments in BAD_FILES],
)
def test_replay_bad_data_file_fails_with_one_error_line(
    tmp_path: Path, lines: list[str], fragments: list[str]
) -> None:
    path = write_klines(tmp_path / "BTCUSDT_1m.csv", lines)

    run = barbus("replay", "--strategy", "sma_cross", "--data", path)

    assert_one_error_line(run, str(path), *fragments)


def test_replay_missing_data_file_fails_with_one_error_line(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT_1m_missing.csv"

    run = barbus("replay", "--strategy", "sma_cross", "--data", path)

    assert_one_error_line(run, str(path), "no such data file")


def test_replay_damaged_gzip_fails_with_one_error_line(tmp_path: Path) -> None:
    packed = bytearray(gzip.compress(("\n".join(good_lines(50)) + "\n").encode("utf-8")))
    packed[20:40] = b"\xff" * 20
    path = tmp_path / "BTCUSDT_1m.csv.gz"
    path.write_bytes(bytes(packed))

    run = barbus("replay", "--strategy", "sma_cross", "--data", path)

    assert_one_error_line(run, str(path), "gzip")


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        pytest.param(
            ["--strategy", "metatrnd"],
            ["unknown strategy 'metatrnd'", "did you mean 'metatrend'?"],
            id="unknown-strategy",
        ),
        pytest.param(
            ["--strategy", "sma_cross", "--param", "fsat=5"],
            ["unknown parameter 'fsat'", "did you mean 'fast'?"],
            id="unknown-parameter",
        ),
        pytest.param(
            ["--strategy", "sma_cross", "--param", "fast=30", "--param", "slow=10"],
            ["slow (10) must be greater than fast (30)"],
            id="slow-not-above-fast",
        ),
        pytest.param(
            ["--strategy", "sma_cross", "--param", "fast=abc"],
            ["fast='abc' is not a valid int"],
            id="non-numeric-parameter",
        ),
        pytest.param(
            ["--strategy", "sma_cross", "--param", "fast=5", "--param", "fast=6"],
            ["parameter 'fast' given twice"],
            id="parameter-given-twice",
        ),
        pytest.param(
            ["--strategy", "sma_cross", "--start", "2025-13-45"],
            ["cannot read time '2025-13-45'"],
            id="bad-start",
        ),
        pytest.param(
            ["--strategy", "sma_cross", "--start", "2030-01-01"],
            ["no bars in the requested period"],
            id="period-without-bars",
        ),
        pytest.param(
            ["--strategy", "sma_cross", "--start", "2025-06-08", "--end", "2025-06-01"],
            [
                "--start/--end 2025-06-08 .. 2025-06-01 is empty: its end (2025-06-01T00:00:00Z) "
                "is before its start (2025-06-08T00:00:00Z)"
            ],
            id="end-before-start",
        ),
        pytest.param(
            ["--strategy", "sma_cross", "--fee-bps=-1"],
            ["fee_bps must be in [0, 10000) basis points, got -1.0"],
            id="negative-fee",
        ),
        pytest.param(
            ["--strategy", "sma_cross", "--slippage-bps=nan"],
            ["slippage_bps must be in"],
            id="nan-slippage",
        ),
        pytest.param(
            ["--strategy", "sma_cross", "--cash", "0"],
            ["starting_cash must be > 0"],
            id="zero-cash",
        ),
    ],
)
def test_replay_bad_option_value_fails_with_one_error_line(
    options: list[str], fragments: list[str]
) -> None:
    run = barbus("replay", *options)

    assert_one_error_line(run, *fragments)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(
            ["--strategy", "sma_cross", "--param", "fast"],
            "argument --param: expected name=value, got 'fast'",
            id="param-without-equals",
        ),
        pytest.param(
            ["--strategy", "sma_cross", "--fee-bps", "ten"],
            "argument --fee-bps: invalid float value: 'ten'",
            id="non-numeric-fee",
        ),
        pytest.param(
            ["--strategy", "sma_cross", "--fill-at", "midnight"],
            "argument --fill-at: invalid choice: 'midnight'",
            id="unknown-fill-timing",
        ),
        pytest.param([], "one of the arguments --strategy --config is required", id="no-strategy"),
    ],
)
def test_replay_malformed_option_fails_with_argparse_usage(
    options: list[str], message: str
) -> None:
    run = barbus("replay", *options)

    assert run.code == 2
    assert "Traceback" not in run.stdout + run.stderr
    lines = run.stderr.splitlines()
    assert lines[0].startswith("usage: barbus replay")
    assert lines[-1].startswith("barbus replay: error: ")
    assert message in lines[-1]
