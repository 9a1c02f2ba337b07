"""``barbus data download``/``update`` against the sim exchange's REST API, faults included.

The sim runs in-process with its clock still (``speed=0``): the bars it has closed are those of
its history, and a test moves its virtual now to close more. The expected bars are the series the
sim serves, read back from the data folder by the replay's own loader, bit for bit; the expected
request counts are pages of 1,000 counted by hand.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import numpy as np
import pytest

from barbus.daemon.core.data_folder import DataFolder, missing_ranges
from barbus.daemon.core.errors import DataError
from barbus.daemon.core.events import MINUTE_MS
from barbus.daemon.core.series import BarSeries
from barbus.daemon.download import DownloadPolicy, SeriesReport, download
from barbus.daemon.feeds.sim_faults import FaultConfig
from barbus.replay.loader import load_bars
from tests.conftest import BTC_2023_WITH_GAP
from tests.integration.test_live_feed import SYMBOL, RunningSim, running_sim
from tests.kit.processes import CHECKOUT_CLI, REPO_ROOT, checkout_env

START = 1_679_529_600_000  # 2023-03-23: two days before the sample's 80-minute gap
DAYS = 4
QUICK = DownloadPolicy(backoff_s=0.01, flush_bars=1000, timeout_s=2.0)


@pytest.fixture(scope="module")
def served() -> BarSeries:
    """Four days of the 2023 sample, with its one exchange gap (80 minutes on 2023-03-24)."""
    whole = load_bars(BTC_2023_WITH_GAP, SYMBOL)
    return whole.between(START, START + DAYS * 1440 * MINUTE_MS)


def all_closed(series: BarSeries) -> int:
    """history_bars that leave every bar of ``series`` closed."""
    return int(series.open_time_ms[-1] - series.open_time_ms[0]) // MINUTE_MS + 2


COLUMNS = ("open_time_ms", "open", "high", "low", "close", "volume")


def stored(folder: DataFolder) -> dict[str, np.ndarray]:
    """The data folder's columns of SYMBOL, read by the replay's loader, month after month."""
    parts = [load_bars(path, SYMBOL) for path in folder.month_files(SYMBOL, "1m")]
    if not parts:
        return {name: np.empty(0) for name in COLUMNS}
    return {name: np.concatenate([getattr(p, name) for p in parts]) for name in COLUMNS}


def assert_same_bars(folder: DataFolder, served: BarSeries) -> None:
    got = stored(folder)
    for name in COLUMNS:
        assert got[name].tobytes() == getattr(served, name).tobytes(), name


async def fetch(
    sim: RunningSim, folder: DataFolder, end_ms: int | None, policy: DownloadPolicy = QUICK
) -> SeriesReport:
    (report,) = await download(folder, [SYMBOL], "1m", START, end_ms, sim.rest_url, policy=policy)
    return report


def end_of(series: BarSeries) -> int:
    return int(series.open_time_ms[-1]) + MINUTE_MS


async def test_a_download_stores_the_exchange_bars_exactly_and_reports_its_gap(
    served: BarSeries, tmp_path: Path
) -> None:
    folder = DataFolder(tmp_path / "data")
    async with running_sim(served, speed=0, history_bars=all_closed(served)) as sim:
        report = await fetch(sim, folder, end_of(served))
        again = await fetch(sim, folder, end_of(served))

    assert_same_bars(folder, served)
    minutes = DAYS * 1440
    # Pages of 1,000 from the start; the gap is skipped over by the exchange's own paging.
    assert report.requests == math.ceil(len(served) / 1000)
    assert report.bars_written == report.stored_bars == len(served) == minutes - 80
    assert (report.gaps, report.largest_gap_bars) == (1, 80)  # reported, never filled
    assert [p.name for p in folder.month_files(SYMBOL, "1m")] == [f"{SYMBOL}-1m-2023-03.csv"]
    # Everything was asked once: a second run asks nothing, the gap included.
    assert (again.requests, again.bars_written, again.already_had) == (0, 0, True)
    assert folder.fetched(SYMBOL, "1m") == [(START, START + (minutes - 1) * MINUTE_MS)]


@pytest.mark.parametrize("kind", ["429", "418", "500", "slow", "truncated"])
async def test_a_download_gets_through_a_faulty_exchange(
    served: BarSeries, tmp_path: Path, kind: str
) -> None:
    folder = DataFolder(tmp_path / "data")
    faults = FaultConfig(
        rest_http=kind, rest_http_every=2, rest_http_times=2, retry_after=1, rest_slow_seconds=3.0
    )
    async with running_sim(served, speed=0, history_bars=all_closed(served), faults=faults) as sim:
        report = await fetch(sim, folder, end_of(served))
        failed = sim.exchange.http_faults

    assert failed == 2
    assert report.retries == 2  # a slow answer times out (2 s) and is asked again
    assert report.requests == math.ceil(len(served) / 1000) + 2
    assert_same_bars(folder, served)


async def test_a_retry_after_beyond_the_limit_stops_in_one_line_and_keeps_the_pages(
    served: BarSeries, tmp_path: Path
) -> None:
    folder = DataFolder(tmp_path / "data")
    faults = FaultConfig(rest_http="418", rest_http_every=3, rest_http_times=1, retry_after=700)
    async with running_sim(served, speed=0, history_bars=all_closed(served), faults=faults) as sim:
        with pytest.raises(DataError, match="Retry-After 700 s") as failure:
            await fetch(sim, folder, end_of(served))
        assert "\n" not in str(failure.value)
        # Two pages were on disk before the ban: the next run asks only for the rest.
        assert len(stored(folder)["close"]) == 2000
        resumed = await fetch(sim, folder, end_of(served))

    assert resumed.requests == math.ceil((len(served) - 2000) / 1000)
    assert_same_bars(folder, served)


async def test_a_page_that_keeps_failing_fails_the_download_after_its_attempts(
    served: BarSeries, tmp_path: Path
) -> None:
    folder = DataFolder(tmp_path / "data")
    faults = FaultConfig(rest_http="500")
    policy = DownloadPolicy(backoff_s=0.01, attempts=3)
    async with running_sim(served, speed=0, history_bars=all_closed(served), faults=faults) as sim:
        with pytest.raises(DataError, match=r"failed after 3 tries: .*HTTP 500"):
            await fetch(sim, folder, end_of(served), policy)
    assert folder.month_files(SYMBOL, "1m") == []
    assert folder.fetched(SYMBOL, "1m") == []


async def test_an_update_to_now_asks_again_for_the_tail_the_exchange_had_not_closed(
    served: BarSeries, tmp_path: Path
) -> None:
    folder = DataFolder(tmp_path / "data")
    half = len(served) // 2
    async with running_sim(served, speed=0, history_bars=half) as sim:
        first = await fetch(sim, folder, None)  # to the last closed candle: the sim's now
        closed = int(np.count_nonzero(served.open_time_ms <= sim.exchange.now_ms - MINUTE_MS))
        sim.exchange.now_ms = int(served.open_time_ms[-1]) + 2 * MINUTE_MS  # the rest closes
        later = await fetch(sim, folder, None)

    assert first.bars_written == closed
    assert later.bars_written == len(served) - closed
    assert later.requests == (len(served) - closed) // 1000 + 1  # full pages, then a short one
    assert_same_bars(folder, served)


def test_missing_ranges_are_what_no_fetched_range_covers() -> None:
    m = MINUTE_MS
    assert missing_ranges((0, 9 * m), [], m) == [(0, 9 * m)]
    assert missing_ranges((0, 9 * m), [(0, 9 * m)], m) == []
    assert missing_ranges((0, 9 * m), [(2 * m, 3 * m), (4 * m, 5 * m)], m) == [
        (0, m),
        (6 * m, 9 * m),
    ]
    assert missing_ranges((5 * m, 6 * m), [(0, 2 * m), (8 * m, 9 * m)], m) == [(5 * m, 6 * m)]


async def run_cli(*args: str) -> tuple[int, str, str]:
    """``barbus ARGS`` from this checkout, awaited while the in-process sim serves it."""
    proc = await asyncio.create_subprocess_exec(
        *CHECKOUT_CLI,
        *args,
        cwd=REPO_ROOT,
        env=checkout_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.process
async def test_the_cli_downloads_lists_and_updates_a_symbol(
    served: BarSeries, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    async with running_sim(served, speed=0, history_bars=all_closed(served)) as sim:
        start = "2023-03-23"
        code, out, err = await run_cli(
            "data",
            "download",
            SYMBOL.lower(),
            "--start",
            start,
            "--end",
            "2023-03-27",
            "--rest-url",
            sim.rest_url,
            "--data-dir",
            str(data),
        )
        assert code == 0, err
        assert f"{SYMBOL} 1m: {len(served):,} new bars from 6 request(s)" in out
        assert "1 exchange gap(s), largest 80 bar(s) (never filled)" in out
        code, listing, err = await run_cli("data", "ls", "--data-dir", str(data))
        assert code == 0, err
        row = next(line.split() for line in listing.splitlines() if line.startswith(SYMBOL))
        assert row[:4] == [SYMBOL, "1m", "2023-03-23T00:00:00Z", "2023-03-26T23:59:00Z"]
        assert row[4:7] == [f"{len(served):,}", "1", "80"]
        code, out, err = await run_cli(
            "data", "update", "--rest-url", sim.rest_url, "--data-dir", str(data)
        )
        assert code == 0, err
        assert f"{SYMBOL} 1m: 0 new bars from 1 request(s)" in out  # asks past the end: nothing
    assert_same_bars(DataFolder(data), served)


@pytest.mark.process
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["download", "X", "--start", "2023-03-25", "--end", "2023-03-24"], "is not after"),
        (["download", "X", "--start", "soon"], "--start: cannot read time 'soon'"),
        (["download", "X", "--start", "2023-03-25", "--interval", "7m"], "unknown interval"),
        (["update"], "holds no downloaded 1m series"),
    ],
)
async def test_bad_requests_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    code, _, err = await run_cli("data", *args, "--data-dir", str(tmp_path / "data"))
    assert code != 0
    assert message in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.process
async def test_an_unknown_symbol_is_refused_at_once_with_the_exchange_message(
    served: BarSeries, tmp_path: Path
) -> None:
    async with running_sim(served, speed=0, history_bars=all_closed(served)) as sim:
        code, _, err = await run_cli(
            "data",
            "download",
            "NOPEUSDT",
            "--start",
            "2023-03-23",
            "--rest-url",
            sim.rest_url,
            "--data-dir",
            str(tmp_path / "data"),
        )
    assert code != 0
    assert "refused by the exchange" in err
    assert "Invalid symbol" in err
    assert len(err.strip().splitlines()) == 1, err
