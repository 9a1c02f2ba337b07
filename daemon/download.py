"""``barbus data download`` / ``update``: page an exchange's REST klines into the data folder.

Closed candles only, 1,000 a request, through the checked :class:`KlinesClient` (a bad row is
refused and counted, a bad page asked again). The exchange is not trusted to be polite either:
a 429 or 418 waits the ``Retry-After`` it sends (longer than ``max_retry_after_s``, an IP ban,
fails the download in one line); a 5xx, a timeout or a truncated or non-JSON body is retried
with a doubling backoff, ``attempts`` times a page; the request weight the exchange reports
(``X-MBX-USED-WEIGHT-1M``) past 90 % of ``weight_limit`` waits for the next minute; any other
4xx (an unknown symbol or interval) fails at once, with the exchange's message.

Bars are written every ``flush_bars`` (and at the end of each missing range), and the range
they cover is recorded in the folder's ``fetched.json`` only after they are on disk, so a
download stopped anywhere (Ctrl-C, a kill, a failed page) keeps what it wrote, and the next run
asks only for the rest. Gaps the exchange has (it answers a range with no bars) are recorded as
fetched too: never filled, never asked again, and reported at the end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aiohttp

from barbus.daemon.archive import ArchiveUnavailableError, archive_files, read_archive
from barbus.daemon.core.data_folder import DataFolder, Range, gaps_of, missing_ranges
from barbus.daemon.core.errors import DataError
from barbus.daemon.core.events import INTERVAL_MS, Bar, format_time_ms
from barbus.daemon.feeds.binance_codec import EdgeLimits, RestPage
from barbus.daemon.feeds.binance_rest import (
    FeedTemporaryError,
    KlinesClient,
    RateLimitedError,
    RequestRefusedError,
    wall_ms,
)
from barbus.daemon.log import RateLimitedLog

__all__ = ["DownloadPolicy", "SeriesReport", "download", "last_closed_open_ms"]

log = logging.getLogger("barbus.download")

Progress = Callable[[str, int], None]  # (symbol, bars written so far in this run)


@dataclass(frozen=True)
class DownloadPolicy:
    """How hard to ask: page size, retries, waits, the exchange's weight budget."""

    page_limit: int = 1000
    attempts: int = 6  # tries of one page on 5xx, timeouts and bad pages
    backoff_s: float = 1.0  # the first wait after such a failure; doubled each time
    max_backoff_s: float = 60.0
    max_retry_after_s: float = 600.0  # a longer Retry-After (an IP ban) fails the download
    rate_limit_waits: int = 20  # 429/418 waits of one page before giving up
    weight_limit: int = 6000  # Binance's request weight per minute
    timeout_s: float = 30.0  # one request
    flush_bars: int = 50_000  # bars held in memory before they are written


@dataclass
class SeriesReport:
    """What one symbol's download did, and the stored series' gaps in the asked period."""

    symbol: str
    interval: str
    bars_written: int = 0
    requests: int = 0
    retries: int = 0
    already_had: bool = False  # nothing was missing
    archives: int = 0  # archive zips tried
    archives_failed: int = 0  # ... of them unusable (their periods came over REST)
    first_ms: int | None = None
    last_ms: int | None = None
    stored_bars: int = 0
    gaps: int = 0
    largest_gap_bars: int = 0
    refused_rows: dict[str, int] = field(default_factory=dict)


def last_closed_open_ms(interval: str, now_ms: int | None = None) -> int:
    """The open time of the newest candle of ``interval`` that has closed by now."""
    step = INTERVAL_MS[interval]
    now = wall_ms() if now_ms is None else now_ms
    return now // step * step - step


async def download(
    folder: DataFolder,
    symbols: Sequence[str],
    interval: str,
    start_ms: int,
    end_ms: int | None,
    rest_url: str,
    *,
    archive_url: str | None = None,
    policy: DownloadPolicy | None = None,
    progress: Progress | None = None,
    now_ms: int | None = None,
) -> list[SeriesReport]:
    """Download ``[start_ms, end_ms)`` of each symbol (to the last closed candle without
    ``end_ms``), asking only for what ``folder`` has not fetched yet: from the archive at
    ``archive_url`` (:mod:`barbus.daemon.archive`) where it has the period, else over REST.
    ``now_ms`` (default: the clock) decides which candles have closed and which archives exist."""
    if interval not in INTERVAL_MS:
        raise DataError(f"unknown interval {interval!r}; one of {', '.join(INTERVAL_MS)}")
    policy = policy or DownloadPolicy()
    step = INTERVAL_MS[interval]
    first = -(-start_ms // step) * step
    now = wall_ms() if now_ms is None else now_ms
    newest = last_closed_open_ms(interval, now)
    last = newest if end_ms is None else min(newest, (end_ms - 1) // step * step)
    timeout = aiohttp.ClientTimeout(total=policy.timeout_s)
    reports = []
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for symbol in symbols:
            rejected: dict[str, int] = {}
            client = KlinesClient(
                session,
                rest_url,
                interval,
                EdgeLimits(step_ms=step),
                page_limit=policy.page_limit,
                max_pages=1,
                rejected=rejected,
                warnings=RateLimitedLog(log, prefix="download"),
            )
            report = SeriesReport(symbol, interval, refused_rows=rejected)
            if first <= last:
                todo = missing_ranges((first, last), folder.fetched(symbol, interval), step)
                report.already_had = not todo
                if archive_url and todo:
                    await _from_archive(folder, session, archive_url, report, todo, now)
                await _download_series(
                    folder, client, report, (first, last), end_ms is None, policy, progress
                )
            _describe_stored(folder, report, (first, last), step)
            reports.append(report)
    return reports


async def _download_series(
    folder: DataFolder,
    client: KlinesClient,
    report: SeriesReport,
    wanted: Range,
    to_now: bool,
    policy: DownloadPolicy,
    progress: Progress | None,
) -> None:
    """``to_now``: ``wanted`` ends at the last closed candle, so the bars missing after the
    newest one received are not a gap yet (the exchange may not have them yet): that tail is
    not recorded as fetched, and the next update asks for it again."""
    symbol, interval = report.symbol, report.interval
    step = INTERVAL_MS[interval]
    todo = missing_ranges(wanted, folder.fetched(symbol, interval), step)
    held: list[Bar] = []
    held_from: int | None = None  # the first open time the held bars cover

    def flush(covered_to: int) -> None:
        nonlocal held_from
        if held:
            folder.add_bars(symbol, interval, held)
            report.bars_written += len(held)
            held.clear()
        if held_from is not None and covered_to >= held_from:
            folder.add_fetched(symbol, interval, (held_from, covered_to), step)
        held_from = None
        if progress is not None:
            progress(symbol, report.bars_written)

    for lo, hi in todo:
        cursor = lo
        while cursor <= hi:
            page = await _page(client, symbol, cursor, hi, policy, report)
            if held_from is None:
                held_from = cursor
            bars = page.bars
            if not bars and page.rows >= policy.page_limit:
                raise DataError(
                    f"download of {symbol}: a full page from {format_time_ms(cursor)} had no "
                    f"usable bar ({page.example}); what was written is kept"
                )
            held.extend(bars)
            if page.rows >= policy.page_limit:  # more may follow
                done_to = bars[-1].open_time_ms
                if len(held) >= policy.flush_bars:
                    flush(done_to)
            else:  # all the exchange has up to hi (none: a gap to hi, or a tail not there yet)
                tail = to_now and hi == wanted[1]
                flush((bars[-1].open_time_ms if bars else cursor - step) if tail else hi)
                break
            cursor = done_to + step
        else:
            flush(hi)


async def _from_archive(
    folder: DataFolder,
    session: aiohttp.ClientSession,
    archive_url: str,
    report: SeriesReport,
    todo: Sequence[Range],
    now_ms: int,
) -> None:
    """Fill what the archive has of ``todo``; an archive that cannot be used is one warning
    and its period stays missing, for REST."""
    symbol, interval = report.symbol, report.interval
    step = INTERVAL_MS[interval]
    for lo, hi in todo:
        for archive in archive_files(archive_url, symbol, interval, lo, hi, now_ms):
            report.archives += 1
            try:
                bars = await read_archive(session, archive, symbol, interval, EdgeLimits(step))
            except ArchiveUnavailableError as exc:
                report.archives_failed += 1
                log.warning("download: %s; fetching that period over REST", exc)
                continue
            # The last open time of the archive's period on the interval's grid.
            first, last = max(lo, archive.first_ms), min(hi, archive.last_ms // step * step)
            kept = [bar for bar in bars if first <= bar.open_time_ms <= last]
            folder.add_bars(symbol, interval, kept)
            folder.add_fetched(symbol, interval, (first, last), step)
            report.bars_written += len(kept)


async def _page(
    client: KlinesClient,
    symbol: str,
    lo: int,
    hi: int,
    policy: DownloadPolicy,
    report: SeriesReport,
) -> RestPage:
    """One page, retried as the module says; a page that cannot be had is one DataError."""
    delay = policy.backoff_s
    failures = rate_limited = 0
    while True:
        report.requests += 1
        try:
            page = await client.page(symbol, lo, hi, policy.page_limit)
        except RequestRefusedError as exc:
            raise DataError(f"download of {symbol} refused by the exchange: {exc}") from None
        except RateLimitedError as exc:
            rate_limited += 1
            wait = exc.retry_after if exc.retry_after is not None else delay
            if wait > policy.max_retry_after_s or rate_limited > policy.rate_limit_waits:
                raise DataError(
                    f"download of {symbol} stopped: {exc} (Retry-After {wait:g} s); "
                    "what was written is kept, run it again later"
                ) from None
            log.warning("download: %s; waiting %g s as the exchange asks", exc, wait)
            report.retries += 1
            await asyncio.sleep(wait)
            continue
        except FeedTemporaryError as exc:
            failures += 1
            if failures >= policy.attempts:
                raise DataError(
                    f"download of {symbol} failed after {failures} tries: {exc}; "
                    "what was written is kept, run it again to resume"
                ) from None
            log.warning("download: %s; retrying in %g s", exc, delay)
            report.retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, policy.max_backoff_s)
            continue
        if client.used_weight >= 0.9 * policy.weight_limit:
            wait = 60.0 - (wall_ms() % 60_000) / 1000 + 0.5
            log.warning(
                "download: request weight %d of %d this minute; waiting %.1f s",
                client.used_weight,
                policy.weight_limit,
                wait,
            )
            await asyncio.sleep(wait)
        return page


def _describe_stored(folder: DataFolder, report: SeriesReport, wanted: Range, step: int) -> None:
    """The stored bars of the asked period: first, last, count and the exchange's gaps."""
    first, last = wanted
    times = [t for t in folder.open_times(report.symbol, report.interval) if first <= t <= last]
    report.stored_bars = len(times)
    if not times:
        return
    report.first_ms, report.last_ms = times[0], times[-1]
    report.gaps, report.largest_gap_bars = gaps_of(times, step)
