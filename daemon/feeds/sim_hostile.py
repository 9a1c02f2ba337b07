"""What a hostile simulated exchange sends: fake final candles and damaged REST pages.

Apart from the exchange (``sim.py``), which serves the true bars, because these are the lies
told on purpose: the ``inject`` candles a subscriber sends before real ones and the
``rest_fault`` answers (see ``sim_faults.REST_FAULTS``) that replace a real klines page. Each
is made from the exchange's own bars, so a correct client that refuses them still sees exactly
the replayed series wherever the real bars are still served.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from barbus.daemon.core.events import MINUTE_MS, Bar
from barbus.daemon.feeds.binance_codec import encode_rest_kline

if TYPE_CHECKING:
    from barbus.daemon.feeds.sim import SimExchange

__all__ = ["TEN_YEARS_MS", "damage", "fake_candle", "rest_fault_due"]

TEN_YEARS_MS = 3652 * 24 * 60 * MINUTE_MS


def rest_fault_due(exchange: SimExchange, hole: bool, rows: int, limit: int) -> bool:
    """Whether to damage this backfill answer: every ``rest_fault_every``-th one that the
    fault can damage (a one-row page cannot be unsorted), at most ``rest_fault_times``."""
    faults = exchange.faults
    kind = faults.rest_fault
    cannot = (
        (kind in ("empty", "stale", "past_end") and not hole)
        or (kind == "unsorted" and rows < 2)
        or (kind == "duplicate" and rows == 0)
        or (kind == "future" and rows >= limit)
    )
    if not kind or cannot:
        return False
    if faults.rest_fault_times and exchange.rest_faults >= faults.rest_fault_times:
        return False
    exchange.rest_requests += 1
    if exchange.rest_requests % max(1, faults.rest_fault_every):
        return False
    exchange.rest_faults += 1
    return True


def damage(
    exchange: SimExchange,
    kind: str,
    rows: list[Any],
    symbol: str,
    start: int,
    end: int | None,
    limit: int,
) -> Any:
    """``rows`` as a hostile exchange would send them (see REST_FAULTS)."""
    book = exchange.books[symbol]
    if kind == "duplicate" and rows:
        return ([rows[0], *rows])[:limit]
    if kind == "unsorted" and len(rows) >= 2:
        return [rows[1], rows[0], *rows[2:]]
    if kind == "past_end" and end is not None:
        after = exchange.closed_bars(symbol, end + 1, None, 3)
        return [*rows, *(encode_rest_kline(b) for b in after)]
    if kind == "oversize":
        base = rows or [encode_rest_kline(book.bars[0])]
        copies = math.ceil(exchange.faults.oversize_rows / len(base))
        return (base * copies)[: exchange.faults.oversize_rows]
    if kind == "endless":  # always a full page from startTime on, made up past the data
        last = book.bars[-1]
        out = []
        for i in range(limit):
            t = start + i * MINUTE_MS
            index = book.index_by_time.get(t)
            bar = book.bars[index] if index is not None else last._replace(open_time_ms=t)
            out.append(encode_rest_kline(bar))
        return out
    if kind == "empty":
        return []
    if kind == "stale":
        older = exchange.closed_bars(symbol, start - 5 * MINUTE_MS, start - 1, 5)
        return [encode_rest_kline(b) for b in older]
    if kind == "future" and len(rows) < limit:
        model = book.bars[-1]
        fake = model._replace(open_time_ms=model.open_time_ms + TEN_YEARS_MS)
        return [*rows, encode_rest_kline(fake)]
    if kind == "not_list":
        return {"code": 0, "msg": "this is not a page"}
    return rows


def fake_candle(bar: Bar, kind: str, price: float) -> Bar:
    """A fake final candle of ``kind`` (see INJECT_KINDS) made from the real ``bar``."""
    if kind == "future":
        return bar._replace(open_time_ms=bar.open_time_ms + TEN_YEARS_MS)
    if kind == "misaligned":
        return bar._replace(open_time_ms=bar.open_time_ms + 1234)
    if kind == "time_1e30":
        return bar._replace(open_time_ms=10**30)
    return bar._replace(open=price, high=price, low=price, close=price)
