"""Issue 10, item 15: idle and slowloris connections cannot take the daemon's HTTP server down.

A real ``barbus run`` whose exchange is not there: it keeps retrying, and its HTTP server is up
all along, which is all these tests need. Before the fix, connections that never sent a request
were held for aiohttp's keep-alive default (75 s) and, with a low open-file limit, the held ones
used every descriptor: ``/healthz`` stopped answering.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kit.probes import http_get, metric_samples, sample
from tests.kit.processes import Proc, Processes
from tests.kit.scenario import Engine, tuned, write_config
from tests.kit.waiting import wait_until
from tests.net import free_port

NOFILE = 128  # the daemon's soft open-file limit in the first test: 150 idle sockets exceed it


def write_daemon_config(folder: Path, http_port: int, http_extra: str = "") -> Path:
    """A daemon config whose exchange never answers (a closed port): it retries for ever."""
    config = write_config(
        folder / "barbus.toml",
        sim_port=free_port(),
        http_port=http_port,
        state=folder / "state.sqlite",
        engines=(Engine("sma", "sma_cross"),),
        http=textwrap.dedent(http_extra),
    )
    return tuned(config, reconnect_initial_seconds=0.2)


@contextlib.contextmanager
def daemon(processes: Processes, config: Path, nofile: int | None = None) -> Iterator[Proc]:
    """``barbus run`` with an optional soft RLIMIT_NOFILE, stopped (and reaped) at the end."""

    def limit() -> None:
        if nofile is not None:
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))

    proc = processes.daemon(config, preexec=limit)
    try:
        yield proc
    finally:
        proc.stop()


def healthz_ok(port: int) -> bool:
    answer = http_get(port, "/healthz")
    return answer is not None and answer[0] == 200


def healthz6_ok(port: int) -> bool:
    """GET /healthz over IPv6 loopback (for a daemon bound to ``::``)."""
    try:
        with socket.create_connection(("::1", port), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def open_idle(port: int, count: int) -> list[socket.socket]:
    """``count`` connections that never send a byte."""
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sockets.append(sock)
    return sockets


class Slowloris:
    """Connections that send a request head one byte every ``pause`` seconds, never finishing."""

    HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 4000

    def __init__(self, port: int, count: int, pause: float = 0.1) -> None:
        self.sockets = [
            socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)
        ]
        self.closed_after: dict[int, float] = {}
        self._pause = pause
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._drip, daemon=True)
        self._thread.start()

    def _drip(self) -> None:
        for byte in self.HEAD:
            if self._stop.is_set():
                return
            for number, sock in enumerate(self.sockets):
                if number in self.closed_after:
                    continue
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    self.closed_after[number] = time.monotonic() - self._started
            if len(self.closed_after) == len(self.sockets):
                return
            time.sleep(self._pause)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in self.sockets:
            sock.close()


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closed ``sock`` (EOF or reset) within ``within`` seconds."""
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def close_all(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


def timed_healthz(port: int) -> float:
    started = time.monotonic()
    assert healthz_ok(port), "/healthz did not answer"
    return time.monotonic() - started


def test_healthz_answers_while_150_idle_and_slowloris_connections_are_held(
    tmp_path: Path,
    processes: Processes,
) -> None:
    port = free_port()
    config = write_daemon_config(tmp_path, port)
    with daemon(processes, config, nofile=NOFILE) as proc:
        wait_until(lambda: healthz_ok(port), 30, "the daemon's /healthz")
        idle = open_idle(port, 150)
        loris = Slowloris(port, 5)
        try:
            time.sleep(0.5)  # let the server accept what it can
            answers = [timed_healthz(port) for _ in range(5)]
            assert proc.running(), proc.log()
        finally:
            loris.close()
            close_all(idle)
        assert max(answers) < 1.0, answers
        metrics = http_get(port, "/metrics")
    assert metrics is not None
    samples = metric_samples(metrics[1])
    evicted = sample(samples, "barbus_http_connections_closed_total", reason="evicted")
    assert evicted >= 150 - NOFILE // 2, metrics[1][-2000:]
    log = proc.log()
    assert "connection cap" in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]


def test_idle_and_slowloris_connections_are_closed_after_the_idle_bound(
    tmp_path: Path, processes: Processes
) -> None:
    port = free_port()
    config = write_daemon_config(tmp_path, port, "idle_timeout_seconds = 1\n")
    with daemon(processes, config):
        wait_until(lambda: healthz_ok(port), 30, "the daemon's /healthz")
        idle = open_idle(port, 20)
        loris = Slowloris(port, 3)
        started = time.monotonic()
        try:
            assert all(closed_by_server(sock, 4.0) for sock in idle)
            idle_closed_after = time.monotonic() - started
            wait_until(
                lambda: len(loris.closed_after) == len(loris.sockets) or None,
                5,
                "the slowloris connections to be closed",
            )
        finally:
            loris.close()
            close_all(idle)
        assert 0.8 <= idle_closed_after < 3.0, idle_closed_after
        assert max(loris.closed_after.values()) < 4.0, loris.closed_after
        # A connection that finished its request is served; keep-alive is bound the same way.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            assert closed_by_server(sock, 4.0)
        metrics = http_get(port, "/metrics")
    assert metrics is not None
    samples = metric_samples(metrics[1])
    assert sample(samples, "barbus_http_connections_closed_total", reason="idle") >= 20
    assert sample(samples, "barbus_http_connections_closed_total", reason="slow_request") >= 3


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_an_exposed_port_is_logged_once_as_a_warning(
    tmp_path: Path, processes: Processes, host: str
) -> None:
    port = free_port()
    config = write_daemon_config(tmp_path, port, f'host = "{host}"\nexpose = true\n')
    with daemon(processes, config) as proc:
        probe = (lambda: healthz_ok(port)) if host == "0.0.0.0" else (lambda: healthz6_ok(port))
        wait_until(probe, 30, "the daemon's /healthz")
    warnings = [line for line in proc.log().splitlines() if "exposed" in line]
    assert len(warnings) == 1, proc.log()
    assert "WARNING" in warnings[0]
    assert f"{host}:{port}" in warnings[0]


def test_a_port_already_in_use_is_one_line_not_a_traceback(
    tmp_path: Path, processes: Processes
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        config = write_daemon_config(tmp_path, port)
        with daemon(processes, config) as proc:
            code = proc.wait(timeout=30)
    log = proc.log()
    assert code != 0
    assert "Traceback" not in log, log
    assert f"127.0.0.1:{port}" in log
    assert "[http]" in log
