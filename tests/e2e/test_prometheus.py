"""End to end: a real Prometheus scrapes a real daemon (fed by the simulated exchange) and a
running batch; every PromQL expression of the dashboard and the alert rules returns data.
A second daemon, on its own exchange, is the same job's second target: its exchange is stopped
to see the shipped feed alert go pending.

Needs the `prometheus` and `promtool` binaries (Debian package `prometheus`, installed by
.ci/run); skipped where they are absent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from barbus.replay.loader import bundled_data_path, load_bars
from tests.net import free_port, get_json

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
OPS = REPO_ROOT / "ops"
CLI = [sys.executable, "-m", "barbus.daemon.cli", "--log-level", "WARNING"]

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None or shutil.which("promtool") is None,
    reason="Prometheus is not installed (Debian package 'prometheus')",
)


def eventually(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except OSError as exc:
            last = exc
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what} (last: {last!r})")


def write_slice(path: Path, rows: int) -> Path:
    series = load_bars(bundled_data_path())
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        handle.write("open_time_ms,open,high,low,close,volume\n")
        for columns in zip(*(c[:rows].tolist() for c in series.columns()), strict=True):
            handle.write(",".join(repr(v) for v in columns) + "\n")
    return path


class Stack:
    """Prometheus + simulated exchange + daemon + a batch, all real processes."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self.processes: list[subprocess.Popen[Any]] = []
        self.daemon_port = free_port()
        self.outage_port = free_port()  # the daemon whose exchange goes away
        self.outage_sim: subprocess.Popen[Any] | None = None
        self.batch_port = free_port()
        self.prometheus_port = free_port()

    def start(self, *args: str, **kwargs: Any) -> subprocess.Popen[Any]:
        process = subprocess.Popen(list(args), env=self.env, **kwargs)
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout is not None:
                process.stdout.close()

    @property
    def instance(self) -> str:
        """The main daemon's instance label."""
        return f"127.0.0.1:{self.daemon_port}"

    def query(self, expr: str) -> list[Any]:
        url = f"http://127.0.0.1:{self.prometheus_port}/api/v1/query?" + urllib.parse.urlencode(
            {"query": expr}
        )
        answer = get_json(url)
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("e2e")
    s = Stack(work)
    try:
        # Prometheus first: its first scrape comes ~6 s after start (target discovery).
        config = yaml.safe_load((OPS / "prometheus.yml").read_text(encoding="utf-8"))
        config["global"] = {
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "evaluation_interval": "1s",
        }
        targets = {"barbus": [s.daemon_port, s.outage_port], "barbus-batch": [s.batch_port]}
        for job in config["scrape_configs"]:
            ports = targets[job["job_name"]]
            job["static_configs"] = [{"targets": [f"127.0.0.1:{port}" for port in ports]}]
        shutil.copy(OPS / "alerts.yml", work / "alerts.yml")
        (work / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
        s.start(
            "prometheus",
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{s.prometheus_port}",
            "--log.level=warn",
        )
        # 3,000 bars at 100 bars/s, then the exchange idles: the daemon's count settles.
        data = write_slice(work / "BTCUSDT_1m_slice.csv", 3_000)
        sim = s.start(
            *CLI,
            "sim-exchange",
            "--data",
            str(data),
            "--port",
            "0",
            "--speed",
            "100",
            "--history-bars",
            "500",
            "--start-on-connect",
            stdout=subprocess.PIPE,
            text=True,
        )
        assert sim.stdout is not None
        sim_port = json.loads(sim.stdout.readline())["port"]
        (work / "barbus.toml").write_text(
            f'[feed]\nrest_url = "http://127.0.0.1:{sim_port}"\n'
            f'ws_url = "ws://127.0.0.1:{sim_port}"\nsymbols = ["BTCUSDT"]\nwarmup_bars = 500\n'
            '[[strategy]]\nname = "sma"\nstrategy = "sma_cross"\nsymbol = "BTCUSDT"\n'
            '[[strategy]]\nname = "meta"\nstrategy = "metatrend"\nsymbol = "BTCUSDT"\n'
            f'[state]\npath = "state.sqlite"\n[http]\nport = {s.daemon_port}\n',
            encoding="utf-8",
        )
        s.start(*CLI, "run", "--config", str(work / "barbus.toml"))
        # The second pair: a short slice, then the exchange idles (connected) until stopped.
        s.outage_sim = s.start(
            *CLI,
            "sim-exchange",
            "--data",
            str(write_slice(work / "outage" / "BTCUSDT_1m_slice.csv", 600)),
            "--port",
            "0",
            "--speed",
            "50",
            "--history-bars",
            "500",
            "--start-on-connect",
            stdout=subprocess.PIPE,
            text=True,
        )
        assert s.outage_sim.stdout is not None
        outage_sim_port = json.loads(s.outage_sim.stdout.readline())["port"]
        (work / "outage.toml").write_text(
            f'[feed]\nrest_url = "http://127.0.0.1:{outage_sim_port}"\n'
            f'ws_url = "ws://127.0.0.1:{outage_sim_port}"\nsymbols = ["BTCUSDT"]\n'
            "warmup_bars = 500\n"
            '[[strategy]]\nname = "sma"\nstrategy = "sma_cross"\nsymbol = "BTCUSDT"\n'
            f'[state]\npath = "outage.sqlite"\n[http]\nport = {s.outage_port}\n',
            encoding="utf-8",
        )
        s.start(*CLI, "run", "--config", str(work / "outage.toml"))
        # A batch long enough to be scraped while it runs.
        s.start(
            *CLI,
            "batch",
            "--strategy",
            "random",
            "--data",
            str(bundled_data_path()),
            # Long enough (a minute or so) to be scraped while it runs.
            "--grid",
            "seed=" + ",".join(str(i) for i in range(1, 201)),
            "--out",
            str(work / "batch"),
            "--workers",
            "2",
            "--plots",
            "0",
            "--metrics-port",
            str(s.batch_port),
        )
        eventually(
            lambda: get_json(f"http://127.0.0.1:{s.prometheus_port}/api/v1/targets"),
            30,
            "Prometheus to answer",
        )
        yield s
    finally:
        s.stop_all()


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((OPS / "grafana" / "barbus.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    return [e.replace("$__rate_interval", "15s").replace("$__range", "5m") for e in exprs]


def alert_expressions() -> list[str]:
    rules = yaml.safe_load((OPS / "alerts.yml").read_text(encoding="utf-8"))
    parts = []
    for group in rules["groups"]:
        for rule in group["rules"]:
            # A healthy system must not fire: check that each side of the comparison has data.
            for side in re.split(r"\s+or\s+", rule["expr"]):
                parts.append(re.sub(r"\s*(==|!=|>=|<=|>|<)\s*[0-9.]+\s*$", "", side))
    return parts


def test_promtool_accepts_the_config_and_the_rules() -> None:
    for args in (
        ["check", "config", str(OPS / "prometheus.yml")],
        ["check", "rules", str(OPS / "alerts.yml")],
    ):
        result = subprocess.run(["promtool", *args], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_tests_fire_the_readiness_and_rejection_alerts(tmp_path: Path) -> None:
    # The shipped rules on synthetic series: not ready for 5 minutes fires (a ready daemon
    # does not); the first rejected bar fires at once.
    shutil.copy(OPS / "alerts.yml", tmp_path / "alerts.yml")
    up = 'barbus_ready{job="barbus", instance="up:1"}'
    down = 'barbus_ready{job="barbus", instance="down:1"}'
    rejected = 'barbus_feed_bars_rejected_total{job="barbus", instance="down:1", reason="future"}'
    tests = {
        "rule_files": ["alerts.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": up, "values": "1x10"},
                    {"series": down, "values": "0x10"},
                    {"series": rejected, "values": "0 0 0 3 3 3 3 3 3 3 3"},
                ],
                "alert_rule_test": [
                    {"eval_time": "4m", "alertname": "BarbusNotReady", "exp_alerts": []},
                    {
                        "eval_time": "6m",
                        "alertname": "BarbusNotReady",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "alertname": "BarbusNotReady",
                                    "job": "barbus",
                                    "instance": "down:1",
                                    "severity": "warning",
                                },
                                "exp_annotations": {
                                    "summary": "barbus on down:1 has not been ready for 5 "
                                    "minutes (see /readyz)"
                                },
                            }
                        ],
                    },
                    {"eval_time": "2m", "alertname": "BarbusFeedRejectingBars", "exp_alerts": []},
                    {
                        "eval_time": "4m",
                        "alertname": "BarbusFeedRejectingBars",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "alertname": "BarbusFeedRejectingBars",
                                    "instance": "down:1",
                                    "reason": "future",
                                    "severity": "warning",
                                },
                                "exp_annotations": {
                                    "summary": "barbus on down:1 refused future bars from the "
                                    "exchange"
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests), encoding="utf-8")

    result = subprocess.run(
        ["promtool", "test", "rules", "tests.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_targets_are_up(stack: Stack) -> None:
    # Before the expressions: the batch is only a target while it runs (a minute or so).
    def up() -> bool:
        targets = get_json(f"http://127.0.0.1:{stack.prometheus_port}/api/v1/targets")["data"][
            "activeTargets"
        ]
        return all(t["health"] == "up" for t in targets) and len(targets) == 3

    eventually(up, 60, "every target to be up")


def batch_first(exprs: list[str]) -> list[str]:
    """The batch lives for a minute or so: check its expressions while it is scraped."""
    return sorted(exprs, key=lambda e: "barbus-batch" not in e)


@pytest.mark.parametrize("expr", batch_first(dashboard_expressions() + alert_expressions()))
def test_every_dashboard_and_alert_expression_returns_data(stack: Stack, expr: str) -> None:
    eventually(lambda: stack.query(expr), 60, f"data for {expr}")


def test_prometheus_counts_exactly_the_bars_the_daemon_processed(stack: Stack) -> None:
    status_url = f"http://127.0.0.1:{stack.daemon_port}/status"

    def agreed() -> bool:
        processed = get_json(status_url)["bars_processed"]
        result = stack.query(
            f'sum(barbus_bars_processed_total{{job="barbus", instance="{stack.instance}"}})'
        )
        return bool(result) and int(float(result[0]["value"][1])) == processed

    # The daemon keeps processing: poll until a scrape lands between two bars.
    eventually(agreed, 60, "Prometheus's bar counter to equal the daemon's")


def test_feed_disconnected_alert_goes_pending_when_the_exchange_stops(stack: Stack) -> None:
    # Runs last: only the second daemon's exchange is stopped, the other targets are untouched.
    instance = f"127.0.0.1:{stack.outage_port}"
    alert = f'ALERTS{{alertname="BarbusFeedDisconnected", instance="{instance}"}}'
    eventually(
        lambda: stack.query(f'barbus_feed_connected{{job="barbus", instance="{instance}"}} == 1'),
        60,
        "the second daemon's feed scraped as connected",
    )
    assert stack.query(alert) == []
    sim = stack.outage_sim
    assert sim is not None

    sim.kill()
    sim.wait(timeout=10)

    pending = eventually(lambda: stack.query(alert), 30, "BarbusFeedDisconnected to go pending")
    assert [p["metric"]["alertstate"] for p in pending] == ["pending"]
    assert pending[0]["metric"]["severity"] == "critical"
    main = stack.query(f'ALERTS{{alertname="BarbusFeedDisconnected", instance="{stack.instance}"}}')
    assert main == []  # the first daemon's exchange still runs
