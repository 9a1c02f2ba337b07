"""A local, Binance-compatible exchange that replays cached bars: for offline demos and tests.

It serves ``GET /api/v3/klines`` and kline WebSocket streams (combined ``/stream?streams=...``
and raw ``/ws/<stream>``, plus ``SUBSCRIBE`` messages) from historical 1-minute bars, on a
virtual clock that closes one bar every ``1/speed`` seconds (or in real time). Before the clock
starts, ``history_bars`` bars are already closed, so a client has something to warm up on; a
klines request with ``endTime`` and no ``startTime`` pages back through them as on Binance.

Fault switches make it misbehave the way real exchanges do: drop every connection after K
messages, send a malformed message every M, duplicate, reorder or skip final candles, pause. No
such fault ever changes the bars themselves: a correct client sees exactly the replayed series.
Each connection and its faults is a ``sim_subscriber.Subscriber``.

Hostile switches go further, as a broken or malicious exchange would: ``inject`` sends a fake
final candle before every N-th real one (dated ten years ahead, off the minute grid, at open
time 10**30, or at an absurd price); ``silent`` streams answer pings but never send data;
``rest_fault`` damages REST pages (duplicate, unsorted or past-endTime rows, far more rows than
``limit``, pages that never end, empty or stale answers for a hole, a future-dated row, a
non-list). A correct client refuses the fakes and, where the real bars are still served, still
delivers exactly the replayed series. The switches are one value, ``sim_faults.FaultConfig``;
the fakes and damaged pages are made in ``sim_hostile``. ``rest_http`` fails klines requests
themselves, as an overloaded exchange does (429 or 418 with ``Retry-After``, 500, a slow or a
truncated answer): what a download must get through.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from barbus.daemon.core.events import Bar, interval_ms
from barbus.daemon.core.series import BarSeries
from barbus.daemon.feeds.binance_codec import encode_rest_kline
from barbus.daemon.feeds.sim_faults import FaultConfig
from barbus.daemon.feeds.sim_hostile import damage, rest_fault_due
from barbus.daemon.feeds.sim_subscriber import Subscriber
from barbus.daemon.listen import listen

__all__ = ["SimExchange", "serve"]

log = logging.getLogger("barbus.sim")


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
        intervals = {s.interval for s in series}
        if len(intervals) > 1:
            raise ValueError(f"the simulated exchange serves one interval, got {sorted(intervals)}")
        self.interval = series[0].interval
        self.step_ms = step = interval_ms(self.interval)
        self.books = {s.symbol: _Book.of(s) for s in series}
        self.speed = speed
        self.faults = faults or FaultConfig()
        self.dice = random.Random(self.faults.seed)  # the faults' randomness, seeded
        first = min(book.times[0] for book in self.books.values())
        self.last_ms = max(book.times[-1] for book in self.books.values())
        # Virtual "now": every bar that opened before now - one interval is closed.
        self.now_ms = first + history_bars * step
        self.sent_final = 0
        self.sent_messages = 0  # WebSocket messages of the whole run, for pause_every
        self.pauses = 0
        self.rest_requests = 0  # backfill requests eligible for rest_fault
        self.rest_faults = 0  # answers damaged so far
        self.klines_requests = 0  # every klines request, for rest_http
        self.http_faults = 0  # requests failed on purpose so far
        self._subscribers: set[Subscriber] = set()
        self._clock_task: asyncio.Task[None] | None = None
        self.finished = asyncio.Event()
        # Hold the clock until the first WebSocket client subscribes: a client that warms up
        # over REST first then sees exactly history_bars bars, run after run (for tests).
        self._go = asyncio.Event()
        if not start_on_connect:
            self._go.set()

    # -- the clock ---------------------------------------------------------------------------

    async def run_clock(self) -> None:
        """Close one bar per tick until the data ends (then set ``finished``)."""
        interval = self.step_ms / 1000 if self.speed <= 0 else 1.0 / self.speed
        await self._go.wait()
        started = time.monotonic()
        ticks = 0
        while self.now_ms <= self.last_ms + self.step_ms:
            # The bar that opened at now closes one interval later.
            opened_ms = self.now_ms
            self.now_ms += self.step_ms
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
            if bar.open_time_ms + self.step_ms > self.now_ms:
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
        newest = self.now_ms - self.step_ms  # bars opened after this are not closed yet
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

    def _http_fault_due(self) -> str:
        """The ``rest_http`` fault this klines request gets ("" for none)."""
        faults = self.faults
        self.klines_requests += 1
        if not faults.rest_http or self.klines_requests % max(1, faults.rest_http_every):
            return ""
        if faults.rest_http_times and self.http_faults >= faults.rest_http_times:
            return ""
        self.http_faults += 1
        return faults.rest_http

    async def _klines(self, request: web.Request) -> web.Response:
        fault = self._http_fault_due()
        if fault in ("429", "418"):
            return web.json_response(
                {"code": -1003, "msg": "Too many requests."},
                status=int(fault),
                headers={"Retry-After": str(self.faults.retry_after)},
            )
        if fault == "500":
            return web.Response(status=500, text="internal error")
        if fault == "slow":
            await asyncio.sleep(self.faults.rest_slow_seconds)
        query = request.query
        symbol = query.get("symbol", "")
        interval = query.get("interval", "")
        if symbol not in self.books or interval != self.interval:
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
        if start is not None and rest_fault_due(self, end is not None, len(rows), limit):
            rows = damage(self, self.faults.rest_fault, rows, symbol, start, end, limit)
        if fault == "truncated":
            text = json.dumps(rows)
            return web.Response(text=text[: len(text) // 2], content_type="application/json")
        return web.json_response(rows)

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
        subscriber = Subscriber(self, ws, combined)
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


async def serve(
    series: Sequence[BarSeries],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    speed: float = 10.0,
    history_bars: int = 500,
    faults: FaultConfig | None = None,
    listening: Callable[[int], None] | None = None,
    exit_at_end: bool = False,
    start_on_connect: bool = False,
) -> None:
    """Run the simulated exchange until cancelled (or, with ``exit_at_end``, the data ends).

    ``listening`` is called with the bound port (the one ``port=0`` picked) once the exchange
    accepts connections: how that is told (the CLI prints a JSON line) is the caller's.
    """
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
    if listening is not None:
        listening(bound)
    try:
        if exit_at_end:
            await exchange.finished.wait()
            await asyncio.sleep(1.0)  # let clients read the last candle
        else:
            await asyncio.Event().wait()
    finally:
        await runner.cleanup()
