"""The daemon's HTTP endpoints on its own event loop: health, readiness, status, metrics.

``/healthz`` answers while the process runs; ``/readyz`` only when the feed is connected, the
strategies are warmed up and bars are not overdue; ``/status`` is JSON for people and scripts;
``/trades`` the recorded closed trades, newest first (``limit``, ``since``, ``strategy``; a bad
value is a 400 with a one-line JSON error); ``/metrics`` is the Prometheus exposition. Binds to
127.0.0.1 unless configured otherwise.

Connections are guarded so that idle or hostile clients cannot take the health checks down:

* a connection has ``idle_timeout_seconds`` from its start (or from the end of its last
  response) to deliver a complete request head, else it is closed: idle keep-alive connections
  and slowloris clients that drip a header one byte at a time are treated alike;
* at most ``max_connections`` are open (fewer if the open-file limit leaves less room); a new
  connection beyond the cap closes the longest-idle one, so a flood of idle sockets can never
  use every file descriptor and ``/healthz`` keeps answering.

Closes are counted in ``barbus_http_connections_closed_total{reason}``; the abnormal ones
(slow requests, evictions, refusals) are also logged, at most one summary line a minute.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import resource
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from barbus.daemon.core.errors import ConfigError, DataError
from barbus.daemon.core.events import epoch_ms, parse_utc_ms

__all__ = [
    "TRADES_LIMIT_DEFAULT",
    "TRADES_LIMIT_MAX",
    "ConnectionGuard",
    "HttpLimits",
    "TradesProvider",
    "app_runner",
    "bind_problem",
    "connection_cap",
    "listen",
    "make_app",
    "start_site",
]

log = logging.getLogger("barbus.http")

FD_RESERVE = 64  # descriptors kept for the state file, the exchange and the event loop
LOG_EVERY_SECONDS = 60.0
_REFUSAL = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
TRADES_LIMIT_DEFAULT = 100
TRADES_LIMIT_MAX = 1000  # one answer stays small however long the daemon has traded
# (strategy or None, since epoch ms or None, limit) -> trades as JSON objects, newest first;
# raises KeyError naming an unknown strategy.
TradesProvider = Callable[[str | None, int | None, int], list[dict[str, Any]]]


@dataclass(frozen=True)
class HttpLimits:
    """How many connections the server holds and how long one may go without a request."""

    max_connections: int = 100
    idle_timeout_seconds: float = 15.0


def bind_problem(host: str, port: int, exc: OSError) -> str:
    """Why ``host:port`` cannot be listened on, in words a person can act on."""
    if isinstance(exc, socket.gaierror) or (exc.errno or 0) < 0:  # getaddrinfo's EAI_* codes
        return f"cannot resolve the host name {host!r}"
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} is already in use (another barbus, or another program, listens there)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine"
    if exc.errno == errno.EACCES:
        return "permission denied (ports below 1024 need privileges)"
    return exc.strerror or str(exc)


def listen(host: str, port: int, what: str) -> socket.socket:
    """A listening socket on ``host:port``; a bind failure is one :class:`ConfigError` line
    starting with ``what`` (the option or config key that named the address)."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"{what}: port {port} is out of range (0-65535)")
    invalid = f"{what} cannot listen on {host}:{port}: {host!r} is not a valid host name"
    if not _encodable(host):  # before a socket exists: create_server leaks it on this error
        raise ConfigError(invalid)
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise ConfigError(
            f"{what} cannot listen on {host}:{port}: {bind_problem(host, port, exc)}"
        ) from None
    except (UnicodeError, TypeError):  # the name cannot even be encoded (e.g. "ü..x", NUL)
        raise ConfigError(invalid) from None


def _encodable(host: str) -> bool:
    """Whether the socket module can encode ``host`` as it does for a bind: IDNA when it is not
    ASCII, and no NUL character."""
    try:
        return "\x00" not in host and (host.isascii() or bool(host.encode("idna")))
    except UnicodeError:
        return False


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
        await web.BaseSite.start(self)  # registers the site with the runner
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self._guard.factory(server), sock=self._sock, backlog=self._backlog
        )


_GUARD = web.AppKey("connection_guard", ConnectionGuard)


def make_app(
    status: Callable[[], dict[str, Any]],
    readiness: Callable[[], tuple[bool, str]],
    registry: CollectorRegistry,
    limits: HttpLimits | None = None,
    trades: TradesProvider | None = None,
) -> web.Application:
    """An aiohttp application serving the endpoints from the given providers (``/trades``
    only with a ``trades`` provider)."""
    guard = ConnectionGuard(limits or HttpLimits(), registry)

    @web.middleware
    async def deadline(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        connection = guard.of(request)
        if connection is not None:
            connection.started()
        try:
            return await handler(request)
        finally:
            if connection is not None and connection.transport is not None:
                connection.idle()

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        ready, why = readiness()
        return web.Response(text=f"{why}\n", status=200 if ready else 503)

    async def status_json(_: web.Request) -> web.Response:
        return web.json_response(status())

    async def trades_json(request: web.Request) -> web.Response:
        assert trades is not None
        try:
            strategy, since_ms, limit = _trades_query(request.query)
            return web.json_response(trades(strategy, since_ms, limit))
        except (ValueError, DataError) as exc:
            return web.json_response({"error": str(exc)[:300]}, status=400)
        except KeyError as exc:
            return web.json_response({"error": str(exc.args[0])[:300]}, status=404)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application(middlewares=[deadline])
    app[_GUARD] = guard
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/status", status_json)
    app.router.add_get("/metrics", metrics)
    if trades is not None:
        app.router.add_get("/trades", trades_json)
    return app


def _trades_query(query: Any) -> tuple[str | None, int | None, int]:
    """``strategy``, ``since`` (ISO UTC, epoch s or ms) and ``limit`` of a ``/trades`` request;
    ValueError (or DataError for a time) names what is wrong."""
    unknown = sorted(set(query) - {"strategy", "since", "limit"})
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0][:50]!r}; known: limit, since, strategy")
    if any(len(query.getall(key)) > 1 for key in query):
        raise ValueError("each parameter at most once")
    text = query.get("limit", str(TRADES_LIMIT_DEFAULT))
    if not (text.isascii() and text.isdigit() and len(text) < 8 and int(text) >= 1):
        raise ValueError(
            f"limit must be an integer from 1 to {TRADES_LIMIT_MAX}, got {text[:50]!r}"
        )
    if int(text) > TRADES_LIMIT_MAX:
        raise ValueError(f"limit must be an integer from 1 to {TRADES_LIMIT_MAX}, got {text}")
    since = query.get("since")
    since_ms = None
    if since is not None:
        bare = since.strip()
        if bare.isascii() and bare.isdigit() and len(bare) < 20:
            since_ms, _ = epoch_ms(int(bare))  # as on the CLI: below 1e11, epoch seconds
        else:
            since_ms = parse_utc_ms(since[:100])
    if since_ms is not None and not -(2**62) < since_ms < 2**62:
        raise ValueError(f"since is out of range: {since[:50]!r}")
    return query.get("strategy"), since_ms, int(text)


def app_runner(app: web.Application) -> web.AppRunner:
    """A runner for ``app`` whose keep-alive bound is the guard's idle timeout."""
    return web.AppRunner(
        app, handle_signals=False, keepalive_timeout=app[_GUARD].limits.idle_timeout_seconds
    )


async def start_site(runner: web.AppRunner, sock: socket.socket) -> ConnectionGuard:
    """Serve ``runner``'s app (from :func:`make_app`) on the listening ``sock``, guarded."""
    guard = runner.app[_GUARD]
    if guard.cap < guard.limits.max_connections:
        log.info(
            "at most %d connections (max_connections %d, open-file limit %d)",
            guard.cap,
            guard.limits.max_connections,
            resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        )
    await GuardedSite(runner, sock, guard).start()
    return guard
