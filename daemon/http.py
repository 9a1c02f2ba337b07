"""The daemon's HTTP endpoints on its own event loop: health, readiness, status, metrics.

``/healthz`` answers while the process runs; ``/readyz`` only when the feed is connected, the
strategies are warmed up and bars are not overdue; ``/status`` is JSON for people and scripts;
``/metrics`` is the Prometheus exposition. Binds to 127.0.0.1 unless configured otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["make_app"]


def make_app(
    status: Callable[[], dict[str, Any]],
    readiness: Callable[[], tuple[bool, str]],
    registry: CollectorRegistry,
) -> web.Application:
    """An aiohttp application serving the four endpoints from the given providers."""

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        ready, why = readiness()
        return web.Response(text=f"{why}\n", status=200 if ready else 503)

    async def status_json(_: web.Request) -> web.Response:
        return web.json_response(status())

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/status", status_json)
    app.router.add_get("/metrics", metrics)
    return app
