"""The batch page: ``index.html``, a batch's results as one self-contained table.

Self-contained (inline CSS, no scripts, no network); images are linked by relative path so an
output folder can be moved or zipped as a whole. Laid out for a 1400 px screen: what every
row shares is listed once above the table, the long exact columns come last.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from barbus.replay.reports.results_table import (
    failed_rows,
    is_missing,
    numeric_column,
    require_column,
)
from barbus.replay.stats import lower_is_better

__all__ = ["write_batch_html"]

_ERROR_PREVIEW_CHARS = 300


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
    A failed row (``status`` ``failed``) is highlighted and shows its ``error`` where its
    figures would be. Rows without a ``metric`` value sort last. ``run_plots`` maps
    ``str(job_id)`` to that run's PNG, linked from the ``job_id`` cell.
    """
    for name, role in ((metric, "metric"), ("status", "status"), ("error", "error")):
        require_column(results, name, role)
    lowest_first = lower_is_better(metric) if ascending is None else ascending
    key = numeric_column(results, metric)
    order = np.argsort(key if lowest_first else -key, kind="stable")  # NaN sorts last
    failed = failed_rows(results["status"])[order]
    rows = results.iloc[order]
    out_dir.mkdir(parents=True, exist_ok=True)
    index = out_dir / "index.html"
    plots = run_plots or {}

    lead, params, figures, tail = _page_columns([str(c) for c in rows.columns], metric)
    common = _common_columns(rows, [*lead, *params, *tail])
    lead, params, tail = ([c for c in part if c not in common] for part in (lead, params, tail))
    # What the page shows readably (period, parameter columns) stays exact in results.csv only.
    if "period" in rows.columns:
        tail = [c for c in tail if c not in ("start_ms", "end_ms")]
    if params or any(c in common for c in rows.columns if str(c).startswith("param_")):
        tail = [c for c in tail if c != "params"]
    status = ["status"] if failed.any() else []  # else the summary says every job succeeded
    columns = [*lead, *params, *figures, *status, *tail]
    arrow = "&#9650;" if lowest_first else "&#9660;"
    head = "".join(_header_cell(c, c == metric, arrow) for c in columns)
    body: list[str] = []
    records = rows.to_dict("records")
    for record, is_failed in zip(records, failed, strict=True):
        cells = [_table_cell(c, record[c], metric, plots, out_dir) for c in lead + params]
        if is_failed:
            cells.append(_error_cell(str(record["error"]), len(figures)))
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


def _common_columns(rows: pd.DataFrame, names: Sequence[str]) -> dict[str, Any]:
    """Identity columns with one value in every row (of several): shown once above the table."""
    if len(rows) < 2:
        return {}
    common: dict[str, Any] = {}
    for name in names:
        if name == "job_id":
            continue
        values = rows[name].tolist()
        if all(not is_missing(v) and v == values[0] for v in values):
            common[name] = values[0]
    return common


def _page_columns(
    names: Sequence[str], metric: str
) -> tuple[list[str], list[str], list[str], list[str]]:
    """(lead, params, figures, tail) column names, in page order; ``status`` goes after the
    figures when a row failed, ``error`` in place of a failed row's figures."""
    lead = [c for c in _LEAD_COLUMNS if c in names]
    tail = [c for c in _TAIL_COLUMNS if c in names]
    params = [c for c in names if c.startswith("param_") and c != metric]
    taken = {*lead, *tail, *params, "status", "error"}
    figures = [c for c in names if c not in taken]
    return lead, params, figures, tail


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


def _table_cell(
    column: str, value: Any, metric: str, plots: Mapping[str, Path], out_dir: Path
) -> str:
    if column == "job_id":
        text = html.escape(str(value))
        plot = plots.get(str(value))
        if plot is not None:
            text = f'<a href="{html.escape(_relative_url(plot, out_dir))}">{text}</a>'
        return f"<td>{text}</td>"
    if column == "period":  # may break after "..", not inside a date
        start, dots, end = str(value).partition("..")
        text = f"{html.escape(start)}{dots}<wbr>{html.escape(end)}" if dots else html.escape(start)
        return f'<td class="period">{text}</td>'
    if column in _WRAPPED_COLUMNS:
        return f'<td class="long">{html.escape(str(value))}</td>'
    numeric = (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool | np.bool_)
        and not is_missing(value)
    )
    classes = [c for c in ("num" if numeric else "", "sorted" if column == metric else "") if c]
    css = f' class="{" ".join(classes)}"' if classes else ""
    return f"<td{css}>{html.escape(_format_value(value))}</td>"


def _format_value(value: Any) -> str:
    """Table text: blank if missing, integers as is, floats to 2 decimals (3 figures if tiny)."""
    if is_missing(value):
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        if 0.0 < abs(number) < 0.01:
            return f"{number:.3g}"
        return f"{number:,.2f}"
    return str(value)


def _relative_url(target: Path, base: Path) -> str:
    """A link from ``base`` to ``target``: relative if possible, else an absolute file URL."""
    resolved = target.resolve()
    try:
        relative = os.path.relpath(resolved, base.resolve())
    except ValueError:  # another drive on Windows
        return resolved.as_uri()
    return quote(Path(relative).as_posix())


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
