"""The process test kit: real sim-exchange and daemon processes, their config, state and HTTP.

The one place that starts ``barbus sim-exchange`` (and reads the JSON line with its port),
writes a daemon config, starts ``barbus run`` and waits for a condition with a timeout
(:func:`wait_until`): every test module and benchmark that runs these processes uses it, so a
change of the sim's port line or of the config format is made once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.events import Bar, format_time_ms
from barbus.daemon.core.series import BarSeries
from barbus.daemon.core.tradelog import trade_row
from barbus.daemon.state import StateStore
from barbus.replay.bars_out import write_bars
from barbus.replay.loader import load_bars
from barbus.replay.runner import ReplayConfig, run_replay
from tests.factories import bars_of

REPO_ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

HISTORY = 500  # bars closed before the sim's clock starts = the daemon's warm-up
ROWS = 3_000
SPEED = 200.0  # bars per second: long enough to kill and restart a daemon three times
FAULTS = (
    "--drop-every",
    "200",
    "--malformed-every",
    "50",
    "--duplicate-probability",
    "0.05",
    "--reorder-probability",
    "0.05",
)


@dataclass(frozen=True)
class Engine:
    """One [[strategy]] table; the daemon runs all of them side by side."""

    name: str
    strategy: str
    params: dict[str, str | int | float | bool] = field(default_factory=dict)
    symbol: str = "BTCUSDT"
    account: str | None = None  # a shared [[account]]; None: its own with capital 10000
    allow_short: bool = False  # on its own account

    def toml(self) -> str:
        params = ", ".join(f"{k} = {json.dumps(v)}" for k, v in self.params.items())
        if self.account is not None:
            books = f'account = "{self.account}"\n'
        else:
            books = "capital = 10000\n" + ("allow_short = true\n" if self.allow_short else "")
        return (
            f'[[strategy]]\nname = "{self.name}"\nstrategy = "{self.strategy}"\n'
            f'symbol = "{self.symbol}"\n{books}params = {{ {params} }}\n'
        )


ENGINES = (
    Engine("sma-1m", "sma_cross"),
    Engine("metatrend-15m", "metatrend"),
    Engine("bbrs-5m", "bbrs", {"timeframe": "5m"}),
    Engine("random-7", "random", {"seed": 7}),
)
ENGINE_NAMES = [e.name for e in ENGINES]


# -- helpers -----------------------------------------------------------------------------------


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    what: str,
    *,
    watch: Proc | None = None,
    interval: float = 0.05,
    retry_on: tuple[type[Exception], ...] = (),
) -> T:
    """Poll ``predicate`` until it returns something other than None/False (that result); fail
    naming ``what`` (and the last result) after ``timeout`` seconds, or at once when the
    ``watch``ed process has exited. An exception in ``retry_on`` counts as "not yet"."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = predicate()
        except retry_on as exc:
            last, result = exc, None
        else:
            last = result
        if result is not None and result is not False:
            return result
        if watch is not None and not watch.running():
            pytest.fail(f"{what}: {watch.name} exited with {watch.code()}:\n{watch.log()[-3000:]}")
        if time.monotonic() > deadline:
            detail = f"\n{watch.name} log:\n{watch.log()[-3000:]}" if watch is not None else ""
            pytest.fail(
                f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r:.300}){detail}"
            )
        time.sleep(interval)


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


def write_slice(
    source: Path, start: int, rows: int, folder: Path, symbol: str = "BTCUSDT"
) -> BarSeries:
    """Rows ``start .. start+rows`` of a bundled file as ``folder/<symbol>_1m_slice.csv``."""
    bars = bars_of(load_bars(source))[start : start + rows]
    series = load_bars(write_bars(folder / f"{symbol}_1m_slice.csv", bars))
    assert bars_of(series) == bars
    return series


def write_config(
    path: Path,
    *,
    sim_port: int,
    http_port: int,
    state: Path,
    level: str = "INFO",
    engines: tuple[Engine, ...] = ENGINES,
    symbols: tuple[str, ...] = ("BTCUSDT",),
    accounts: str = "",
    http: str = "",
) -> Path:
    """A daemon config; ``accounts`` is TOML text of ``[[account]]`` tables, ``http`` more
    lines of the ``[http]`` table."""
    path.write_text(
        textwrap.dedent(
            f"""\
            [feed]
            rest_url = "http://127.0.0.1:{sim_port}"
            ws_url = "ws://127.0.0.1:{sim_port}"
            symbols = {json.dumps(list(symbols))}
            warmup_bars = {HISTORY}
            reconnect_initial_seconds = 0.05
            reconnect_max_seconds = 0.5
            request_timeout_seconds = 5

            [state]
            path = "{state}"

            [http]
            port = {http_port}
            @HTTP@
            [log]
            level = "{level}"
            """
        ).replace("@HTTP@\n", http)
        + accounts
        + "\n".join(e.toml() for e in engines),
        encoding="utf-8",
    )
    return path


def tuned(config: Path, **feed: object) -> Path:
    """Set ``[feed]`` keys in a config written by ``write_config`` (its first table)."""
    lines = config.read_text(encoding="utf-8").splitlines()
    lines = [line for line in lines if line.split(" = ")[0] not in feed]
    extra = [f"{key} = {json.dumps(value)}" for key, value in feed.items()]
    text = "\n".join([lines[0], *extra, *lines[1:]]) + "\n"
    config.write_text(text, encoding="utf-8")
    return config


CHECKOUT_CLI = (sys.executable, "-m", "barbus.daemon.cli")  # ``barbus`` from this checkout


def checkout_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child that runs this checkout, without systemd's variables (the
    test's own service manager would otherwise receive the child's notifications)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM"):
        env.pop(name, None)
    return {**env, **(extra or {})}


class Proc:
    """A child process whose stdout and stderr go to files (no pipe can fill up and block it)."""

    def __init__(
        self,
        name: str,
        command: list[str],
        folder: Path,
        env: dict[str, str],
        cwd: Path = REPO_ROOT,
        preexec: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.out_path = folder / f"{name}.out"
        self.err_path = folder / f"{name}.err"
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.popen = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=err,
                preexec_fn=preexec,  # noqa: PLW1509 - the child runs no threads before exec
            )

    def running(self) -> bool:
        return self.popen.poll() is None

    def code(self) -> int | None:
        return self.popen.poll()

    def log(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")

    def stdout(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    def signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    def stop_cleanly(self, timeout: float = 15) -> str:
        """SIGTERM, which must end the process with exit 0 within ``timeout``; its log."""
        self.popen.send_signal(signal.SIGTERM)
        assert self.wait(timeout=timeout) == 0, self.log()[-3000:]
        return self.log()

    def stop(self) -> None:
        """Teardown: terminate, then kill what does not go."""
        if self.running():
            self.popen.terminate()
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)


def announced(proc: Proc, timeout: float = 60) -> dict[str, Any]:
    """The JSON line a sim exchange prints once it listens (``{"host": ..., "port": ...}``)."""
    text = wait_until(
        lambda: proc.stdout() if "\n" in proc.stdout() else None,
        timeout,
        f"{proc.name}'s address line",
        watch=proc,
    )
    address: dict[str, Any] = json.loads(text.splitlines()[0])
    return address


class Processes:
    """Starts sims and daemons; :meth:`close` ends every one still running (fixture teardown).

    ``command`` is how ``barbus`` is run (this checkout by default; an installed venv's
    ``bin/barbus`` with its own ``env`` and ``cwd`` in the end-to-end tests)."""

    def __init__(
        self,
        folder: Path,
        *,
        command: tuple[str, ...] = CHECKOUT_CLI,
        env: dict[str, str] | None = None,
        cwd: Path = REPO_ROOT,
    ) -> None:
        self.folder = folder
        self.command = command
        self.base_env = checkout_env() if env is None else env
        self.cwd = cwd
        self.started: list[Proc] = []
        folder.mkdir(parents=True, exist_ok=True)

    def start(
        self,
        name: str,
        args: list[str],
        env: dict[str, str] | None = None,
        *,
        preexec: Callable[[], None] | None = None,
    ) -> Proc:
        """``barbus ARGS...`` as a child process, ended at :meth:`close`."""
        return self.spawn(name, [*self.command, *args], env, preexec=preexec)

    def spawn(
        self,
        name: str,
        command: list[str],
        env: dict[str, str] | None = None,
        *,
        preexec: Callable[[], None] | None = None,
    ) -> Proc:
        """Any program (e.g. ``prometheus``) as a child process, ended at :meth:`close`."""
        proc = Proc(
            f"{len(self.started):02d}-{name}",
            command,
            self.folder,
            {**self.base_env, **(env or {})},
            self.cwd,
            preexec,
        )
        self.started.append(proc)
        return proc

    def sim(
        self,
        data: Path | list[Path] | None,
        *extra: str,
        port: int = 0,
        speed: float = SPEED,
        exit_at_end: bool = True,
        history: int = HISTORY,
        start_on_connect: bool = True,
    ) -> tuple[Proc, int]:
        """A sim exchange on ``data`` (None: its bundled data); returns it with the port it
        listens on, read from the line it prints. Without ``exit_at_end`` it keeps serving
        (REST backfills) until the test ends it."""
        files = [] if data is None else data if isinstance(data, list) else [data]
        proc = self.start(
            "sim",
            [
                "sim-exchange",
                *(w for path in files for w in ("--data", str(path))),
                "--port",
                str(port),
                "--speed",
                str(speed),
                "--history-bars",
                str(history),
                *(["--start-on-connect"] if start_on_connect else []),
                *(["--exit-at-end"] if exit_at_end else []),
                *extra,
            ],
        )
        bound: int = announced(proc)["port"]
        return proc, bound

    def daemon(
        self,
        config: Path,
        env: dict[str, str] | None = None,
        *,
        preexec: Callable[[], None] | None = None,
    ) -> Proc:
        return self.start("daemon", ["run", "--config", str(config)], env, preexec=preexec)

    def close(self) -> None:
        for proc in reversed(self.started):
            proc.stop()


def barbus(
    *args: object, timeout: float = 120, stdout: int | None = None
) -> subprocess.CompletedProcess[str]:
    """``barbus ARGS...`` from this checkout, to completion, its output captured (stdout goes
    to the file descriptor ``stdout`` instead when given, e.g. a pipe's write end)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("JOURNAL_STREAM", None)
    return subprocess.run(
        [*CHECKOUT_CLI, *map(str, args)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE if stdout is None else stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
    )


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


def replayed_rows(series: BarSeries, engine: Engine, trade_from_ms: int) -> list[list[str]]:
    """The trade rows ``barbus replay`` gives for ``engine`` on ``series`` (not the daemon's)."""
    result = run_replay(
        ReplayConfig(
            strategy=engine.strategy,
            params=engine.params,
            symbol="BTCUSDT",
            execution=ExecutionConfig(starting_cash=10_000.0),
            trade_from_ms=trade_from_ms,
            close_at_end=False,
            name=engine.name,
        ),
        series=series,
    )
    return [trade_row(t) for t in result.trades]


@dataclass(frozen=True)
class Recorded:
    """What a daemon left in its state file."""

    trades: dict[str, list[list[str]]]
    trade_from_ms: dict[str, int]
    bars: list[tuple[Bar, str]]
    fills: list[tuple[Any, ...]]
    snapshots: dict[str, dict[str, Any]]


def read_state(path: Path) -> Recorded:
    with closing(sqlite3.connect(path)) as db:
        fills = db.execute(
            "SELECT engine, symbol, side, time_ms, price, size, fee, reason, bar_open_time_ms "
            "FROM fills ORDER BY id"
        ).fetchall()
    store = StateStore(path)
    try:
        engines = store.engines()
        return Recorded(
            trades={name: [trade_row(t) for t in store.trades(name)] for name in engines},
            trade_from_ms={name: int(r.snapshot["trade_from_ms"]) for name, r in engines.items()},
            bars=store.bars("BTCUSDT"),
            fills=fills,
            snapshots={name: r.snapshot for name, r in engines.items()},
        )
    finally:
        store.close()


def assert_bars_are_the_slice(recorded: Recorded, series: BarSeries) -> None:
    expected = bars_of(series)
    assert [bar for bar, _ in recorded.bars] == expected
    sources = [source for _, source in recorded.bars]
    assert sources == ["warmup"] * HISTORY + ["live"] * (len(expected) - HISTORY)


def assert_parity_cli_identical(state: Path) -> None:
    done = barbus("parity", "--state", str(state))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert sorted(line.split(":")[0] for line in lines) == sorted(ENGINE_NAMES)
    assert all(line.endswith(": identical") for line in lines), done.stdout


class NotifyListener:
    """A bound AF_UNIX datagram socket under /tmp, drained by a thread (systemd's side)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="barbus-sd-", dir="/tmp"))
        self.address = str(self.folder / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.address)
        self.sock.settimeout(0.1)
        self.messages: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                self.messages.append(self.sock.recv(65536).decode())
            except TimeoutError:
                continue
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
        shutil.rmtree(self.folder, ignore_errors=True)
