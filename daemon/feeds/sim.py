"""A local, Binance-compatible exchange that replays cached bars: for offline demos and tests.

It serves ``GET /api/v3/klines`` and kline WebSocket streams (combined ``/stream?streams=...``
and raw ``/ws/<stream>``, plus ``SUBSCRIBE`` messages) from historical 1-minute bars, on a
virtual clock that closes one bar every ``1/speed`` seconds (or in real time). Before the clock
starts, ``history_bars`` bars are already closed, so a client has something to warm up on; a
klines request with ``endTime`` and no ``startTime`` pages back through them as on Binance.

Fault switches make it misbehave the way real exchanges do: drop every connection after K
messages, send a malformed message every M, duplicate, reorder or skip final candles, pause. No
such fault ever changes the bars themselves: a correct client sees exactly the replayed series.

Hostile switches go further, as a broken or malicious exchange would: ``inject`` sends a fake
final candle before every N-th real one (dated ten years ahead, off the minute grid, at open
time 10**30, or at an absurd price); ``silent`` streams answer pings but never send data;
``rest_fault`` damages REST pages (duplicate, unsorted or past-endTime rows, far more rows than
``limit``, pages that never end, empty or stale answers for a hole, a future-dated row, a
non-list). A correct client refuses the fakes and, where the real bars are still served, still
delivers exactly the replayed series.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from barbus.daemon.core.events import MINUTE_MS, Bar
from barbus.daemon.core.series import BarSeries
from barbus.daemon.feeds.binance_codec import encode_rest_kline, encode_ws_kline
from barbus.daemon.listen import listen

__all__ = ["INJECT_KINDS", "REST_FAULTS", "FaultConfig", "SimExchange", "serve"]

log = logging.getLogger("barbus.sim")

TEN_YEARS_MS = 3652 * 24 * 60 * MINUTE_MS
INJECT_KINDS = ("future", "misaligned", "time_1e30", "price")
# empty and stale answer only hole requests (with endTime); the rest every backfill request.
REST_FAULTS = (
    "duplicate",
    "unsorted",
    "past_end",
    "oversize",
    "endless",
    "empty",
    "stale",
    "future",
    "not_list",
)


@dataclass(frozen=True)
class FaultConfig:
    """What goes wrong, and how often (0 = never). Randomness is seeded: runs are repeatable."""

    drop_every: int = 0  # close each WebSocket connection after this many messages
    malformed_every: int = 0  # replace every N-th message by garbage (the real one follows)
    duplicate_probability: float = 0.0  # send a final candle twice
    reorder_probability: float = 0.0  # hold a final candle back and send it after the next
    # After every N-th message of the run (all connections together, so that --drop-every
    # cannot keep it from firing), stop sending for pause_seconds.
    pause_every: int = 0
    pause_seconds: float = 0.0
    partial_updates: bool = True  # also send an open-candle update (x=false) before each close
    seed: int = 1
    skip_every: int = 0  # never send every N-th final candle over WebSocket (a hole to backfill)
    # Hostile: a fake final candle (one of INJECT_KINDS) before every N-th real one.
    inject: str = ""
    inject_every: int = 0
    inject_price: float = 1e300  # the price of an injected "price" candle (all of O/H/L/C)
    silent: bool = False  # WebSockets answer pings but never send a message
    # Hostile: damage every N-th backfill answer (one of REST_FAULTS), at most `times` (0: all).
    rest_fault: str = ""
    rest_fault_every: int = 1
    rest_fault_times: int = 0
    oversize_rows: int = 400_000  # rows of an "oversize" answer

    def __post_init__(self) -> None:
        if self.inject and self.inject not in INJECT_KINDS:
            raise ValueError(f"inject must be one of {', '.join(INJECT_KINDS)}")
        if self.rest_fault and self.rest_fault not in REST_FAULTS:
            raise ValueError(f"rest_fault must be one of {', '.join(REST_FAULTS)}")


@dataclass
class _Book:
    """One symbol's bars as Python lists (the server is not a hot path)."""

    symbol: str
    times: list[int]
    bars: list[Bar]
    index_by_time: dict[int, int] = field(default_factory=dict)

    @classmethod
    def of(cls, series: BarSeries) -> _Book:
        times = series.open_time_ms.tolist()
        return cls(series.symbol, times, series.to_bars(), {t: i for i, t in enumerate(times)})


class SimExchange:
    """The simulated exchange: books of bars, a virtual clock, WebSocket subscribers."""

    def __init__(
        self,
        series: Sequence[BarSeries],
        *,
        speed: float = 10.0,
        history_bars: int = 500,
        faults: FaultConfig | None = None,
        start_on_connect: bool = False,
    ) -> None:
        if not series:
            raise ValueError("the simulated exchange needs at least one series")
        self.books = {s.symbol: _Book.of(s) for s in series}
        self.speed = speed
        self.faults = faults or FaultConfig()
        self._random = random.Random(self.faults.seed)
        first = min(book.times[0] for book in self.books.values())
        self.last_ms = max(book.times[-1] for book in self.books.values())
        # Virtual "now": every bar that opened before now - 1 minute is closed.
        self.now_ms = first + history_bars * MINUTE_MS
        self.sent_final = 0
        self.sent_messages = 0  # WebSocket messages of the whole run, for pause_every
        self.pauses = 0
        self.rest_requests = 0  # backfill requests eligible for rest_fault
        self.rest_faults = 0  # answers damaged so far
        self._subscribers: set[_Subscriber] = set()
        self._clock_task: asyncio.Task[None] | None = None
        self.finished = asyncio.Event()
        # Hold the clock until the first WebSocket client subscribes: a client that warms up
        # over REST first then sees exactly history_bars bars, run after run (for tests).
        self._go = asyncio.Event()
        if not start_on_connect:
            self._go.set()

    # -- the clock ---------------------------------------------------------------------------

    async def run_clock(self) -> None:
        """Close one minute per tick until the data ends (then set ``finished``)."""
        interval = 60.0 if self.speed <= 0 else 1.0 / self.speed
        await self._go.wait()
        started = time.monotonic()
        ticks = 0
        while self.now_ms <= self.last_ms + MINUTE_MS:
            # The minute that opened at now closes one minute later.
            opened_ms = self.now_ms
            self.now_ms += MINUTE_MS
            for subscriber in list(self._subscribers):
                await subscriber.tick(opened_ms)
            ticks += 1
            delay = started + ticks * interval - time.monotonic()
            await asyncio.sleep(max(0.0, delay))
        for subscriber in list(self._subscribers):
            await subscriber.flush()  # a candle held back for reordering is still owed
        self.finished.set()

    def closed_bars(
        self, symbol: str, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[Bar]:
        """Bars of ``symbol`` already closed at the virtual now, as the REST endpoint returns."""
        book = self.books.get(symbol)
        if book is None:
            return []
        lo = 0 if start_ms is None else bisect.bisect_left(book.times, start_ms)
        out = []
        for bar in book.bars[lo:]:
            if bar.open_time_ms + MINUTE_MS > self.now_ms:
                break
            if end_ms is not None and bar.open_time_ms > end_ms:
                break
            out.append(bar)
            if len(out) >= limit:
                break
        return out

    def latest_bars(self, symbol: str, end_ms: int | None, limit: int) -> list[Bar]:
        """The last ``limit`` closed bars of ``symbol`` opened at or before ``end_ms`` (all
        closed ones without it): Binance's answer to a klines request without ``startTime``,
        which is how a client pages back through history."""
        book = self.books[symbol]
        newest = self.now_ms - MINUTE_MS  # bars opened after this are not closed yet
        if end_ms is not None:
            newest = min(newest, end_ms)
        hi = bisect.bisect_right(book.times, newest)
        return book.bars[max(0, hi - limit) : hi]

    # -- HTTP --------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v3/klines", self._klines)
        app.router.add_get("/stream", self._ws_combined)
        app.router.add_get("/ws/{stream}", self._ws_raw)
        app.router.add_get("/sim/status", self._status)
        app.on_startup.append(self._start_clock)
        # on_shutdown, not on_cleanup: open WebSockets must close before aiohttp waits for
        # its handlers, or a connected client keeps the server up for its shutdown timeout.
        app.on_shutdown.append(self._stop_clock)
        return app

    async def _start_clock(self, _: web.Application) -> None:
        self._clock_task = asyncio.create_task(self.run_clock())

    async def _stop_clock(self, _: web.Application) -> None:
        if self._clock_task is not None:
            self._clock_task.cancel()
        for subscriber in list(self._subscribers):
            await subscriber.ws.close()

    async def _status(self, _: web.Request) -> web.Response:
        return web.json_response(
            {
                "now_ms": self.now_ms,
                "last_open_ms": self.last_ms,
                "finished": self.finished.is_set(),
                "subscribers": len(self._subscribers),
                "final_candles_sent": self.sent_final,
                "pauses": self.pauses,
            }
        )

    async def _klines(self, request: web.Request) -> web.Response:
        query = request.query
        symbol = query.get("symbol", "")
        interval = query.get("interval", "")
        if symbol not in self.books or interval != "1m":
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        try:
            start = int(query["startTime"]) if "startTime" in query else None
            end = int(query["endTime"]) if "endTime" in query else None
            limit = min(int(query.get("limit", "500")), 1000)
        except ValueError:
            return web.json_response({"code": -1100, "msg": "Illegal characters."}, status=400)
        if start is None:  # the latest candles (up to endTime), as Binance without startTime
            bars = self.latest_bars(symbol, end, limit)
        else:
            bars = self.closed_bars(symbol, start, end, limit)
        rows: Any = [encode_rest_kline(bar) for bar in bars]
        if start is not None and self._rest_fault_due(end is not None, len(rows), limit):
            rows = self._damage(self.faults.rest_fault, rows, symbol, start, end, limit)
        return web.json_response(rows)

    def _rest_fault_due(self, hole: bool, rows: int, limit: int) -> bool:
        """Whether to damage this backfill answer: every ``rest_fault_every``-th one that the
        fault can damage (a one-row page cannot be unsorted), at most ``rest_fault_times``."""
        faults = self.faults
        kind = faults.rest_fault
        cannot = (
            (kind in ("empty", "stale", "past_end") and not hole)
            or (kind == "unsorted" and rows < 2)
            or (kind == "duplicate" and rows == 0)
            or (kind == "future" and rows >= limit)
        )
        if not kind or cannot:
            return False
        if faults.rest_fault_times and self.rest_faults >= faults.rest_fault_times:
            return False
        self.rest_requests += 1
        if self.rest_requests % max(1, faults.rest_fault_every):
            return False
        self.rest_faults += 1
        return True

    def _damage(
        self, kind: str, rows: list[Any], symbol: str, start: int, end: int | None, limit: int
    ) -> Any:
        """``rows`` as a hostile exchange would send them (see REST_FAULTS)."""
        book = self.books[symbol]
        if kind == "duplicate" and rows:
            return ([rows[0], *rows])[:limit]
        if kind == "unsorted" and len(rows) >= 2:
            return [rows[1], rows[0], *rows[2:]]
        if kind == "past_end" and end is not None:
            after = self.closed_bars(symbol, end + 1, None, 3)
            return [*rows, *(encode_rest_kline(b) for b in after)]
        if kind == "oversize":
            base = rows or [encode_rest_kline(book.bars[0])]
            copies = math.ceil(self.faults.oversize_rows / len(base))
            return (base * copies)[: self.faults.oversize_rows]
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
            older = self.closed_bars(symbol, start - 5 * MINUTE_MS, start - 1, 5)
            return [encode_rest_kline(b) for b in older]
        if kind == "future" and len(rows) < limit:
            model = book.bars[-1]
            fake = model._replace(open_time_ms=model.open_time_ms + TEN_YEARS_MS)
            return [*rows, encode_rest_kline(fake)]
        if kind == "not_list":
            return {"code": 0, "msg": "this is not a page"}
        return rows

    async def _ws_combined(self, request: web.Request) -> web.WebSocketResponse:
        names = [n for n in request.query.get("streams", "").split("/") if n]
        return await self._serve_ws(request, names, combined=True)

    async def _ws_raw(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve_ws(request, [request.match_info["stream"]], combined=False)

    async def _serve_ws(
        self, request: web.Request, names: list[str], *, combined: bool
    ) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20.0)
        await ws.prepare(request)
        subscriber = _Subscriber(self, ws, combined)
        subscriber.subscribe(names)
        if not self.faults.silent:  # a silent stream still answers pings (aiohttp does that)
            self._subscribers.add(subscriber)
        self._go.set()
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                try:
                    command = json.loads(message.data)
                except ValueError:
                    continue
                if isinstance(command, dict) and command.get("method") == "SUBSCRIBE":
                    subscriber.subscribe([str(p) for p in command.get("params", [])])
                    await ws.send_str(json.dumps({"result": None, "id": command.get("id")}))
        finally:
            self._subscribers.discard(subscriber)
        return ws


class _Subscriber:
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
            if kind == "kline_1m":
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
                fake = _fake(bar, faults.inject, faults.inject_price)
                await self._send(
                    encode_ws_kline(fake, event_time_ms=now + 5, combined=self.combined)
                )
            rnd = exchange._random
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


def _fake(bar: Bar, kind: str, price: float) -> Bar:
    """A fake final candle of ``kind`` (see INJECT_KINDS) made from the real ``bar``."""
    if kind == "future":
        return bar._replace(open_time_ms=bar.open_time_ms + TEN_YEARS_MS)
    if kind == "misaligned":
        return bar._replace(open_time_ms=bar.open_time_ms + 1234)
    if kind == "time_1e30":
        return bar._replace(open_time_ms=10**30)
    return bar._replace(open=price, high=price, low=price, close=price)


async def serve(
    series: Sequence[BarSeries],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    speed: float = 10.0,
    history_bars: int = 500,
    faults: FaultConfig | None = None,
    ready: asyncio.Event | None = None,
    exit_at_end: bool = False,
    start_on_connect: bool = False,
) -> None:
    """Run the simulated exchange until cancelled (or, with ``exit_at_end``, the data ends)."""
    exchange = SimExchange(
        series,
        speed=speed,
        history_bars=history_bars,
        faults=faults,
        start_on_connect=start_on_connect,
    )
    sock = listen(host, port, "sim-exchange --host/--port")  # port 0 tells its number here
    runner = web.AppRunner(exchange.app(), handle_signals=False)
    await runner.setup()
    bound = sock.getsockname()[1]
    await web.SockSite(runner, sock).start()
    log.info("simulated exchange on http://%s:%s (%s bars/s)", host, bound, speed or "real time")
    print(json.dumps({"host": host, "port": bound}), flush=True)
    if ready is not None:
        ready.set()
    try:
        if exit_at_end:
            await exchange.finished.wait()
            await asyncio.sleep(1.0)  # let clients read the last candle
        else:
            await asyncio.Event().wait()
    finally:
        await runner.cleanup()
