"""The daemon's HTTP endpoints on its own event loop: health, readiness, status, metrics.

``/healthz`` answers while the process runs; ``/readyz`` only when the feed is connected, the
strategies are warmed up and bars are not overdue; ``/status`` is JSON for people and scripts;
``/trades`` the recorded closed trades, newest first (``limit``, ``since``, ``strategy``; a bad
value is a 400 with a one-line JSON error); ``/metrics`` is the Prometheus exposition. Binds to
127.0.0.1 unless configured otherwise.

Connections are guarded (idle and slow clients closed, a cap on open ones) by
:mod:`barbus.daemon.http_guard`; this module is what the requests ask for.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from barbus.daemon.core.errors import DataError
from barbus.daemon.core.events import epoch_ms, parse_utc_ms
from barbus.daemon.http_guard import ConnectionGuard, GuardedSite, HttpLimits

__all__ = [
    "TRADES_LIMIT_DEFAULT",
    "TRADES_LIMIT_MAX",
    "TradesProvider",
    "app_runner",
    "make_app",
    "start_site",
]

TRADES_LIMIT_DEFAULT = 100
TRADES_LIMIT_MAX = 1000  # one answer stays small however long the daemon has traded
# (strategy or None, since epoch ms or None, limit) -> trades as JSON objects, newest first;
# raises KeyError naming an unknown strategy.
TradesProvider = Callable[[str | None, int | None, int], list[dict[str, Any]]]


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

    app = web.Application(middlewares=[guard.middleware()])
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
    await GuardedSite(runner, sock, guard).start()
    return guard
