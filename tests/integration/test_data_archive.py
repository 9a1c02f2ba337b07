"""Downloads from the exchange's public archive layout, served by a local HTTP server.

The test builds the archive itself from the bars the sim exchange serves: zips of the 12 REST
columns (open times in microseconds, as the exchange's spot files since 2025 have, or in
milliseconds with a header line, as some older ones), each with its ``.CHECKSUM`` sibling. A
corrupt or missing archive must be reported and its period fetched over REST; either way the
data folder ends with exactly the served bars.
"""

from __future__ import annotations

import hashlib
import io
import logging
import zipfile
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from barbus.daemon.core.data_folder import DataFolder
from barbus.daemon.core.events import MINUTE_MS, Bar
from barbus.daemon.core.series import BarSeries
from barbus.daemon.download import SeriesReport, download
from tests.integration.test_data_download import (
    QUICK,
    START,
    all_closed,
    assert_same_bars,
    served,  # noqa: F401  (the module fixture)
)
from tests.integration.test_live_feed import SYMBOL, running_sim

MARCH = f"data/spot/monthly/klines/{SYMBOL}/1m/{SYMBOL}-1m-2023-03.zip"
DAY_MS = 1440 * MINUTE_MS


def daily(day: int) -> str:
    return f"data/spot/daily/klines/{SYMBOL}/1m/{SYMBOL}-1m-2023-03-{day:02d}.zip"


def archive_zip(bars: Iterable[Bar], *, micro: bool, header: bool) -> bytes:
    """A zip holding one CSV of the exchange's 12 kline columns."""
    lines = ["open_time,open,high,low,close,volume,close_time,q,n,tb,tq,ignore\n"] if header else []
    scale = 1000 if micro else 1
    for b in bars:
        opened = b.open_time_ms * scale
        closed = (b.open_time_ms + MINUTE_MS - 1) * scale
        lines.append(
            f"{opened},{b.open!r},{b.high!r},{b.low!r},{b.close!r},{b.volume!r},{closed},"
            "0,0,0,0,0\n"
        )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("klines.csv", "".join(lines))
    return buffer.getvalue()


def with_checksum(files: dict[str, bytes], path: str, body: bytes, *, wrong: bool = False) -> None:
    digest = hashlib.sha256(body + (b"x" if wrong else b"")).hexdigest()
    files[path] = body
    files[f"{path}.CHECKSUM"] = f"{digest}  {path.rsplit('/', 1)[1]}\n".encode()


@asynccontextmanager
async def archive_server(files: dict[str, bytes]) -> AsyncIterator[tuple[str, list[str]]]:
    """A local HTTP server of ``files`` (path -> body; anything else 404), and the paths asked."""
    asked: list[str] = []

    async def serve(request: web.Request) -> web.Response:
        path = request.path.lstrip("/")
        asked.append(path)
        if path not in files:
            return web.Response(status=404, text="not found")
        return web.Response(body=files[path], content_type="application/zip")

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", asked
    finally:
        await runner.cleanup()


def end_of(series: BarSeries) -> int:
    return int(series.open_time_ms[-1]) + MINUTE_MS


async def download_with_archive(
    series: BarSeries,
    files: dict[str, bytes],
    folder: DataFolder,
    end_ms: int | None,
    now_ms: int | None = None,
) -> tuple[SeriesReport, list[str]]:
    """Download SYMBOL from START into ``folder`` from the sim exchange serving ``series`` and
    an archive server of ``files``; the report and the archive paths asked for."""
    async with (
        archive_server(files) as (archive_url, asked),
        running_sim(series, speed=0, history_bars=all_closed(series)) as sim,
    ):
        (report,) = await download(
            folder,
            [SYMBOL],
            "1m",
            START,
            end_ms,
            sim.rest_url,
            archive_url=archive_url,
            policy=QUICK,
            now_ms=now_ms,
        )
    return report, asked


async def test_a_past_month_comes_from_its_monthly_archive_and_asks_rest_nothing(
    served: BarSeries,  # noqa: F811
    tmp_path: Path,
) -> None:
    files: dict[str, bytes] = {}
    with_checksum(files, MARCH, archive_zip(served.to_bars(), micro=True, header=False))
    folder = DataFolder(tmp_path / "data")
    report, asked = await download_with_archive(served, files, folder, end_of(served))
    assert asked == [MARCH, f"{MARCH}.CHECKSUM"]
    assert (report.archives, report.archives_failed, report.requests) == (1, 0, 0)
    assert (report.gaps, report.largest_gap_bars) == (1, 80)
    assert_same_bars(folder, served)


@pytest.mark.parametrize("damage", ["checksum", "missing", "not_a_zip"])
async def test_a_corrupt_or_missing_archive_is_reported_and_fetched_over_rest(
    served: BarSeries,  # noqa: F811
    tmp_path: Path,
    damage: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    files: dict[str, bytes] = {}
    body = archive_zip(served.to_bars(), micro=True, header=False)
    if damage == "checksum":
        with_checksum(files, MARCH, body, wrong=True)
    elif damage == "not_a_zip":
        with_checksum(files, MARCH, body[: len(body) // 2])
    folder = DataFolder(tmp_path / "data")
    with caplog.at_level(logging.WARNING, logger="barbus.download"):
        report, _ = await download_with_archive(served, files, folder, end_of(served))
    assert (report.archives, report.archives_failed) == (1, 1)
    assert report.requests == 6  # the whole period over REST instead
    (warning,) = [r.getMessage() for r in caplog.records if "over REST" in r.getMessage()]
    assert MARCH in warning
    expected = {"checksum": "SHA-256 does not match", "missing": "HTTP 404", "not_a_zip": "zip"}
    assert expected[damage] in warning
    assert_same_bars(folder, served)


async def test_this_months_past_days_come_from_daily_archives_and_today_from_rest(
    served: BarSeries,  # noqa: F811
    tmp_path: Path,
) -> None:
    now = START + 3 * DAY_MS + 12 * 60 * MINUTE_MS  # 2023-03-26T12:00, as if today
    files: dict[str, bytes] = {}
    for index, day in enumerate((23, 24, 25)):
        lo = START + index * DAY_MS
        bars = served.between(lo, lo + DAY_MS).to_bars()
        with_checksum(files, daily(day), archive_zip(bars, micro=False, header=index == 0))
    folder = DataFolder(tmp_path / "data")
    report, asked = await download_with_archive(served, files, folder, None, now_ms=now)
    assert [p for p in asked if p.endswith(".zip")] == [daily(23), daily(24), daily(25)]
    assert (report.archives, report.archives_failed) == (3, 0)
    assert report.requests == 1  # the 720 closed bars of today
    assert_same_bars(folder, served.between(START, now))  # the 11:59 candle closed at now
