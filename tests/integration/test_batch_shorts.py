"""``barbus batch`` with shorts and maker/taker fees, from flags and from spec keys."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from barbus.daemon.core.broker import ExecutionConfig
from barbus.replay.batch import load_spec
from tests.integration.test_batch import assert_succeeded, barbus
from tests.integration.test_cli_replay_shorts import SHORT_ONCE


@pytest.fixture
def strategy_file(tmp_path: Path) -> Path:
    path = tmp_path / "short_once.py"
    path.write_text(SHORT_ONCE, encoding="utf-8")
    return path


def rows(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def run_args(strategy_file: Path, data: Path, out: Path, *extra: str) -> list[str | Path]:
    return [
        "batch",
        "--strategy",
        f"{strategy_file}:ShortOnce",
        "--data",
        data,
        "--period",
        "2023-03-20:2023-03-21",
        "--grid",
        "units=0.01,0.02",
        "--no-parallel",
        "--plots",
        "0",
        "--out",
        out,
        *extra,
    ]


def test_allow_short_flag_lets_the_jobs_short_and_without_it_they_fail_naming_the_bar(
    strategy_file: Path, btc_2023_path: Path, tmp_path: Path
) -> None:
    shorted = barbus(*run_args(strategy_file, btc_2023_path, tmp_path / "a", "--allow-short"))
    refused = barbus(*run_args(strategy_file, btc_2023_path, tmp_path / "b"))

    assert_succeeded(shorted)
    assert [(r["status"], r["trades"]) for r in rows(tmp_path / "a")] == [("ok", "1")] * 2
    assert_succeeded(refused)  # failed jobs are rows, not a failed batch
    for row in rows(tmp_path / "b"):
        assert row["status"] == "failed"
        assert "short_once sold short on the BTCUSDT 1m bar at 2023-03-20T00:09:00Z" in row["error"]
    ids = {r["job_id"] for r in rows(tmp_path / "a")} & {r["job_id"] for r in rows(tmp_path / "b")}
    assert ids == set()  # shorts allowed is another job


def test_spec_keys_set_shorts_and_the_maker_and_taker_fees(
    strategy_file: Path, btc_2023_path: Path, tmp_path: Path
) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(
        "allow_short = true\nmaker_fee_bps = 1\ntaker_fee_bps = 4\n\n[[run]]\n"
        f'strategy = "short_once.py:ShortOnce"\ndata = ["{btc_2023_path}"]\n'
        'periods = [["2023-03-20", "2023-03-21"]]\n',
        encoding="utf-8",
    )

    (job,) = load_spec(spec).jobs
    run = barbus("batch", spec, "--out", tmp_path / "out", "--no-parallel", "--plots", "0")

    assert job.execution == ExecutionConfig(maker_fee_bps=1.0, taker_fee_bps=4.0, allow_short=True)
    assert_succeeded(run)
    (row,) = rows(tmp_path / "out")
    assert (row["status"], row["trades"]) == ("ok", "1")
    spec.write_text(spec.read_text(encoding="utf-8").replace("true", '"yes"'), encoding="utf-8")
    bad = barbus("batch", spec, "--out", tmp_path / "bad", "--no-parallel")
    assert bad.returncode == 2
    assert "allow_short must be true or false" in bad.stderr


@pytest.mark.parametrize("flag", [["--allow-short"], ["--taker-fee-bps", "3"], ["--fee-bps", "0"]])
def test_execution_flags_with_a_spec_file_are_refused_not_ignored(
    flag: list[str], tmp_path: Path
) -> None:
    spec = Path(__file__).resolve().parents[2] / "examples" / "sma_sweep.toml"

    run = barbus("batch", spec, "--out", tmp_path / "out", *flag)

    assert run.returncode == 2
    assert f"{flag[0]} does not go with a SPEC file" in run.stderr
    assert not (tmp_path / "out").exists()
