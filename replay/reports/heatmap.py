"""The heatmap of a batch: one metric over the grid of two swept parameters.

What a batch writes as ``heatmap_<metric>.png`` when exactly two parameters vary.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.colors import Normalize

from barbus.daemon.core.events import INTERVAL_MS
from barbus.replay.reports.plotting import (
    BLANK_CELL,
    DIVERGING,
    SEQUENTIAL,
    new_figure,
    save_figure,
)
from barbus.replay.reports.results_table import numeric_column, require_column

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["MAX_ANNOTATED_CELLS", "SIGNED_METRICS", "heatmap_figure", "plot_heatmap"]

MAX_ANNOTATED_CELLS = 15  # per heatmap side
# The batch metrics whose sign matters (loss vs gain): a diverging colour map centred on zero.
SIGNED_METRICS = frozenset(
    {
        "total_return_pct",
        "buy_and_hold_return_pct",
        "sharpe",
        "sortino",
        "calmar",
        "profit_factor",
        "expectancy",
    }
)


def plot_heatmap(results: pd.DataFrame, x: str, y: str, metric: str, path: Path) -> Path:
    """Write :func:`heatmap_figure` as a PNG at ``path`` (parents created)."""
    return save_figure(heatmap_figure(results, x, y, metric), path)


def heatmap_figure(results: pd.DataFrame, x: str, y: str, metric: str) -> Figure:
    """``metric`` over the grid of parameters ``x`` (columns) and ``y`` (rows).

    Rows sharing a cell (several symbols or periods per parameter pair) are averaged, and the
    title says so; cells with no value (failed jobs) stay blank. :data:`SIGNED_METRICS` and any
    metric with both signs use a diverging map centred on 0 so a loss never looks like a small
    gain.
    """
    for name, role in ((x, "x"), (y, "y"), (metric, "metric")):
        require_column(results, name, role)
    if x == y:
        raise ValueError(f"x and y must be different parameters, both are {x!r}")
    values = numeric_column(results, metric)
    frame = pd.DataFrame({"x": results[x].to_numpy(), "y": results[y].to_numpy(), "v": values})
    frame = frame.dropna(subset=["x", "y"])
    if frame.empty:
        raise ValueError(f"no rows with both {x!r} and {y!r} set: nothing to plot")
    xs, ys = _grid_values(frame["x"]), _grid_values(frame["y"])
    cells = frame.groupby(["y", "x"], sort=False)["v"]
    per_cell = int(cells.size().max())
    grid = cells.mean().unstack("x").reindex(index=ys, columns=xs)
    data = np.ma.masked_invalid(grid.to_numpy(dtype=np.float64))

    signed = _is_signed(metric, data)
    finite = data.compressed()
    if signed:
        limit = float(np.max(np.abs(finite))) if finite.size else 1.0
        limit = limit if limit > 0.0 else 1.0
        norm = Normalize(-limit, limit)
    elif finite.size:
        norm = Normalize(float(finite.min()), float(finite.max()))
    else:
        norm = Normalize(0.0, 1.0)

    nx, ny = len(xs), len(ys)
    fig = new_figure(min(4.0 + 0.7 * nx, 20.0), min(3.0 + 0.45 * ny, 16.0))
    ax = fig.subplots()
    image = ax.imshow(
        data,
        cmap=DIVERGING if signed else SEQUENTIAL,
        norm=norm,
        origin="lower",
        aspect="auto",
        interpolation="nearest",
    )
    fig.colorbar(image, ax=ax, label=metric)
    _set_category_ticks(ax, xs, ys)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_facecolor(BLANK_CELL)
    if nx <= MAX_ANNOTATED_CELLS and ny <= MAX_ANNOTATED_CELLS:
        colours = image.cmap(norm(data.filled(np.nan)))
        for (row, col), value in np.ndenumerate(data.filled(np.nan)):
            if math.isnan(value):
                continue
            r, g, b, _ = colours[row, col]
            ink = "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black"
            ax.text(col, row, _short_number(value), ha="center", va="center", color=ink, fontsize=8)
    title = f"{metric} by {x} and {y}"
    if per_cell > 1:
        title += f"\n(mean of up to {per_cell} runs per cell)"
    ax.set_title(title, fontsize="medium")
    return fig


def _grid_values(column: pd.Series[Any]) -> list[Any]:
    """Sorted unique parameter values; timeframes by length ("5m" < "1h"); unsortable as seen."""
    unique = list(pd.unique(column))
    if unique and all(isinstance(v, str) and v in INTERVAL_MS for v in unique):
        return sorted(unique, key=INTERVAL_MS.__getitem__)
    try:
        return sorted(unique)
    except TypeError:
        return unique


def _set_category_ticks(ax: Axes, xs: Sequence[Any], ys: Sequence[Any]) -> None:
    """One tick per grid value; only every k-th labelled when there are too many to read."""
    for values, set_ticks in ((xs, ax.set_xticks), (ys, ax.set_yticks)):
        step = max(1, math.ceil(len(values) / 30))
        positions = list(range(0, len(values), step))
        set_ticks(positions, [_tick_label(values[i]) for i in positions])
    if len(xs) > 10:
        ax.tick_params(axis="x", labelrotation=45)


def _tick_label(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):g}"
    return str(value)


def _short_number(value: float) -> str:
    """A cell annotation: three significant figures, no exponent for everyday magnitudes."""
    magnitude = abs(value)
    if magnitude >= 1000.0 or (0.0 < magnitude < 0.01):
        return f"{value:.3g}"
    if magnitude >= 100.0:
        return f"{value:.0f}"
    if magnitude >= 10.0:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _is_signed(metric: str, data: np.ma.MaskedArray[Any, Any]) -> bool:
    if metric in SIGNED_METRICS:
        return True
    finite = data.compressed()
    return bool(finite.size) and float(finite.min()) < 0.0 < float(finite.max())
