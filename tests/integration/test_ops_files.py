"""The systemd unit and the example config: checked with the tools that will read them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from barbus.daemon.config import load_config

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
UNIT = REPO_ROOT / "ops" / "barbus.service"

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def unit_with_existing_binary(tmp_path: Path) -> Path:
    # verify fails when ExecStart's binary is missing, so point it at one that exists.
    text = UNIT.read_text(encoding="utf-8").replace("/opt/barbus/.venv/bin/barbus", "/bin/true")
    path = tmp_path / "barbus.service"
    path.write_text(text, encoding="utf-8")
    return path


@needs_systemd_analyze
def test_unit_passes_systemd_analyze_verify_without_any_message(tmp_path: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit_with_existing_binary(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )
    # verify exits 0 even on "Unknown key": any output at all is a finding.
    assert result.returncode == 0
    assert result.stdout.strip() == ""
    assert result.stderr.strip() == ""


@needs_systemd_analyze
def test_unit_hardening_scores_ok(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            "systemd-analyze",
            "security",
            "--offline=yes",
            "--threshold=30",
            str(unit_with_existing_binary(tmp_path)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:]


def test_unit_declares_notify_watchdog_restart_and_dedicated_user() -> None:
    text = UNIT.read_text(encoding="utf-8")
    for line in (
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "RestartPreventExitStatus=2",
        "User=barbus",
        "StateDirectory=barbus",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "PrivateMounts=yes",
        "RemoveIPC=yes",
        "MemoryDenyWriteExecute=yes",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ):
        assert line in text


def test_example_config_is_valid_and_names_the_sim_exchange() -> None:
    config = load_config(REPO_ROOT / "ops" / "barbus.example.toml")
    assert config.feed.symbols == ("BTCUSDT",)
    assert config.feed.rest_url.startswith("http://127.0.0.1:")
    assert config.http.host == "127.0.0.1"
    assert {s.strategy for s in config.strategies} == {"metatrend", "sma_cross"}
