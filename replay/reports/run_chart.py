"""The chart of one replay: price with its trades, equity against buy and hold, drawdown.

What ``barbus replay --out`` writes as ``replay.png`` and ``Backtest.plot()`` returns; it
draws only what the chart needs beyond :mod:`replay.stats` (the drawdown and buy-and-hold
curves).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from barbus.daemon.core.events import ExitReason, format_time_ms
from barbus.replay.outputs import format_figure
from barbus.replay.reports.plotting import (
    BUY_AND_HOLD,
    DRAWDOWN,
    ENTRY_STYLE,
    EXIT_STYLES,
    PRICE,
    STRATEGY,
    dates,
    extremes_indices,
    grid_lines,
    new_figure,
    save_figure,
    utc_time_axis,
)
from barbus.replay.runner import close_marks

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from barbus.replay.runner import ReplayResult

__all__ = ["plot_run", "run_figure"]


def plot_run(result: ReplayResult, path: Path) -> Path:
    """Write :func:`run_figure` of ``result`` as a PNG at ``path`` (parents created)."""
    return save_figure(run_figure(result), path)


def run_figure(result: ReplayResult) -> Figure:
    """Price with trades, equity vs buy and hold, drawdown: three panels on one UTC time axis.

    Each line is reduced to at most about ``plotting.MAX_PLOT_POINTS`` points by keeping the
    lowest and highest value of every bucket of bars; trade markers are drawn at their exact
    times and prices.
    """
    series, stats = result.series, result.stats
    # Marks at bar boundaries: the start, then each bar's close. Fills happen at an open (= the
    # previous bar's close time) or at a close, so markers sit on the price line.
    mark_ms = close_marks(series)
    first_open = float(series.open[0])
    price = np.empty(len(mark_ms))
    price[0] = first_open
    price[1:] = series.close
    equity = np.asarray(result.equity, dtype=np.float64)
    starting_cash = float(equity[0])
    buy_and_hold = starting_cash * price / first_open
    drawdown = 100.0 * (equity / np.maximum.accumulate(equity) - 1.0)

    fig = new_figure(13.0, 9.0)
    ax_price, ax_equity, ax_dd = fig.subplots(
        3, 1, sharex=True, height_ratios=[3.0, 2.0, 1.2], squeeze=True
    )

    keep = extremes_indices(price)
    ax_price.plot(dates(mark_ms[keep]), price[keep], color=PRICE, lw=0.8, label="close")
    _plot_trades(ax_price, result)
    ax_price.set_ylabel(f"{series.symbol} price")
    ax_price.legend(loc="best", fontsize="small", ncols=2)

    keep_bh = extremes_indices(buy_and_hold)
    keep_eq = extremes_indices(equity)
    ax_equity.plot(
        dates(mark_ms[keep_bh]),
        buy_and_hold[keep_bh],
        color=BUY_AND_HOLD,
        lw=0.8,
        label="buy and hold",
    )
    ax_equity.plot(
        dates(mark_ms[keep_eq]), equity[keep_eq], color=STRATEGY, lw=1.0, label="strategy"
    )
    ax_equity.set_ylabel("equity")
    ax_equity.legend(loc="best", fontsize="small")

    keep_dd = extremes_indices(drawdown)
    ax_dd.fill_between(
        dates(mark_ms[keep_dd]), drawdown[keep_dd], 0.0, color=DRAWDOWN, alpha=0.35, lw=0.0
    )
    ax_dd.plot(dates(mark_ms[keep_dd]), drawdown[keep_dd], color=DRAWDOWN, lw=0.6)
    ax_dd.set_ylabel("drawdown %")
    ax_dd.set_xlabel("time (UTC)")
    ax_dd.set_xlim(dates(mark_ms[[0, -1]]))
    utc_time_axis(ax_dd)
    for ax in (ax_price, ax_equity, ax_dd):
        grid_lines(ax)

    params = ", ".join(f"{k}={v}" for k, v in result.config.params.items())
    first, last = format_time_ms(int(mark_ms[0])), format_time_ms(int(mark_ms[-1]))
    fig.suptitle(
        f"{result.source.name}{f' ({params})' if params else ''} on {series.symbol}, "
        f"{first} to {last}\n"
        f"return {stats.total_return_pct:+.2f} % (buy and hold "
        f"{stats.buy_and_hold_return_pct:+.2f} %)   max drawdown {stats.max_drawdown_pct:.2f} %"
        f"   Sharpe {format_figure(stats.sharpe)}   Sortino {format_figure(stats.sortino)}"
        f"   trades {stats.trades}",
        fontsize="medium",
    )
    return fig


def _plot_trades(ax: Axes, result: ReplayResult) -> None:
    """Entry and exit markers, one scatter (and legend entry) per kind present."""
    trades = result.trades
    if not trades:
        return
    # Smaller markers when there are many, so the price line stays visible under them.
    size = max(8.0, min(36.0, 36.0 * math.sqrt(100.0 / len(trades))))
    marker, colour, label = ENTRY_STYLE
    ax.scatter(
        dates(np.array([t.entry_time_ms for t in trades], dtype=np.int64)),
        [t.entry_price for t in trades],
        marker=marker,
        color=colour,
        s=size,
        zorder=3,
        label=f"{label} ({len(trades)})",
    )
    for reason, (marker, colour, label) in EXIT_STYLES.items():
        exits = [t for t in trades if t.exit_reason == reason]
        if not exits:
            continue
        ax.scatter(
            dates(np.array([t.exit_time_ms for t in exits], dtype=np.int64)),
            [t.exit_price for t in exits],
            marker=marker,
            color=colour,
            edgecolors="black" if reason != ExitReason.SIGNAL else "none",
            linewidths=0.5,
            s=size * (1.4 if reason == ExitReason.TAKE_PROFIT else 1.0),
            zorder=3,
            label=f"{label} ({len(exits)})",
        )
