"""The transport side of the daemon's HTTP server: connection limits, so that idle or hostile
clients cannot take the health checks down.

* a connection has ``idle_timeout_seconds`` from its start (or from the end of its last
  response) to deliver a complete request head, else it is closed: idle keep-alive connections
  and slowloris clients that drip a header one byte at a time are treated alike;
* at most ``max_connections`` are open (fewer if the open-file limit leaves less room); a new
  connection beyond the cap closes the longest-idle one, so a flood of idle sockets can never
  use every file descriptor and ``/healthz`` keeps answering.

Closes are counted in ``barbus_http_connections_closed_total{reason}``; the abnormal ones
(slow requests, evictions, refusals) are also logged, at most one summary line a minute. It is
apart from the endpoints (:mod:`barbus.daemon.http`) because it works below aiohttp, on the
asyncio protocol of each accepted socket, and knows nothing of what a request asks.
"""

from __future__ import annotations

import asyncio
import logging
import math
import resource
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["ConnectionGuard", "GuardedSite", "HttpLimits", "connection_cap"]

log = logging.getLogger("barbus.http")

FD_RESERVE = 64  # descriptors kept for the state file, the exchange and the event loop
LOG_EVERY_SECONDS = 60.0
_REFUSAL = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@dataclass(frozen=True)
class HttpLimits:
    """How many connections the server holds and how long one may go without a request."""

    max_connections: int = 100
    idle_timeout_seconds: float = 15.0


def connection_cap(wanted: int) -> int:
    """``wanted``, lowered so the connections leave ``FD_RESERVE`` descriptors free."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - FD_RESERVE))


class _Connection(asyncio.Protocol):
    """One accepted connection: aiohttp's protocol inside, an idle deadline around it."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self.guard = guard
        self.inner = inner
        self.transport: asyncio.BaseTransport | None = None
        self.busy = False  # a request head arrived and its handler has not returned yet
        self.idle_since = 0.0
        self.partial = False  # bytes arrived since the last request: a request is under way
        self._timer: asyncio.TimerHandle | None = None

    # asyncio.Protocol, forwarded to aiohttp ------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.guard.opened(self)
        self.idle()
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.partial = True
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.guard.lost(self)
        self.inner.connection_lost(exc)

    # the guard's side ----------------------------------------------------------------------

    def started(self) -> None:
        """A complete request head arrived: its handler runs without a deadline."""
        self.busy = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def idle(self) -> None:
        """No request in flight: the next complete head is due within the idle timeout."""
        self.busy = False
        self.partial = False
        loop = asyncio.get_running_loop()
        self.idle_since = loop.time()
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_later(self.guard.limits.idle_timeout_seconds, self._expire)

    def _expire(self) -> None:
        self._timer = None
        if not self.busy:
            self.close("slow_request" if self.partial else "idle")

    def close(self, reason: str) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: cast, do not isinstance.
        transport = cast(asyncio.Transport | None, self.transport)
        if transport is not None and not transport.is_closing():
            self.guard.count(reason)
            transport.abort()  # nothing is in flight: free the descriptor now


class _Refused(asyncio.Protocol):
    """A connection over the cap while every open one is busy: 503, closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        writer = cast(asyncio.WriteTransport, transport)
        writer.write(_REFUSAL)
        writer.close()


class ConnectionGuard:
    """The open connections, their cap and the counters of the ones it closed."""

    def __init__(self, limits: HttpLimits, registry: CollectorRegistry) -> None:
        self.limits = limits
        self.cap = connection_cap(limits.max_connections)
        self.connections: dict[asyncio.BaseTransport, _Connection] = {}
        self.closed = Counter(
            "barbus_http_connections_closed",
            "HTTP connections closed by the server, by reason "
            "(idle, slow_request, evicted at the cap, refused at the cap)",
            ["reason"],
            registry=registry,
        )
        for reason in ("idle", "slow_request", "evicted", "refused"):
            self.closed.labels(reason)
        self.open_gauge = Gauge(
            "barbus_http_connections", "HTTP connections open now", registry=registry
        )
        self._unlogged: dict[str, int] = {}
        self._logged_at = -math.inf
        self._flush: asyncio.TimerHandle | None = None

    def factory(self, make_inner: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """The protocol factory for ``loop.create_server``: room is made before aiohttp sees it."""

        def build() -> asyncio.Protocol:
            if len(self.connections) >= self.cap and not self._evict():
                self.count("refused")
                return _Refused()
            return _Connection(self, make_inner())

        return build

    def _evict(self) -> bool:
        """Close the longest-idle connection; False when every one is serving a request."""
        idle = [c for c in self.connections.values() if not c.busy]
        if not idle:
            return False
        victim = min(idle, key=lambda c: c.idle_since)
        self.connections.pop(victim.transport, None)  # type: ignore[arg-type]
        victim.close("evicted")
        return True

    def opened(self, connection: _Connection) -> None:
        assert connection.transport is not None
        self.connections[connection.transport] = connection
        self.open_gauge.set(len(self.connections))

    def lost(self, connection: _Connection) -> None:
        if connection.transport is not None:
            self.connections.pop(connection.transport, None)
        self.open_gauge.set(len(self.connections))

    def of(self, request: web.BaseRequest) -> _Connection | None:
        transport = request.transport
        return self.connections.get(transport) if transport is not None else None

    def middleware(self) -> Middleware:
        """The aiohttp middleware that lifts a connection's deadline while its request is
        handled and sets it again once the response is out."""

        @web.middleware
        async def deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
            connection = self.of(request)
            if connection is not None:
                connection.started()
            try:
                return await handler(request)
            finally:
                if connection is not None and connection.transport is not None:
                    connection.idle()

        return deadline

    def count(self, reason: str) -> None:
        """Count a close; the abnormal ones are logged in a summary at most once a minute."""
        self.closed.labels(reason).inc()
        if reason == "idle":
            return  # routine: a keep-alive client (Prometheus) that went quiet
        self._unlogged[reason] = self._unlogged.get(reason, 0) + 1
        loop = asyncio.get_running_loop()
        if loop.time() - self._logged_at >= LOG_EVERY_SECONDS:
            self._log_summary()
        elif self._flush is None:
            self._flush = loop.call_at(self._logged_at + LOG_EVERY_SECONDS, self._log_summary)

    def _log_summary(self) -> None:
        self._flush = None
        if not self._unlogged:
            return
        self._logged_at = asyncio.get_running_loop().time()
        counts = ", ".join(
            f"{n} {reason.replace('_', ' ')}" for reason, n in self._unlogged.items()
        )
        self._unlogged = {}
        log.warning(
            "closed connections (%s); connection cap %d, a request head is due within "
            "%g s of connecting",
            counts,
            self.cap,
            self.limits.idle_timeout_seconds,
        )


class GuardedSite(web.SockSite):
    """A :class:`aiohttp.web.SockSite` whose connections go through a :class:`ConnectionGuard`."""

    def __init__(self, runner: web.AppRunner, sock: socket.socket, guard: ConnectionGuard) -> None:
        super().__init__(runner, sock)
        self._guard = guard

    async def start(self) -> None:
        guard = self._guard
        if guard.cap < guard.limits.max_connections:
            log.info(
                "at most %d connections (max_connections %d, open-file limit %d)",
                guard.cap,
                guard.limits.max_connections,
                resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            )
        await web.BaseSite.start(self)  # registers the site with the runner
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self._guard.factory(server), sock=self._sock, backlog=self._backlog
        )
