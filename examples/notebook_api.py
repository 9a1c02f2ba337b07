"""The Python API end to end, as you would use it in a notebook: a DataFrame of bars, one
backtest, its report, trades and chart, then your own strategy file swept on worker processes.

Run: ``python examples/notebook_api.py [FOLDER]`` (the chart is written to FOLDER, default ``.``).
In a notebook, paste the body of ``main`` (with ``folder = Path(".")``, and ``EMA_CROSS =
"ema_cross.py:EmaCross"`` for a copy of the file beside the notebook); a script keeps it under
``if __name__ == "__main__"`` because the sweep's worker processes import the script.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from barbus import backtest, sweep
from barbus.replay.loader import bundled_data_path

# Your own strategy file (in a notebook beside it, `from ema_cross import EmaCross` works too).
EMA_CROSS = f"{Path(__file__).resolve().with_name('strategies') / 'ema_cross.py'}:EmaCross"


def main(folder: Path) -> None:
    # Any DataFrame of 1-minute bars: here the bundled sample's first two weeks.
    bars = pd.read_csv(bundled_data_path(), nrows=20_000)
    bars.index = pd.to_datetime(bars.pop("open_time_ms"), unit="ms", utc=True)

    result = backtest(
        "sma_cross", bars, symbol="BTCUSDT", params={"fast": 5, "slow": 50, "stop_loss_pct": 2.0}
    )
    print(result.report)
    print(result.trades[["entry_time", "exit_time", "profit_pct", "exit_reason"]].head())
    print(result.equity.resample("1D").last().tail(3))
    result.plot(folder / "sma_cross.png")

    grid = {"fast": [8, 12], "slow": [26, 40]}
    table = sweep(EMA_CROSS, bars, grid, symbol="BTCUSDT", params={"timeframe": "5m"})
    print(table[["param_fast", "param_slow", "total_return_pct", "sharpe", "trades"]])


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("."))
