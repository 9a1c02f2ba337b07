"""The connection guard in-process: a real aiohttp server on a real socket, raw TCP clients.

The daemon-level scenarios (150 idle sockets under a low open-file limit, a bind failure) are in
``tests/integration/test_http_limits.py``; these check the guard's own rules one by one, fast:
the idle bound, the slow request, eviction of the longest-idle connection at the cap, the 503 when
every connection is busy, the counters and the one summary log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

from aiohttp import web
from prometheus_client import CollectorRegistry

from barbus.daemon.http import app_runner, make_app, start_site
from barbus.daemon.http_guard import ConnectionGuard, GuardedSite, HttpLimits, connection_cap
from barbus.daemon.listen import listen
from tests.unit.test_layers import all_imports, barbus_modules

HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
REFUSAL = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
Client = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def closed(registry: CollectorRegistry, reason: str) -> float | None:
    return registry.get_sample_value("barbus_http_connections_closed_total", {"reason": reason})


class Clients:
    """Raw TCP clients of one server, all closed at the end."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.opened: list[Client] = []

    async def connect(self, settle: float = 0.05) -> Client:
        client = await asyncio.open_connection("127.0.0.1", self.port)
        self.opened.append(client)
        await asyncio.sleep(settle)  # the server has accepted it (connection_made ran)
        return client

    async def close(self) -> None:
        for _, writer in self.opened:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@asynccontextmanager
async def served(
    runner: web.AppRunner, site: Callable[[socket.socket], Awaitable[object]]
) -> AsyncIterator[Clients]:
    """``runner``'s app started by ``site`` on a free loopback port; its clients, closed after."""
    await runner.setup()
    sock = listen("127.0.0.1", 0, "test")
    await site(sock)
    clients = Clients(sock.getsockname()[1])
    try:
        yield clients
    finally:
        await clients.close()
        await runner.cleanup()


@asynccontextmanager
async def daemon_app(limits: HttpLimits) -> AsyncIterator[tuple[Clients, CollectorRegistry]]:
    """The daemon's application (:func:`make_app`) served guarded by :func:`start_site`."""
    registry = CollectorRegistry()
    runner = app_runner(make_app(lambda: {}, lambda: (True, "ready"), registry, limits))
    async with served(runner, lambda sock: start_site(runner, sock)) as clients:
        yield clients, registry


async def closed_by_server(client: Client, within: float) -> bool:
    """Whether the server closed the connection (EOF or reset) within ``within`` seconds."""
    try:
        return await asyncio.wait_for(client[0].read(1), within) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def healthz(client: Client) -> bytes:
    """One keep-alive GET /healthz on ``client``; the response's status line and body."""
    reader, writer = client
    writer.write(HEAD)
    status = await asyncio.wait_for(reader.readline(), 5)
    length = 0
    while (line := await asyncio.wait_for(reader.readline(), 5)) != b"\r\n":
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    return status + await asyncio.wait_for(reader.readexactly(length), 5)


@contextmanager
def http_log() -> Iterator[list[str]]:
    """The messages of ``barbus.http`` at WARNING and above while inside."""
    lines: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("barbus.http")
    level = logger.level
    logger.setLevel(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_idle_and_slow_connections_are_closed_at_the_bound_and_a_served_one_later() -> None:
    """0.4 s to deliver a request head: an idle connection and one mid-head are closed, counted
    as ``idle`` and ``slow_request``; one that was served gets the bound again from its answer."""
    async with daemon_app(HttpLimits(max_connections=10, idle_timeout_seconds=0.4)) as (
        clients,
        registry,
    ):
        idle, slow, served = (
            await clients.connect(),
            await clients.connect(),
            await clients.connect(),
        )
        slow[1].write(HEAD[:10])
        assert await healthz(served) == b"HTTP/1.1 200 OK\r\nok\n"
        assert await closed_by_server(idle, 2)
        assert await closed_by_server(slow, 2)
        assert await closed_by_server(served, 2)
        assert closed(registry, "idle") == 2
        assert closed(registry, "slow_request") == 1
        assert closed(registry, "evicted") == 0
        assert registry.get_sample_value("barbus_http_connections") == 0


async def test_at_the_cap_the_longest_idle_connection_makes_room_and_one_line_is_logged() -> None:
    """Cap 2: a third connection closes the first (the longest idle) and is served; the close
    is logged at once in one summary line, the next one within the minute is held back."""
    assert connection_cap(2) == 2  # the open-file limit leaves room for two
    with http_log() as lines:
        async with daemon_app(HttpLimits(max_connections=2, idle_timeout_seconds=30)) as (
            clients,
            registry,
        ):
            first = await clients.connect()
            second = await clients.connect()
            third = await clients.connect()
            assert await closed_by_server(first, 2)
            assert not await closed_by_server(second, 0.2)
            assert await healthz(third) == b"HTTP/1.1 200 OK\r\nok\n"
            fourth = await clients.connect()  # evicts the second; the third was active since
            assert await closed_by_server(second, 2)
            assert await healthz(fourth) == b"HTTP/1.1 200 OK\r\nok\n"
            assert closed(registry, "evicted") == 2
            assert registry.get_sample_value("barbus_http_connections") == 2
    assert lines == [
        "closed connections (1 evicted); connection cap 2, a request head is due within 30 s "
        "of connecting"
    ]


async def test_when_every_connection_is_busy_a_new_one_gets_503_and_a_slow_handler_is_kept() -> (
    None
):
    """Cap 2, both serving a handler that outlasts the idle bound: the handlers finish (their
    deadline is lifted while they run), and a third connection is refused with a bare 503."""
    registry = CollectorRegistry()
    guard = ConnectionGuard(HttpLimits(max_connections=2, idle_timeout_seconds=0.3), registry)
    release = asyncio.Event()

    async def slow(_: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="done\n")

    app = web.Application(middlewares=[guard.middleware()])
    app.router.add_get("/healthz", slow)
    runner = web.AppRunner(app, handle_signals=False)
    async with served(runner, lambda sock: GuardedSite(runner, sock, guard).start()) as clients:
        busy = [await clients.connect(), await clients.connect()]
        for _, writer in busy:
            writer.write(HEAD)
        await asyncio.sleep(0.6)  # twice the idle bound
        reader, _ = await clients.connect(settle=0)
        assert await asyncio.wait_for(reader.read(), 5) == REFUSAL
        assert closed(registry, "refused") == 1
        release.set()
        for client in busy:
            status = await asyncio.wait_for(client[0].readline(), 5)
            assert status == b"HTTP/1.1 200 OK\r\n"
        assert closed(registry, "idle") == 0
        assert closed(registry, "slow_request") == 0


def test_the_sim_exchange_binds_its_socket_without_the_daemons_http_server() -> None:
    """The listening socket and its bind errors are their own module: the sim exchange and the
    CLI use it without importing the daemon's endpoints or its connection guard."""
    modules = barbus_modules()
    http = {"barbus.daemon.http", "barbus.daemon.http_guard"}
    assert "barbus.daemon.listen" in all_imports(modules["barbus.daemon.feeds.sim"])
    assert not all_imports(modules["barbus.daemon.feeds.sim"]) & http
    assert not all_imports(modules["barbus.daemon.listen"]) & {*http, "aiohttp"}
