"""What every barbus figure shares: the canvas, the PNG writer, the colours, the time axis.

Figures are built on :class:`matplotlib.figure.Figure` with an explicit Agg canvas, never
through ``pyplot``: no global figure registry, no GUI backend, safe in threads and worker
processes. Kept apart so the charts agree on how they look and are written, and so a change
of backend or style is made in one place.
"""

from __future__ import annotations

import math
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.dates as mdates
import numpy as np
import numpy.typing as npt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from barbus.daemon.core.events import ExitReason

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "BLANK_CELL",
    "BUY_AND_HOLD",
    "DIVERGING",
    "DRAWDOWN",
    "ENTRY_STYLE",
    "EXIT_STYLES",
    "MAX_PLOT_POINTS",
    "PRICE",
    "SEQUENTIAL",
    "STRATEGY",
    "FloatArray",
    "IntArray",
    "dates",
    "extremes_indices",
    "grid_lines",
    "new_figure",
    "save_figure",
    "utc_time_axis",
]

MAX_PLOT_POINTS = 5_000  # per line; a 1920 px wide PNG cannot show more anyway
_DPI = 100

# Colours. Marker, face colour, legend label per trade event; every exit is red so entries and
# exits read at a glance.
PRICE = "0.25"
BUY_AND_HOLD = "0.6"
STRATEGY = "tab:blue"
DRAWDOWN = "tab:red"
ENTRY_STYLE = ("^", "tab:green", "entry")
EXIT_STYLES: dict[ExitReason, tuple[str, str, str]] = {
    ExitReason.SIGNAL: ("v", "tab:red", "exit: signal"),
    ExitReason.STOP_LOSS: ("X", "darkred", "exit: stop loss"),
    ExitReason.TAKE_PROFIT: ("*", "orangered", "exit: take profit"),
    ExitReason.END_OF_DATA: ("s", "lightcoral", "exit: end of data"),
}
DIVERGING = "RdBu"  # a signed metric, centred on zero
SEQUENTIAL = "viridis"
BLANK_CELL = "0.85"  # shows through blank (NaN) cells: not the white of a 0 on RdBu

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def new_figure(width: float, height: float) -> Figure:
    """An empty figure (size in inches) on its own Agg canvas, with constrained layout."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` (parents created), as every barbus plot is written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI, format="png")
    return path


def grid_lines(ax: Axes) -> None:
    ax.grid(True, alpha=0.3, lw=0.5)


def utc_time_axis(ax: Axes) -> None:
    """Date ticks in UTC, whatever the user's matplotlibrc says (matplotlib's stubs leave these
    untyped)."""
    locator = mdates.AutoDateLocator(tz=UTC)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator, tz=UTC)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(formatter)


def extremes_indices(values: FloatArray, max_points: int = MAX_PLOT_POINTS) -> IntArray:
    """Sorted indices to plot: all of them, or the min and max of each bucket plus both ends.

    Spikes and the drawdown trough survive, unlike plain every-k-th sampling.
    """
    n = len(values)
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    k = math.ceil(n / max(1, (max_points - 4) // 2))
    full = n // k * k
    buckets = values[:full].reshape(-1, k)
    starts = np.arange(0, full, k, dtype=np.int64)
    parts = [
        np.array([0, n - 1], dtype=np.int64),
        starts + np.argmin(buckets, axis=1),
        starts + np.argmax(buckets, axis=1),
    ]
    if full < n:
        tail = values[full:]
        parts.append(np.array([full + np.argmin(tail), full + np.argmax(tail)], dtype=np.int64))
    return np.unique(np.concatenate(parts))


def dates(times_ms: IntArray) -> npt.NDArray[np.datetime64]:
    """Epoch milliseconds as naive UTC datetimes, which matplotlib's date axis understands."""
    return np.asarray(times_ms, dtype=np.int64).astype("datetime64[ms]")
