"""End to end: a real Prometheus scrapes a real daemon (fed by the simulated exchange) and a
running batch; every PromQL expression of the dashboard and the alert rules returns data.
A second daemon, on its own exchange, is the same job's second target: its exchange is stopped
to see the shipped feed alert go pending.

Needs the `prometheus` and `promtool` binaries (Debian package `prometheus`, installed by
.ci/run); skipped where they are absent.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from barbus.replay.loader import bundled_data_path
from tests.kit.processes import Proc, Processes
from tests.kit.scenario import Engine, write_config, write_slice
from tests.kit.waiting import wait_until
from tests.net import free_port, get_json

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
OPS = REPO_ROOT / "ops"
QUIET = ["--log-level", "WARNING"]
# Prometheus answers (and scrapes) once a second: poll at half that, through refused connections.
PROMETHEUS_POLL: dict[str, Any] = {"interval": 0.5, "retry_on": (OSError,)}

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None or shutil.which("promtool") is None,
    reason="Prometheus is not installed (Debian package 'prometheus')",
)


class Stack:
    """Prometheus + simulated exchange + daemon + a batch, all real processes."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.processes = Processes(work / "processes")
        self.daemon_port = free_port()
        self.outage_port = free_port()  # the daemon whose exchange goes away
        self.outage_sim: Proc | None = None
        self.batch_port = free_port()
        self.prometheus_port = free_port()

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
        s.processes.spawn(
            "prometheus",
            [
                "prometheus",
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{s.prometheus_port}",
                "--log.level=warn",
            ],
        )
        # 3,000 bars at 100 bars/s, then the exchange idles: the daemon's count settles.
        series = write_slice(bundled_data_path(), 0, 3_000, work)
        _, sim_port = s.processes.sim(Path(series.source), speed=100, exit_at_end=False)
        engines = (Engine("sma", "sma_cross"), Engine("meta", "metatrend"))
        main = write_config(
            work / "barbus.toml",
            sim_port=sim_port,
            http_port=s.daemon_port,
            state=work / "state.sqlite",
            engines=engines,
        )
        s.processes.daemon(main)
        # The second pair: a short slice, then the exchange idles (connected) until stopped.
        short = write_slice(bundled_data_path(), 0, 600, work / "outage")
        s.outage_sim, outage_sim_port = s.processes.sim(
            Path(short.source), speed=50, exit_at_end=False
        )
        outage = write_config(
            work / "outage.toml",
            sim_port=outage_sim_port,
            http_port=s.outage_port,
            state=work / "outage.sqlite",
            engines=engines[:1],
        )
        s.processes.daemon(outage)
        # A batch long enough to be scraped while it runs.
        s.processes.start(
            "batch",
            [
                *QUIET,
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
            ],
        )
        wait_until(
            lambda: get_json(f"http://127.0.0.1:{s.prometheus_port}/api/v1/targets"),
            30,
            "Prometheus to answer",
            **PROMETHEUS_POLL,
        )
        yield s
    finally:
        s.processes.close()


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

    wait_until(up, 60, "every target to be up", **PROMETHEUS_POLL)


def batch_first(exprs: list[str]) -> list[str]:
    """The batch lives for a minute or so: check its expressions while it is scraped."""
    return sorted(exprs, key=lambda e: "barbus-batch" not in e)


@pytest.mark.parametrize("expr", batch_first(dashboard_expressions() + alert_expressions()))
def test_every_dashboard_and_alert_expression_returns_data(stack: Stack, expr: str) -> None:
    wait_until(lambda: stack.query(expr) or None, 60, f"data for {expr}", **PROMETHEUS_POLL)


def test_prometheus_counts_exactly_the_bars_the_daemon_processed(stack: Stack) -> None:
    status_url = f"http://127.0.0.1:{stack.daemon_port}/status"

    def agreed() -> bool:
        processed = get_json(status_url)["bars_processed"]
        result = stack.query(
            f'sum(barbus_bars_processed_total{{job="barbus", instance="{stack.instance}"}})'
        )
        return bool(result) and int(float(result[0]["value"][1])) == processed

    # The daemon keeps processing: poll until a scrape lands between two bars.
    wait_until(agreed, 60, "Prometheus's bar counter to equal the daemon's", **PROMETHEUS_POLL)


def test_feed_disconnected_alert_goes_pending_when_the_exchange_stops(stack: Stack) -> None:
    # Runs last: only the second daemon's exchange is stopped, the other targets are untouched.
    instance = f"127.0.0.1:{stack.outage_port}"
    alert = f'ALERTS{{alertname="BarbusFeedDisconnected", instance="{instance}"}}'
    connected = f'barbus_feed_connected{{job="barbus", instance="{instance}"}} == 1'
    wait_until(
        lambda: stack.query(connected) or None,
        60,
        "the second daemon's feed scraped as connected",
        **PROMETHEUS_POLL,
    )
    assert stack.query(alert) == []
    sim = stack.outage_sim
    assert sim is not None

    sim.signal(signal.SIGKILL)
    sim.wait(timeout=10)

    pending = wait_until(
        lambda: stack.query(alert) or None,
        30,
        "BarbusFeedDisconnected to go pending",
        **PROMETHEUS_POLL,
    )
    assert [p["metric"]["alertstate"] for p in pending] == ["pending"]
    assert pending[0]["metric"]["severity"] == "critical"
    main = stack.query(f'ALERTS{{alertname="BarbusFeedDisconnected", instance="{stack.instance}"}}')
    assert main == []  # the first daemon's exchange still runs
