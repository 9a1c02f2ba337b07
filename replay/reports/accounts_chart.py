"""The chart of a ``replay --config`` run: each account's equity over time, one line each.

Apart from the run chart because a portfolio run has several accounts and no single price or
trade list to draw.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from barbus.replay.reports.plotting import (
    FloatArray,
    IntArray,
    dates,
    extremes_indices,
    grid_lines,
    new_figure,
    save_figure,
    utc_time_axis,
)

__all__ = ["plot_accounts"]


def plot_accounts(
    marks_ms: IntArray, equity: Mapping[str, FloatArray], title: str, path: Path
) -> Path:
    """Write each account's equity over time as a PNG at ``path`` (parents created)."""
    fig = new_figure(13.0, 5.0)
    ax = fig.subplots()
    for name, curve in equity.items():
        keep = extremes_indices(curve)
        ax.plot(dates(marks_ms[keep]), curve[keep], lw=1.0, label=name)
    ax.set_ylabel("account equity")
    ax.set_xlabel("time (UTC)")
    ax.legend(loc="best", fontsize="small")
    grid_lines(ax)
    utc_time_axis(ax)
    fig.suptitle(title, fontsize="medium")
    return save_figure(fig, path)
