"""The Python API against the real command line: ``barbus.backtest`` equals ``barbus replay`` and
``barbus.sweep`` equals ``barbus batch`` on the same data, given as a file or as a DataFrame."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import html
import json
import math
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import barbus
from barbus.daemon.core.errors import BarbusError, StrategyError
from barbus.daemon.core.series import BarSeries
from barbus.daemon.core.tradelog import TRADE_COLUMNS
from barbus.replay.bars_out import write_bars
from barbus.replay.batch import METRICS
from barbus.replay.loader import load_bars
from barbus.strategies import create_strategy, resolve_strategy
from tests.kit.processes import REPO_ROOT, checkout_env
from tests.kit.processes import barbus as barbus_cli
from tests.unit.strategies.test_loader import STRATEGY_FILE

ROWS = slice(5_000, 25_000)  # 20,000 bars of the 2023 file, across its 80-minute gap
MINUTE_MS = 60_000
# Run facts that are not results: where the data came from and how fast this machine was.
NOT_RESULTS = {"data", "replay_seconds", "bars_per_second"}
MOMENTUM_FILE = STRATEGY_FILE.replace(
    "return Signal.BUY if position == 0.0 else None",
    "self._n = getattr(self, '_n', 0) + 1\n"
    "        if self._n % (self.params.size * 60) == 0:\n"
    "            return Signal.SELL if position else Signal.BUY\n"
    "        return None",
)


@pytest.fixture(scope="module")
def bars(btc_2023_path: Path) -> BarSeries:
    whole = load_bars(btc_2023_path)
    part = BarSeries(
        "BTCUSDT",
        "1m",
        "slice",
        whole.open_time_ms[ROWS].copy(),
        whole.open[ROWS].copy(),
        whole.high[ROWS].copy(),
        whole.low[ROWS].copy(),
        whole.close[ROWS].copy(),
        whole.volume[ROWS].copy(),
    )
    assert part.gaps().count == 1  # the slice keeps the file's gap
    return part


@pytest.fixture(scope="module")
def data_csv(bars: BarSeries, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bars as a CSV file in barbus's export layout, floats written exactly (repr)."""
    return write_bars(tmp_path_factory.mktemp("data") / "BTCUSDT_1m_slice.csv", bars)


def utc_indexed(bars: BarSeries) -> pd.DataFrame:
    """The bars as a notebook holds them: a UTC DatetimeIndex and five price columns."""
    index = pd.DatetimeIndex(pd.to_datetime(bars.open_time_ms, unit="ms", utc=True), name="time")
    prices = {name: getattr(bars, name) for name in ("open", "high", "low", "close", "volume")}
    return pd.DataFrame(prices, index=index)


def epoch_column(bars: BarSeries) -> pd.DataFrame:
    """The bars with integer epoch-microsecond times in a ``timestamp`` column."""
    return utc_indexed(bars).reset_index(drop=True).assign(timestamp=bars.open_time_ms * 1000)


def run_cli(*args: object, out: Path) -> dict[str, Any]:
    run = barbus_cli("--log-level", "WARNING", "replay", *args, "--out", out, "--no-plot")
    assert run.returncode == 0, run.stderr
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return summary


def results_only(summary: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in summary.items() if key not in NOT_RESULTS}


def assert_same_run(api: barbus.BacktestResult, cli_out: Path, folder: Path) -> None:
    written = api.save(folder, plot=False)
    assert written["trades"].read_bytes() == (cli_out / "trades.csv").read_bytes()
    cli_summary = json.loads((cli_out / "summary.json").read_text(encoding="utf-8"))
    api_summary = json.loads(written["summary"].read_text(encoding="utf-8"))
    assert api_summary == json.loads(json.dumps(api.summary))  # .summary is summary.json
    assert results_only(api_summary) == results_only(cli_summary)
    assert api_summary["trades"] > 5  # a comparison of something


def test_backtest_of_a_dataframe_equals_barbus_replay_with_defaults(
    bars: BarSeries, data_csv: Path, tmp_path: Path
) -> None:
    run_cli("--strategy", "sma_cross", "--data", data_csv, out=tmp_path / "cli")
    api = barbus.backtest("sma_cross", utc_indexed(bars), symbol="BTCUSDT")
    assert_same_run(api, tmp_path / "cli", tmp_path / "api")
    assert (api.summary["gaps"], api.summary["missing_minutes"]) == (1, 80)


def test_backtest_of_an_instance_with_every_option_equals_barbus_replay(
    bars: BarSeries, data_csv: Path, tmp_path: Path
) -> None:
    run_cli(
        *("--strategy", "sma_cross", "--data", data_csv),
        *("--param", "fast=5", "--param", "slow=50"),
        *("--param", "stop_loss_pct=0.4", "--param", "take_profit_pct=0.6"),
        *("--fee-bps", "2", "--slippage-bps", "1", "--fill-at", "close", "--cash", "2500"),
        *("--start", "2023-03-22T06:00", "--end", "2023-03-30"),
        *("--trade-from", "2023-03-23", "--keep-open", "--name", "mine"),
        out=tmp_path / "cli",
    )
    instance = create_strategy("sma_cross", {"fast": 5, "slow": 50})
    api = barbus.backtest(
        instance,
        epoch_column(bars),
        symbol="BTCUSDT",
        params={"stop_loss_pct": 0.4, "take_profit_pct": 0.6},
        fee_bps=2,
        slippage_bps=1,
        fill_at="close",
        starting_cash=2500,
        start=pd.Timestamp("2023-03-22 06:00", tz="UTC"),
        end=dt.date(2023, 3, 30),
        trade_from=dt.datetime(2023, 3, 23),
        keep_open=True,
        name="mine",
    )
    assert_same_run(api, tmp_path / "cli", tmp_path / "api")
    exits = set(api.trades["exit_reason"])
    assert {"stop_loss", "take_profit"} <= exits, exits


def test_backtest_of_a_user_class_and_a_path_equals_barbus_replay(
    data_csv: Path, tmp_path: Path
) -> None:
    strategy_file = tmp_path / "momentum.py"
    strategy_file.write_text(MOMENTUM_FILE, encoding="utf-8")
    run_cli("--strategy", f"{strategy_file}:Hold", "--data", data_csv, out=tmp_path / "cli")
    cls = resolve_strategy(f"{strategy_file}:Hold").cls
    api = barbus.backtest(cls, str(data_csv))
    assert_same_run(api, tmp_path / "cli", tmp_path / "api")
    assert api.summary["data"] == str(data_csv)
    assert api.summary["strategy_spec"] == f"{strategy_file}:Hold"


def test_the_result_tables_are_the_trade_log_and_the_marked_equity(
    bars: BarSeries, tmp_path: Path
) -> None:
    api = barbus.backtest("sma_cross", utc_indexed(bars), symbol="BTCUSDT", starting_cash=1000)
    api.save(tmp_path, plot=False)
    with (tmp_path / "trades.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    trades = api.trades
    assert list(trades.columns) == list(TRADE_COLUMNS)
    assert len(trades) == len(rows) > 5
    for (_, frame_row), file_row in zip(trades.iterrows(), rows, strict=True):
        for column in ("entry_price", "exit_price", "size", "profit", "profit_pct"):
            assert frame_row[column] == float(file_row[column])
        assert frame_row["entry_time"] == pd.Timestamp(file_row["entry_time"])
        assert frame_row["exit_time_ms"] == int(file_row["exit_time_ms"])
        assert frame_row["exit_reason"] == file_row["exit_reason"]

    equity = api.equity
    first, last = int(bars.open_time_ms[0]), int(bars.open_time_ms[-1])
    assert len(equity) == len(bars) + 1  # the start, then each bar's close
    assert equity.index[0] == pd.Timestamp(first, unit="ms", tz="UTC")
    assert equity.index[-1] == pd.Timestamp(last + MINUTE_MS, unit="ms", tz="UTC")
    assert equity.index.is_monotonic_increasing
    assert equity.dtype == np.float64
    assert equity.iloc[0] == 1000.0
    # Everything closed at the end: the final equity is the cash plus every trade's profit.
    assert math.isclose(equity.iloc[-1], 1000.0 + sum(float(r["profit"]) for r in rows))
    assert equity.iloc[-1] == api.stats.final_equity == api.summary["final_equity"]


def test_the_plot_is_a_figure_and_a_file_and_the_repr_is_the_report(
    bars: BarSeries, tmp_path: Path
) -> None:
    api = barbus.backtest("sma_cross", utc_indexed(bars), symbol="BTCUSDT")
    figure = api.plot()
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 3
    path = tmp_path / "sub" / "run.png"
    api.plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert repr(api) == api.report
    assert api.report.startswith("strategy      sma_cross (timeframe=1m")
    assert api._repr_html_() == f"<pre>{html.escape(api.report)}</pre>"
    assert "-&gt;" in api._repr_html_()


def test_backtest_without_data_replays_the_bundled_sample() -> None:
    api = barbus.backtest("sma_cross", end="2025-05-21")
    assert api.summary["data"].endswith("BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz")
    assert api.summary["bars"] == 1440


def test_backtest_and_an_in_process_sweep_run_inside_a_running_event_loop() -> None:
    """A Jupyter cell runs in an event loop, where asyncio.run is refused."""
    plain = barbus.backtest("sma_cross", end="2025-05-21")

    async def cell() -> tuple[dict[str, Any], int]:
        inside = barbus.backtest("sma_cross", end="2025-05-21")
        swept = barbus.sweep(
            "sma_cross", None, grid={"fast": [5]}, end="2025-05-21", parallel=False
        )
        return inside.summary, len(swept)

    summary, rows = asyncio.run(cell())
    timing = ("replay_seconds", "bars_per_second")
    assert {k: v for k, v in summary.items() if k not in timing} == {
        k: v for k, v in plain.summary.items() if k not in timing
    }
    assert rows == 1


def test_import_barbus_strategies_loads_no_pandas_and_the_api_is_one_import() -> None:
    code = (
        "import sys, barbus, barbus.strategies\n"
        "assert 'pandas' not in sys.modules and 'barbus.replay.api' not in sys.modules\n"
        "from barbus import backtest, sweep, BacktestResult\n"
        "assert 'backtest' in dir(barbus)\n"
        "print(backtest.__module__, sweep.__name__, BacktestResult.__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=REPO_ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["barbus.replay.api", "sweep", "BacktestResult"]
    with pytest.raises(AttributeError, match="module 'barbus' has no attribute 'nope'"):
        barbus.nope  # noqa: B018


# --------------------------------------------------------------------------------------------
# sweep


GRID = {"fast": [5, 10], "slow": [30, 50]}


def run_cli_batch(data: Path, out: Path) -> pd.DataFrame:
    run = barbus_cli(
        *(
            "--log-level",
            "WARNING",
            "batch",
            "--strategy",
            "sma_cross",
            "--data",
            data,
            "--grid",
            "fast=5,10",
        ),
        *("--grid", "slow=30,50", "--param", "stop_loss_pct=1.5", "--workers", "2"),
        *("--plots", "0", "--out", out),
    )
    assert run.returncode == 0, run.stderr
    return pd.read_parquet(out / "results.parquet")  # the results.csv table, floats exact


def assert_same_figures(table: pd.DataFrame, reference: pd.DataFrame) -> None:
    """The same figures, exactly, for each (fast, slow)."""
    keys = ["param_fast", "param_slow"]
    pd.testing.assert_frame_equal(
        table.sort_values(keys)[[*keys, *METRICS]].reset_index(drop=True),
        reference.sort_values(keys)[[*keys, *METRICS]].reset_index(drop=True),
        check_dtype=False,
        check_exact=True,
    )


def test_sweep_equals_barbus_batch(
    bars: BarSeries, data_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = run_cli_batch(data_csv, tmp_path / "cli")
    # A temporary folder of this test's own: another test's sweep on another worker is not ours.
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    leftovers = set(Path(tempfile.gettempdir()).glob("barbus-sweep-*"))
    from_frame = barbus.sweep(
        "sma_cross",
        utc_indexed(bars),
        GRID,
        params={"stop_loss_pct": 1.5},
        symbol="BTCUSDT",
        workers=2,
    )
    assert set(Path(tempfile.gettempdir()).glob("barbus-sweep-*")) == leftovers  # removed
    assert list(from_frame.columns) == list(cli.columns)
    assert list(from_frame["status"]) == ["ok"] * 4
    assert_same_figures(from_frame, cli)
    assert from_frame["sharpe"].is_monotonic_decreasing  # best first, as the CLI ranks

    out = tmp_path / "api"
    from_path = barbus.sweep(
        "sma_cross", data_csv, GRID, params={"stop_loss_pct": 1.5}, workers=2, out=out
    )
    # The same jobs exactly (the id hashes strategy, parameters, data path, period, execution).
    assert (out / "results.csv").read_bytes() == (tmp_path / "cli" / "results.csv").read_bytes()
    assert list(from_path["job_id"]) == list(cli["job_id"])
    assert (out / "index.html").is_file()
    assert len(list((out / "plots").glob("*.png"))) == 4
    journal = (out / "results.jsonl").read_text(encoding="utf-8")
    again = barbus.sweep(
        "sma_cross", data_csv, GRID, params={"stop_loss_pct": 1.5}, workers=2, out=out
    )
    assert (out / "results.jsonl").read_text(encoding="utf-8") == journal  # resumed, none rerun
    pd.testing.assert_frame_equal(again, from_path)


def test_sweep_of_a_dataframe_into_a_folder_resumes_from_the_same_data_file(
    bars: BarSeries, tmp_path: Path
) -> None:
    frame = epoch_column(bars).iloc[:5_000]
    first = barbus.sweep("sma_cross", frame, {"fast": [5, 10]}, symbol="BTCUSDT", out=tmp_path)
    written = list((tmp_path / "data").glob("*.parquet"))
    assert len(written) == 1
    assert written[0].name.startswith("BTCUSDT_1m_frame-")
    journal = (tmp_path / "results.jsonl").read_text(encoding="utf-8")
    second = barbus.sweep("sma_cross", frame, {"fast": [5, 10]}, symbol="BTCUSDT", out=tmp_path)
    assert (tmp_path / "results.jsonl").read_text(encoding="utf-8") == journal
    pd.testing.assert_frame_equal(first, second)
    assert first["file"].tolist() == [written[0].name] * 2


def test_a_sweep_whose_every_job_fails_raises_and_progress_shows(
    bars: BarSeries, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = utc_indexed(bars).iloc[:3_000]
    with pytest.raises(BarbusError) as caught:
        barbus.sweep("sma_cross", frame, {"fast": [5, 10]}, symbol="BTCUSDT", start="2030-01-01")
    assert str(caught.value).startswith(
        "all 2 jobs failed; the first: DataError: DataFrame: no bars in the requested period "
        "2030-01-01T00:00:00Z .. the last bar (it starts after the data ends)"
    )
    capsys.readouterr()
    table = barbus.sweep(
        "sma_cross", frame, {"fast": [5, 10]}, symbol="BTCUSDT", parallel=False, progress=True
    )
    assert list(table["status"]) == ["ok", "ok"]
    assert "2/2" in capsys.readouterr().err


def test_a_class_workers_cannot_import_is_one_clear_error(bars: BarSeries) -> None:
    from barbus.strategies.sma_cross import SmaCross

    class Local(SmaCross):  # type: ignore[misc]
        pass

    with pytest.raises(StrategyError, match="is defined inside a function or class"):
        barbus.sweep(Local, utc_indexed(bars), GRID, symbol="BTCUSDT")


SCRIPT = """
import sys
import pandas as pd
import barbus
from barbus.daemon.core.errors import BarbusError, StrategyError
from barbus.replay.loader import bundled_data_path
{strategy}

def main():
    bars = pd.read_csv(bundled_data_path(), nrows=3000)
    try:
        barbus.sweep(Hold, bars, {{"size": [1, 2]}}, symbol="BTCUSDT", workers=2)
    except StrategyError as exc:
        print("error:", exc)
    table = barbus.sweep(Hold, bars, {{"size": [1, 2]}}, symbol="BTCUSDT", parallel=False)
    print("in process:", list(table["status"]))

if __name__ == "__main__":
    main()
"""


def run_python(script: str | Path, *args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python SCRIPT ARGS`` with this checkout importable (and no plot window)."""
    command = [sys.executable, str(script), *map(str, args)]
    env = checkout_env({"MPLBACKEND": "Agg"})
    return subprocess.run(
        command, capture_output=True, text=True, check=False, cwd=cwd, env=env, timeout=300
    )


def test_a_class_in_main_is_refused_for_workers_and_runs_in_process(tmp_path: Path) -> None:
    script = tmp_path / "sweep_main.py"
    strategy = MOMENTUM_FILE.replace("from __future__ import annotations\n", "")
    script.write_text(SCRIPT.format(strategy=strategy), encoding="utf-8")
    done = run_python(script, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == (
        "error: strategy class Hold is defined in __main__ (this script or notebook), which "
        "batch worker processes cannot import: put it in a file and pass the class imported "
        "from there (or the spec 'my_file.py:Hold'), or run the jobs in this process with "
        "parallel=False"
    )
    assert lines[1] == "in process: ['ok', 'ok']"


def test_a_class_imported_from_a_module_beside_the_script_sweeps_on_workers(
    tmp_path: Path,
) -> None:
    (tmp_path / "momentum.py").write_text(MOMENTUM_FILE, encoding="utf-8")
    script = tmp_path / "sweep_module.py"
    script.write_text(
        SCRIPT.format(strategy="from momentum import Hold").replace("parallel=False", "workers=2"),
        encoding="utf-8",
    )
    done = run_python(script, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["in process: ['ok', 'ok']"]  # no error line


# --------------------------------------------------------------------------------------------
# the example script and the README


def test_the_notebook_example_runs_end_to_end(tmp_path: Path) -> None:
    done = run_python(REPO_ROOT / "examples" / "notebook_api.py", tmp_path, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "sma_cross.png").read_bytes()[:4] == b"\x89PNG"
    assert "total return" in done.stdout
    assert re.search(r"param_fast\s+param_slow", done.stdout), done.stdout


def test_the_readme_python_api_blocks_run(tmp_path: Path) -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) >= 2
    script = tmp_path / "readme_blocks.py"
    body = textwrap.indent("\n".join(blocks), "    ")
    script.write_text(f"def main():\n{body}\n\nif __name__ == '__main__':\n    main()\n")
    done = run_python(script, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
