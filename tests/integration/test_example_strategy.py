"""``examples/strategies/ema_cross.py``, copied outside the project, in every backtest command.

The same file runs through ``barbus replay``, a 2-worker ``barbus batch`` and the batch on a local
Ray cluster, and every figure agrees. (The daemon on the sim exchange with ``barbus parity``
identical is the README guide's test, ``test_readme_guide.py``, which uses the same file.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_batch import csv_rows
from tests.integration.test_ray_backend import ray_cluster
from tests.integration.user_strategy import assert_row_is_the_replay
from tests.kit.in_process import run_main

__all__ = ["ray_cluster"]  # a fixture used here

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "strategies" / "ema_cross.py"
START, END = "2023-03-20", "2023-03-23"
FASTS = (5, 12)


def barbus(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "barbus.daemon.cli", "--log-level", "WARNING", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def replay_summary(folder: Path, fast: int, data: Path, out: Path) -> dict[str, Any]:
    run = barbus(
        *("replay", "--strategy", "ema_cross.py:EmaCross", "--param", f"fast={fast}"),
        *("--data", data, "--start", START, "--end", END, "--no-plot", "--out", out),
        cwd=folder,
    )
    assert run.returncode == 0, run.stderr
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return summary


def test_the_example_file_gives_the_same_figures_in_replay_a_local_batch_and_on_ray(
    ray_cluster: str,
    btc_2023_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "my-research"
    folder.mkdir()
    shutil.copy(EXAMPLE, folder / "ema_cross.py")
    sweep = (
        *("batch", "--strategy", "ema_cross.py:EmaCross", "--data", btc_2023_path),
        *("--start", START, "--end", END, "--grid", f"fast={','.join(map(str, FASTS))}"),
        *("--plots", "0", "--cache-dir", tmp_path / "cache"),
    )

    local = barbus(*sweep, "--workers", "2", "--out", tmp_path / "local", cwd=folder)
    monkeypatch.chdir(folder)
    on_ray = run_main(
        capsys, *sweep, "--backend", "ray", "--ray-address", ray_cluster, "--out", tmp_path / "ray"
    )
    monkeypatch.chdir(tmp_path)

    assert local.returncode == 0, local.stderr
    assert on_ray.returncode == 0, on_ray.stderr
    local_csv = (tmp_path / "local" / "results.csv").read_bytes()
    assert (tmp_path / "ray" / "results.csv").read_bytes() == local_csv
    rows = csv_rows(tmp_path / "local" / "results.csv")
    assert sorted(int(row["param_fast"]) for row in rows) == sorted(FASTS)
    for row in rows:
        assert (row["strategy"], row["strategy_spec"]) == (
            "ema_cross",
            f"{folder.resolve() / 'ema_cross.py'}:EmaCross",
        )
        fast = int(row["param_fast"])
        summary = replay_summary(folder, fast, btc_2023_path, tmp_path / f"replay-{fast}")
        assert_row_is_the_replay(row, summary)
        assert summary["strategy_fingerprint"] == row["strategy_fingerprint"]
