"""Run charts, heatmaps and the batch page, written as real files from real replays."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D

from barbus.daemon.core.events import ExitReason, parse_utc_ms
from barbus.daemon.core.synthetic import synthetic_series
from barbus.replay.batch import METRICS
from barbus.replay.reports.batch_page import write_batch_html
from barbus.replay.reports.heatmap import heatmap_figure, plot_heatmap
from barbus.replay.reports.plotting import MAX_PLOT_POINTS
from barbus.replay.reports.run_chart import plot_run, run_figure
from barbus.replay.runner import ReplayConfig, ReplayResult, run_replay

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WEEK_START_MS = parse_utc_ms("2025-06-02")
WEEK_END_MS = parse_utc_ms("2025-06-09")


def week_replay(**params: str | int | float | bool) -> ReplayResult:
    config = ReplayConfig(
        strategy="sma_cross", params=params, start_ms=WEEK_START_MS, end_ms=WEEK_END_MS
    )
    return run_replay(config)


def assert_png(path: Path) -> None:
    """A real, non-blank PNG of a plausible (not sliver-thin) shape."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = mpimg.imread(path)
    height, width = pixels.shape[:2]
    assert width > 300
    assert height > width / 3
    assert float(np.std(pixels)) > 0.0


@pytest.fixture(scope="module")
def week() -> ReplayResult:
    result = week_replay()
    assert result.trades, "precondition: sma_cross trades in a week of real data"
    return result


# --------------------------------------------------------------------------------------------
# plot_run


def test_plot_run_writes_a_png_of_a_real_replay_creating_folders(
    week: ReplayResult, tmp_path: Path
) -> None:
    target = tmp_path / "runs" / "job-1" / "run.png"
    written = plot_run(week, target)
    assert written == target
    assert_png(target)


def test_run_figure_marks_every_trade_at_its_exact_time_and_price(week: ReplayResult) -> None:
    fig = run_figure(week)
    ax_price, ax_equity, ax_drawdown = fig.axes[:3]
    markers = {
        str(c.get_label()).split(" (")[0]: np.asarray(c.get_offsets(), dtype=np.float64)
        for c in ax_price.collections
        if isinstance(c, PathCollection)
    }
    trades = week.trades
    entries = markers["entry"]
    # Matplotlib's date numbers: days since the epoch (rcParams "date.epoch" is 1970 by default).
    expected_days = np.array([t.entry_time_ms for t in trades], dtype=np.float64) / 86_400_000
    np.testing.assert_allclose(entries[:, 0], expected_days, rtol=0, atol=1e-9)
    np.testing.assert_allclose(entries[:, 1], np.array([t.entry_price for t in trades]))
    assert len(markers["exit: signal"]) == len(trades)
    # Equity panel: the strategy ends at the final equity; drawdown never above zero.
    strategy_line = next(ln for ln in ax_equity.get_lines() if ln.get_label() == "strategy")
    assert float(np.asarray(strategy_line.get_ydata())[-1]) == pytest.approx(
        week.stats.final_equity
    )
    dd_values = np.concatenate([np.asarray(ln.get_ydata()) for ln in ax_drawdown.get_lines()])
    assert dd_values.max() <= 0.0
    assert dd_values.min() == pytest.approx(-week.stats.max_drawdown_pct)
    title = fig.get_suptitle()
    for fragment in ("sma_cross", "BTCUSDT", "2025-06-02", f"trades {week.stats.trades}"):
        assert fragment in title


def test_plot_run_without_trades(tmp_path: Path) -> None:
    # The slow average needs more bars than a day has, so no cross can happen.
    config = ReplayConfig(
        strategy="sma_cross",
        params={"fast": 100, "slow": 2_000},
        start_ms=WEEK_START_MS,
        end_ms=WEEK_START_MS + 24 * 3_600_000,
    )
    result = run_replay(config)
    assert result.trades == []
    assert_png(plot_run(result, tmp_path / "flat.png"))


def test_plot_run_shows_stop_loss_exits_apart(tmp_path: Path) -> None:
    result = week_replay(stop_loss_pct=0.5)
    stops = [t for t in result.trades if t.exit_reason == ExitReason.STOP_LOSS]
    assert stops, "precondition: a 0.5 % stop is hit in this week"
    labels = [c.get_label() for c in run_figure(result).axes[0].collections]
    assert f"exit: stop loss ({len(stops)})" in labels
    assert_png(plot_run(result, tmp_path / "stops.png"))


def test_plot_run_downsamples_a_long_series(tmp_path: Path) -> None:
    series = synthetic_series(300_000)
    result = run_replay(
        ReplayConfig(strategy="sma_cross", params={"fast": 300, "slow": 1_200}), series=series
    )
    fig = run_figure(result)
    lines = [ln for ax in fig.axes[:3] for ln in ax.get_lines() if isinstance(ln, Line2D)]
    assert lines
    for line in lines:
        assert len(np.asarray(line.get_xdata())) <= MAX_PLOT_POINTS
    # The extremes survive the reduction: the price line still reaches the series' max close.
    price = np.asarray(fig.axes[0].get_lines()[0].get_ydata())
    assert price.max() == series.close.max()
    assert_png(plot_run(result, tmp_path / "long.png"))


# --------------------------------------------------------------------------------------------
# plot_heatmap


def grid_results(repeats: int = 1) -> pd.DataFrame:
    rows = []
    for rep in range(repeats):
        for fast in (15, 5, 10):  # unsorted on purpose
            for slow in (20, 30, 40):
                value = (fast - 10) * 1.5 + (slow - 30) / 10 + rep
                rows.append({"fast": fast, "slow": slow, "total_return_pct": value})
    frame = pd.DataFrame(rows)
    frame.loc[(frame["fast"] == 15) & (frame["slow"] == 40), "total_return_pct"] = math.nan
    return frame


def test_plot_heatmap_writes_a_png(tmp_path: Path) -> None:
    target = tmp_path / "maps" / "fast_slow.png"
    assert plot_heatmap(grid_results(), "fast", "slow", "total_return_pct", target) == target
    assert_png(target)


def test_heatmap_grid_sorted_blank_where_failed_and_centred_on_zero() -> None:
    fig = heatmap_figure(grid_results(), "fast", "slow", "total_return_pct")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["5", "10", "15"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["20", "30", "40"]
    image = next(im for im in ax.get_images() if isinstance(im, AxesImage))
    data: np.ma.MaskedArray[Any, Any] = np.ma.asarray(image.get_array())
    assert data.shape == (3, 3)  # rows = slow, columns = fast
    assert bool(np.ma.getmaskarray(data)[2, 2])  # fast=15, slow=40 failed
    assert data[0, 0] == pytest.approx(-7.5 - 1.0)  # fast=5, slow=20
    low, high = image.get_clim()
    assert low == pytest.approx(-high)
    assert len(ax.texts) == 8  # every cell but the blank one is annotated
    assert "mean" not in ax.get_title()


def test_heatmap_averages_rows_sharing_a_cell_and_says_so() -> None:
    fig = heatmap_figure(grid_results(repeats=2), "fast", "slow", "total_return_pct")
    ax = fig.axes[0]
    data: np.ma.MaskedArray[Any, Any] = np.ma.asarray(ax.get_images()[0].get_array())
    assert data[0, 0] == pytest.approx((-8.5 + -7.5) / 2)
    assert "mean of up to 2 runs per cell" in ax.get_title()


def test_heatmap_orders_timeframes_by_length() -> None:
    results = pd.DataFrame(
        {
            "timeframe": ["1h", "15m", "5m", "1h", "15m", "5m"],
            "stop_loss_pct": [0.5, 0.5, 0.5, 1.0, 1.0, 1.0],
            "win_rate_pct": [40.0, 50.0, 60.0, 45.0, 55.0, 65.0],
        }
    )
    ax = heatmap_figure(results, "timeframe", "stop_loss_pct", "win_rate_pct").axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["5m", "15m", "1h"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.5", "1"]


# The batch metrics a heatmap centres on zero whatever the values' signs (replay.batch.METRICS).
SIGNED = {
    "total_return_pct",
    "buy_and_hold_return_pct",
    "sharpe",
    "sortino",
    "calmar",
    "profit_factor",
    "expectancy",
}


@pytest.mark.parametrize("metric", [*METRICS, "pnl", "net_profit"])
def test_heatmap_centres_the_signed_batch_metrics_on_zero(metric: str) -> None:
    """Positive values only: a diverging map for the signed batch metrics, a sequential one for
    the others and for any column that is not a batch metric, whatever its name."""
    results = grid_results().rename(columns={"total_return_pct": metric})
    results[metric] = results[metric].abs() + 1.0
    image = heatmap_figure(results, "fast", "slow", metric).axes[0].get_images()[0]
    low, high = image.get_clim()
    if metric in SIGNED:
        assert image.get_cmap().name == "RdBu"
        assert low == pytest.approx(-high)
    else:
        assert image.get_cmap().name == "viridis"
        assert low > 0.0


@pytest.mark.parametrize(
    ("x", "y", "metric", "message"),
    [
        ("fast", "slow", "sharpe", "metric column 'sharpe'"),
        ("nope", "slow", "total_return_pct", "x column 'nope'"),
        ("fast", "fast", "total_return_pct", "must be different"),
    ],
)
def test_heatmap_rejects_bad_columns(
    tmp_path: Path, x: str, y: str, metric: str, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        plot_heatmap(grid_results(), x, y, metric, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


# --------------------------------------------------------------------------------------------
# write_batch_html


def batch_results() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "job_id": ["j1", "j2", "j3", "j4"],
            "fast": [5, 10, 15, 20],
            "total_return_pct": [1.5, 7.25, math.nan, -3.0],
            "status": ["ok", "ok", "failed", "ok"],
            "error": [None, None, "<script>alert('x')</script> & more", None],
        }
    )


def test_write_batch_html(tmp_path: Path) -> None:
    out_dir = tmp_path / "report"
    plots_dir = out_dir / "runs"
    run_plots = {}
    for job in ("j1", "j2"):
        run_plots[job] = plot_run_placeholder(plots_dir / f"{job}.png")
    heatmap = plot_heatmap(
        grid_results(), "fast", "slow", "total_return_pct", out_dir / "heatmap.png"
    )

    index = write_batch_html(
        batch_results(),
        out_dir,
        title="sma_cross <grid>",
        metric="total_return_pct",
        run_plots=run_plots,
        heatmaps=[heatmap],
    )

    assert index == out_dir / "index.html"
    page = index.read_text(encoding="utf-8")
    assert "<title>sma_cross &lt;grid&gt;</title>" in page
    assert "4 jobs: 3 succeeded, 1 failed" in page
    assert '<img src="heatmap.png"' in page
    # Links are relative to the page and point at files that exist.
    links = re.findall(r'<a href="([^"]+)">(j\d)</a>', page)
    assert sorted(links) == [("runs/j1.png", "j1"), ("runs/j2.png", "j2")]
    for href, _ in links:
        assert (out_dir / href).is_file()
    # Every job is listed, best first, the failed one (no metric) last.
    order = re.findall(r"<td>(?:<a [^>]*>)?(j\d)", page)
    assert order == ["j2", "j1", "j4", "j3"]
    # Hostile text is escaped, never markup; the failed row is highlighted.
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in page
    failed_rows = re.findall(r'<tr class="failed">.*?</tr>', page, flags=re.DOTALL)
    assert len(failed_rows) == 1
    assert "j3" in failed_rows[0]
    assert "7.25" in page
    assert "-3.00" in page
    assert "http" not in page  # self-contained: nothing fetched from the network


def plot_run_placeholder(path: Path) -> Path:
    """A tiny real PNG to link to (the batch page only links, it does not read it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mpimg.imsave(path, np.zeros((2, 2, 3)))
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"status": ["ok", "done", "failed", "ok"]}, "status 'done' is not a batch row's status"),
        ({"status": None}, "status column 'status' is not in the results"),
        ({"error": None}, "error column 'error' is not in the results"),
    ],
)
def test_write_batch_html_rejects_a_table_barbus_does_not_write(
    tmp_path: Path, edit: dict[str, Any], message: str
) -> None:
    """A batch row's status is ``ok`` or ``failed`` with its ``error`` beside it; an edited
    table with another status, or without either column, is one clear error, nothing written."""
    results = batch_results()
    for column, values in edit.items():
        if values is None:
            results = results.drop(columns=[column])
        else:
            results[column] = values
    with pytest.raises(ValueError, match=re.escape(message)):
        write_batch_html(results, tmp_path / "page", title="t", metric="total_return_pct")
    assert not (tmp_path / "page").exists()


def test_write_batch_html_rejects_an_unknown_metric(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="metric column 'sharpe'"):
        write_batch_html(batch_results(), tmp_path, title="t", metric="sharpe")


def batch_rows() -> pd.DataFrame:
    """Rows shaped like results.csv: identity, parameters, figures, status, exact columns."""
    return pd.DataFrame(
        {
            "job_id": ["a1", "b2", "c3"],
            "strategy": ["sma_cross"] * 3,
            "symbol": ["BTCUSDT"] * 3,
            "file": ["x.csv"] * 3,
            "period": ["2025-05-20..2025-06-20", "2025-06-20..2025-07-20", "all"],
            "param_fast": [5, 10, 20],
            "total_return_pct": [1.5, -2.0, math.nan],
            "sharpe": [0.8, -1.2, math.nan],
            "max_drawdown_pct": [7.5, 2.25, math.nan],
            "trades": [3, 4, math.nan],
            "status": ["ok", "ok", "failed"],
            "error": [None, None, "DataError: x.csv: no bars in the requested period"],
            "data": ["/a/very/long/path/to/x.csv"] * 3,
            "start_ms": [1, 2, None],
            "end_ms": [3, 4, None],
            "params": ['{"fast": 5}', '{"fast": 10}', '{"fast": 20}'],
        }
    )


def page_rows(page: str) -> list[str]:
    return re.findall(r"<tr[^>]*>(.*?)</tr>", page, flags=re.DOTALL)


def test_batch_page_ranks_a_drawdown_lowest_first(tmp_path: Path) -> None:
    page = write_batch_html(batch_rows(), tmp_path, title="t", metric="max_drawdown_pct")
    text = page.read_text(encoding="utf-8")

    assert re.findall(r"<td>(\w\d)</td>", text) == ["b2", "a1", "c3"]
    assert "Sorted by max_drawdown_pct, lowest first." in text
    flipped = write_batch_html(
        batch_rows(), tmp_path / "desc", title="t", metric="max_drawdown_pct", ascending=False
    ).read_text(encoding="utf-8")
    assert re.findall(r"<td>(\w\d)</td>", flipped) == ["a1", "b2", "c3"]


def test_batch_page_puts_figures_after_parameters_and_long_columns_last(tmp_path: Path) -> None:
    text = write_batch_html(batch_rows(), tmp_path, title="t", metric="sharpe").read_text(
        encoding="utf-8"
    )
    headers = re.findall(r'<th[^>]* title="([^"]+)"', text)

    assert headers == [
        "job_id",
        "period",
        "param_fast",
        "total_return_pct",
        "sharpe",
        "max_drawdown_pct",
        "trades",
        "status",
    ]
    # Columns with one value in every row are shown once above the table, the long path too.
    common = re.search(r'<ul class="common">(.*?)</ul>', text, flags=re.DOTALL)
    assert common is not None
    for shown in ("sma_cross", "BTCUSDT", "x.csv", "/a/very/long/path/to/x.csv"):
        assert shown in common.group(1)


def test_a_failed_row_shows_its_error_where_its_figures_would_be(tmp_path: Path) -> None:
    text = write_batch_html(batch_rows(), tmp_path, title="t", metric="sharpe").read_text(
        encoding="utf-8"
    )
    failed = [row for row in page_rows(text) if "c3" in row]

    assert len(failed) == 1
    cells = re.findall(r"<td([^>]*)>(.*?)</td>", failed[0])
    # job, period, fast, then one cell over the four figures with the error, then the status
    assert [body for _, body in cells][:3] == ["c3", "all", "20"]
    assert 'colspan="4"' in cells[3][0]
    assert cells[3][1] == "DataError: x.csv: no bars in the requested period"
    assert cells[4][1] == "failed"
