"""Pictures and pages of replay results: a run's chart, a parameter heatmap, a batch HTML page.

This module owns presentation only; it computes nothing a report figure depends on (those come
from :mod:`replay.stats`) beyond what a chart needs (drawdown curve, buy-and-hold curve).
Figures are built on :class:`matplotlib.figure.Figure` with an explicit Agg canvas, never through
``pyplot``: no global figure registry, no GUI backend, safe in threads and worker processes.
HTML pages are self-contained (inline CSS, no scripts, no network); images are linked by
relative path so an output folder can be moved or zipped as a whole.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Mapping, Sequence
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import matplotlib.dates as mdates
import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from barbus.daemon.core.events import INTERVAL_MS, ExitReason, format_time_ms
from barbus.replay.stats import lower_is_better

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from barbus.replay.runner import ReplayResult

__all__ = [
    "MAX_PLOT_POINTS",
    "heatmap_figure",
    "plot_heatmap",
    "plot_run",
    "run_figure",
    "save_figure",
    "write_batch_html",
]

MAX_PLOT_POINTS = 5_000  # per line; a 1920 px wide PNG cannot show more anyway
MAX_ANNOTATED_CELLS = 15  # per heatmap side
_BAR_MS = 60_000  # replay series are 1-minute bars; a bar's close is marked at open + 1 min
_DPI = 100

# marker, face colour, legend label; every exit is red so entries and exits read at a glance.
_ENTRY_STYLE = ("^", "tab:green", "entry")
_EXIT_STYLES: dict[ExitReason, tuple[str, str, str]] = {
    ExitReason.SIGNAL: ("v", "tab:red", "exit: signal"),
    ExitReason.STOP_LOSS: ("X", "darkred", "exit: stop loss"),
    ExitReason.TAKE_PROFIT: ("*", "orangered", "exit: take profit"),
    ExitReason.END_OF_DATA: ("s", "lightcoral", "exit: end of data"),
}
# Metrics whose sign matters (loss vs gain) get a diverging colour map centred on zero.
_SIGNED_METRIC_WORDS = ("return", "profit", "pnl", "sharpe", "sortino", "calmar", "expectancy")
_OK_STATUSES = frozenset({"ok", "success", "succeeded", "done", "completed", "finished"})
_ERROR_PREVIEW_CHARS = 300

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


# --------------------------------------------------------------------------------------------
# one run


def plot_run(result: ReplayResult, path: Path) -> Path:
    """Write :func:`run_figure` of ``result`` as a PNG at ``path`` (parents created)."""
    return save_figure(run_figure(result), path)


def run_figure(result: ReplayResult) -> Figure:
    """Price with trades, equity vs buy and hold, drawdown: three panels on one UTC time axis.

    Each line is reduced to at most about :data:`MAX_PLOT_POINTS` points by keeping the lowest
    and highest value of every bucket of bars (spikes and the drawdown trough survive, unlike
    plain every-k-th sampling); trade markers are drawn at their exact times and prices.
    """
    series, stats = result.series, result.stats
    open_times = np.asarray(series.open_time_ms, dtype=np.int64)
    # Marks at bar boundaries: the start, then each bar's close. Fills happen at an open (= the
    # previous bar's close time) or at a close, so markers sit on the price line.
    mark_ms = np.empty(len(open_times) + 1, dtype=np.int64)
    mark_ms[1:] = open_times + _BAR_MS
    mark_ms[0] = open_times[0]  # a replay has at least one bar
    first_open = float(series.open[0])
    price = np.empty(len(mark_ms))
    price[0] = first_open
    price[1:] = series.close
    equity = np.asarray(result.equity, dtype=np.float64)
    starting_cash = float(equity[0])
    buy_and_hold = starting_cash * price / first_open
    drawdown = 100.0 * (equity / np.maximum.accumulate(equity) - 1.0)

    fig = Figure(figsize=(13.0, 9.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax_price, ax_equity, ax_dd = fig.subplots(
        3, 1, sharex=True, height_ratios=[3.0, 2.0, 1.2], squeeze=True
    )

    keep = _extremes_indices(price)
    ax_price.plot(_dates(mark_ms[keep]), price[keep], color="0.25", lw=0.8, label="close")
    _plot_trades(ax_price, result)
    ax_price.set_ylabel(f"{series.symbol} price")
    ax_price.legend(loc="best", fontsize="small", ncols=2)

    keep_bh = _extremes_indices(buy_and_hold)
    keep_eq = _extremes_indices(equity)
    ax_equity.plot(
        _dates(mark_ms[keep_bh]), buy_and_hold[keep_bh], color="0.6", lw=0.8, label="buy and hold"
    )
    ax_equity.plot(
        _dates(mark_ms[keep_eq]), equity[keep_eq], color="tab:blue", lw=1.0, label="strategy"
    )
    ax_equity.set_ylabel("equity")
    ax_equity.legend(loc="best", fontsize="small")

    keep_dd = _extremes_indices(drawdown)
    ax_dd.fill_between(
        _dates(mark_ms[keep_dd]), drawdown[keep_dd], 0.0, color="tab:red", alpha=0.35, lw=0.0
    )
    ax_dd.plot(_dates(mark_ms[keep_dd]), drawdown[keep_dd], color="tab:red", lw=0.6)
    ax_dd.set_ylabel("drawdown %")
    ax_dd.set_xlabel("time (UTC)")
    ax_dd.set_xlim(_dates(mark_ms[[0, -1]]))

    # Explicit UTC, whatever the user's matplotlibrc says (matplotlib's stubs leave these untyped).
    locator = mdates.AutoDateLocator(tz=UTC)  # type: ignore[no-untyped-call]
    ax_dd.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator, tz=UTC)  # type: ignore[no-untyped-call]
    ax_dd.xaxis.set_major_formatter(formatter)
    for ax in (ax_price, ax_equity, ax_dd):
        ax.grid(True, alpha=0.3, lw=0.5)

    params = ", ".join(f"{k}={v}" for k, v in result.config.params.items())
    first, last = format_time_ms(int(mark_ms[0])), format_time_ms(int(mark_ms[-1]))
    fig.suptitle(
        f"{result.source.name}{f' ({params})' if params else ''} on {series.symbol}, "
        f"{first} to {last}\n"
        f"return {stats.total_return_pct:+.2f} % (buy and hold "
        f"{stats.buy_and_hold_return_pct:+.2f} %)   max drawdown {stats.max_drawdown_pct:.2f} %"
        f"   Sharpe {_figure_text(stats.sharpe)}   Sortino {_figure_text(stats.sortino)}"
        f"   trades {stats.trades}",
        fontsize="medium",
    )
    return fig


def plot_accounts(
    marks_ms: IntArray, equity: Mapping[str, FloatArray], title: str, path: Path
) -> Path:
    """Each account's equity over time, one line per account (``replay --config``)."""
    fig = Figure(figsize=(13.0, 5.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for name, curve in equity.items():
        keep = _extremes_indices(curve)
        ax.plot(_dates(marks_ms[keep]), curve[keep], lw=1.0, label=name)
    ax.set_ylabel("account equity")
    ax.set_xlabel("time (UTC)")
    ax.legend(loc="best", fontsize="small")
    ax.grid(True, alpha=0.3, lw=0.5)
    locator = mdates.AutoDateLocator(tz=UTC)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator, tz=UTC)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(formatter)
    fig.suptitle(title, fontsize="medium")
    return save_figure(fig, path)


def _figure_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _plot_trades(ax: Axes, result: ReplayResult) -> None:
    """Entry and exit markers, one scatter (and legend entry) per kind present."""
    trades = result.trades
    if not trades:
        return
    # Smaller markers when there are many, so the price line stays visible under them.
    size = max(8.0, min(36.0, 36.0 * math.sqrt(100.0 / len(trades))))
    marker, colour, label = _ENTRY_STYLE
    ax.scatter(
        _dates(np.array([t.entry_time_ms for t in trades], dtype=np.int64)),
        [t.entry_price for t in trades],
        marker=marker,
        color=colour,
        s=size,
        zorder=3,
        label=f"{label} ({len(trades)})",
    )
    for reason, (marker, colour, label) in _EXIT_STYLES.items():
        exits = [t for t in trades if t.exit_reason == reason]
        if not exits:
            continue
        ax.scatter(
            _dates(np.array([t.exit_time_ms for t in exits], dtype=np.int64)),
            [t.exit_price for t in exits],
            marker=marker,
            color=colour,
            edgecolors="black" if reason != ExitReason.SIGNAL else "none",
            linewidths=0.5,
            s=size * (1.4 if reason == ExitReason.TAKE_PROFIT else 1.0),
            zorder=3,
            label=f"{label} ({len(exits)})",
        )


def _extremes_indices(values: FloatArray, max_points: int = MAX_PLOT_POINTS) -> IntArray:
    """Sorted indices to plot: all of them, or the min and max of each bucket plus both ends."""
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


def _dates(times_ms: IntArray) -> npt.NDArray[np.datetime64]:
    """Epoch milliseconds as naive UTC datetimes, which matplotlib's date axis understands."""
    return np.asarray(times_ms, dtype=np.int64).astype("datetime64[ms]")


# --------------------------------------------------------------------------------------------
# parameter grid


def plot_heatmap(results: pd.DataFrame, x: str, y: str, metric: str, path: Path) -> Path:
    """Write :func:`heatmap_figure` as a PNG at ``path`` (parents created)."""
    return save_figure(heatmap_figure(results, x, y, metric), path)


def heatmap_figure(results: pd.DataFrame, x: str, y: str, metric: str) -> Figure:
    """``metric`` over the grid of parameters ``x`` (columns) and ``y`` (rows).

    Rows sharing a cell (several symbols or periods per parameter pair) are averaged, and the
    title says so; cells with no value (failed jobs) stay blank. Signed metrics (returns, Sharpe,
    or anything with both signs) use a diverging map centred on 0 so a loss never looks like a
    small gain.
    """
    for name, role in ((x, "x"), (y, "y"), (metric, "metric")):
        if name not in results.columns:
            raise ValueError(
                f"{role} column {name!r} is not in the results; columns are: "
                f"{', '.join(map(str, results.columns))}"
            )
    if x == y:
        raise ValueError(f"x and y must be different parameters, both are {x!r}")
    values = _numeric_column(results, metric)
    frame = pd.DataFrame({"x": results[x].to_numpy(), "y": results[y].to_numpy(), "v": values})
    frame = frame.dropna(subset=["x", "y"])
    if frame.empty:
        raise ValueError(f"no rows with both {x!r} and {y!r} set: nothing to plot")
    xs, ys = _grid_values(frame["x"]), _grid_values(frame["y"])
    cells = frame.groupby(["y", "x"], sort=False)["v"]
    per_cell = int(cells.size().max()) if len(frame) else 0
    grid = cells.mean().unstack("x").reindex(index=ys, columns=xs)
    data = np.ma.masked_invalid(grid.to_numpy(dtype=np.float64))

    signed = _is_signed(metric, data)
    cmap = "RdBu" if signed else "viridis"
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
    fig = Figure(
        figsize=(min(4.0 + 0.7 * nx, 20.0), min(3.0 + 0.45 * ny, 16.0)), layout="constrained"
    )
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    image = ax.imshow(
        data, cmap=cmap, norm=norm, origin="lower", aspect="auto", interpolation="nearest"
    )
    fig.colorbar(image, ax=ax, label=metric)
    _set_category_ticks(ax, xs, ys)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_facecolor("0.85")  # shows through blank (NaN) cells: not the white of a 0 on RdBu
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


def _numeric_column(results: pd.DataFrame, metric: str) -> FloatArray:
    """The metric as floats (missing values as NaN); text that is not a number is an error."""
    column = results[metric]
    values = pd.to_numeric(column, errors="coerce")
    bad = values.isna() & column.notna()
    if bad.any():
        example = column[bad].iloc[0]
        raise ValueError(f"metric column {metric!r} is not numeric (e.g. {example!r})")
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


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
    name = metric.lower()
    if any(word in name for word in _SIGNED_METRIC_WORDS):
        return True
    finite = data.compressed()
    return bool(finite.size) and float(finite.min()) < 0.0 < float(finite.max())


# --------------------------------------------------------------------------------------------
# batch page


def write_batch_html(
    results: pd.DataFrame,
    out_dir: Path,
    *,
    title: str,
    metric: str,
    ascending: bool | None = None,
    run_plots: Mapping[str, Path] | None = None,
    heatmaps: Sequence[Path] = (),
) -> Path:
    """Write ``out_dir/index.html``: summary, heatmaps and every job, best ``metric`` first.

    "Best" follows the metric (lowest first for :data:`replay.stats.LOWER_IS_BETTER`) unless
    ``ascending`` is given. The page fits a 1400 px screen: identity columns with one value in
    every row (strategy, symbol, file, a fixed parameter, the data path) are listed once above
    the table; columns then read: job, period, parameters, the figures in the results' order
    (return, Sharpe, drawdown, trades first), status (only if a job failed), and last the long
    exact ones, wrapped (epoch bounds and params JSON only when no readable form is shown).
    A row failed when its ``status`` is not an ok word or its ``error`` is not empty (without
    either column: when ``metric`` is missing); a failed row is highlighted and shows its error
    where its figures would be. Rows without a ``metric`` value sort last. ``run_plots`` maps
    ``str(job_id)`` to that run's PNG, linked from the ``job_id`` cell.
    """
    if metric not in results.columns:
        raise ValueError(
            f"metric column {metric!r} is not in the results; columns are: "
            f"{', '.join(map(str, results.columns))}"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    index = out_dir / "index.html"
    lowest_first = lower_is_better(metric) if ascending is None else ascending
    key = _numeric_column(results, metric)
    order = np.argsort(key if lowest_first else -key, kind="stable")  # NaN sorts last
    rows = results.iloc[order]
    failed = _failed_rows(rows, key[order])
    plots = run_plots or {}

    lead, params, figures, status, tail = _page_columns([str(c) for c in rows.columns], metric)
    common = _common_columns(rows, [*lead, *params, *tail], metric)
    lead, params, tail = ([c for c in part if c not in common] for part in (lead, params, tail))
    # What the page shows readably (period, parameter columns) stays exact in results.csv only.
    if "period" in rows.columns:
        tail = [c for c in tail if c not in ("start_ms", "end_ms")]
    if params or any(c in common for c in rows.columns if str(c).startswith("param_")):
        tail = [c for c in tail if c != "params"]
    if not failed.any():
        status = []  # the summary says every job succeeded
    columns = [*lead, *params, *figures, *status, *tail]
    arrow = "&#9650;" if lowest_first else "&#9660;"
    head = "".join(_header_cell(c, c == metric, arrow) for c in columns)
    body: list[str] = []
    records = rows.to_dict("records")
    for record, is_failed in zip(records, failed, strict=True):
        cells = [_table_cell(c, record[c], metric, plots, out_dir) for c in lead + params]
        error = record.get("error")
        if is_failed and figures:
            text = "failed" if _is_missing(error) or not str(error).strip() else str(error)
            cells.append(_error_cell(text, len(figures)))
        else:
            cells += [_table_cell(c, record[c], metric, plots, out_dir) for c in figures]
        cells += [_table_cell(c, record[c], metric, plots, out_dir) for c in status + tail]
        css = ' class="failed"' if is_failed else ""
        body.append(f"<tr{css}>{''.join(cells)}</tr>")

    n_failed = int(np.count_nonzero(failed))
    direction = "lowest first" if lowest_first else "highest first"
    summary = (
        f"{len(rows)} job{'s' if len(rows) != 1 else ''}: {len(rows) - n_failed} succeeded, "
        f"{n_failed} failed. Sorted by {metric}, {direction}."
    )
    images = "".join(
        f'<figure><img src="{html.escape(_relative_url(p, out_dir))}" '
        f'alt="{html.escape(p.name)}"></figure>'
        for p in heatmaps
    )
    shared = "".join(
        f"<li><b>{html.escape(_column_label(c))}</b> {html.escape(_format_value(v))}</li>"
        for c, v in common.items()
    )
    page = _PAGE.format(
        title=html.escape(title),
        summary=html.escape(summary),
        common=f'<ul class="common">{shared}</ul>' if shared else "",
        heatmaps=f'<section class="heatmaps">{images}</section>' if images else "",
        head=head,
        body="\n".join(body),
    )
    index.write_text(page, encoding="utf-8")
    return index


# Who a job is (first), and the long exact columns (last); figures are everything else.
_LEAD_COLUMNS = ("job_id", "strategy", "symbol", "file", "period")
_TAIL_COLUMNS = ("strategy_spec", "strategy_fingerprint", "data", "start_ms", "end_ms", "params")
_WRAPPED_COLUMNS = frozenset({"strategy_spec", "data", "params"})
_COLUMN_LABELS = {
    "job_id": "job",
    "total_return_pct": "return %",
    "sharpe": "Sharpe",
    "max_drawdown_pct": "max DD %",
    "sortino": "Sortino",
    "cagr_pct": "CAGR %",
    "calmar": "Calmar",
    "max_drawdown_days": "longest DD days",
    "buy_and_hold_return_pct": "buy & hold %",
    "win_rate_pct": "win rate %",
    "profit_factor": "profit factor",
    "expectancy": "expect\u00adancy",  # a soft hyphen: the header may break there
    "avg_trade_pct": "avg trade %",
    "exposure_pct": "exposure %",
    "final_equity": "final equity",
}


def _common_columns(rows: pd.DataFrame, names: Sequence[str], metric: str) -> dict[str, Any]:
    """Identity columns with one value in every row (of several): shown once above the table."""
    if len(rows) < 2:
        return {}
    common: dict[str, Any] = {}
    for name in names:
        if name in (metric, "job_id"):
            continue
        values = rows[name].tolist()
        if all(not _is_missing(v) and v == values[0] for v in values):
            common[name] = values[0]
    return common


def _page_columns(
    names: Sequence[str], metric: str
) -> tuple[list[str], list[str], list[str], list[str], list[str]]:
    """(lead, params, figures, status, tail) column names, in page order; ``error`` is dropped
    (a failed row shows it in place of its figures)."""
    lead = [c for c in _LEAD_COLUMNS if c in names]
    tail = [c for c in _TAIL_COLUMNS if c in names]
    params = [c for c in names if c.startswith("param_") and c != metric]
    status = ["status"] if "status" in names else []
    taken = {*lead, *tail, *params, *status, "error"}
    figures = [c for c in names if c not in taken]
    return lead, params, figures, status, tail


def _header_cell(column: str, sorted_by: bool, arrow: str) -> str:
    name = html.escape(column)
    label = html.escape(_column_label(column))
    if sorted_by:
        return f'<th class="sorted" title="{name}">{label} {arrow}</th>'
    return f'<th title="{name}">{label}</th>'


def _column_label(column: str) -> str:
    """A short header (the full column name is the header's tooltip)."""
    if column.startswith("param_"):
        return column.removeprefix("param_")
    return _COLUMN_LABELS.get(column, column.replace("_", " "))


def _error_cell(text: str, span: int) -> str:
    shown = text if len(text) <= _ERROR_PREVIEW_CHARS else text[:_ERROR_PREVIEW_CHARS] + "…"
    return (
        f'<td class="error" colspan="{span}" title="{html.escape(text)}">{html.escape(shown)}</td>'
    )


def _failed_rows(rows: pd.DataFrame, key: FloatArray) -> npt.NDArray[np.bool_]:
    has_status, has_error = "status" in rows.columns, "error" in rows.columns
    if not has_status and not has_error:
        return np.isnan(key)
    failed = np.zeros(len(rows), dtype=np.bool_)
    if has_status:
        failed |= np.array([_is_failure_status(s) for s in rows["status"]], dtype=np.bool_)
    if has_error:
        failed |= np.array(
            [not _is_missing(e) and bool(str(e).strip()) for e in rows["error"]], dtype=np.bool_
        )
    return failed


def _is_failure_status(status: Any) -> bool:
    return not _is_missing(status) and str(status).strip().lower() not in _OK_STATUSES


def _table_cell(
    column: str, value: Any, metric: str, plots: Mapping[str, Path], out_dir: Path
) -> str:
    if column == "job_id" and not _is_missing(value):
        text = html.escape(str(value))
        plot = plots.get(str(value))
        if plot is not None:
            text = f'<a href="{html.escape(_relative_url(plot, out_dir))}">{text}</a>'
        return f"<td>{text}</td>"
    if column == "error" and not _is_missing(value):
        return _error_cell(str(value), 1)
    if column == "period" and not _is_missing(value):  # may break after "..", not inside a date
        start, dots, end = str(value).partition("..")
        text = f"{html.escape(start)}{dots}<wbr>{html.escape(end)}" if dots else html.escape(start)
        return f'<td class="period">{text}</td>'
    if column in _WRAPPED_COLUMNS and not _is_missing(value):
        return f'<td class="long">{html.escape(str(value))}</td>'
    numeric = (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool | np.bool_)
        and not _is_missing(value)
    )
    classes = [c for c in ("num" if numeric else "", "sorted" if column == metric else "") if c]
    css = f' class="{" ".join(classes)}"' if classes else ""
    return f"<td{css}>{html.escape(_format_value(value))}</td>"


def _format_value(value: Any) -> str:
    """Table text: blank if missing, integers as is, floats to 2 decimals (3 figures if tiny)."""
    if _is_missing(value):
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        if not math.isfinite(number):
            return str(number)
        if 0.0 < abs(number) < 0.01:
            return f"{number:.3g}"
        return f"{number:,.2f}"
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def _is_missing(value: Any) -> bool:
    """None, NaN or NaT (but not a list or dict cell, which pd.isna would test element-wise)."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _relative_url(target: Path, base: Path) -> str:
    """A link from ``base`` to ``target``: relative if possible, else an absolute file URL."""
    resolved = target.resolve()
    try:
        relative = os.path.relpath(resolved, base.resolve())
    except ValueError:  # another drive on Windows
        return resolved.as_uri()
    return quote(Path(relative).as_posix())


def save_figure(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` (parents created), as every barbus plot is written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI, format="png")
    return path


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1rem; color: #222; }}
h1 {{ font-size: 1.4rem; margin-bottom: 0.3rem; }}
p.summary {{ color: #555; margin-top: 0; }}
ul.common {{ list-style: none; padding: 0; margin: 0.3rem 0; color: #444; font-size: 0.85rem;
             display: flex; flex-wrap: wrap; gap: 0.2rem 1.2rem; overflow-wrap: anywhere; }}
.heatmaps {{ display: flex; flex-wrap: wrap; gap: 1rem; margin: 1rem 0; }}
.heatmaps figure {{ margin: 0; }}
.heatmaps img {{ max-width: 100%; border: 1px solid #ddd; }}
table {{ border-collapse: collapse; font-size: 0.8rem; }}
th, td {{ border: 1px solid #ddd; padding: 0.2rem 0.35rem; }}
th {{ background: #f0f0f0; position: sticky; top: 0; cursor: default; text-align: left;
      vertical-align: bottom; max-width: 5rem; font-weight: 600; }}
th.sorted {{ background: #dde8f5; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
td.sorted {{ font-weight: 600; }}
tr:nth-child(even) {{ background: #fafafa; }}
tr.failed, tr.failed:nth-child(even) {{ background: #fde2e2; }}
td {{ white-space: nowrap; }}
td.period {{ white-space: normal; min-width: 5.5rem; }}
td.error {{ color: #a00; max-width: 40rem; white-space: pre-wrap; overflow-wrap: anywhere; }}
td.long {{ white-space: normal; overflow-wrap: anywhere; min-width: 8rem; max-width: 16rem;
           font-size: 0.75rem; color: #555; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p class="summary">{summary}</p>
{common}
{heatmaps}
<table>
<thead><tr>{head}</tr></thead>
<tbody>
{body}
</tbody>
</table>
</body>
</html>
"""
