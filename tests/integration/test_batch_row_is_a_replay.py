"""A row of ``barbus batch`` holds the figures of a direct replay of the same job.

The other batch tests compare batch rows with other batch rows (serial with parallel, local with
Ray); this one runs the job again through ``run_replay`` in this process, on the data file
itself (no cache, no worker), with the period turned into times by ``datetime`` here, and
compares every figure the row has, exactly.
"""

from __future__ import annotations

import csv
import json
import math
from datetime import UTC, datetime
from pathlib import Path

from barbus.daemon.core.broker import ExecutionConfig
from barbus.replay.runner import ReplayConfig, run_replay
from tests.kit.processes import barbus

PERIOD = ("2025-06-01", "2025-06-11")  # --start inclusive, --end exclusive (README)
FEE_BPS, SLIPPAGE_BPS, CASH = 7.0, 3.0, 25_000.0  # not the defaults: the row must carry them
# What a row says about its job (who, which inputs); every other column of it that a replay's
# summary.json also has is a figure.
JOB_COLUMNS = {"strategy", "symbol", "data", "params", "strategy_spec", "strategy_fingerprint"}


def utc_ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


def test_every_figure_of_a_batch_row_equals_a_direct_replay_of_its_job(
    tmp_path: Path, btc_2025_path: Path
) -> None:
    # Arrange: a 3-job grid over ten days, on a worker process.
    out = tmp_path / "batch"
    done = barbus(
        "batch",
        "--strategy",
        "sma_cross",
        "--data",
        btc_2025_path,
        "--grid",
        "fast=5,8,13",
        "--period",
        f"{PERIOD[0]}:{PERIOD[1]}",
        "--fee-bps",
        FEE_BPS,
        "--slippage-bps",
        SLIPPAGE_BPS,
        "--cash",
        CASH,
        "--workers",
        "1",
        "--plots",
        "0",
        "--out",
        out,
        "--cache-dir",
        tmp_path / "cache",
    )
    assert done.returncode == 0, done.stderr
    with (out / "results.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3
    [row] = [r for r in rows if json.loads(r["params"]) == {"fast": 8}]
    assert row["status"] == "ok", row["error"]
    assert (int(row["start_ms"]), int(row["end_ms"])) == (utc_ms(PERIOD[0]), utc_ms(PERIOD[1]))

    # Act: the same job, replayed directly.
    result = run_replay(
        ReplayConfig(
            strategy="sma_cross",
            params={"fast": 8},
            data=btc_2025_path,
            start_ms=utc_ms(PERIOD[0]),
            end_ms=utc_ms(PERIOD[1]),
            execution=ExecutionConfig(
                fee_bps=FEE_BPS, slippage_bps=SLIPPAGE_BPS, starting_cash=CASH
            ),
        )
    )
    summary = result.summary()

    # Assert: every figure of the row, to the bit (results.csv writes floats as repr).
    figures = sorted(set(row) & set(summary) - JOB_COLUMNS)
    assert {"trades", "total_return_pct", "final_equity", "max_drawdown_pct", "sharpe"} <= set(
        figures
    ), figures
    assert summary["trades"] > 0
    assert summary["starting_cash"] == CASH
    for name in figures:
        expected = summary[name]
        cell = row[name]
        if expected is None or (isinstance(expected, float) and math.isnan(expected)):
            assert cell == "", f"{name}: the row has {cell!r}, the replay {expected!r}"
        elif isinstance(expected, int | float) and not isinstance(expected, bool):
            assert float(cell) == expected, f"{name}: the row has {cell}, the replay {expected!r}"
        else:
            assert cell == str(expected), f"{name}: the row has {cell!r}, the replay {expected!r}"
