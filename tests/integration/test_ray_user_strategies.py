"""``barbus batch --backend ray`` with a user's strategy file, on a real local Ray cluster.

File strategies are shipped with the job (their text): a Ray worker runs exactly what the batch
planned and needs no copy of the file. Module strategies must be importable on every node and
have the planned fingerprint. The cluster is the one of ``test_ray_backend`` (its fixture).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from barbus.replay.batch import expand_jobs, run_batch
from barbus.replay.cache import BarCache
from tests.integration.test_batch import TWO_DAYS, csv_rows
from tests.integration.test_batch_user_strategies import (
    END,
    HOLDS,
    START,
    assert_row_is_its_replay,
    assert_the_planned_text_runs_after_the_file_changes,
    user_paths,
)
from tests.integration.test_ray_backend import ray_cluster
from tests.integration.user_strategy import (
    TURNS_V1,
    fingerprint,
    write_turns,
)
from tests.kit.in_process import run_main

__all__ = ["ray_cluster", "user_paths"]  # fixtures used here


def test_a_spec_file_with_a_relative_strategy_path_runs_on_ray_as_barbus_replay_runs_it(
    ray_cluster: str,
    btc_2023_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    strategy_file = write_turns(tmp_path / "mine")
    (tmp_path / "spec").mkdir()
    spec = tmp_path / "spec" / "sweep.toml"
    spec.write_text(
        "[[run]]\n"
        'strategy = "../mine/turns.py:Turns"\n'
        f'data = ["{btc_2023_path}"]\n'
        f'start = "{START}"\nend = "{END}"\n'
        f"grid = {{ hold = {list(HOLDS)} }}\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path / "spec")  # "../mine" from here is right; from / it is not
    out = tmp_path / "out"

    run = run_main(
        capsys,
        *("batch", spec, "--backend", "ray", "--ray-address", ray_cluster, "--plots", "0"),
        *("--out", out, "--cache-dir", tmp_path / "cache"),
    )
    monkeypatch.chdir("/")

    assert run.returncode == 0, run.stderr
    rows = csv_rows(out / "results.csv")
    assert sorted(int(row["param_hold"]) for row in rows) == sorted(HOLDS)
    for row in rows:
        assert_row_is_its_replay(
            row, f"{strategy_file}:Turns", btc_2023_path, tmp_path, cwd=tmp_path
        )
        assert (row["strategy"], row["strategy_spec"]) == ("turns", f"{strategy_file}:Turns")
        assert row["strategy_fingerprint"] == fingerprint(TURNS_V1)


@pytest.mark.parametrize("change", ["edited", "deleted"])
def test_ray_tasks_run_the_planned_text_after_the_file_changes(
    change: str,
    ray_cluster: str,
    btc_2023_path: Path,
    tmp_path: Path,
    user_paths: None,
) -> None:
    assert_the_planned_text_runs_after_the_file_changes(
        change, btc_2023_path, tmp_path, backend="ray"
    )


def test_a_ray_worker_with_another_version_of_a_module_fails_the_job_with_both_fingerprints(
    ray_cluster: str, btc_2023_path: Path, tmp_path: Path
) -> None:
    # An importable module on every node (barbus itself); the driver planned another version.
    (job,), _ = expand_jobs(
        "barbus.strategies.sma_cross:SmaCross", [btc_2023_path], periods=[TWO_DAYS]
    )
    here = job.fingerprint
    planned = dataclasses.replace(job, fingerprint="0123456789abcdef")

    outcome = run_batch(
        [planned], tmp_path / "out", cache=BarCache(tmp_path / "cache"), backend="ray"
    )

    (row,) = outcome.rows
    assert row["status"] == "failed"
    assert row["error"] == (
        "StrategyError: strategy barbus.strategies.sma_cross:SmaCross: the code on this worker "
        f"has fingerprint {here}, the batch was planned with 0123456789abcdef (another version "
        "of the module here: install the same version on every node, or run the batch again "
        "to plan this one)"
    )
