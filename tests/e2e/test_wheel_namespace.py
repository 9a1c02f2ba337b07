"""barbus claims one import name: beside ``python-daemon``, or a user's own ``strategies/`` folder.

The wheel built from this checkout is installed (not editable) with its dependencies into a fresh
venv together with ``python-daemon``, whose top-level package is also called ``daemon``; then
barbus runs a replay, and a script that sits next to its own ``strategies/`` and ``replay/``
folders imports both those and barbus.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import clean_env, run_checked


@pytest.fixture(scope="module")
def venv(wheel: Path) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="barbus-wheel-"))
    try:
        venv = root / "venv"
        run_checked([sys.executable, "-m", "venv", str(venv)])
        pip = [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
        run_checked([*pip, str(wheel), "python-daemon"], timeout=900)
        yield venv
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_installed_distribution_has_one_top_level_name(venv: Path, tmp_path: Path) -> None:
    code = (
        "import importlib.metadata as m, json\n"
        "d = m.distribution('barbus')\n"
        "tops = sorted({f.parts[0] for f in d.files if not f.parts[0].endswith('.dist-info')"
        " and f.parts[0] not in ('..', 'bin')})\n"
        "print(json.dumps([tops, (d.read_text('top_level.txt') or '').split()]))\n"
    )
    files, top_level = json.loads(
        run_checked([str(venv / "bin" / "python"), "-c", code], env=clean_env(), cwd=tmp_path)
    )
    assert files == ["barbus"]
    assert top_level == ["barbus"]


def test_a_replay_runs_beside_python_daemon(venv: Path, tmp_path: Path) -> None:
    python = str(venv / "bin" / "python")
    which = run_checked(
        [python, "-c", "import daemon, barbus.daemon; print(daemon.DaemonContext.__module__)"],
        env=clean_env(),
        cwd=tmp_path,
    )
    assert which.strip() == "daemon.daemon"  # python-daemon's, untouched
    out = tmp_path / "out"
    report = run_checked(
        [
            str(venv / "bin" / "barbus"),
            "replay",
            "--strategy",
            "sma_cross",
            "--end",
            "2025-05-25",
            "--no-plot",
            "--out",
            str(out),
        ],
        env={**clean_env(), "BARBUS_CACHE_DIR": str(tmp_path / "cache")},
        cwd=tmp_path,
    )
    assert report.startswith("strategy      sma_cross")
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["bars"] == 7200


def test_a_script_next_to_its_own_strategies_folder_imports_barbus(
    venv: Path, tmp_path: Path
) -> None:
    for own in ("strategies", "replay", "daemon"):
        (tmp_path / own).mkdir()
        (tmp_path / own / "__init__.py").write_text(f"WHOSE = 'the user {own}'\n")
    script = tmp_path / "research.py"
    script.write_text(
        "import strategies, replay, daemon\n"
        "from barbus.replay.runner import ReplayConfig, run_replay\n"
        "from barbus.strategies import STRATEGIES\n"
        "result = run_replay(ReplayConfig(strategy='sma_cross', end_ms=1748044800000))\n"
        "print(strategies.WHOSE, replay.WHOSE, daemon.WHOSE, sep=',')\n"
        "print(sorted(STRATEGIES), len(result.series))\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [str(venv / "bin" / "python"), str(script)],
        capture_output=True,
        text=True,
        env={**clean_env(), "BARBUS_CACHE_DIR": str(tmp_path / "cache")},
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    mine, theirs = done.stdout.splitlines()
    assert mine == "the user strategies,the user replay,the user daemon"
    assert theirs == "['bbrs', 'metatrend', 'random', 'sma_cross'] 5760"
