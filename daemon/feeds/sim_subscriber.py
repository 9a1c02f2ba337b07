"""One WebSocket client of the simulated exchange: its streams, its messages, its faults.

Apart from the exchange (``sim.py``: the clock, the REST side and the connection handler)
because everything that goes wrong on a WebSocket happens per connection: the open-candle
updates, skipped, duplicated, reordered and injected candles, garbage messages, pauses and
dropped connections of ``sim_faults.FaultConfig``. The exchange's clock calls :meth:`tick` for
each closed minute; counts that span the whole run (final candles, messages, pauses) stay on the
exchange, so faults keep their rhythm across reconnects.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from barbus.daemon.feeds.binance_codec import encode_ws_kline
from barbus.daemon.feeds.sim_hostile import fake_candle

if TYPE_CHECKING:
    from barbus.daemon.feeds.sim import SimExchange

__all__ = ["Subscriber"]


class Subscriber:
    """One WebSocket connection: its streams, its message count, its faults."""

    def __init__(self, exchange: SimExchange, ws: web.WebSocketResponse, combined: bool) -> None:
        self.exchange = exchange
        self.ws = ws
        self.combined = combined
        self.symbols: set[str] = set()
        self.sent = 0
        self.held: str | None = None  # a final candle held back to be sent out of order

    def subscribe(self, names: list[str]) -> None:
        for name in names:
            symbol, _, kind = name.partition("@")
            if kind == f"kline_{self.exchange.interval}":
                self.symbols.add(symbol.upper())

    async def tick(self, open_ms: int) -> None:
        exchange = self.exchange
        faults = exchange.faults
        for symbol in sorted(self.symbols):
            book = exchange.books.get(symbol)
            index = book.index_by_time.get(open_ms) if book is not None else None
            if book is None or index is None:
                continue  # no bar this minute (a gap in the data): nothing is invented
            bar = book.bars[index]
            now = exchange.now_ms
            if faults.partial_updates:
                partial = bar._replace(close=bar.open, high=bar.open, low=bar.open, volume=0.0)
                await self._send(
                    encode_ws_kline(
                        partial, event_time_ms=now - 30_000, closed=False, combined=self.combined
                    )
                )
            final = encode_ws_kline(bar, event_time_ms=now + 5, combined=self.combined)
            exchange.sent_final += 1
            if faults.skip_every and exchange.sent_final % faults.skip_every == 0:
                continue
            if (
                faults.inject
                and faults.inject_every
                and exchange.sent_final % faults.inject_every == 0
            ):
                fake = fake_candle(bar, faults.inject, faults.inject_price)
                await self._send(
                    encode_ws_kline(fake, event_time_ms=now + 5, combined=self.combined)
                )
            rnd = exchange.dice
            if self.held is None and rnd.random() < faults.reorder_probability:
                self.held = final
                continue
            await self._send(final)
            await self.flush()
            if rnd.random() < faults.duplicate_probability:
                await self._send(final)

    async def flush(self) -> None:
        """Send the candle held back by the reorder fault, if any."""
        if self.held is not None:
            held, self.held = self.held, None
            await self._send(held)

    async def _send(self, text: str) -> None:
        if self.ws.closed:
            return
        exchange = self.exchange
        faults = exchange.faults
        self.sent += 1
        exchange.sent_messages += 1
        try:
            if faults.malformed_every and self.sent % faults.malformed_every == 0:
                await self.ws.send_str('{"e": "kline", "k": {"t": "garbage"')
            await self.ws.send_str(text)
            if faults.pause_every and exchange.sent_messages % faults.pause_every == 0:
                exchange.pauses += 1
                await asyncio.sleep(faults.pause_seconds)
            if faults.drop_every and self.sent % faults.drop_every == 0:
                await self.ws.close()
        except ConnectionResetError:
            pass
