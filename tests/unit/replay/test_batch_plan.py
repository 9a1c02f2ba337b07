"""``plan_from_request``: the "spec or flags" reading of ``barbus batch``, with plain values.

The messages are the literals ``barbus batch`` has always printed; each refusal is also run
through the CLI in-process (``main([...])``), so the command and the function say the same
bytes. Periods are checked against hand-computed epoch milliseconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from barbus.daemon.cli import main
from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.errors import ConfigError
from barbus.replay.batch import BatchPlan, plan_from_request
from barbus.replay.loader import bundled_data_path

MAR_20_2023_MS = 1_679_270_400_000  # 2023-03-20T00:00:00Z: 19436 days * 86_400_000
DAY_MS = 86_400_000
NOT_BOTH = "give either a SPEC file or --strategy/--data/--grid/--param/--period, not both"


@pytest.fixture
def spec(tmp_path: Path, btc_2023_path: Path) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(
        f'[[run]]\nstrategy = "sma_cross"\ndata = ["{btc_2023_path}"]\n'
        'periods = [["2023-03-20", "2023-03-21"]]\ngrid = { fast = [5, 10] }\n',
        encoding="utf-8",
    )
    return path


def never_called() -> ExecutionConfig:
    raise AssertionError("the execution settings were built, but must not be")


def refusal(**request: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        plan_from_request(**request)
    return str(caught.value)


def cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["batch", *argv]) == 2
    return capsys.readouterr().err.strip()


@pytest.mark.parametrize(
    ("flags", "argv"),
    [
        ({"strategy": "sma_cross"}, ["--strategy", "sma_cross"]),
        ({"data": [Path("x.csv")]}, ["--data", "x.csv"]),
        ({"grid": ["fast=5,10"]}, ["--grid", "fast=5,10"]),
        ({"params": [("fast", "5")]}, ["--param", "fast=5"]),
        ({"periods": ["2023-03-20:2023-03-21"]}, ["--period", "2023-03-20:2023-03-21"]),
    ],
)
def test_a_spec_with_a_run_flag_is_refused(
    spec: Path,
    tmp_path: Path,
    flags: dict[str, Any],
    argv: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert refusal(spec_path=spec, execution=never_called, **flags) == NOT_BOTH
    out = ["--out", str(tmp_path / "out")]
    assert cli_error([str(spec), *argv, *out], capsys) == f"barbus: error: {NOT_BOTH}"


def test_a_spec_with_an_execution_flag_is_refused_naming_the_first(
    spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = (
        "--slippage-bps does not go with a SPEC file: set it in the spec (its top-level "
        "execution keys)"
    )
    given = ["--slippage-bps", "--cash"]
    assert refusal(spec_path=spec, execution=never_called, execution_flags_given=given) == message
    argv = [str(spec), "--cash", "5", "--slippage-bps", "1", "--out", str(tmp_path / "out")]
    assert cli_error(argv, capsys) == f"barbus: error: {message}"


def test_without_a_spec_the_strategy_is_required_before_anything_else_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = "without a SPEC file, --strategy is required"
    # A bad period, grid and a twice-given parameter come after: the strategy is said first.
    request = {"periods": ["nonsense"], "grid": ["oops"], "params": [("a", "1"), ("a", "2")]}
    assert refusal(spec_path=None, execution=never_called, **request) == message
    argv = ["--period", "nonsense", "--grid", "oops", "--out", str(tmp_path / "out")]
    assert cli_error(argv, capsys) == f"barbus: error: {message}"


def test_a_parameter_given_twice_is_refused_before_the_execution_is_built(
    btc_2023_path: Path,
) -> None:
    message = refusal(
        spec_path=None,
        strategy="sma_cross",
        data=[btc_2023_path],
        params=[("fast", "5"), ("fast", "6")],
        execution=never_called,
    )
    assert message == "parameter 'fast' given twice"


def test_a_spec_is_read_as_the_spec_file_says(spec: Path, btc_2023_path: Path) -> None:
    plan = plan_from_request(spec, execution=never_called)

    assert isinstance(plan, BatchPlan)
    assert [dict(job.params) for job in plan.jobs] == [{"fast": 5}, {"fast": 10}]
    assert {(job.start_ms, job.end_ms) for job in plan.jobs} == {
        (MAR_20_2023_MS, MAR_20_2023_MS + DAY_MS)
    }
    assert {job.data for job in plan.jobs} == {str(btc_2023_path.resolve())}


def test_flags_give_one_job_per_grid_value_and_period(btc_2023_path: Path) -> None:
    execution = ExecutionConfig(fee_bps=3.0)
    plan = plan_from_request(
        None,
        strategy="sma_cross",
        data=[btc_2023_path],
        grid=["fast=5,10"],
        params=[("slow", "40")],
        periods=["2023-03-20:2023-03-21", "2023-03-21:2023-03-22"],
        symbol="ETHUSDT",
        execution=lambda: execution,
    )

    spans = {(job.start_ms, job.end_ms) for job in plan.jobs}
    assert spans == {
        (MAR_20_2023_MS, MAR_20_2023_MS + DAY_MS),
        (MAR_20_2023_MS + DAY_MS, MAR_20_2023_MS + 2 * DAY_MS),
    }
    assert sorted(tuple(sorted(dict(job.params).items())) for job in plan.jobs) == [
        (("fast", 5), ("slow", 40)),
        (("fast", 5), ("slow", 40)),
        (("fast", 10), ("slow", 40)),
        (("fast", 10), ("slow", 40)),
    ]
    assert {job.symbol for job in plan.jobs} == {"ETHUSDT"}
    assert {job.execution for job in plan.jobs} == {execution}
    assert (plan.workers, plan.sort, plan.ascending) == (None, "sharpe", None)


def test_start_and_end_make_the_one_period_and_the_bundled_file_is_the_default_data() -> None:
    plan = plan_from_request(
        None, strategy="sma_cross", start="2025-05-20", end="2025-05-21", execution=ExecutionConfig
    )

    (job,) = plan.jobs
    may_20_2025_ms = MAR_20_2023_MS + (365 + 366 + 61) * DAY_MS  # 2023-03-20 + 792 days
    assert (job.start_ms, job.end_ms) == (may_20_2025_ms, may_20_2025_ms + DAY_MS)
    assert job.data == str(bundled_data_path().resolve())
    assert job.execution == ExecutionConfig()


def test_an_empty_start_end_period_is_reported_with_the_flag_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = (
        "--start/--end 2025-05-21 .. 2025-05-20 is empty: its end (2025-05-20T00:00:00Z) is "
        "before its start (2025-05-21T00:00:00Z)"
    )
    request = {"strategy": "sma_cross", "start": "2025-05-21", "end": "2025-05-20"}
    assert refusal(spec_path=None, execution=never_called, **request) == message
    argv = ["--strategy", "sma_cross", "--start", "2025-05-21", "--end", "2025-05-20"]
    assert cli_error([*argv, "--out", str(tmp_path / "out")], capsys) == f"barbus: error: {message}"
