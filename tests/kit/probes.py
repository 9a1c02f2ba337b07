"""Asking a running daemon: HTTP answers, ``/status``, Prometheus samples, "all bars processed"."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from barbus.daemon.core.events import format_time_ms
from barbus.daemon.core.series import BarSeries


def http_get(port: int, path: str) -> tuple[int, str] | None:
    """(status, body) of GET http://127.0.0.1:port/path, or None when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, exc.read().decode()
        finally:
            exc.close()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def readyz_answers(port: int, code: int) -> Callable[[], tuple[int, str] | None]:
    """Probe: the /readyz answer once it has status ``code``."""

    def probe() -> tuple[int, str] | None:
        answer = http_get(port, "/readyz")
        return answer if answer is not None and answer[0] == code else None

    return probe


def get_status(port: int) -> dict[str, Any] | None:
    answer = http_get(port, "/status")
    if answer is None or answer[0] != 200:
        return None
    status: dict[str, Any] = json.loads(answer[1])
    return status


def metric_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus exposition text as {(sample name, labels): value}."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples[(name, frozenset(labels.items()))]


def all_bars_processed(port: int, series: BarSeries, *, total: bool = True) -> Callable[[], Any]:
    """Probe: /status once every engine has seen the slice's last bar (and, with ``total``, the
    daemon counted every bar of the slice since it started)."""
    last = format_time_ms(int(series.open_time_ms[-1]))

    def probe() -> dict[str, Any] | None:
        status = get_status(port)
        if status is None or any(s["last_bar"] != last for s in status["strategies"]):
            return None
        if total and status["bars_processed"] != len(series):
            return None
        return status

    return probe
