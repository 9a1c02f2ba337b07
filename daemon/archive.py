"""The exchange's public archive (the data.binance.vision layout): kline zips per month and day.

A whole past month is one monthly zip, a past day of the current month one daily zip (the
exchange publishes them the next month and the next day); each has a ``.CHECKSUM`` sibling
holding the zip's SHA-256 as ``sha256sum`` writes it. An archive is believed only when its
checksum matches, it holds one CSV, and every row passes the same checks as a REST page (the
12 REST columns; open times in microseconds, as the exchange's spot files from 2025 on have,
become milliseconds). Anything else (a missing file, a mismatch, a bad zip or row) is an
:class:`ArchiveUnavailableError`: the downloader says so in one line and asks REST for that period.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp

from barbus.daemon.core.events import Bar
from barbus.daemon.feeds.binance_codec import EdgeLimits, MessageError, decode_rest_page
from barbus.daemon.feeds.binance_rest import wall_ms

__all__ = [
    "MAX_ARCHIVE_BYTES",
    "ArchiveFile",
    "ArchiveUnavailableError",
    "archive_files",
    "read_archive",
]

MAX_ARCHIVE_BYTES = 64 * 1024 * 1024  # a month of 1m klines is ~2 MB zipped
_MICROSECONDS = 10**14  # open times above this are microseconds (1e14 ms is the year 5138)


class ArchiveUnavailableError(Exception):
    """This archive cannot be used (missing, damaged, not klines): fetch its period over REST."""


@dataclass(frozen=True)
class ArchiveFile:
    """One zip of the archive and the open times it covers (both included)."""

    url: str
    first_ms: int
    last_ms: int


def archive_files(
    base_url: str, symbol: str, interval: str, first_ms: int, last_ms: int, now_ms: int
) -> list[ArchiveFile]:
    """The archive zips for ``[first_ms, last_ms]``: monthly for months that ended before this
    one, daily for days of this month before today; the rest (today) is REST's."""
    base = base_url.rstrip("/")
    now = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    this_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    files = []
    day = datetime.fromtimestamp(first_ms / 1000, tz=UTC).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    while _ms(day) <= last_ms and day < today:
        if day < this_month:
            start = day.replace(day=1)
            end = (start + timedelta(days=32)).replace(day=1)
            name = f"{symbol}-{interval}-{start:%Y-%m}.zip"
            url = f"{base}/data/spot/monthly/klines/{symbol}/{interval}/{name}"
        else:
            start, end = day, day + timedelta(days=1)
            name = f"{symbol}-{interval}-{start:%Y-%m-%d}.zip"
            url = f"{base}/data/spot/daily/klines/{symbol}/{interval}/{name}"
        files.append(ArchiveFile(url, _ms(start), _ms(end) - 1))
        day = end
    return files


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def read_archive(
    session: aiohttp.ClientSession,
    archive: ArchiveFile,
    symbol: str,
    interval: str,
    limits: EdgeLimits,
) -> list[Bar]:
    """The checked bars of one archive zip, oldest first."""
    data = await _get(session, archive.url, MAX_ARCHIVE_BYTES)
    listed = (await _get(session, f"{archive.url}.CHECKSUM", 4096)).decode("ascii", "replace")
    expected = listed.split()[0].lower() if listed.split() else ""
    if hashlib.sha256(data).hexdigest() != expected:
        raise ArchiveUnavailableError(f"{archive.url}: SHA-256 does not match its CHECKSUM file")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zipped:
            members = [m for m in zipped.namelist() if m.endswith(".csv")]
            if len(members) != 1:
                raise ArchiveUnavailableError(
                    f"{archive.url}: holds {len(members)} CSV files, not 1"
                )
            text = zipped.read(members[0]).decode("utf-8")
    except (zipfile.BadZipFile, UnicodeDecodeError, OSError) as exc:
        raise ArchiveUnavailableError(f"{archive.url}: not a readable zip ({exc})") from None
    rows: list[list[object]] = []
    for index, fields in enumerate(csv.reader(io.StringIO(text))):
        if not fields or (index == 0 and not fields[0].strip().isdigit()):
            continue  # a blank line, or the header some files have
        try:
            open_time = int(fields[0])
        except ValueError:
            raise ArchiveUnavailableError(
                f"{archive.url}: row {index + 1} has no open time"
            ) from None
        if open_time > _MICROSECONDS:
            open_time //= 1000
        rows.append([open_time, *fields[1:]])
    try:
        page = decode_rest_page(
            rows,
            symbol,
            interval,
            start_ms=archive.first_ms,
            end_ms=archive.last_ms,
            limit=len(rows),
            now_ms=wall_ms(),
            limits=limits,
        )
    except MessageError as exc:
        raise ArchiveUnavailableError(f"{archive.url}: {exc}") from None
    if page.rejected:
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(page.rejected.items()))
        raise ArchiveUnavailableError(
            f"{archive.url}: rows refused ({reasons}), e.g. {page.example}"
        )
    return page.bars


async def _get(session: aiohttp.ClientSession, url: str, cap: int) -> bytes:
    try:
        async with session.get(url) as response:
            if response.status != 200:
                raise ArchiveUnavailableError(f"{url}: HTTP {response.status}")
            body = bytearray()
            async for chunk in response.content.iter_chunked(65536):
                body += chunk
                if len(body) > cap:
                    raise ArchiveUnavailableError(f"{url}: larger than {cap} bytes")
            return bytes(body)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ArchiveUnavailableError(f"{url}: {type(exc).__name__}: {exc}") from None
