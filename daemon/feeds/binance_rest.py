"""The REST klines client: ``GET /api/v3/klines`` pages of a Binance-compatible exchange.

Apart from the live feed (``binance.py``) because paging through klines is a job of its own that
more than the feed needs: the feed's backfill and warm-up use it, and a data download can use it
as it is (a client takes an aiohttp session, a base URL and its limits, nothing of the feed).
Nothing from the exchange is believed unchecked: a body is read only up to ``limit`` rows' worth
of bytes, must be JSON, and is checked row by row (``decode_rest_page``). An HTTP error, a network
failure or a bad page is a :class:`FeedTemporaryError` (the caller retries after a backoff);
refused rows are counted by reason in the caller's ``rejected`` and told through its rate-limited
log. Warm-up pages backwards from the newest candle (:meth:`KlinesClient.recent`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import aiohttp

from barbus.daemon.core.events import Bar
from barbus.daemon.feeds.binance_codec import EdgeLimits, MessageError, RestPage, decode_rest_page
from barbus.daemon.log import RateLimitedLog, clip

__all__ = [
    "FeedTemporaryError",
    "KlinesClient",
    "RateLimitedError",
    "RequestRefusedError",
    "count_rejected",
    "wall_ms",
]

log = logging.getLogger("barbus.feed")

PAGE_BYTES_PER_ROW = 512  # a Binance kline row is ~150 bytes: a larger body is not a page


class FeedTemporaryError(Exception):
    """The exchange could not be reached or answered nonsense: retry after a backoff."""


class RequestRefusedError(FeedTemporaryError):
    """HTTP 4xx other than 429 and 418: the request itself is wrong (an unknown symbol or
    interval); asking again the same way gets the same answer."""


class RateLimitedError(FeedTemporaryError):
    """HTTP 429 (too many requests) or 418 (banned for them): wait ``retry_after`` seconds,
    the exchange's own ``Retry-After`` (``None`` when it gave none), before asking again."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class KlinesClient:
    """Checked klines pages of one exchange and interval, over one aiohttp session.

    ``page_limit`` is the rows asked per page, ``max_pages`` the pages one :meth:`recent` may
    read; refused rows and bad pages are counted in ``rejected`` (by reason) and warned about
    through ``warnings``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        interval: str,
        limits: EdgeLimits,
        *,
        page_limit: int,
        max_pages: int,
        rejected: dict[str, int],
        warnings: RateLimitedLog,
    ) -> None:
        self.session = session
        self.url = f"{base_url.rstrip('/')}/api/v3/klines"
        self.interval = interval
        self.limits = limits
        self.page_limit = page_limit
        self.max_pages = max_pages
        self.rejected = rejected
        self.warnings = warnings
        self.used_weight = 0  # X-MBX-USED-WEIGHT-1M of the last answer (0: not told)

    async def page(
        self, symbol: str, start_ms: int | None, end_ms: int | None, limit: int
    ) -> RestPage:
        """The checked page of at most ``limit`` closed bars in ``[start_ms, end_ms]`` (None:
        open on that side; without ``start_ms`` the exchange answers its latest candles)."""
        params = {} if start_ms is None else {"startTime": str(start_ms)}
        params["limit"] = str(limit)
        if end_ms is not None:
            params["endTime"] = str(end_ms)
        payload = await self._get(symbol, params, limit)
        return self._check(payload, symbol, start_ms, end_ms, limit)

    async def recent(self, symbol: str, count: int) -> list[Bar]:
        """The ``count`` most recent closed bars of ``symbol``, oldest first (fewer if the
        exchange has fewer or ``max_pages`` pages did not reach them).

        Paged backwards: the newest page first (no time range: the exchange's latest candles),
        then each older page ending one interval before the oldest bar so far (``endTime``), so
        pages never overlap. It stops at ``count`` bars, at a short page (the exchange has no
        older ones) or after ``max_pages`` pages; a bad page fails the whole fetch (the caller
        retries it)."""
        pages: list[list[Bar]] = []
        have = 0
        end_ms: int | None = None
        while have < count and len(pages) < self.max_pages:
            limit = min(count - have, self.page_limit)
            page = await self.page(symbol, None, end_ms, limit)
            if not page.bars:
                break
            pages.append(page.bars)
            have += len(page.bars)
            end_ms = page.bars[0].open_time_ms - self.limits.step_ms
            if page.rows < limit:
                break  # a short page: nothing older on the exchange
            await asyncio.sleep(0)  # HTTP, signals and the watchdog run between pages
        if have < count and len(pages) >= self.max_pages:
            log.warning(
                "feed: warm-up of %s stopped after %d pages (max_backfill_pages) at %d of %d bars",
                symbol,
                len(pages),
                have,
                count,
            )
        return [bar for page in reversed(pages) for bar in page][-count:] if count else []

    def _check(
        self,
        payload: Any,
        symbol: str,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
    ) -> RestPage:
        try:
            page = decode_rest_page(
                payload,
                symbol,
                self.interval,
                start_ms=start_ms,
                end_ms=end_ms,
                limit=limit,
                now_ms=wall_ms(),
                limits=self.limits,
            )
        except MessageError as exc:
            count_rejected(self.rejected, "bad_page")
            raise FeedTemporaryError(f"klines response for {symbol}: {clip(exc)}") from None
        for reason, count in page.rejected.items():
            count_rejected(self.rejected, reason, count)
            self.warnings.warning(
                reason,
                "feed: %d %s klines row(s) refused (%s), e.g. %s",
                count,
                symbol,
                reason,
                clip(page.example),
            )
        return page

    async def _get(self, symbol: str, params: dict[str, str], limit: int) -> Any:
        query = {"symbol": symbol, "interval": self.interval, **params}
        cap = limit * PAGE_BYTES_PER_ROW + 4096
        try:
            async with self.session.get(self.url, params=query) as response:
                self.used_weight = _header_number(response, "X-MBX-USED-WEIGHT-1M") or 0
                if response.status != 200:
                    body = (await response.content.read(200)).decode("utf-8", "replace")
                    message = f"GET klines {symbol}: HTTP {response.status} {clip(body)}"
                    if response.status in (418, 429):
                        raise RateLimitedError(message, _header_number(response, "Retry-After"))
                    if 400 <= response.status < 500:
                        raise RequestRefusedError(message)
                    raise FeedTemporaryError(message)
                body_bytes = bytearray()
                async for chunk in response.content.iter_chunked(65536):
                    body_bytes += chunk
                    if len(body_bytes) > cap:
                        count_rejected(self.rejected, "bad_page")
                        raise FeedTemporaryError(
                            f"GET klines {symbol}: answer larger than {cap} bytes "
                            f"for limit={limit}; not read further"
                        )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise FeedTemporaryError(f"GET klines {symbol}: {type(exc).__name__}: {exc}") from None
        try:
            return json.loads(body_bytes)
        except ValueError as exc:
            count_rejected(self.rejected, "bad_page")
            raise FeedTemporaryError(f"GET klines {symbol}: not JSON: {clip(exc)}") from None


def _header_number(response: aiohttp.ClientResponse, name: str) -> int | None:
    """A header's whole number of seconds or weight units; None when absent or not one."""
    text = response.headers.get(name, "")
    return int(text) if text.isdigit() and len(text) < 10 else None


def count_rejected(rejected: dict[str, int], reason: str, count: int = 1) -> None:
    """Add ``count`` refusals of ``reason`` to the tally ``rejected``."""
    rejected[reason] = rejected.get(reason, 0) + count


def wall_ms() -> int:
    """Wall-clock now: what a closed candle must not be later than."""
    return int(time.time() * 1000)
